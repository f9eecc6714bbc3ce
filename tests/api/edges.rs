//! The HTTP edge under clients that misbehave: stalled heads and bodies,
//! too many connections, too many requests, bodies over the limit written
//! before the answer is read. Raw `TcpStream`s, since an HTTP client
//! library would not misbehave this way.

use std::time::Duration;

use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::timeout,
};

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.addr.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the peer closes, `within` passes, or the connection fails;
/// returns what arrived and whether the peer closed (EOF or reset).
async fn read_all(s: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let closed = timeout(within, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    (String::from_utf8_lossy(&out).into_owned(), closed)
}

/// Reads until a whole response head has arrived, or `within` passes.
async fn read_head(s: &mut TcpStream, within: Duration) -> Option<String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    timeout(within, async {
        while !String::from_utf8_lossy(&out).contains("\r\n\r\n") {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .ok()?;
    let text = String::from_utf8_lossy(&out).into_owned();
    text.contains("\r\n\r\n").then_some(text)
}

/// Python's `http.client` writes the whole request, body included, before
/// it reads anything. Answering 413 and closing with the body unread made
/// the kernel reset the connection, and the client saw a broken pipe.
#[tokio::test]
async fn a_413_reaches_a_client_that_writes_its_whole_body_first() {
    let app = spawn_app().await;
    let limit = app.settings.server.max_body_bytes;
    for (path, size) in [
        ("/api/v1/webhooks/bakai", limit + limit / 2),
        ("/api/v1/search/image", app.settings.fetch.max_bytes + 1024),
    ] {
        let mut s = connect(&app).await;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\n\
             Connection: close\r\nContent-Length: {size}\r\n\r\n"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let body = vec![b'x'; size];
        s.write_all(&body)
            .await
            .unwrap_or_else(|e| panic!("{path}: writing the body failed: {e}"));
        let (answer, _) = read_all(&mut s, Duration::from_secs(10)).await;
        assert!(
            answer.starts_with("HTTP/1.1 413"),
            "{path}: got {answer:?} instead of a 413"
        );
        assert!(answer.contains(r#""success":false"#), "{answer}");
    }
}

/// A client that opens a connection and sends half a request head (or
/// nothing) is closed after the header-read timeout; it used to be kept
/// for as long as it liked.
#[tokio::test]
async fn stalled_request_heads_are_closed() {
    let app = spawn_app_with(|s| s.server.header_read_timeout_secs = 1).await;
    let mut half = connect(&app).await;
    half.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    let mut silent = connect(&app).await;
    for s in [&mut half, &mut silent] {
        let (_, closed) = read_all(s, Duration::from_secs(5)).await;
        assert!(closed, "a stalled connection was still open after 5 s");
    }
}

/// A body that stops arriving is answered 408 after the body-read timeout,
/// not left until the 60 s request timeout.
#[tokio::test]
async fn stalled_bodies_are_answered_408() {
    let app = spawn_app_with(|s| s.server.body_read_timeout_secs = 1).await;
    let mut s = connect(&app).await;
    s.write_all(
        b"POST /api/v1/webhooks/bakai HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n{\"event",
    )
    .await
    .unwrap();
    let head = read_head(&mut s, Duration::from_secs(5))
        .await
        .expect("an answer within 5 s");
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
}

/// Past `max_connections`, a new connection is not served until an open
/// one closes.
#[tokio::test]
async fn connections_past_the_cap_wait_for_a_free_slot() {
    let app = spawn_app_with(|s| {
        s.server.max_connections = 2;
        s.server.header_read_timeout_secs = 30;
    })
    .await;
    let idle_a = connect(&app).await;
    let _idle_b = connect(&app).await;
    // Let the server accept both before the third connects.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = connect(&app).await;
    third
        .write_all(b"GET /api/v1/webhooks/health HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    assert!(
        read_head(&mut third, Duration::from_millis(800))
            .await
            .is_none(),
        "a third connection was served past a cap of 2"
    );
    drop(idle_a);
    let head = read_head(&mut third, Duration::from_secs(5))
        .await
        .expect("served once a slot is free");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}

/// Per-IP rate limits: 429 with `Retry-After`, in the usual error shape.
#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let app = spawn_app_with(|s| {
        s.server.search_rate_per_sec = 1;
        s.server.search_rate_burst = 2;
        s.server.webhook_rate_per_sec = 1;
        s.server.webhook_rate_burst = 1;
    })
    .await;
    let similar = format!("{}/api/v1/products/nobody/similar", app.addr);
    for _ in 0..2 {
        let r = app.client.get(&similar).send().await.unwrap();
        assert_eq!(r.status(), 404);
    }
    let r = app.client.get(&similar).send().await.unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["success"], false);
    assert!(
        body["error"].as_str().unwrap().contains("too many"),
        "{body}"
    );

    // Webhooks have their own budget: the first (unsigned) one is judged
    // on its merits, the next is over the rate.
    let hook = format!("{}/api/v1/webhooks/bakai", app.addr);
    let r = app.client.post(&hook).body("{}").send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = app.client.post(&hook).body("{}").send().await.unwrap();
    assert_eq!(r.status(), 429);
    // Routes outside both buckets are not limited.
    let (status, _) = app.get_json("/api/v1/webhooks/health").await;
    assert_eq!(status, 200);
}

/// Search uploads past `max_search_uploads` in flight are answered 429.
#[tokio::test]
async fn search_uploads_past_the_bound_are_answered_429() {
    let app = spawn_app_with(|s| s.server.max_search_uploads = 1).await;
    // One upload in flight: its body is still arriving.
    let mut slow = connect(&app).await;
    slow.write_all(
        b"POST /api/v1/search/image HTTP/1.1\r\nHost: t\r\n\
          Content-Type: application/octet-stream\r\nContent-Length: 5000\r\n\r\n\xff\xd8",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = app
        .client
        .post(format!("{}/api/v1/search/image", app.addr))
        .header("content-type", "application/octet-stream")
        .body(vec![0u8; 100])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    // Once the first finishes, the slot is free again.
    slow.write_all(&[0u8; 4998]).await.unwrap();
    let head = read_head(&mut slow, Duration::from_secs(10)).await.unwrap();
    // Not an image (422): what matters is that it was served.
    assert!(!head.starts_with("HTTP/1.1 429"), "{head}");
    let r = app
        .client
        .post(format!("{}/api/v1/search/image", app.addr))
        .header("content-type", "application/octet-stream")
        .body(vec![0u8; 100])
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 429, "the slot was not released");
}

/// `NaN` and infinite price bounds are malformed parameters: 400.
#[tokio::test]
async fn non_finite_price_filters_are_400() {
    let app = spawn_app().await;
    for q in ["min_price=NaN", "max_price=inf", "min_price=-infinity"] {
        let (status, body) = app
            .get_json(&format!("/api/v1/products/p-1/similar?{q}"))
            .await;
        assert_eq!(status, 400, "{q}: {body}");
        assert_eq!(body["success"], false);
    }
}

/// Health names the database engine beside the index backend.
#[tokio::test]
async fn health_names_the_database_engine() {
    let app = spawn_app().await;
    let (status, body) = app.get_json("/api/v1/health").await;
    assert_eq!(status, 200, "{body}");
    let engine = if std::env::var("VITRINE_TEST_DB").as_deref() == Ok("postgres") {
        "postgres"
    } else {
        "sqlite"
    };
    assert_eq!(body["database"]["engine"], engine, "{body}");
    assert!(body["index"]["backend"].is_string(), "{body}");
}

/// The hand-written server loop still drains on shutdown, with a
/// kept-alive connection open.
#[tokio::test]
async fn shutdown_drains_with_idle_connections_open() {
    let app = spawn_app().await;
    let mut idle = connect(&app).await;
    idle.write_all(b"GET /api/v1/webhooks/health HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut idle, Duration::from_secs(5)).await.unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let grace = app.settings.server.shutdown_grace();
    let stopped = timeout(grace, app.stop()).await;
    assert!(stopped.is_ok(), "shutdown waited out its grace");
}
