//! Search latency percentiles on the embedded index, with the real model:
//!
//! - `similar_by_product`: what `GET /products/{id}/similar` does, the
//!   stored vector read back (`get_vector`) and a top-10 search excluding
//!   the product itself;
//! - `search_by_image`: what `POST /search/image` does, a real JPEG
//!   decoded, resized, embedded (one image, on the embedder's pool) and
//!   searched top-10;
//! - `inference`: one model call on a pre-made tensor, the reference of the
//!   target "search by image ≤ 1.2 × one inference + 5 ms".
//!
//! The index holds clustered, non-negative 1280-d vectors like
//! `benches/index.rs` (the scan's cost does not depend on the values).
//! Sequential queries, one at a time; p50/p90/p99 over all of them, then a
//! JSON line. Run: `cargo bench --bench search` (10k and 100k vectors).
//! Without `--bench` (inside `cargo test --all-targets`) it runs 2k vectors
//! and a few queries, as a smoke test.

use std::{hint::black_box, path::PathBuf, time::Instant};

use vitrine::{
    Settings,
    embed::preprocess,
    index::{EmbeddedIndex, Filter, Payload, Point},
};

const DIM: usize = 1280;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }
}

fn normalise(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

fn build(n: usize, rng: &mut Rng) -> (tempfile::TempDir, EmbeddedIndex) {
    let centres: Vec<Vec<f32>> = (0..200)
        .map(|_| (0..DIM).map(|_| rng.next().powi(3)).collect())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let index = EmbeddedIndex::open(dir.path(), DIM, "bench").unwrap();
    for start in (0..n).step_by(1000) {
        let points = (start..(start + 1000).min(n))
            .map(|i| {
                let c = &centres[i % centres.len()];
                Point {
                    vector: normalise(c.iter().map(|x| (x + 0.15 * rng.next()).max(0.0)).collect()),
                    payload: Payload {
                        product_id: format!("p{i}"),
                        title: Some(format!("product {i}")),
                        category: Some(["a", "b", "c", "d"][i % 4].into()),
                        price: Some((i % 1000) as f64),
                        currency: Some("KGS".into()),
                    },
                }
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
    let q = |p: f64| ms[((p * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1];
    [q(0.50), q(0.90), q(0.99), ms[ms.len() - 1]]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (sizes, queries): (&[usize], usize) = if full {
        (&[10_000, 100_000], 300)
    } else {
        (&[2_000], 10)
    };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut settings = Settings::for_data_dir(std::env::temp_dir());
    settings.model_dir = root.join("models/effnet-lite0");
    let embedder = vitrine::app::load_embedder(&settings)
        .expect("model and ONNX Runtime; run scripts/fetch-assets.sh");
    let manifest = embedder.info().manifest.clone();
    let mut photos: Vec<Vec<u8>> = std::fs::read_dir(root.join("tests/data/photos"))
        .expect("tests/data/photos; run scripts/fetch-assets.sh")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    photos.sort();
    assert!(!photos.is_empty(), "no JPEG photos in tests/data/photos");
    let mut tensor = vec![0f32; embedder.sample_len()];
    preprocess::preprocess(&photos[0], &manifest, settings.max_pixels, &mut tensor).unwrap();
    // Warm-up: the first ORT runs allocate.
    for _ in 0..3 {
        embedder.infer(&tensor, 1).unwrap();
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
        for q in 0..queries {
            // Interleaved, so that noise from elsewhere hits all three alike.
            let id = format!("p{}", (rng.next() * n as f32) as usize % n);
            let t = Instant::now();
            let v = index.get_vector_sync(&id).unwrap().expect("stored vector");
            let filter = Filter {
                exclude_id: Some(id),
                ..Filter::default()
            };
            black_box(index.search_sync(&v, &filter, 10).unwrap());
            similar.push(t.elapsed().as_secs_f64() * 1e3);

            let photo = &photos[q % photos.len()];
            let t = Instant::now();
            let v = embedder.embed_images(&[photo]).pop().unwrap().unwrap();
            black_box(index.search_sync(&v, &Filter::default(), 10).unwrap());
            by_image.push(t.elapsed().as_secs_f64() * 1e3);

            let t = Instant::now();
            black_box(embedder.infer(&tensor, 1).unwrap());
            infer.push(t.elapsed().as_secs_f64() * 1e3);
        }
        report.push(format!(
            r#"{{"vectors":{n},"kind":"process_memory_after_build","memory":{mem}}}"#
        ));
        for (name, ms) in [
            ("similar_by_product", similar),
            ("search_by_image", by_image),
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
    println!(
        r#"{{"bench":"search","threads":{},"results":[{}]}}"#,
        embedder.threads(),
        report.join(",")
    );
}
