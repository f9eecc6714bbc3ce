//! Embedded index: search latency at 10k and 100k vectors of the model's
//! dimension, and recall@10 against an exact f32 brute force, printed once
//! per size.
//!
//! Every search is measured twice in the same run: the default plan (binary
//! first stage, int8 and f32 rescoring) and the full int8 scan it replaced
//! (`Plan::ExactInt8`, the baseline). Besides criterion's figures, an
//! interleaved loop prints per-round ratios (median, min–max) and the
//! default plan's p50/p99 per query, so that load from other processes hits
//! both alike.
//!
//! The vectors are non-negative like real EfficientNet embeddings (uniform
//! random vectors would make every neighbour equally far and flatter the
//! approximate stages), in two shapes: `clustered` (200 tight clusters, the
//! data the timings use) and `mixed` (recall only: 20k small groups whose
//! centres mix shared "topics", with unequal per-dimension means, so a
//! query's neighbours are not one well-separated cluster).
//! Run: `cargo bench --bench index`.

use std::{hint::black_box, time::Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use vitrine::index::{
    EmbeddedIndex, Filter, Payload, Point,
    embedded::{Plan, dot_f32},
};

mod common;
use common::{DIM, Rng, load_average, normalise};

const CATEGORIES: [&str; 8] = ["a", "b", "c", "d", "e", "f", "g", "h"];

/// `n` vectors around 200 centres.
fn clustered(n: usize, rng: &mut Rng) -> Vec<Vec<f32>> {
    let centres = common::centres(rng);
    (0..n)
        .map(|i| common::around(&centres[i % centres.len()], rng))
        .collect()
}

/// `n` vectors in groups of 5 around `n / 5` centres, each centre a mix of
/// two of 200 shared topics plus its own part, scaled by per-dimension
/// gains (real features have some dimensions far more active than others).
fn mixed(n: usize, rng: &mut Rng) -> Vec<Vec<f32>> {
    let gain: Vec<f32> = (0..DIM).map(|_| 0.2 + 1.6 * rng.next().powi(2)).collect();
    let topics: Vec<Vec<f32>> = (0..200)
        .map(|_| (0..DIM).map(|_| rng.next().powi(3)).collect())
        .collect();
    let centres: Vec<Vec<f32>> = (0..(n / 5).max(1))
        .map(|_| {
            let a = &topics[(rng.next() * 200.0) as usize % 200];
            let b = &topics[(rng.next() * 200.0) as usize % 200];
            let w = rng.next();
            (0..DIM)
                .map(|d| gain[d] * (w * a[d] + (1.0 - w) * b[d] + 0.5 * rng.next().powi(3)))
                .collect()
        })
        .collect();
    (0..n)
        .map(|i| {
            let c = &centres[i % centres.len()];
            normalise(
                c.iter()
                    .zip(&gain)
                    .map(|(x, g)| x + 0.15 * g * rng.next())
                    .collect(),
            )
        })
        .collect()
}

fn payload(i: usize) -> Payload {
    Payload {
        product_id: format!("p{i}"),
        title: None,
        category: Some(CATEGORIES[i % CATEGORIES.len()].into()),
        price: Some((i % 1000) as f64),
        currency: None,
    }
}

/// `n` sparse vectors in groups of 50 around `n / 50` centres, shaped like
/// the real model's embeddings of the test photos (`benches/search.rs`
/// prints both): about half the values exactly 0, mean cosine between
/// different groups about 0.2, unequal per-dimension means.
fn sparse(n: usize, rng: &mut Rng) -> Vec<Vec<f32>> {
    let gain: Vec<f32> = (0..DIM).map(|_| 0.2 + 1.6 * rng.next().powi(2)).collect();
    let centres: Vec<Vec<f32>> = (0..(n / 50).max(1))
        .map(|_| {
            (0..DIM)
                .map(|d| {
                    let u = rng.next();
                    if u < 0.45 {
                        0.0
                    } else {
                        gain[d] * (u - 0.45).powi(2)
                    }
                })
                .collect()
        })
        .collect();
    (0..n)
        .map(|i| {
            let c = &centres[i % centres.len()];
            normalise(
                c.iter()
                    .zip(&gain)
                    .map(|(x, g)| {
                        let u = rng.next();
                        if *x == 0.0 && u < 0.9 {
                            0.0
                        } else {
                            x * (0.6 + 0.8 * u) + 0.03 * g * rng.next()
                        }
                    })
                    .collect(),
            )
        })
        .collect()
}

/// Exact zeros and the mean cosine between vectors of different groups
/// (the first 40, which all belong to different groups).
fn shape(vs: &[Vec<f32>]) -> String {
    let zeros = vs.iter().flatten().filter(|x| **x == 0.0).count() as f64 / (vs.len() * DIM) as f64;
    let k = vs.len().min(40);
    let (mut cos, mut pairs) = (0.0, 0);
    for i in 0..k {
        for j in i + 1..k {
            cos += f64::from(dot_f32(&vs[i], &vs[j]));
            pairs += 1;
        }
    }
    format!(
        "zeros {:.1} %, mean cosine between groups {:.3}",
        zeros * 100.0,
        cos / f64::from(pairs.max(1))
    )
}

/// The index built from `vectors`, in batches of 1000 as a sync would.
fn build(vectors: &[Vec<f32>]) -> (tempfile::TempDir, EmbeddedIndex) {
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
                    payload: payload(i),
                }
            })
            .collect();
        index.upsert_sync(points).unwrap();
    }
    (dir, index)
}

fn query(vectors: &[Vec<f32>], rng: &mut Rng) -> Vec<f32> {
    let base = &vectors[(rng.next() * vectors.len() as f32) as usize % vectors.len()];
    normalise(
        base.iter()
            .map(|x| (x + 0.05 * rng.next()).max(0.0))
            .collect(),
    )
}

/// Recall@10 against an exact f32 brute force, for each plan (`None`: the
/// default), over the same 50 queries.
fn recall_at_10(
    index: &EmbeddedIndex,
    vectors: &[Vec<f32>],
    rng: &mut Rng,
    filter: &Filter,
    plans: &[Option<Plan>],
) -> Vec<f64> {
    let queries = 50;
    let mut found = vec![0usize; plans.len()];
    for _ in 0..queries {
        let q = query(vectors, rng);
        let mut exact: Vec<(f32, usize)> = vectors
            .iter()
            .enumerate()
            .filter(|(i, _)| filter.matches(&payload(*i)))
            .map(|(i, v)| (dot_f32(&q, v), i))
            .collect();
        exact.sort_by(|a, b| b.0.total_cmp(&a.0));
        let want: Vec<String> = exact[..10].iter().map(|(_, i)| format!("p{i}")).collect();
        for (f, plan) in found.iter_mut().zip(plans) {
            let got = match plan {
                Some(p) => index.search_with(&q, filter, 10, *p),
                None => index.search_sync(&q, filter, 10),
            }
            .unwrap();
            *f += got
                .iter()
                .filter(|h| want.contains(&h.payload.product_id))
                .count();
        }
    }
    found
        .into_iter()
        .map(|f| f as f64 / (queries * 10) as f64)
        .collect()
}

fn print_recall(
    label: &str,
    index: &EmbeddedIndex,
    vectors: &[Vec<f32>],
    rng: &mut Rng,
    filter: &Filter,
) {
    let plans = [
        None,
        Some(Plan::ExactInt8),
        Some(Plan::Binary { candidates: 250 }),
        Some(Plan::Binary { candidates: 500 }),
        Some(Plan::Binary { candidates: 1000 }),
        Some(Plan::Binary { candidates: 2000 }),
    ];
    let r = recall_at_10(index, vectors, rng, filter, &plans);
    eprintln!(
        "index_search/{label}: recall@10 vs exact f32: default {:.3}, exact int8 {:.3}, \
         binary 250 {:.3}, 500 {:.3}, 1000 {:.3}, 2000 {:.3}",
        r[0], r[1], r[2], r[3], r[4], r[5]
    );
}

fn median_min_max(mut xs: Vec<f64>) -> (f64, f64, f64) {
    xs.sort_by(f64::total_cmp);
    (xs[xs.len() / 2], xs[0], xs[xs.len() - 1])
}

/// Interleaved rounds: per round, the default plan's mean per query and
/// the exact int8 scan's, on the same queries; prints the ratio's median
/// and min–max over rounds and the default plan's p50/p99 per query.
fn interleaved(label: &str, index: &EmbeddedIndex, vectors: &[Vec<f32>], filter: &Filter) {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let (rounds, per_round) = (7, 30);
    let (mut ratios, mut fast_ms) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let qs: Vec<Vec<f32>> = (0..per_round).map(|_| query(vectors, &mut rng)).collect();
        let (mut fast, mut exact) = (0.0, 0.0);
        for q in &qs {
            let t = Instant::now();
            black_box(index.search_sync(q, filter, 10).unwrap());
            let ms = t.elapsed().as_secs_f64() * 1e3;
            fast_ms.push(ms);
            fast += ms;
            let t = Instant::now();
            black_box(index.search_with(q, filter, 10, Plan::ExactInt8).unwrap());
            exact += t.elapsed().as_secs_f64() * 1e3;
        }
        ratios.push(exact / fast);
    }
    let (med, lo, hi) = median_min_max(ratios);
    fast_ms.sort_by(f64::total_cmp);
    let p =
        |q: f64| fast_ms[((q * fast_ms.len() as f64).ceil() as usize).clamp(1, fast_ms.len()) - 1];
    eprintln!(
        "index_search/{label}: exact int8 / default = {med:.1}x ({lo:.1}-{hi:.1}, {rounds} rounds \
         of {per_round}); default p50 {:.2} ms, p99 {:.2} ms",
        p(0.5),
        p(0.99)
    );
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
    eprintln!("index_search: load average before: {}", load_average());
    for &n in sizes {
        for (name, make) in [
            ("mixed", mixed as fn(usize, &mut Rng) -> Vec<Vec<f32>>),
            ("sparse", sparse),
        ] {
            let mut rng = Rng(0x51_7CC1_B727_220A);
            let vectors = make(n, &mut rng);
            eprintln!("index_search/{n}/{name}: {}", shape(&vectors));
            let (_dir, index) = build(&vectors);
            print_recall(
                &format!("{n}/{name}"),
                &index,
                &vectors,
                &mut rng,
                &Filter::default(),
            );
        }
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let vectors = clustered(n, &mut rng);
        eprintln!("index_search/{n}/clustered: {}", shape(&vectors));
        let (_dir, index) = build(&vectors);
        print_recall(
            &format!("{n}/clustered"),
            &index,
            &vectors,
            &mut rng,
            &Filter::default(),
        );
        let filter = Filter {
            category: vec!["c".into()],
            min_price: Some(100.0),
            max_price: Some(600.0),
            ..Filter::default()
        };
        // 1/8 of the catalog: over 8 × 1000 at 100k, so the binary stage
        // prunes it; and the query's cluster matches only 1 time in 8.
        let category = Filter {
            category: vec!["c".into()],
            ..Filter::default()
        };
        print_recall(
            &format!("{n}/clustered/category"),
            &index,
            &vectors,
            &mut rng,
            &category,
        );
        print_recall(
            &format!("{n}/clustered/category+price"),
            &index,
            &vectors,
            &mut rng,
            &filter,
        );
        // Similar-by-product: the query is a stored vector, itself excluded.
        let similar = |rng: &mut Rng| {
            let i = (rng.next() * n as f32) as usize % n;
            (
                vectors[i].clone(),
                Filter {
                    exclude_id: Some(format!("p{i}")),
                    ..Filter::default()
                },
            )
        };
        for (name, plan) in [("", None), ("_exact_int8", Some(Plan::ExactInt8))] {
            let search = |q: &[f32], f: &Filter| match plan {
                Some(p) => index.search_with(q, f, 10, p).unwrap(),
                None => index.search_sync(q, f, 10).unwrap(),
            };
            group.bench_with_input(
                BenchmarkId::new(format!("unfiltered_top10{name}"), n),
                &n,
                |b, _| b.iter(|| search(black_box(&query(&vectors, &mut rng)), &Filter::default())),
            );
            group.bench_with_input(
                BenchmarkId::new(format!("filtered_top10{name}"), n),
                &n,
                |b, _| b.iter(|| search(black_box(&query(&vectors, &mut rng)), &filter)),
            );
            group.bench_with_input(
                BenchmarkId::new(format!("similar_top10{name}"), n),
                &n,
                |b, _| {
                    b.iter(|| {
                        let (q, f) = similar(&mut rng);
                        search(black_box(&q), &f)
                    })
                },
            );
        }
        interleaved(
            &format!("{n}/unfiltered"),
            &index,
            &vectors,
            &Filter::default(),
        );
        interleaved(&format!("{n}/filtered"), &index, &vectors, &filter);
    }
    eprintln!("index_search: load average after: {}", load_average());
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
