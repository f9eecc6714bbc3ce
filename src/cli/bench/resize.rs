//! `vitrine bench resize`: `fast_image_resize` against
//! `image::imageops::resize`, one thread, on the same decoded images, the
//! two timed alternately so that load from elsewhere hits both alike.

use std::{path::Path, time::Instant};

use fast_image_resize::Resizer;
use serde_json::{Value, json};

use super::{
    photos::{RESIZE_SIDE, load_photos, resize_diff, resize_fir, resize_imageops},
    stats::{Summary, round3},
};

/// Times both resizers over all images, alternating, `reps` times each;
/// returns the JSON report.
pub fn resize(dir: &Path, reps: usize, max_pixels: u64) -> anyhow::Result<Value> {
    let photos = load_photos(dir, max_pixels, usize::MAX)?;
    let n = photos.len() as f64;
    let mut resizer = Resizer::new();
    // Same output, checked: mean absolute difference per channel value.
    let diff = resize_diff(&mut resizer, photos.iter().map(|p| &p.image))?;
    let (mut fir, mut ops) = (Vec::new(), Vec::new());
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        for p in &photos {
            std::hint::black_box(resize_fir(&mut resizer, &p.image)?);
        }
        fir.push(n / t.elapsed().as_secs_f64());
        let t = Instant::now();
        for p in &photos {
            std::hint::black_box(resize_imageops(&p.image));
        }
        ops.push(n / t.elapsed().as_secs_f64());
    }
    let ratios: Vec<f64> = fir.iter().zip(&ops).map(|(a, b)| a / b).collect();
    let (sf, so, sr) = (Summary::of(&fir), Summary::of(&ops), Summary::of(&ratios));
    println!(
        "resize to {RESIZE_SIDE}x{RESIZE_SIDE} bilinear, {} images from {}, one thread; mean |diff| {diff:.3}/255",
        photos.len(),
        dir.display()
    );
    println!("fast_image_resize (images/s):  {sf}");
    println!("image::imageops (images/s):    {so}");
    println!("fast_image_resize / imageops:  {sr}");
    Ok(json!({
        "bench": "resize",
        "images": photos.len(),
        "side": RESIZE_SIDE,
        "filter": "bilinear",
        "reps": reps.max(1),
        "mean_abs_diff": round3(diff),
        "fast_image_resize_images_per_s": sf.json(&fir),
        "imageops_images_per_s": so.json(&ops),
        "ratio_fir_to_imageops": sr.json(&ratios),
    }))
}
