//! The near-duplicate threshold, measured on real photos with the real
//! model: augmented copies of a photo (a centre crop, a rescale, a JPEG
//! re-encode at low quality, and all three) are the positives, distinct
//! photos the negatives. Prints the precision/recall table that
//! BENCHMARKS.md quotes, and checks that at the default threshold
//! (`duplicates.threshold`) every mild copy is flagged and no two distinct
//! photos are.

use std::io::Cursor;

use bytes::Bytes;
use image::{DynamicImage, ImageFormat, codecs::jpeg::JpegEncoder, imageops::FilterType};
use vitrine::{
    Settings,
    embed::{EmbedService, Embedder},
};

fn jpeg(img: &DynamicImage, quality: u8) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(&img.to_rgb8())
        .unwrap();
    out.into_inner()
}

/// The copies a second seller would upload: `(name, bytes)`.
fn augmented(img: &DynamicImage) -> Vec<(&'static str, Vec<u8>)> {
    let (w, h) = (img.width(), img.height());
    let crop = img.crop_imm(w / 20, h / 20, w - w / 10, h - h / 10);
    let small = img.resize(w / 2, h / 2, FilterType::Triangle);
    let all = crop.resize(w / 2, h / 2, FilterType::Triangle);
    vec![
        ("crop 90%", jpeg(&crop, 90)),
        ("rescale 50%", jpeg(&small, 90)),
        ("jpeg q40", jpeg(img, 40)),
        ("crop+rescale+q40", jpeg(&all, 40)),
    ]
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn augmented_copies_are_duplicates_and_distinct_photos_are_not() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut settings = Settings::for_data_dir(std::env::temp_dir());
    settings.embed.model_dir = root.join("models/effnet-lite0");
    let threshold = settings.duplicates.threshold;
    let embedder = Embedder::from_settings(&settings.embed).expect("scripts/fetch-assets.sh");
    let service = EmbedService::start(embedder, 8);

    let mut photos: Vec<_> = std::fs::read_dir(root.join("tests/data/photos"))
        .expect("tests/data/photos (scripts/fetch-assets.sh)")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jpg" || x == "png"))
        .collect();
    photos.sort();
    assert!(photos.len() >= 20, "{} photos", photos.len());

    let mut originals = Vec::new();
    let mut positives: Vec<(String, &'static str, f32)> = Vec::new();
    for p in &photos {
        let bytes = std::fs::read(p).unwrap();
        let img = image::load_from_memory(&bytes).unwrap();
        let format = image::guess_format(&bytes).unwrap();
        let v = service.embed(Bytes::from(bytes)).await.unwrap();
        // Skip the photos too small to crop and rescale meaningfully.
        if img.width() >= 64 && img.height() >= 64 && format != ImageFormat::Gif {
            for (kind, copy) in augmented(&img) {
                let c = service.embed(Bytes::from(copy)).await.unwrap();
                positives.push((p.display().to_string(), kind, cosine(&v, &c)));
            }
        }
        originals.push(v);
    }
    let mut negatives = Vec::new();
    for i in 0..originals.len() {
        for j in i + 1..originals.len() {
            negatives.push(cosine(&originals[i], &originals[j]));
        }
    }

    println!(
        "near-duplicate threshold on {} photos: {} augmented copies (positives), {} distinct pairs (negatives)",
        photos.len(),
        positives.len(),
        negatives.len()
    );
    println!(
        "| threshold | recall (copies flagged) | false positives (distinct pairs flagged) | precision |"
    );
    println!("|---|---|---|---|");
    for t in [0.60f32, 0.65, 0.70, 0.75, 0.80, 0.85, 0.90, 0.95] {
        let tp = positives.iter().filter(|(_, _, s)| *s >= t).count();
        let fp = negatives.iter().filter(|s| **s >= t).count();
        let precision = if tp + fp == 0 {
            1.0
        } else {
            tp as f64 / (tp + fp) as f64
        };
        println!(
            "| {t:.2} | {tp}/{} ({:.1}%) | {fp}/{} | {:.3} |",
            positives.len(),
            100.0 * tp as f64 / positives.len() as f64,
            negatives.len(),
            precision
        );
    }
    for kind in ["crop 90%", "rescale 50%", "jpeg q40", "crop+rescale+q40"] {
        let s: Vec<f32> = positives
            .iter()
            .filter(|(_, k, _)| *k == kind)
            .map(|p| p.2)
            .collect();
        let min = s.iter().cloned().fold(f32::INFINITY, f32::min);
        println!("{kind}: min cosine {min:.4}");
    }
    let max_negative = negatives.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    println!("distinct photos: max cosine {max_negative:.4}");

    // At the default: no distinct pair is flagged, and every mild copy
    // (one change at a time) is.
    assert!(
        max_negative < threshold,
        "distinct photos at {max_negative} reach the threshold {threshold}"
    );
    for (photo, kind, s) in &positives {
        if *kind != "crop+rescale+q40" {
            assert!(
                *s >= threshold,
                "{photo} ({kind}) at {s} is under the threshold {threshold}"
            );
        }
    }
}
