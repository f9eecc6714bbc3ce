//! Search latency percentiles on the embedded index, with the real model:
//!
//! - `similar_by_product`: what `GET /products/{id}/similar` does, the
//!   stored vector read back (`get_vector`) and a top-10 search excluding
//!   the product itself;
//! - `search_by_image`: what `POST /search/image` does, a real JPEG
//!   decoded, resized, embedded (one image, on the embedder's pool) and
//!   searched top-10;
//! - `inference`: one model call on a pre-made tensor, the reference of the
//!   target "search by image ≤ 1.2 × one inference + 5 ms";
//! - `…_exact_int8`: the first two with the full int8 scan the binary first
//!   stage replaced (`Plan::ExactInt8`, excluding the product through the
//!   filter as before), the baseline measured in the same run.
//!
//! The index holds clustered, non-negative 1280-d vectors like
//! `benches/index.rs`; the real model's embeddings of the test photos are
//! compared with them (zeros, per-dimension spread, cosine between
//! different images) and printed first, as a check that the synthetic data
//! has the real data's shape.
//! Then **recall on real embeddings**: augmented copies of the JPEG test photos
//! (random crop of 45–100 % of the area, mirror, brightness ± 20 %,
//! re-encoded as JPEG) embedded with the real model, indexed, and queried
//! with fresh copies not in the index; recall@10 of the default plan and of
//! the full int8 scan against an exact f32 brute force. 12k copies, so that
//! the binary stage is in play (it starts above 8k points).
//! Sequential queries, one at a time, the kinds interleaved; p50/p90/p99
//! over all of them, then a JSON line with the load average before and
//! after. Run: `cargo bench --bench search` (10k and 100k vectors).
//! Without `--bench` (inside `cargo test --all-targets`) it runs 2k vectors
//! and a few queries, as a smoke test.

use std::{hint::black_box, time::Instant};

use vitrine::{
    embed::preprocess,
    index::{
        EmbeddedIndex, Filter, Payload, Point,
        embedded::{Plan, dot_f32},
    },
};

mod common;
use common::{DIM, Rng, centres, load_average, photos::read_files, stats::quantile};

fn synthetic(i: usize, centres: &[Vec<f32>], rng: &mut Rng) -> Vec<f32> {
    common::around(&centres[i % centres.len()], rng)
}

/// Fraction of exact zeros, mean over dimensions of (std / mean) across
/// the vectors, and the mean cosine between different vectors.
fn shape(vs: &[Vec<f32>]) -> (f64, f64, f64) {
    let n = vs.len() as f64;
    let zeros = vs.iter().flatten().filter(|x| **x == 0.0).count() as f64 / (n * DIM as f64);
    let mut cv = 0.0;
    for d in 0..DIM {
        let mean = vs.iter().map(|v| f64::from(v[d])).sum::<f64>() / n;
        let var = vs
            .iter()
            .map(|v| (f64::from(v[d]) - mean).powi(2))
            .sum::<f64>()
            / n;
        if mean > 0.0 {
            cv += var.sqrt() / mean;
        }
    }
    let (mut cos, mut pairs) = (0.0, 0);
    for i in 0..vs.len() {
        for j in i + 1..vs.len() {
            cos += f64::from(dot_f32(&vs[i], &vs[j]));
            pairs += 1;
        }
    }
    (zeros, cv / DIM as f64, cos / f64::from(pairs.max(1)))
}

fn build(n: usize, rng: &mut Rng) -> (tempfile::TempDir, EmbeddedIndex) {
    let centres = centres(rng);
    let dir = tempfile::tempdir().unwrap();
    let index = EmbeddedIndex::open(dir.path(), DIM, "bench").unwrap();
    for start in (0..n).step_by(1000) {
        let points = (start..(start + 1000).min(n))
            .map(|i| Point {
                vector: synthetic(i, &centres, rng),
                payload: Payload {
                    product_id: format!("p{i}"),
                    title: Some(format!("product {i}")),
                    category: Some(["a", "b", "c", "d"][i % 4].into()),
                    price: Some((i % 1000) as f64),
                    currency: Some("KGS".into()),
                },
            })
            .collect();
        index.upsert_sync(points).unwrap();
    }
    (dir, index)
}

/// This process's memory lines from `/proc/self/status`, in MB.
fn memory() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let fields: Vec<String> = status
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            if !["VmRSS", "RssAnon", "RssFile"].contains(&k) {
                return None;
            }
            let kb: f64 = v.trim().trim_end_matches(" kB").parse().ok()?;
            Some(format!(r#""{k}_mb":{:.1}"#, kb / 1024.0))
        })
        .collect();
    format!("{{{}}}", fields.join(","))
}

/// p50, p90, p99 and max of latencies in milliseconds (nearest rank).
fn percentiles(mut ms: Vec<f64>) -> [f64; 4] {
    ms.sort_by(f64::total_cmp);
    let q = |p: f64| quantile(&ms, p);
    [q(0.50), q(0.90), q(0.99), ms[ms.len() - 1]]
}

/// An augmented copy of a photo, as JPEG bytes: what a shopper's own photo
/// of a listed product roughly is.
fn augmented(img: &image::DynamicImage, rng: &mut Rng) -> Vec<u8> {
    let (w, h) = (img.width(), img.height());
    let area = 0.45 + 0.55 * rng.next();
    let aspect = 0.8 + 0.4 * rng.next();
    let cw = ((w as f32 * (area * aspect).sqrt()) as u32).clamp(32, w);
    let ch = ((h as f32 * (area / aspect).sqrt()) as u32).clamp(32, h);
    let x = ((w - cw) as f32 * rng.next()) as u32;
    let y = ((h - ch) as f32 * rng.next()) as u32;
    let mut out = img.crop_imm(x, y, cw, ch);
    if rng.next() < 0.5 {
        out = out.fliph();
    }
    let out = out.brighten((rng.next() * 100.0 - 50.0) as i32).to_rgb8();
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 85)
        .encode_image(&out)
        .unwrap();
    bytes
}

/// Recall@10 of the default plan and of the full int8 scan against an exact
/// f32 brute force, on real embeddings of augmented photos.
fn real_recall(
    embedder: &vitrine::embed::model::Embedder,
    photos: &[Vec<u8>],
    copies: usize,
    queries: usize,
) -> String {
    let t = Instant::now();
    let images: Vec<image::DynamicImage> = photos
        .iter()
        .map(|p| image::load_from_memory(p).unwrap())
        .collect();
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut embed = |n: usize| -> Vec<Vec<f32>> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let batch: Vec<Vec<u8>> = (0..16.min(n - out.len()))
                .map(|i| augmented(&images[(out.len() + i) % images.len()], &mut rng))
                .collect();
            out.extend(
                embedder
                    .embed_images(&batch)
                    .into_iter()
                    .map(Result::unwrap),
            );
        }
        out
    };
    let stored = embed(copies);
    let asked = embed(queries);
    let dir = tempfile::tempdir().unwrap();
    let index = EmbeddedIndex::open(dir.path(), DIM, "recall").unwrap();
    for (start, chunk) in stored.chunks(1000).enumerate() {
        let points = chunk
            .iter()
            .enumerate()
            .map(|(i, v)| Point {
                vector: v.clone(),
                payload: Payload {
                    product_id: format!("r{}", start * 1000 + i),
                    title: None,
                    category: None,
                    price: None,
                    currency: None,
                },
            })
            .collect();
        index.upsert_sync(points).unwrap();
    }
    let (mut default_hits, mut exact_hits) = (0usize, 0usize);
    for q in &asked {
        let mut scored: Vec<(f32, usize)> = stored
            .iter()
            .enumerate()
            .map(|(i, v)| (dot_f32(q, v), i))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let truth: std::collections::HashSet<String> =
            scored[..10].iter().map(|(_, i)| format!("r{i}")).collect();
        let count = |hits: Vec<vitrine::index::Hit>| {
            hits.iter()
                .filter(|h| truth.contains(&h.payload.product_id))
                .count()
        };
        default_hits += count(index.search_sync(q, &Filter::default(), 10).unwrap());
        exact_hits += count(
            index
                .search_with(q, &Filter::default(), 10, Plan::ExactInt8)
                .unwrap(),
        );
    }
    let total = (10 * queries) as f64;
    let (default, exact) = (default_hits as f64 / total, exact_hits as f64 / total);
    let (zeros, _, cos) = shape(&stored[..stored.len().min(500)]);
    eprintln!(
        "search/real_recall: {copies} augmented photo copies ({:.1} % zeros, mean cosine {cos:.3}), \
         {queries} fresh copies as queries: recall@10 default {default:.3}, full int8 scan {exact:.3} \
         ({:.0} s)",
        zeros * 100.0,
        t.elapsed().as_secs_f64()
    );
    format!(
        r#"{{"vectors":{copies},"kind":"real_recall_at_10","queries":{queries},"default":{default:.4},"exact_int8":{exact:.4}}}"#
    )
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (sizes, queries): (&[usize], usize) = if full {
        (&[10_000, 100_000], 300)
    } else {
        (&[2_000], 10)
    };
    let embedder = common::load_embedder(0);
    let manifest = embedder.info().manifest.clone();
    let mut photos: Vec<Vec<u8>> = read_files(&common::root().join("tests/data/photos"))
        .expect("tests/data/photos; run scripts/fetch-assets.sh")
        .into_iter()
        .filter(|(name, _)| name.ends_with(".jpg"))
        .map(|(_, bytes)| bytes)
        .collect();
    // Sorted by content, not name, as this bench always has: the order picks
    // each query's photo, so keeping it keeps the figures comparable.
    photos.sort();
    assert!(!photos.is_empty(), "no JPEG photos in tests/data/photos");
    let mut tensor = vec![0f32; embedder.sample_len()];
    preprocess::preprocess(&photos[0], &manifest, embedder.decode_limits(), &mut tensor).unwrap();
    // Warm-up: the first ORT runs allocate.
    for _ in 0..3 {
        embedder.infer(&tensor, 1).unwrap();
    }

    let load_before = load_average();
    // One at a time: a batch of 17 would grow ORT's arena and the memory
    // figures below with it.
    let real: Vec<Vec<f32>> = photos
        .iter()
        .map(|p| embedder.embed_images(&[p]).pop().unwrap().unwrap())
        .collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let cs = centres(&mut rng);
    // Different images, as the photos are: one vector per centre.
    let fake: Vec<Vec<f32>> = (0..real.len())
        .map(|i| synthetic(i, &cs, &mut rng))
        .collect();
    for (name, vs) in [("real photos", &real), ("synthetic", &fake)] {
        let (zeros, cv, cos) = shape(vs);
        eprintln!(
            "search: {name} ({} vectors): min {:.4}, zeros {:.1} %, per-dimension std/mean {cv:.2}, \
             mean cosine between different images {cos:.3}",
            vs.len(),
            vs.iter().flatten().fold(f32::INFINITY, |m, x| m.min(*x)),
            zeros * 100.0
        );
    }

    let mut report = Vec::new();
    for &n in sizes {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let t = Instant::now();
        let (_dir, index) = build(n, &mut rng);
        let mem = memory();
        eprintln!(
            "search: built {n} vectors in {:.1} s; this process (model loaded, index open): {mem}",
            t.elapsed().as_secs_f64()
        );
        let (mut similar, mut by_image, mut infer) = (Vec::new(), Vec::new(), Vec::new());
        let (mut similar_exact, mut by_image_exact) = (Vec::new(), Vec::new());
        for q in 0..queries {
            // Interleaved, so that noise from elsewhere hits all kinds alike.
            let id = format!("p{}", (rng.next() * n as f32) as usize % n);
            for (plan, out) in [
                (None, &mut similar),
                (Some(Plan::ExactInt8), &mut similar_exact),
            ] {
                let t = Instant::now();
                let v = index.get_vector_sync(&id).unwrap().expect("stored vector");
                let filter = Filter {
                    exclude_id: Some(id.clone()),
                    ..Filter::default()
                };
                black_box(match plan {
                    Some(p) => index.search_with(&v, &filter, 10, p).unwrap(),
                    None => index.search_sync(&v, &filter, 10).unwrap(),
                });
                out.push(t.elapsed().as_secs_f64() * 1e3);
            }

            let photo = &photos[q % photos.len()];
            for (plan, out) in [
                (None, &mut by_image),
                (Some(Plan::ExactInt8), &mut by_image_exact),
            ] {
                let t = Instant::now();
                let v = embedder.embed_images(&[photo]).pop().unwrap().unwrap();
                black_box(match plan {
                    Some(p) => index.search_with(&v, &Filter::default(), 10, p).unwrap(),
                    None => index.search_sync(&v, &Filter::default(), 10).unwrap(),
                });
                out.push(t.elapsed().as_secs_f64() * 1e3);
            }

            let t = Instant::now();
            black_box(embedder.infer(&tensor, 1).unwrap());
            infer.push(t.elapsed().as_secs_f64() * 1e3);
        }
        report.push(format!(
            r#"{{"vectors":{n},"kind":"process_memory_after_build","memory":{mem}}}"#
        ));
        for (name, ms) in [
            ("similar_by_product", similar),
            ("similar_by_product_exact_int8", similar_exact),
            ("search_by_image", by_image),
            ("search_by_image_exact_int8", by_image_exact),
            ("inference_batch1", infer),
        ] {
            let [p50, p90, p99, max] = percentiles(ms);
            eprintln!(
                "search/{n}/{name}: p50 {p50:.2} ms, p90 {p90:.2} ms, p99 {p99:.2} ms, \
                 max {max:.2} ms ({queries} queries)"
            );
            report.push(format!(
                r#"{{"vectors":{n},"kind":"{name}","queries":{queries},"p50_ms":{p50:.3},"p90_ms":{p90:.3},"p99_ms":{p99:.3},"max_ms":{max:.3}}}"#
            ));
        }
    }
    let (copies, recall_queries) = if full { (12_000, 100) } else { (40, 4) };
    report.push(real_recall(&embedder, &photos, copies, recall_queries));
    println!(
        r#"{{"bench":"search","threads":{},"load_before":"{load_before}","load_after":"{}","results":[{}]}}"#,
        embedder.threads(),
        load_average(),
        report.join(",")
    );
}
