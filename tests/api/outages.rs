//! Downstream outages as the running app sees them: while the image host
//! does not answer, `/api/v1/health` says `degraded` (200: search still
//! works) and names the class of fault, never the address; events wait in
//! the inbox, retried, and complete once the host is back, when health is
//! `healthy` again. (`scripts/chaos.sh --outage-images` and
//! `--outage-s3` do the same against real servers, RELIABILITY.md §3.)

use std::time::Duration;

use axum::{Router, routing::get};
use serde_json::{Value, json};

use crate::helpers::{event, photos, spawn_app_with};

async fn health(app: &crate::helpers::TestApp) -> (u16, Value) {
    app.get_json("/api/v1/health").await
}

/// Polls health until `pred` holds (at most 20 s).
async fn health_until(
    app: &crate::helpers::TestApp,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> (u16, Value) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (code, body) = health(app).await;
        if pred(&body) {
            return (code, body);
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn health_is_degraded_while_the_image_host_is_down_and_events_wait_for_it() {
    // A port with nothing listening: the image host is down.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let app = spawn_app_with(move |s| {
        s.fetch.image_base_url = Some(format!("http://127.0.0.1:{port}/img/").parse().unwrap());
        s.fetch.probe_secs = 1;
        s.worker.retry_schedule = "300ms".parse().unwrap();
        s.worker.max_retries = 100;
    })
    .await;
    let ack = app
        .send(&event(
            "product.created",
            "outage-1",
            "outage-1",
            "2026-12-01T10:00:00Z",
            json!({"title": "Чайник", "image_key": "kettle.jpg"}),
        ))
        .await;
    let task = ack["task_id"].as_str().unwrap().to_string();

    let (code, down) = health_until(&app, "health never saw the image host down", |b| {
        b["image_source"]["status"] == "error"
    })
    .await;
    assert_eq!(code, 200, "search still works: {down}");
    assert_eq!(down["status"], "degraded", "{down}");
    assert_eq!(down["image_source"]["source"], "http");
    assert_eq!(down["image_source"]["error"], "image host unreachable");
    assert!(down["image_source"]["since"].is_string(), "{down}");
    assert!(
        !down.to_string().contains(&port.to_string()),
        "no address in public health: {down}"
    );
    assert_eq!(down["database"]["status"], "ok");
    // Meanwhile the event is retried, not failed.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let rec = app.event_record(&task).await;
    assert!(
        rec["status"] == "retrying" || rec["status"] == "processing" || rec["status"] == "pending",
        "{rec}"
    );

    // The host comes back on its port.
    let photo = photos().remove(0).1;
    let host = Router::new().route(
        "/img/kettle.jpg",
        get(move || {
            let p = photo.clone();
            async move { ([("content-type", "image/jpeg")], p) }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, host).await.unwrap() });

    let (code, up) =
        health_until(&app, "health never came back", |b| b["status"] == "healthy").await;
    assert_eq!(code, 200);
    assert_eq!(up["image_source"]["status"], "ok", "{up}");
    let p = app.wait_product("outage-1", "indexed").await;
    assert_eq!(p["embed_count"], 1, "{p}");
    let rec = app.event_record(&task).await;
    assert_eq!(rec["status"], "completed");
    assert!(
        rec["attempts"].as_array().unwrap().len() > 1,
        "it was retried: {rec}"
    );
}

/// The same for a local image folder that goes away (a detached volume):
/// the source is `file`, and its reason names no path.
#[tokio::test]
async fn health_is_degraded_while_the_image_folder_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("images");
    std::fs::create_dir(&folder).unwrap();
    let base = url::Url::from_directory_path(&folder).unwrap();
    let app = spawn_app_with(move |s| {
        s.fetch.image_base_url = Some(base);
        s.fetch.probe_secs = 1;
    })
    .await;
    health_until(&app, "the folder is there", |b| {
        b["image_source"]["status"] == "ok"
    })
    .await;
    std::fs::remove_dir(&folder).unwrap();
    let (code, down) = health_until(&app, "the folder is gone", |b| {
        b["image_source"]["status"] == "error"
    })
    .await;
    assert_eq!(
        (code, down["status"].as_str()),
        (200, Some("degraded")),
        "{down}"
    );
    assert_eq!(down["image_source"]["source"], "file");
    assert!(
        !down.to_string().contains("images"),
        "no path in public health: {down}"
    );
    std::fs::create_dir(&folder).unwrap();
    health_until(&app, "the folder is back", |b| b["status"] == "healthy").await;
}
