//! Product images from an S3-compatible server (moto, started by
//! `scripts/dev-services.sh up`). Skipped, with a message, when
//! `VITRINE_TEST_S3_ENDPOINT` is not set.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::json;
use vitrine::{
    config::S3Settings,
    embed::s3::{S3Config, S3Images},
};

use crate::helpers::{event, photos, spawn_app_with};

fn endpoint() -> Option<String> {
    let e = std::env::var("VITRINE_TEST_S3_ENDPOINT").ok();
    if e.is_none() {
        eprintln!(
            "SKIPPED: S3 test needs VITRINE_TEST_S3_ENDPOINT (eval \"$(scripts/dev-services.sh up)\")"
        );
    }
    e
}

async fn client(endpoint: &str, bucket: &str) -> S3Images {
    S3Images::connect(S3Config {
        bucket: bucket.into(),
        endpoint: Some(endpoint.into()),
        region: "us-east-1".into(),
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(10),
        max_bytes: 20 << 20,
    })
    .await
}

async fn put(s3: &S3Images, key: &str, bytes: Vec<u8>) {
    let _ = s3.client().create_bucket().bucket(s3.bucket()).send().await;
    s3.client()
        .put_object()
        .bucket(s3.bucket())
        .key(key)
        .body(bytes.into())
        .send()
        .await
        .expect("put_object");
}

fn bucket_name() -> String {
    format!(
        "vitrine-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

#[tokio::test]
async fn objects_are_embedded_and_missing_keys_fail_readably() {
    let Some(ep) = endpoint() else { return };
    let bucket = bucket_name();
    let s3 = client(&ep, &bucket).await;
    let (name, bytes) = photos().into_iter().find(|(n, _)| n == "coffee").unwrap();
    put(&s3, "catalog/coffee.png", bytes.clone()).await;

    let (b, e) = (bucket.clone(), ep.clone());
    let app = spawn_app_with(move |s| {
        s.s3 = Some(S3Settings {
            bucket: b,
            endpoint: Some(e),
            region: "us-east-1".into(),
        });
        s.fetch.image_base_url = None;
    })
    .await;
    app.send(&event(
        "product.created",
        "s3-1",
        &name,
        "2026-11-22T10:00:00Z",
        json!({"title": "Coffee", "image_key": "catalog/coffee.png"}),
    ))
    .await;
    app.wait_product(&name, "indexed").await;
    let results = app.search_image(bytes, "limit=1").await;
    assert_eq!(results[0]["product_id"], name.as_str());

    let sent = app
        .send(&event(
            "product.created",
            "s3-2",
            "ghost",
            "2026-11-22T10:00:00Z",
            json!({"image_key": "catalog/missing.png"}),
        ))
        .await;
    let rec = app.wait_event_done(sent["task_id"].as_str().unwrap()).await;
    assert_eq!(rec["status"], "failed");
    let err = rec["error"].as_str().unwrap();
    assert!(
        err.contains("not found") && err.contains(&format!("s3://{bucket}/catalog/missing.png")),
        "{err}"
    );
    assert_eq!(rec["retry_count"], 0, "a missing key is not retried");
}

struct Moto(Child);
impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start_moto(bin: &str, port: u16) -> Moto {
    let moto = Moto(
        Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server"),
    );
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return moto;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("moto did not start on port {port}");
}

#[tokio::test]
async fn an_s3_outage_mid_run_ends_in_completion_after_retries() {
    let Ok(moto) = std::env::var("VITRINE_TEST_MOTO") else {
        eprintln!("SKIPPED: S3 outage test needs VITRINE_TEST_MOTO (scripts/dev-services.sh up)");
        return;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ep = format!("http://127.0.0.1:{port}");
    let bucket = bucket_name();
    let server = start_moto(&moto, port).await;
    let s3 = client(&ep, &bucket).await;
    let (name, bytes) = photos().into_iter().find(|(n, _)| n == "rocket").unwrap();
    put(&s3, "rocket.jpg", bytes.clone()).await;

    let (b, e) = (bucket.clone(), ep.clone());
    let app = spawn_app_with(move |s| {
        s.s3 = Some(S3Settings {
            bucket: b,
            endpoint: Some(e),
            region: "us-east-1".into(),
        });
        s.fetch.image_base_url = None;
        // Long enough that the store is back (and refilled: moto keeps
        // objects in memory) before the next try.
        s.worker.retry_schedule = "3s".parse().unwrap();
        s.worker.max_retries = 8;
        s.fetch.connect_timeout_ms = 500;
        s.fetch.timeout_ms = 2_000;
    })
    .await;

    drop(server); // the store goes down
    let sent = app
        .send(&event(
            "product.created",
            "s3-outage",
            &name,
            "2026-11-22T10:00:00Z",
            json!({"image_key": "rocket.jpg"}),
        ))
        .await;
    let task = sent["task_id"].as_str().unwrap();
    // Drive it until a try has failed and a retry is scheduled.
    let retrying = || async { app.event_record(task).await["status"] == "retrying" };
    app.drive_until(|| format!("the outage makes event {task} retry"), retrying)
        .await;
    let rec = app.event_record(task).await;
    assert!(!rec["error"].as_str().unwrap().is_empty(), "{rec}");

    // It comes back (moto keeps objects in memory, so they are put again).
    let _server = start_moto(&moto, port).await;
    put(&s3, "rocket.jpg", bytes.clone()).await;
    let rec = app.wait_event_done(task).await;
    assert_eq!(rec["status"], "completed", "{rec}");
    assert!(rec["retry_count"].as_i64().unwrap() >= 1);
    app.wait_product(&name, "indexed").await;
}
