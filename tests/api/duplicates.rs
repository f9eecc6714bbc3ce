//! Near-duplicates, end to end with the real model: the same photo under
//! two products, and a re-encoded, slightly cropped copy under a third, are
//! found at ingest; a distinct photo is not; the pairs show on each
//! product, as one cluster in the admin list, and go when a product is
//! deleted.

use std::io::Cursor;

use serde_json::{Value, json};

use crate::helpers::*;

fn ids(v: &Value) -> Vec<String> {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["product_id"].as_str().unwrap().to_string())
        .collect()
}

/// A second seller's copy: a 95% centre crop, re-encoded as JPEG at 70.
fn copy_of(bytes: &[u8]) -> Vec<u8> {
    let img = image::load_from_memory(bytes).unwrap();
    let (w, h) = (img.width(), img.height());
    let crop = img
        .crop_imm(w / 40, h / 40, w - w / 20, h - h / 20)
        .to_rgb8();
    let mut out = Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 70)
        .encode_image(&crop)
        .unwrap();
    out.into_inner()
}

#[tokio::test]
async fn copies_of_a_photo_are_near_duplicates_and_distinct_photos_are_not() {
    let app = spawn_app().await;
    let photos = photos();
    let (a, b) = (&photos[0].1, &photos[5].1);
    app.images.put("dup/a.jpg", a.clone());
    app.images.put("dup/a-again.jpg", a.clone());
    app.images.put("dup/a-copy.jpg", copy_of(a));
    app.images.put("dup/b.jpg", b.clone());
    for (id, key) in [
        ("d-1", "dup/a.jpg"),
        ("d-other", "dup/b.jpg"),
        ("d-2", "dup/a-again.jpg"),
        ("d-3", "dup/a-copy.jpg"),
    ] {
        app.send(&event(
            "product.created",
            &format!("dup-c-{id}"),
            id,
            "2026-12-01T10:00:00Z",
            json!({"title": format!("Product {id}"), "image_key": key}),
        ))
        .await;
        // One at a time: each finds the ones before it in the index.
        app.wait_product(id, "indexed").await;
    }

    let (status, d1) = app.get_json("/api/v1/products/d-1/duplicates").await;
    assert_eq!(status, 200, "{d1}");
    let mut found = ids(&d1);
    found.sort();
    assert_eq!(found, ["d-2", "d-3"], "{d1}");
    let same = d1["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["product_id"] == "d-2")
        .unwrap();
    assert_eq!(same["identical"], true, "{d1}");
    let copy = d1["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["product_id"] == "d-3")
        .unwrap();
    assert_eq!(copy["identical"], false, "{d1}");
    assert!(copy["score"].as_f64().unwrap() >= 0.75, "{d1}");

    let (_, other) = app.get_json("/api/v1/products/d-other/duplicates").await;
    assert!(
        ids(&other).is_empty(),
        "a distinct photo is flagged: {other}"
    );
    let (status, _) = app.get_json("/api/v1/products/nope/duplicates").await;
    assert_eq!(status, 404);

    // The admin list: one cluster of the three copies.
    let (status, clusters) = app.admin_get_json("/api/v1/duplicates").await;
    assert_eq!(status, 200, "{clusters}");
    assert_eq!(clusters["pagination"]["total"], 1, "{clusters}");
    assert_eq!(
        clusters["data"][0]["product_ids"],
        json!(["d-1", "d-2", "d-3"]),
        "{clusters}"
    );
    let (status, _) = app.get_json("/api/v1/duplicates").await;
    assert_eq!(status, 401, "the cluster list needs the admin token");

    // A deleted product leaves its pairs.
    app.send(&event(
        "product.deleted",
        "dup-d-2",
        "d-2",
        "2026-12-01T11:00:00Z",
        json!({}),
    ))
    .await;
    app.wait_product("d-2", "deleted").await;
    let (_, d1) = app.get_json("/api/v1/products/d-1/duplicates").await;
    assert_eq!(ids(&d1), ["d-3"], "{d1}");
}
