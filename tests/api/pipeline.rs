//! End to end with the real model and real photos: webhook → inbox →
//! worker → fetch → embed → index → search.

use std::io::Cursor;

use image::imageops::FilterType;
use serde_json::{Value, json};

use crate::helpers::{TestApp, event, photos, spawn_app};

fn category(i: usize) -> &'static str {
    ["animals", "food", "vehicles", "places"][i % 4]
}

/// A shopper's photo of the product: cropped off-centre, rescaled and
/// re-compressed as JPEG.
pub fn augment(bytes: &[u8]) -> Vec<u8> {
    let img = image::load_from_memory(bytes).unwrap().to_rgb8();
    let (w, h) = img.dimensions();
    let crop = image::imageops::crop_imm(&img, w / 10, h / 20, w * 8 / 10, h * 8 / 10).to_image();
    let small = image::imageops::resize(
        &crop,
        (crop.width() * 7 / 10).max(1),
        (crop.height() * 7 / 10).max(1),
        FilterType::Triangle,
    );
    let mut out = Cursor::new(Vec::new());
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 70);
    small.write_with_encoder(enc).unwrap();
    out.into_inner()
}

/// Creates one product per photo and waits until all are indexed.
async fn load_catalog(app: &TestApp) -> Vec<(String, Vec<u8>)> {
    let photos = photos();
    for (i, (name, bytes)) in photos.iter().enumerate() {
        let key = format!("img/{name}");
        app.images.put(&key, bytes.clone());
        app.send(&event(
            "product.created",
            &format!("create-{name}"),
            name,
            "2026-11-22T10:00:00Z",
            json!({"title": format!("Product {name}"), "description": "a real photo",
                   "category": category(i), "price": 10.0 * (i as f64 + 1.0),
                   "currency": "KGS", "image_key": key}),
        ))
        .await;
    }
    for (name, _) in &photos {
        let p = app.wait_product(name, "indexed").await;
        assert_eq!(p["embed_count"], 1);
        assert!(p["model_version"].as_str().unwrap().len() == 64);
    }
    photos
}

fn ids(results: &[Value]) -> Vec<String> {
    results
        .iter()
        .map(|r| r["product_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn augmented_photos_find_their_product_and_deletes_stick() {
    let app = spawn_app().await;
    let photos = load_catalog(&app).await;

    // Search by image: an augmented copy finds the original at rank 1.
    let mut hits = 0;
    for (name, bytes) in &photos {
        let results = app.search_image(augment(bytes), "limit=5").await;
        assert!(!results.is_empty());
        let top = &results[0];
        for field in [
            "product_id",
            "score",
            "title",
            "category",
            "price",
            "currency",
        ] {
            assert!(top.get(field).is_some(), "{field} missing in {top}");
        }
        if top["product_id"] == name.as_str() {
            hits += 1;
        } else {
            eprintln!("{name}: top hit was {}", top["product_id"]);
        }
    }
    assert!(
        hits * 10 >= photos.len() * 9,
        "only {hits}/{} augmented queries found their product at rank 1",
        photos.len()
    );

    // Similar-by-product never lists the product itself, and filters hold.
    let (first, _) = &photos[0];
    let (code, body) = app.similar(first, "limit=50").await;
    assert_eq!(code, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), photos.len() - 1);
    assert!(!ids(results).contains(first));
    let scores: Vec<f64> = results
        .iter()
        .map(|r| r["score"].as_f64().unwrap())
        .collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "best first: {scores:?}"
    );

    let (_, body) = app
        .similar(first, "category=food&min_price=30&max_price=150")
        .await;
    let results = body["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for r in results {
        assert_eq!(r["category"], "food");
        let price = r["price"].as_f64().unwrap();
        assert!((30.0..=150.0).contains(&price), "{r}");
    }
    let (code, _) = app.similar(first, "min_price=abc").await;
    assert_eq!(code, 400);
    let (code, _) = app.similar("no-such-product", "").await;
    assert_eq!(code, 404);

    // Delete removes the product from results.
    let (victim, victim_bytes) = &photos[1];
    let del = app
        .send(&event(
            "product.deleted",
            "del-1",
            victim,
            "2026-11-22T12:00:00Z",
            json!({}),
        ))
        .await;
    let rec = app.wait_event_done(del["task_id"].as_str().unwrap()).await;
    assert_eq!(rec["status"], "completed");
    let p = app.wait_product(victim, "deleted").await;
    assert_eq!(p["status"], "deleted");
    let results = app.search_image(augment(victim_bytes), "limit=50").await;
    assert!(
        !ids(&results).contains(victim),
        "deleted product still found"
    );
    let (code, _) = app.similar(victim, "").await;
    assert_eq!(code, 404);

    // A stale update (older than the delete) does not bring it back.
    let stale = app
        .send(&event(
            "product.updated",
            "upd-stale",
            victim,
            "2026-11-22T11:00:00Z",
            json!({"title": "resurrected?", "image_key": format!("img/{victim}")}),
        ))
        .await;
    let rec = app
        .wait_event_done(stale["task_id"].as_str().unwrap())
        .await;
    assert_eq!(rec["status"], "completed");
    assert!(rec["outcome"].as_str().unwrap().contains("stale"), "{rec}");
    let (_, p) = app.product(victim).await;
    assert_eq!(p["status"], "deleted");
    assert_ne!(p["title"], "resurrected?");
    let results = app.search_image(augment(victim_bytes), "limit=50").await;
    assert!(
        !ids(&results).contains(victim),
        "stale update resurrected the product"
    );
}

#[tokio::test]
async fn metadata_only_update_does_not_re_embed() {
    let app = spawn_app().await;
    let (_, bytes) = photos().into_iter().next().unwrap();
    app.images.put("a.jpg", bytes.clone());
    let data = json!({"title": "Old title", "category": "c1", "price": 5.0, "currency": "KGS", "image_key": "a.jpg"});
    app.send(&event(
        "product.created",
        "c-1",
        "p1",
        "2026-11-22T10:00:00Z",
        data,
    ))
    .await;
    let p = app.wait_product("p1", "indexed").await;
    assert_eq!(p["embed_count"], 1);

    // Same image bytes, new title and price.
    let upd = app
        .send(&event(
            "product.updated",
            "u-1",
            "p1",
            "2026-11-22T10:05:00Z",
            json!({"title": "New title", "price": 7.5, "image_key": "a.jpg"}),
        ))
        .await;
    let rec = app.wait_event_done(upd["task_id"].as_str().unwrap()).await;
    assert!(
        rec["outcome"].as_str().unwrap().contains("not re-embedded"),
        "{rec}"
    );
    let (_, p) = app.product("p1").await;
    assert_eq!(p["embed_count"], 1, "metadata-only update re-embedded");
    assert_eq!(p["title"], "New title");
    assert_eq!(p["category"], "c1", "fields the update leaves out are kept");
    // Search results show the new metadata.
    let results = app.search_image(bytes.clone(), "limit=1").await;
    assert_eq!(results[0]["title"], "New title");
    assert_eq!(results[0]["price"], 7.5);

    // A new image does re-embed.
    let other = photos().into_iter().nth(3).unwrap().1;
    app.images.put("b.jpg", other);
    let upd = app
        .send(&event(
            "product.image.updated",
            "u-2",
            "p1",
            "2026-11-22T10:10:00Z",
            json!({"image_key": "b.jpg"}),
        ))
        .await;
    app.wait_event_done(upd["task_id"].as_str().unwrap()).await;
    let (_, p) = app.product("p1").await;
    assert_eq!(p["embed_count"], 2);
}

#[tokio::test]
async fn health_metrics_and_event_history() {
    let app = spawn_app().await;
    let (name, bytes) = photos().into_iter().next().unwrap();
    app.images.put("x.jpg", bytes);
    let ok = app
        .send(&event(
            "product.created",
            "h-1",
            &name,
            "2026-11-22T10:00:00Z",
            json!({"image_key": "x.jpg"}),
        ))
        .await;
    let missing = app
        .send(&event(
            "product.created",
            "h-2",
            "ghost",
            "2026-11-22T10:00:00Z",
            json!({"image_key": "nope.jpg"}),
        ))
        .await;
    app.wait_event_done(ok["task_id"].as_str().unwrap()).await;
    let failed = app
        .wait_event_done(missing["task_id"].as_str().unwrap())
        .await;
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["error"].as_str().unwrap().contains("not found"),
        "{failed}"
    );

    let (code, h) = app.get_json("/api/v1/health").await;
    assert_eq!(code, 200);
    assert_eq!(h["status"], "healthy");
    assert_eq!(h["database"]["status"], "ok");
    assert_eq!(h["index"]["points"], 1);
    assert_eq!(h["model"]["dim"], 1280);

    let text = app
        .client
        .get(format!("{}/api/v1/metrics", app.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "visual_search_webhooks_total{event_type=\"product.created\"}",
        "visual_search_webhooks_errors_total",
        "visual_search_webhook_processing_duration_seconds",
        "visual_search_images_embedded_total",
        "visual_search_embedding_duration_seconds",
        "visual_search_inbox_events{status=\"failed\"}",
    ] {
        assert!(text.contains(name), "{name} missing from metrics");
    }

    // History: filters and pagination.
    let (_, all) = app.admin_get_json("/api/v1/events?limit=1").await;
    assert_eq!(all["pagination"]["total"], 2);
    assert_eq!(all["pagination"]["totalPages"], 2);
    assert_eq!(all["data"].as_array().unwrap().len(), 1);
    assert!(
        all["data"][0].get("payload").is_none(),
        "list omits payloads"
    );
    let (_, f) = app
        .admin_get_json("/api/v1/events?status=failed&provider=bakai")
        .await;
    assert_eq!(f["pagination"]["total"], 1);
    assert_eq!(f["data"][0]["entity_id"], "ghost");
    let (_, none) = app
        .admin_get_json("/api/v1/events?start_date=2099-01-01")
        .await;
    assert_eq!(none["pagination"]["total"], 0);
    let (_, today) = app
        .admin_get_json(&format!(
            "/api/v1/events?end_date={}",
            chrono::Utc::now().format("%Y-%m-%d")
        ))
        .await;
    assert_eq!(today["pagination"]["total"], 2);
    let (code, _) = app.admin_get_json("/api/v1/events?status=weird").await;
    assert_eq!(code, 422);

    // Admin API needs the token.
    let resp = app
        .client
        .get(format!("{}/api/v1/events", app.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = app
        .client
        .get(format!("{}/api/v1/events", app.addr))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    // Manual retry: put the image in place and retry the failed event.
    app.images
        .put("nope.jpg", photos().into_iter().nth(2).unwrap().1);
    let resp = app
        .client
        .post(format!(
            "{}/api/v1/events/{}/retry",
            app.addr,
            missing["task_id"].as_str().unwrap()
        ))
        .bearer_auth(crate::helpers::ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let rec = app
        .wait_event_done(missing["task_id"].as_str().unwrap())
        .await;
    assert_eq!(rec["status"], "completed", "{rec}");
    app.wait_product("ghost", "indexed").await;
}
