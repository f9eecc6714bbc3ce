//! Regressions from the outside audit's "Events" items (issue 9): poisoned
//! timestamps, duplicate JSON keys, and leases shorter than a handler.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{SECRET, TestApp, event, photos, spawn_app, spawn_app_with};

async fn stored_events(app: &TestApp) -> Value {
    app.admin_get_json("/api/v1/events").await.1["pagination"]["total"].clone()
}

/// Item 7: an event dated far in the future would become its product's
/// clock and make every later event, even the delete, stale. It is refused
/// at intake; one within the allowed skew is accepted.
#[tokio::test]
async fn timestamps_beyond_the_clock_skew_are_refused_with_422() {
    let app = spawn_app().await;
    let (_, jpeg) = photos().into_iter().next().unwrap();
    app.images.put("p.jpg", jpeg);
    let poisoned = event(
        "product.created",
        "evt-9999",
        "p-future",
        "9999-12-31T23:59:59Z",
        json!({"image_key": "p.jpg"}),
    );
    let resp = app
        .post_signed(poisoned.to_string().as_bytes(), SECRET)
        .await;
    assert_eq!(resp.status(), 422);
    let msg: Value = resp.json().await.unwrap();
    let err = msg["error"].as_str().unwrap();
    assert!(
        err.starts_with("invalid event: field `timestamp` is ") && err.contains("ahead"),
        "{err}"
    );
    // Unix milliseconds are checked the same way.
    let mut millis = poisoned.clone();
    millis["event_id"] = json!("evt-9999-ms");
    millis["timestamp"] = json!(253_402_300_799_000_i64);
    let resp = app.post_signed(millis.to_string().as_bytes(), SECRET).await;
    assert_eq!(resp.status(), 422);
    assert_eq!(stored_events(&app).await, 0, "nothing refused is stored");

    // Within the skew (300 s by default): accepted, and the product's later
    // delete is not stale.
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(60)).to_rfc3339();
    app.send(&event(
        "product.created",
        "evt-soon",
        "p-future",
        &soon,
        json!({"image_key": "p.jpg"}),
    ))
    .await;
    app.wait_product("p-future", "indexed").await;
    let later = (chrono::Utc::now() + chrono::Duration::seconds(120)).to_rfc3339();
    app.send(&event(
        "product.deleted",
        "evt-del",
        "p-future",
        &later,
        json!({}),
    ))
    .await;
    app.wait_product("p-future", "deleted").await;

    // The skew is a setting.
    let strict = spawn_app_with(|s| s.bakai.max_clock_skew_secs = 0).await;
    let ahead = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc3339();
    let body = event("product.deleted", "e", "p", &ahead, json!({})).to_string();
    assert_eq!(
        strict.post_signed(body.as_bytes(), SECRET).await.status(),
        422
    );
}

/// Item 7: a failed event records its failure but does not move the
/// product's clock, so a later valid event older than the failed one still
/// applies.
#[tokio::test]
async fn a_failed_event_does_not_make_later_events_stale() {
    let app = spawn_app().await;
    let mut photos = photos().into_iter();
    let (_, first) = photos.next().unwrap();
    let (_, second) = photos.next().unwrap();
    app.images.put("v1.jpg", first);
    app.images.put("v2.jpg", second);
    let send = |id: &'static str, kind: &'static str, ts: &'static str, key: &'static str| {
        let ev = event(kind, id, "p-clock", ts, json!({"image_key": key}));
        let app = &app;
        async move { app.send(&ev).await }
    };
    send("c1", "product.created", "2026-11-22T10:00:00Z", "v1.jpg").await;
    let v1 = app.wait_product("p-clock", "indexed").await;

    // 12:00: an image that is not there (404, a permanent failure).
    let failed = send(
        "u-missing",
        "product.image.updated",
        "2026-11-22T12:00:00Z",
        "missing.jpg",
    )
    .await;
    let rec = app
        .wait_event_done(failed["task_id"].as_str().unwrap())
        .await;
    assert_eq!(rec["status"], "failed", "{rec}");
    let p = app.product("p-clock").await.1;
    assert_eq!(p["status"], "failed", "{p}");
    assert_eq!(
        p["last_event_id"], "c1",
        "a failure is not an applied event"
    );

    // 11:00, delivered after it: older than the failure, newer than what was
    // applied, so it applies.
    let fixed = send(
        "u-fixed",
        "product.image.updated",
        "2026-11-22T11:00:00Z",
        "v2.jpg",
    )
    .await;
    let rec = app
        .wait_event_done(fixed["task_id"].as_str().unwrap())
        .await;
    assert_eq!(rec["status"], "completed", "{rec}");
    assert_eq!(
        rec["outcome"], "indexed: image embedded and upserted",
        "{rec}"
    );
    let p = app.wait_product("p-clock", "indexed").await;
    assert_eq!(p["last_event_id"], "u-fixed");
    assert_ne!(p["image_sha256"], v1["image_sha256"]);
    assert!(p["error"].is_null(), "{p}");
}

/// Item 8: a body with a key twice was acknowledged (`Value` keeps the last
/// copy) and then failed for good in the worker, which refuses duplicates.
/// Now intake refuses it with 422, at any depth, and stores nothing.
#[tokio::test]
async fn duplicate_keys_are_refused_with_422_at_any_depth() {
    let app = spawn_app().await;
    let base = r#"{"event_type":"product.updated","event_id":"evt-dup","timestamp":"2026-11-22T10:00:00Z","data":{"product_id":"p-dup","title":"Cat","price":1}}"#;
    assert!(
        serde_json::from_str::<Value>(base).is_ok(),
        "the base is valid"
    );
    for (case, body) in [
        (
            "top level",
            base.replacen(
                r#""event_id":"evt-dup","#,
                r#""event_id":"a","event_id":"evt-dup","#,
                1,
            ),
        ),
        (
            "in data",
            base.replacen(r#""title":"Cat""#, r#""title":"Dog","title":"Cat""#, 1),
        ),
        (
            "the product id",
            base.replacen(
                r#""product_id":"p-dup""#,
                r#""product_id":"x","product_id":"p-dup""#,
                1,
            ),
        ),
        (
            "nested deeper",
            base.replacen(r#""price":1"#, r#""price":1,"tags":{"a":1,"a":2}"#, 1),
        ),
    ] {
        let resp = app.post_signed(body.as_bytes(), SECRET).await;
        assert_eq!(resp.status(), 422, "{case}");
        let msg: Value = resp.json().await.unwrap();
        let err = msg["error"].as_str().unwrap();
        assert!(
            err.starts_with("invalid event: duplicate key `"),
            "{case}: {err}"
        );
        assert_eq!(msg["success"], false);
    }
    assert_eq!(stored_events(&app).await, 0, "nothing refused is stored");
    // Malformed JSON is still 400, and the base itself is accepted and applied.
    let resp = app.post_signed(b"{\"event_type\": ", SECRET).await;
    assert_eq!(resp.status(), 400);
    let sent = app
        .send(&serde_json::from_str::<Value>(base).unwrap())
        .await;
    let rec = app.wait_event_done(sent["task_id"].as_str().unwrap()).await;
    assert_eq!(rec["status"], "completed", "{rec}");
}

/// Item 10: a handler that outlasts its lease was claimed again and again
/// (a 2 s lease and a 5 s download: ten downloads, never completed). The
/// heartbeat keeps the lease while it works: one download, completed.
#[tokio::test]
async fn a_handler_longer_than_its_lease_keeps_it_and_runs_once() {
    let app = spawn_app_with(|s| {
        s.worker.lease_secs = 3;
        // The app's own loop polls too, so a lapsed lease would be taken.
        s.worker.poll_interval_ms = 50;
    })
    .await;
    let (_, jpeg) = photos().into_iter().next().unwrap();
    app.images
        .put_slow("slow.jpg", jpeg, Duration::from_secs(5));
    let sent = app
        .send(&event(
            "product.created",
            "evt-slow",
            "p-slow",
            "2026-11-22T10:00:00Z",
            json!({"image_key": "slow.jpg"}),
        ))
        .await;
    let rec = app.wait_event_done(sent["task_id"].as_str().unwrap()).await;
    assert_eq!(rec["status"], "completed", "{rec}");
    assert_eq!(rec["retry_count"], 0, "{rec}");
    assert_eq!(app.images.hits("slow.jpg"), 1, "the image was fetched once");
    let p = app.wait_product("p-slow", "indexed").await;
    assert_eq!(p["embed_count"], 1);
}
