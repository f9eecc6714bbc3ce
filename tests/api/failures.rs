//! Bad images and flaky servers: each failure stays with its event, with a
//! readable reason, and the worker keeps going.

use serde_json::{Value, json};

use crate::helpers::{TestApp, event, photos, spawn_app};

async fn create(app: &TestApp, id: &str, data: Value) -> Value {
    let sent = app
        .send(&event(
            "product.created",
            &format!("evt-{id}"),
            id,
            "2026-11-22T10:00:00Z",
            data,
        ))
        .await;
    app.wait_event_done(sent["task_id"].as_str().unwrap()).await
}

/// A valid 1×1 PNG whose header claims `w`×`h` pixels: a decompression bomb
/// as far as a naive decoder is concerned.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    image::RgbImage::new(1, 1)
        .write_to(&mut buf, image::ImageFormat::Png)
        .unwrap();
    let mut png = buf.into_inner();
    // IHDR data starts after the 8-byte signature, 4-byte length and "IHDR".
    png[16..20].copy_from_slice(&w.to_be_bytes());
    png[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32fast::hash(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

#[tokio::test]
async fn bad_images_fail_their_event_and_the_next_one_succeeds() {
    let app = spawn_app().await;
    let (_, jpeg) = photos().into_iter().find(|(n, _)| n == "rocket").unwrap();
    app.images
        .put("truncated.jpg", jpeg[..jpeg.len() / 3].to_vec());
    app.images.put(
        "not-an-image.jpg",
        b"<html>404 but with status 200</html>".to_vec(),
    );
    app.images.put("bomb.png", png_claiming(100_000, 100_000));
    app.images.put("good.jpg", jpeg.clone());

    for (id, key, expect) in [
        ("truncated", "truncated.jpg", "corrupt or truncated"),
        ("html", "not-an-image.jpg", "not an image"),
        ("bomb", "bomb.png", "over the cap"),
    ] {
        let rec = create(&app, id, json!({"image_key": key})).await;
        assert_eq!(rec["status"], "failed", "{id}: {rec}");
        let err = rec["error"].as_str().unwrap();
        assert!(err.contains(expect), "{id}: {err}");
        assert_eq!(rec["retry_count"], 0, "{id}: a bad image is not retried");
        let (_, p) = app.product(id).await;
        assert_eq!(p["status"], "failed");
        assert!(p["error"].as_str().unwrap().contains(expect));
    }
    let rec = create(&app, "good", json!({"image_key": "good.jpg"})).await;
    assert_eq!(rec["status"], "completed", "{rec}");
    app.wait_product("good", "indexed").await;

    // Search with a bad image: a clear 422, not a 500.
    let resp = app
        .client
        .post(format!("{}/api/v1/search/image", app.addr))
        .body(b"definitely not an image".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
}

#[tokio::test]
async fn a_flaky_image_server_ends_completed_after_retries() {
    let app = spawn_app().await;
    let (_, jpeg) = photos().into_iter().next().unwrap();
    app.images.put_flaky("flaky.jpg", jpeg, 2);
    let rec = create(&app, "flaky", json!({"image_key": "flaky.jpg"})).await;
    assert_eq!(rec["status"], "completed", "{rec}");
    assert_eq!(rec["retry_count"], 2);
    assert_eq!(app.images.hits("flaky.jpg"), 3);
    app.wait_product("flaky", "indexed").await;
}

#[tokio::test]
async fn retries_run_out_and_the_error_is_kept() {
    let app = spawn_app().await;
    app.images.put_flaky("down.jpg", vec![], 1000);
    let rec = create(&app, "down", json!({"image_key": "down.jpg"})).await;
    assert_eq!(rec["status"], "failed");
    assert_eq!(rec["retry_count"], 3);
    assert!(rec["error"].as_str().unwrap().contains("503"), "{rec}");
    assert_eq!(
        app.images.hits("down.jpg"),
        4,
        "first try plus three retries"
    );
}

#[tokio::test]
async fn internal_addresses_are_refused() {
    let app = spawn_app().await;
    let rec = create(
        &app,
        "ssrf",
        json!({"image_url": "http://169.254.169.254/latest/meta-data/"}),
    )
    .await;
    assert_eq!(rec["status"], "failed");
    assert!(rec["error"].as_str().unwrap().contains("refused"), "{rec}");
}
