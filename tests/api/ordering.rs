//! Ordering across instances (issue 9, item 9): two `vitrine serve`
//! processes on one PostgreSQL database, and interleaved create / update /
//! delete storms on a few products, each event sent to one instance or to
//! both. Every product ends in the state of its newest event. With a shared
//! Qdrant index (`VITRINE_TEST_INDEX=qdrant`) the index must agree too: a
//! deleted product's vector does not come back. Runs with
//! `VITRINE_TEST_DB=postgres`; skipped (with a message) otherwise.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    helpers::{ImageServer, event, fresh_database_url, photos},
    scale::{admin_get, send, shared_qdrant, spawn_instance},
};

#[tokio::test]
async fn storms_across_two_instances_end_in_each_products_newest_event() {
    if std::env::var("VITRINE_TEST_DB").as_deref() != Ok("postgres") {
        eprintln!("SKIPPED: ordering test needs VITRINE_TEST_DB=postgres");
        return;
    }
    let images = ImageServer::start().await;
    let photos = photos();
    for (name, bytes) in &photos {
        images.put(name, bytes.clone());
    }
    let db = fresh_database_url().await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let alias = format!("o{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let a = spawn_instance(&db, dir_a.path(), &images, &alias).await;
    let b = spawn_instance(&db, dir_b.path(), &images, &alias).await;
    let client = reqwest::Client::new();

    // Per product, a history of events one minute apart, in a fixed
    // pseudo-random mix; then all of them shuffled and sent at once.
    const PRODUCTS: usize = 4;
    const EVENTS: usize = 12;
    let mut seed: u64 = 0x5eed;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut bodies = Vec::new();
    let mut newest = Vec::new();
    for p in 0..PRODUCTS {
        let mut last = (String::new(), "");
        for e in 0..EVENTS {
            let kind = match next() % 4 {
                0 => "product.created",
                1 => "product.updated",
                2 => "product.image.updated",
                _ => "product.deleted",
            };
            let id = format!("ord-{p}-{e}");
            let ts = format!("2026-11-22T{:02}:{:02}:00Z", 10 + e / 60, e % 60);
            let (name, _) = &photos[(next() as usize) % photos.len()];
            let data = match kind {
                "product.deleted" => json!({}),
                _ => json!({"title": format!("P{p} v{e}"), "image_key": name}),
            };
            bodies.push(event(kind, &id, &format!("ord-{p}"), &ts, data).to_string());
            last = (id, kind);
        }
        newest.push(last);
    }
    for i in (1..bodies.len()).rev() {
        bodies.swap(i, (next() as usize) % (i + 1));
    }
    let sends = bodies.iter().enumerate().map(|(i, body)| {
        let (client, a, b) = (&client, &a.url, &b.url);
        async move {
            match i % 3 {
                0 => {
                    send(client, a, body).await;
                }
                1 => {
                    send(client, b, body).await;
                }
                _ => {
                    tokio::join!(send(client, a, body), send(client, b, body));
                }
            }
        }
    });
    futures::future::join_all(sends).await;

    let total = PRODUCTS * EVENTS;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let done = admin_get(
            &client,
            &format!("{}/api/v1/events?status=completed&limit=1", a.url),
        )
        .await;
        if done["pagination"]["total"] == total {
            break;
        }
        let failed = admin_get(
            &client,
            &format!("{}/api/v1/events?status=failed&limit=5", a.url),
        )
        .await;
        assert_eq!(failed["pagination"]["total"], 0, "{failed}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "not all events completed: {done}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let shared = shared_qdrant().is_some();
    for (p, (id, kind)) in newest.iter().enumerate() {
        let product = format!("ord-{p}");
        for url in [&a.url, &b.url] {
            let row: Value = client
                .get(format!("{url}/api/v1/products/{product}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(row["last_event_id"], id.as_str(), "{row}");
            let status = if *kind == "product.deleted" {
                "deleted"
            } else {
                "indexed"
            };
            assert_eq!(row["status"], status, "{row}");
            if shared {
                // One index for both: it must agree with the row.
                let similar = client
                    .get(format!("{url}/api/v1/products/{product}/similar"))
                    .send()
                    .await
                    .unwrap()
                    .status();
                let expect = if status == "deleted" { 404 } else { 200 };
                assert_eq!(similar, expect, "{product}: {row}");
            }
        }
    }
}
