//! The index's behaviour through its public operations: search, filters,
//! deletes, reopen, the mapped codes and the binary stage's recall.

use std::{fs::OpenOptions, path::Path};

use super::*;

fn unit(seed: u64, dim: usize) -> Vec<f32> {
    crate::embed::model::l2_normalised(&raw(seed, dim))
}

/// Uniform [0, 1) values from a small deterministic generator.
fn raw(seed: u64, dim: usize) -> Vec<f32> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let v: Vec<f32> = (0..dim)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 33) as f32) / (u32::MAX as f32)
        })
        .collect();
    v
}

fn point(id: &str, cat: &str, price: f64, v: Vec<f32>) -> Point {
    Point {
        vector: v,
        payload: Payload {
            product_id: id.into(),
            title: Some(format!("title {id}")),
            category: Some(cat.into()),
            price: Some(price),
            currency: Some("KGS".into()),
        },
    }
}

#[test]
fn finds_filters_deletes_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let dim = 32;
    let idx = EmbeddedIndex::open(dir.path(), dim, "v1").unwrap();
    let pts: Vec<Point> = (0..200)
        .map(|i| {
            point(
                &format!("p{i}"),
                if i % 2 == 0 { "even" } else { "odd" },
                i as f64,
                unit(i, dim),
            )
        })
        .collect();
    idx.upsert_sync(pts).unwrap();
    assert_eq!(idx.len(), 200);

    let q = unit(7, dim);
    let hits = idx.search_sync(&q, &Filter::default(), 5).unwrap();
    assert_eq!(hits[0].payload.product_id, "p7");
    assert!((hits[0].score - 1.0).abs() < 1e-5);

    let f = Filter {
        category: vec!["even".into()],
        min_price: Some(10.0),
        max_price: Some(50.0),
        ..Filter::default()
    };
    let hits = idx.search_sync(&q, &f, 100).unwrap();
    assert_eq!(hits.len(), 21);
    assert!(
        hits.iter()
            .all(|h| h.payload.category.as_deref() == Some("even")
                && (10.0..=50.0).contains(&h.payload.price.unwrap()))
    );

    let ex = Filter {
        exclude_id: Some("p7".into()),
        ..Filter::default()
    };
    assert!(
        idx.search_sync(&q, &ex, 10)
            .unwrap()
            .iter()
            .all(|h| h.payload.product_id != "p7")
    );

    assert_eq!(idx.delete_sync(&["p7".into(), "nope".into()]).unwrap(), 1);
    assert!(
        idx.search_sync(&q, &Filter::default(), 5).unwrap()[0]
            .payload
            .product_id
            != "p7"
    );

    // Replace a vector and a payload, then reopen.
    idx.upsert_sync(vec![point("p8", "odd", 1.0, unit(1000, dim))])
        .unwrap();
    let mut pl = idx
        .search_sync(&unit(9, dim), &Filter::default(), 1)
        .unwrap()[0]
        .payload
        .clone();
    pl.title = Some("renamed".into());
    assert!(idx.set_payload_sync(pl).unwrap());
    drop(idx);

    let idx = EmbeddedIndex::open(dir.path(), dim, "v1").unwrap();
    assert_eq!(idx.len(), 199);
    let top = &idx
        .search_sync(&unit(1000, dim), &Filter::default(), 1)
        .unwrap()[0];
    assert_eq!(top.payload.product_id, "p8");
    let top = &idx
        .search_sync(&unit(9, dim), &Filter::default(), 1)
        .unwrap()[0];
    assert_eq!(top.payload.title.as_deref(), Some("renamed"));
    assert!(idx.get_vector_sync("p7").unwrap().is_none());
    assert_eq!(idx.get_vector_sync("p9").unwrap().unwrap(), unit(9, dim));
}

#[test]
fn refuses_another_models_index() {
    let dir = tempfile::tempdir().unwrap();
    drop(EmbeddedIndex::open(dir.path(), 8, "model-a").unwrap());
    let err = EmbeddedIndex::open(dir.path(), 8, "model-b").err().unwrap();
    assert!(matches!(err, IndexError::ModelMismatch { .. }), "{err}");
}

#[test]
fn mapped_codes_grow_in_steps_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let dim = 16;
    let i8_len = || {
        std::fs::metadata(dir.path().join("vectors.i8"))
            .unwrap()
            .len()
    };
    {
        let idx = EmbeddedIndex::open(dir.path(), dim, "v").unwrap();
        // One at a time, past the first 256-slot step: each new point must
        // be searchable at once, through a map that was grown for it.
        for i in 0..300u64 {
            let v = unit(i, dim);
            idx.upsert_sync(vec![point(&format!("p{i}"), "c", 1.0, v.clone())])
                .unwrap();
            let hits = idx.search_sync(&v, &Filter::default(), 1).unwrap();
            assert_eq!(hits[0].payload.product_id, format!("p{i}"));
        }
        // Grown by doubling (256 slots, then 512), not point by point.
        assert_eq!(i8_len(), (512 * dim) as u64);
    }
    // Reopened with a file longer than the slots in use: same contents.
    let idx = EmbeddedIndex::open(dir.path(), dim, "v").unwrap();
    assert_eq!(idx.len(), 300);
    for i in [0u64, 255, 256, 299] {
        let hits = idx
            .search_sync(&unit(i, dim), &Filter::default(), 1)
            .unwrap();
        assert_eq!(hits[0].payload.product_id, format!("p{i}"));
    }
    drop(idx);
    // A vectors file shorter than the log says is an error, not a crash.
    let f = OpenOptions::new()
        .write(true)
        .open(dir.path().join("vectors.i8"))
        .unwrap();
    f.set_len((100 * dim) as u64).unwrap();
    let err = EmbeddedIndex::open(dir.path(), dim, "v").err().unwrap();
    assert!(err.to_string().contains("vectors.i8"), "{err}");
}

#[test]
fn int8_scan_with_rescoring_matches_exact_search() {
    let dir = tempfile::tempdir().unwrap();
    let dim = 64;
    let idx = EmbeddedIndex::open(dir.path(), dim, "v").unwrap();
    let vs: Vec<Vec<f32>> = (0..2000).map(|i| unit(i, dim)).collect();
    idx.upsert_sync(
        vs.iter()
            .enumerate()
            .map(|(i, v)| point(&i.to_string(), "c", 1.0, v.clone()))
            .collect(),
    )
    .unwrap();
    for qi in 5000..5020 {
        let q = unit(qi, dim);
        let mut exact: Vec<(f32, usize)> = vs
            .iter()
            .enumerate()
            .map(|(i, v)| (dot_f32(&q, v), i))
            .collect();
        exact.sort_by(|a, b| b.0.total_cmp(&a.0));
        let got: Vec<String> = idx
            .search_sync(&q, &Filter::default(), 10)
            .unwrap()
            .into_iter()
            .map(|h| h.payload.product_id)
            .collect();
        let want: Vec<String> = exact[..10].iter().map(|(_, i)| i.to_string()).collect();
        assert_eq!(got, want);
    }
}

/// Clustered non-negative vectors (like real embeddings: uniform random
/// ones would make every neighbour equally far): `n` around `n / 20`
/// centres whose dimensions have unequal means.
fn clustered(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let centres: Vec<Vec<f32>> = (0..(n / 20).max(1) as u64)
        .map(|c| {
            raw(seed * 7919 + c, dim)
                .iter()
                .enumerate()
                .map(|(d, x)| x.powi(3) * (0.5 + (d % 7) as f32 / 4.0))
                .collect()
        })
        .collect();
    (0..n)
        .map(|i| {
            let noise = raw(seed * 104_729 + i as u64 + 1_000_000, dim);
            let c = &centres[i % centres.len()];
            let v: Vec<f32> = c.iter().zip(&noise).map(|(c, e)| c + 0.15 * e).collect();
            crate::embed::model::l2_normalised(&v)
        })
        .collect()
}

fn exact_top(vs: &[(String, Vec<f32>)], q: &[f32], f: &Filter, k: usize) -> Vec<String> {
    let mut all: Vec<(f32, &String)> = vs
        .iter()
        .filter(|(id, _)| {
            f.matches(&Payload {
                product_id: id.clone(),
                category: Some(category_of(id).into()),
                ..Payload::default()
            })
        })
        .map(|(id, v)| (dot_f32(q, v), id))
        .collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    all.into_iter().take(k).map(|(_, id)| id.clone()).collect()
}

/// `r{i}` for 3 of every 1000 ids, `c{i % 3}` otherwise.
fn category_of(id: &str) -> &'static str {
    let i: usize = id[1..].parse().unwrap();
    if i % 1000 < 3 {
        "rare"
    } else {
        ["c0", "c1", "c2"][i % 3]
    }
}

fn indexed(dir: &Path, dim: usize, vs: &[Vec<f32>]) -> (EmbeddedIndex, Vec<(String, Vec<f32>)>) {
    let idx = EmbeddedIndex::open(dir, dim, "v").unwrap();
    let named: Vec<(String, Vec<f32>)> = vs
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("p{i}"), v.clone()))
        .collect();
    // Several batches, so that the reference is recomputed on the way.
    for chunk in named.chunks(500) {
        idx.upsert_sync(
            chunk
                .iter()
                .map(|(id, v)| point(id, category_of(id), 1.0, v.clone()))
                .collect(),
        )
        .unwrap();
    }
    (idx, named)
}

fn recall(idx: &EmbeddedIndex, vs: &[(String, Vec<f32>)], f: &Filter, plan: Plan) -> f64 {
    let (mut found, mut wanted) = (0, 0);
    for qi in 0..40 {
        let base = &vs[(qi * 97) % vs.len()].1;
        let noise = raw(900_000 + qi as u64, base.len());
        let q: Vec<f32> = base.iter().zip(&noise).map(|(x, e)| x + 0.02 * e).collect();
        let q = crate::embed::model::l2_normalised(&q);
        let want = exact_top(vs, &q, f, 10);
        let got = idx.search_with(&q, f, 10, plan).unwrap();
        assert!(got.iter().all(|h| f.matches(&h.payload)));
        found += got
            .iter()
            .filter(|h| want.contains(&h.payload.product_id))
            .count();
        wanted += want.len();
    }
    found as f64 / wanted as f64
}

#[test]
fn binary_stage_keeps_recall_and_filters_stay_exact() {
    let dir = tempfile::tempdir().unwrap();
    let dim = 256;
    let (idx, vs) = indexed(dir.path(), dim, &clustered(6000, dim, 1));
    // 200 candidates of 6000: the binary stage really prunes here.
    let plan = Plan::Binary { candidates: 200 };
    let r = recall(&idx, &vs, &Filter::default(), plan);
    assert!(r >= 0.95, "recall@10 {r}");
    assert_eq!(recall(&idx, &vs, &Filter::default(), Plan::ExactInt8), 1.0);

    // ~2000 match, and most queries' own clusters do not: filters take
    // the exact path; only matching items come back (`recall` checks).
    let common = Filter {
        category: vec!["c1".into()],
        ..Filter::default()
    };
    assert_eq!(recall(&idx, &vs, &common, plan), 1.0);

    // 18 match: every one is found, however far from the query.
    let rare = Filter {
        category: vec!["rare".into()],
        ..Filter::default()
    };
    let hits = idx.search_with(&vs[500].1, &rare, 50, plan).unwrap();
    assert_eq!(hits.len(), 18);
    assert_eq!(recall(&idx, &vs, &rare, plan), 1.0);
}

#[test]
fn exclude_id_drops_only_that_product() {
    let dir = tempfile::tempdir().unwrap();
    let dim = 64;
    let (idx, vs) = indexed(dir.path(), dim, &clustered(1500, dim, 2));
    let ex = Filter {
        exclude_id: Some("p42".into()),
        ..Filter::default()
    };
    let plan = Plan::Binary { candidates: 100 };
    let got = idx.search_with(&vs[42].1, &ex, 10, plan).unwrap();
    assert_eq!(got.len(), 10);
    let mut want = exact_top(&vs, &vs[42].1, &Filter::default(), 11);
    assert_eq!(want.remove(0), "p42");
    let got: Vec<String> = got.into_iter().map(|h| h.payload.product_id).collect();
    assert_eq!(got, want);
    // An unknown id excludes nothing.
    let ex = Filter {
        exclude_id: Some("nope".into()),
        ..Filter::default()
    };
    let top = idx.search_with(&vs[42].1, &ex, 1, plan).unwrap();
    assert_eq!(top[0].payload.product_id, "p42");
}

#[test]
fn binary_codes_follow_replacements_deletes_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let dim = 128;
    let vs = clustered(3000, dim, 3);
    let (idx, _) = indexed(dir.path(), dim, &vs);
    let plan = Plan::Binary { candidates: 64 };
    let top = |idx: &EmbeddedIndex, q: &[f32]| {
        idx.search_with(q, &Filter::default(), 1, plan).unwrap()[0]
            .payload
            .product_id
            .clone()
    };
    // Replace p5 by a vector far from its cluster; its slot moves.
    let moved = unit(424_242, dim);
    idx.upsert_sync(vec![point("p5", "c2", 1.0, moved.clone())])
        .unwrap();
    assert_eq!(top(&idx, &moved), "p5");
    assert_ne!(top(&idx, &vs[5]), "p5");
    idx.delete_sync(&["p7".into()]).unwrap();
    assert_ne!(top(&idx, &vs[7]), "p7");
    // A new point reuses the freed slot; its code must be its own.
    let fresh = unit(777_777, dim);
    idx.upsert_sync(vec![point("p_new", "c0", 1.0, fresh.clone())])
        .unwrap();
    assert_eq!(top(&idx, &fresh), "p_new");

    // Codes kept up to date by upserts are the codes a rebuild gives.
    let check = |idx: &EmbeddedIndex| {
        let st = idx.core.read_state();
        let rebuilt = all_binary_codes(dim, st.codes.as_i8(), &st.slots, &st.reference);
        for (slot, live) in st.live.iter().enumerate() {
            assert_eq!(*live, st.slots[slot].is_some());
            if *live {
                let w = idx.core.words;
                assert_eq!(
                    st.bits[slot * w..(slot + 1) * w],
                    rebuilt[slot * w..(slot + 1) * w],
                    "slot {slot}"
                );
            }
        }
    };
    check(&idx);
    // Last refreshed at 2000 points (the next is due at 4000).
    assert_eq!(idx.core.read_state().reference_live, 2000);
    drop(idx);

    // At open the reference is derived from the live points alone.
    let idx = EmbeddedIndex::open(dir.path(), dim, "v").unwrap();
    check(&idx);
    {
        let st = idx.core.read_state();
        let (want, n) = mean_reference(dim, st.codes.as_i8(), &st.slots);
        assert_eq!(n, 3000);
        assert_eq!((&st.reference, st.reference_live), (&want, n));
    }
    assert_eq!(top(&idx, &moved), "p5");
    assert_eq!(top(&idx, &fresh), "p_new");
    assert_ne!(top(&idx, &vs[7]), "p7");
    assert_eq!(top(&idx, &vs[100]), "p100");
}
