//! The ingest pipeline, stage by stage, on the real photos in
//! `tests/data/photos` (from `scripts/fetch-assets.sh`) and the real model:
//!
//! - `decode`: the service's checked decode (`image` 0.25, whose JPEG
//!   decoder is `zune-jpeg`) of the original files, and of the same photos
//!   re-encoded as JPEG quality 90 (what `vitrine bench ingest` feeds in);
//! - `resize`: `fast_image_resize` against `image::imageops::resize`, same
//!   filter (bilinear = `Triangle`), same 224×224 output, same decoded
//!   images; plus the service's own resize + centre crop;
//! - `tensor` and `preprocess`: normalisation into the model tensor, and the
//!   whole bytes → tensor path (`vitrine::embed::preprocess::preprocess`);
//! - `embed`: `Embedder::infer` on pre-made tensors at batch 1, 8, 32, 64,
//!   with the default pool (one thread per core) and with one thread;
//! - `hmac`: `vitrine::http::signature::verify` on a 1 KiB body.
//!
//! Run: `cargo bench --bench pipeline`. Without `--bench` (inside
//! `cargo test --all-targets`) every bench runs once on a few photos and the
//! small batches only, as a smoke test that takes a few seconds.

use std::{hint::black_box, time::Duration};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fast_image_resize::Resizer;
use image::RgbImage;
use vitrine::{
    config::Secret,
    embed::{manifest::Manifest, preprocess},
    http::signature,
};

mod common;
use common::{
    photos::{
        Photo, RESIZE_SIDE, encode_jpeg, load_photos, resize_diff, resize_fir, resize_imageops,
    },
    root,
};

const MAX_PIXELS: u64 = 40_000_000;
/// The service's checks, with no budget to wait on (one decode at a time).
static LIMITS: std::sync::LazyLock<preprocess::DecodeLimits> =
    std::sync::LazyLock::new(|| preprocess::DecodeLimits::new(MAX_PIXELS, u64::MAX));

fn full_run() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// The first `limit` photos, sorted by name, as file bytes and decoded.
fn photos(limit: usize) -> Vec<Photo> {
    load_photos(&root().join("tests/data/photos"), MAX_PIXELS, limit)
        .unwrap_or_else(|e| panic!("{e:#}; run scripts/fetch-assets.sh for the bench photos"))
}

fn manifest() -> Manifest {
    vitrine::embed::ModelInfo::load(&common::model_dir())
        .expect("model manifest; run scripts/fetch-assets.sh")
        .manifest
}

fn bench_stages(c: &mut Criterion) {
    let full = full_run();
    let files = photos(if full { usize::MAX } else { 3 });
    let n = files.len() as u64;
    let decoded: Vec<&RgbImage> = files.iter().map(|p| &p.image).collect();
    let jpegs: Vec<Vec<u8>> = decoded.iter().map(|i| encode_jpeg(i).unwrap()).collect();
    let megapixels: f64 = decoded
        .iter()
        .map(|i| f64::from(i.width()) * f64::from(i.height()) / 1e6)
        .sum();
    eprintln!(
        "pipeline: {n} photos, {megapixels:.1} Mpx in all, {:.1} MB as files, {:.1} MB as JPEG q90",
        files.iter().map(|p| p.bytes.len()).sum::<usize>() as f64 / 1e6,
        jpegs.iter().map(Vec::len).sum::<usize>() as f64 / 1e6,
    );

    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(n));
    g.bench_function("original_files", |b| {
        b.iter(|| {
            for p in &files {
                black_box(preprocess::decode(black_box(&p.bytes), &LIMITS).unwrap());
            }
        })
    });
    g.bench_function("jpeg_q90", |b| {
        b.iter(|| {
            for bytes in &jpegs {
                black_box(preprocess::decode(black_box(bytes), &LIMITS).unwrap());
            }
        })
    });
    g.finish();

    // Same decoded images, same filter, same 224×224 output (the whole
    // image, no crop: `imageops::resize` cannot crop while resizing).
    let mut resizer = Resizer::new();
    let diff = resize_diff(&mut resizer, decoded.iter().copied()).unwrap();
    eprintln!("resize: mean |fast_image_resize − imageops| per channel value = {diff:.3} (of 255)");
    let m = manifest();
    let mut g = c.benchmark_group("resize");
    g.throughput(Throughput::Elements(n));
    g.bench_function("fast_image_resize_bilinear_224", |b| {
        b.iter(|| {
            for img in &decoded {
                black_box(resize_fir(&mut resizer, black_box(img)).unwrap());
            }
        })
    });
    g.bench_function("imageops_triangle_224", |b| {
        b.iter(|| {
            for img in &decoded {
                black_box(resize_imageops(black_box(img)));
            }
        })
    });
    g.bench_function("service_resize_crop_224", |b| {
        b.iter(|| {
            for img in &decoded {
                black_box(preprocess::resize_for_model(black_box(img), &m).unwrap());
            }
        })
    });
    g.finish();

    let resized: Vec<RgbImage> = decoded
        .iter()
        .map(|img| preprocess::resize_for_model(img, &m).unwrap())
        .collect();
    let sample = 3 * RESIZE_SIDE as usize * RESIZE_SIDE as usize;
    let mut out = vec![0f32; sample];
    let mut g = c.benchmark_group("tensor");
    g.throughput(Throughput::Elements(n));
    g.bench_function("write_tensor", |b| {
        b.iter(|| {
            for img in &resized {
                preprocess::write_tensor(black_box(img), &m, &mut out);
            }
            black_box(&out);
        })
    });
    g.finish();

    let mut g = c.benchmark_group("preprocess");
    g.throughput(Throughput::Elements(n));
    g.bench_function("jpeg_q90_to_tensor", |b| {
        b.iter(|| {
            for bytes in &jpegs {
                preprocess::preprocess(black_box(bytes), &m, &LIMITS, &mut out).unwrap();
            }
            black_box(&out);
        })
    });
    g.finish();
}

fn bench_embed(c: &mut Criterion) {
    let full = full_run();
    let m = manifest();
    let files = photos(if full { usize::MAX } else { 2 });
    let sample = 3 * RESIZE_SIDE as usize * RESIZE_SIDE as usize;
    let batches: &[usize] = if full { &[1, 8, 32, 64] } else { &[1, 8] };
    let max_batch = *batches.iter().max().unwrap();
    // Real images cycled to the largest batch, preprocessed once.
    let mut tensor = vec![0f32; max_batch * sample];
    for (i, out) in tensor.chunks_exact_mut(sample).enumerate() {
        let bytes = &files[i % files.len()].bytes;
        preprocess::preprocess(bytes, &m, &LIMITS, out).unwrap();
    }
    // 0 = the service default, one thread per core; 1 for the comparison.
    let pools: &[usize] = if full { &[0, 1] } else { &[0] };
    for &threads in pools {
        let embedder = common::load_embedder(threads);
        let t = embedder.threads();
        let mut g = c.benchmark_group(format!("embed_threads{t}"));
        if full {
            g.sample_size(10)
                .warm_up_time(Duration::from_secs(2))
                .measurement_time(Duration::from_secs(8));
        }
        for &batch in batches {
            g.throughput(Throughput::Elements(batch as u64));
            g.bench_with_input(BenchmarkId::new("batch", batch), &batch, |b, &batch| {
                b.iter(|| {
                    black_box(
                        embedder
                            .infer(black_box(&tensor[..batch * sample]), batch)
                            .unwrap(),
                    )
                })
            });
        }
        g.finish();
    }
}

fn bench_hmac(c: &mut Criterion) {
    let body: Vec<u8> = (0..1024u32).map(|i| b'a' + (i % 26) as u8).collect();
    let secret = "3e02c0ffee5ecret0f64hexdigitsforthewebhookbench";
    let header = signature::sign(secret, &body);
    let one = vec![Secret::new(secret)];
    let rotating = vec![
        Secret::new("an-older-key-still-accepted"),
        Secret::new(secret),
    ];
    let mut g = c.benchmark_group("hmac");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("verify_1KiB_one_key", |b| {
        b.iter(|| signature::verify(Some(black_box(&header)), black_box(&body), &one).unwrap())
    });
    g.bench_function("verify_1KiB_two_keys", |b| {
        b.iter(|| signature::verify(Some(black_box(&header)), black_box(&body), &rotating).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench_stages, bench_embed, bench_hmac);
criterion_main!(benches);
