//! The webhook contract: signatures, status codes, idempotency.

use serde_json::{Value, json};
use vitrine::{config::Secret, http::signature};

use crate::helpers::{SECRET, event, photos, spawn_app, spawn_app_with};

fn created(event_id: &str, product_id: &str) -> Value {
    event(
        "product.created",
        event_id,
        product_id,
        "2026-11-22T10:00:00Z",
        json!({"title": "Cat", "category": "animals", "price": 10.0, "currency": "KGS", "image_key": "cat.png"}),
    )
}

#[tokio::test]
async fn signed_event_is_acknowledged_after_it_is_stored() {
    let app = spawn_app().await;
    let body = app.send(&created("evt-1", "p-1")).await;
    assert_eq!(body["success"], true);
    assert_eq!(
        body["message"],
        "Webhook received and queued for processing"
    );
    assert_eq!(body["event_id"], "evt-1");
    assert!(body.get("duplicate").is_none());
    let task = body["task_id"].as_str().unwrap();
    let rec = app.event_record(task).await;
    assert_eq!(rec["provider"], "bakai");
    assert_eq!(rec["event_type"], "product.created");
    assert_eq!(rec["entity_id"], "p-1");
    assert_eq!(rec["payload"]["data"]["title"], "Cat");
}

#[tokio::test]
async fn bad_signatures_are_refused_with_401() {
    let app = spawn_app().await;
    let body = created("evt-sig", "p-sig").to_string();

    // Tampered: signature of another body.
    let resp = app
        .client
        .post(format!("{}/api/v1/webhooks/bakai", app.addr))
        .header("X-Webhook-Signature", signature::sign(SECRET, b"{}"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let msg: Value = resp.json().await.unwrap();
    assert_eq!(msg["success"], false);
    assert!(msg["error"].as_str().unwrap().contains("signature"));

    // Wrong secret.
    assert_eq!(
        app.post_signed(body.as_bytes(), "not-the-secret")
            .await
            .status(),
        401
    );

    // Missing header.
    let resp = app
        .client
        .post(format!("{}/api/v1/webhooks/bakai", app.addr))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    // Garbage header.
    let resp = app
        .client
        .post(format!("{}/api/v1/webhooks/bakai", app.addr))
        .header("X-Webhook-Signature", "sha256=nothex")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    // Nothing was stored.
    let (_, list) = app.admin_get_json("/api/v1/events").await;
    assert_eq!(list["pagination"]["total"], 0);
}

#[tokio::test]
async fn rotated_secrets_are_all_accepted() {
    let app = spawn_app_with(|s| {
        s.bakai.webhook_secret = vec![Secret::new("new-key"), Secret::new("old-key")]
    })
    .await;
    let a = created("evt-a", "p-a").to_string();
    let b = created("evt-b", "p-b").to_string();
    assert_eq!(app.post_signed(a.as_bytes(), "old-key").await.status(), 200);
    assert_eq!(app.post_signed(b.as_bytes(), "new-key").await.status(), 200);
    assert_eq!(
        app.post_signed(b.as_bytes(), "older-key").await.status(),
        401
    );
}

#[tokio::test]
async fn malformed_invalid_and_oversized_bodies() {
    let app = spawn_app().await;
    // 400: not JSON.
    let resp = app.post_signed(b"{\"event_type\": ", SECRET).await;
    assert_eq!(resp.status(), 400);
    let msg: Value = resp.json().await.unwrap();
    assert!(
        msg["error"].as_str().unwrap().contains("malformed JSON"),
        "{msg}"
    );

    // 422: JSON, but not a valid event.
    let mut unknown = created("e1", "p1");
    unknown["event_type"] = json!("product.exploded");
    let mut no_id = created("e2", "p2");
    no_id.as_object_mut().unwrap().remove("event_id");
    let mut no_product = created("e3", "p3");
    no_product["data"]
        .as_object_mut()
        .unwrap()
        .remove("product_id");
    let mut bad_ts = created("e4", "p4");
    bad_ts["timestamp"] = json!("last tuesday");
    for (case, body) in [
        ("unknown type", unknown),
        ("missing event_id", no_id),
        ("missing product_id", no_product),
        ("bad timestamp", bad_ts),
        ("not an object", json!([1, 2, 3])),
    ] {
        let resp = app.post_signed(body.to_string().as_bytes(), SECRET).await;
        assert_eq!(resp.status(), 422, "{case}");
        let msg: Value = resp.json().await.unwrap();
        assert!(!msg["error"].as_str().unwrap().is_empty(), "{case}");
    }

    // 413: over the 1 MiB default.
    let mut big = created("e5", "p5");
    big["data"]["description"] = json!("x".repeat(1024 * 1024 + 10));
    let resp = app.post_signed(big.to_string().as_bytes(), SECRET).await;
    assert_eq!(resp.status(), 413);

    let (_, list) = app.admin_get_json("/api/v1/events").await;
    assert_eq!(list["pagination"]["total"], 0, "nothing invalid is stored");
}

#[tokio::test]
async fn no_secret_configured_fails_closed_with_503() {
    let app = spawn_app_with(|s| s.bakai.webhook_secret = Vec::new()).await;
    let body = created("e", "p").to_string();
    let resp = app.post_signed(body.as_bytes(), "").await;
    assert_eq!(resp.status(), 503);
    let msg: Value = resp.json().await.unwrap();
    assert!(msg["error"].as_str().unwrap().contains("WEBHOOK_SECRET"));
    let (code, health) = app.get_json("/api/v1/webhooks/health").await;
    assert_eq!(code, 200);
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["service"], "webhooks");
    assert_eq!(health["secret_configured"], false);
}

#[tokio::test]
async fn the_same_event_sent_five_times_at_once_has_one_effect() {
    let app = spawn_app().await;
    let (_, cat) = photos().into_iter().find(|(n, _)| n == "chelsea").unwrap();
    app.images.put("cat.png", cat);
    let body = created("evt-dup", "p-dup").to_string();
    let sends = (0..5).map(|_| app.post_signed(body.as_bytes(), SECRET));
    let responses = futures::future::join_all(sends).await;
    let mut bodies = Vec::new();
    for r in responses {
        assert_eq!(r.status(), 200);
        bodies.push(r.json::<Value>().await.unwrap());
    }
    let task = bodies[0]["task_id"].clone();
    assert!(bodies.iter().all(|b| b["task_id"] == task), "{bodies:?}");
    let originals = bodies
        .iter()
        .filter(|b| b.get("duplicate").is_none())
        .count();
    assert_eq!(originals, 1, "{bodies:?}");
    assert!(
        bodies
            .iter()
            .filter(|b| b.get("duplicate").is_some())
            .all(|b| b["duplicate"] == true)
    );

    let p = app.wait_product("p-dup", "indexed").await;
    assert_eq!(p["embed_count"], 1, "one embedding");
    // A late copy is still a duplicate, and changes nothing.
    let again = app
        .post_signed(body.as_bytes(), SECRET)
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["task_id"], task);
    let (_, list) = app.admin_get_json("/api/v1/events").await;
    assert_eq!(list["pagination"]["total"], 1, "one stored event");
    assert_eq!(app.images.hits("cat.png"), 1, "the image was fetched once");
    let (_, p) = app.product("p-dup").await;
    assert_eq!(p["embed_count"], 1);
}
