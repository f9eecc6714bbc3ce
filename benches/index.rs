//! Embedded index: search latency at 10k and 100k vectors of the model's
//! dimension, and recall@10 against an exact f32 brute force, printed once
//! per size.
//!
//! The vectors are clustered and non-negative like real EfficientNet
//! embeddings (uniform random vectors would make every neighbour equally far
//! and flatter the int8 stage). Run: `cargo bench --bench index`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use vitrine::index::{EmbeddedIndex, Filter, Payload, Point, embedded::dot_f32};

const DIM: usize = 1280;
const CATEGORIES: [&str; 8] = ["a", "b", "c", "d", "e", "f", "g", "h"];

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

/// `n` vectors around 200 centres, plus the index built from them.
fn dataset(n: usize, rng: &mut Rng) -> (tempfile::TempDir, EmbeddedIndex, Vec<Vec<f32>>) {
    let centres: Vec<Vec<f32>> = (0..200)
        .map(|_| (0..DIM).map(|_| rng.next().powi(3)).collect())
        .collect();
    let vectors: Vec<Vec<f32>> = (0..n)
        .map(|i| {
            let c = &centres[i % centres.len()];
            normalise(c.iter().map(|x| (x + 0.15 * rng.next()).max(0.0)).collect())
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let index = EmbeddedIndex::open(dir.path(), DIM, "bench").unwrap();
    for (chunk_no, chunk) in vectors.chunks(1000).enumerate() {
        let points = chunk
            .iter()
            .enumerate()
            .map(|(j, v)| {
                let i = chunk_no * 1000 + j;
                Point {
                    vector: v.clone(),
                    payload: Payload {
                        product_id: format!("p{i}"),
                        title: None,
                        category: Some(CATEGORIES[i % CATEGORIES.len()].into()),
                        price: Some((i % 1000) as f64),
                        currency: None,
                    },
                }
            })
            .collect();
        index.upsert_sync(points).unwrap();
    }
    (dir, index, vectors)
}

fn query(vectors: &[Vec<f32>], rng: &mut Rng) -> Vec<f32> {
    let base = &vectors[(rng.next() * vectors.len() as f32) as usize % vectors.len()];
    normalise(
        base.iter()
            .map(|x| (x + 0.05 * rng.next()).max(0.0))
            .collect(),
    )
}

fn recall_at_10(index: &EmbeddedIndex, vectors: &[Vec<f32>], rng: &mut Rng) -> f64 {
    let mut found = 0;
    let queries = 50;
    for _ in 0..queries {
        let q = query(vectors, rng);
        let mut exact: Vec<(f32, usize)> = vectors
            .iter()
            .enumerate()
            .map(|(i, v)| (dot_f32(&q, v), i))
            .collect();
        exact.sort_by(|a, b| b.0.total_cmp(&a.0));
        let want: Vec<String> = exact[..10].iter().map(|(_, i)| format!("p{i}")).collect();
        let got = index.search_sync(&q, &Filter::default(), 10).unwrap();
        found += got
            .iter()
            .filter(|h| want.contains(&h.payload.product_id))
            .count();
    }
    found as f64 / (queries * 10) as f64
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("index_search");
    group.sample_size(30);
    // `cargo test --all-targets` runs benches once as a smoke test, without
    // `--bench`: keep that quick.
    let sizes: &[usize] = if std::env::args().any(|a| a == "--bench") {
        &[10_000, 100_000]
    } else {
        &[2_000]
    };
    for &n in sizes {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let (_dir, index, vectors) = dataset(n, &mut rng);
        eprintln!(
            "index_search/{n}: recall@10 vs exact f32 = {:.3}",
            recall_at_10(&index, &vectors, &mut rng)
        );
        let filter = Filter {
            category: Some("c".into()),
            min_price: Some(100.0),
            max_price: Some(600.0),
            exclude_id: None,
        };
        group.bench_with_input(BenchmarkId::new("unfiltered_top10", n), &n, |b, _| {
            b.iter(|| {
                index
                    .search_sync(
                        black_box(&query(&vectors, &mut rng)),
                        &Filter::default(),
                        10,
                    )
                    .unwrap()
            })
        });
        group.bench_with_input(BenchmarkId::new("filtered_top10", n), &n, |b, _| {
            b.iter(|| {
                index
                    .search_sync(black_box(&query(&vectors, &mut rng)), &filter, 10)
                    .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
