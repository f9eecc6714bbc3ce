//! Stop the server, start it again on the same data dir: indexed products
//! are still found and events that were pending get processed.

use serde_json::json;

use crate::helpers::{Stopped, event, photos, spawn_app, start};

#[tokio::test]
async fn index_and_pending_events_survive_a_restart() {
    let app = spawn_app().await;
    let photos = photos();
    for (name, bytes) in photos.iter().take(3) {
        app.images.put(name, bytes.clone());
        app.send(&event(
            "product.created",
            &format!("c-{name}"),
            name,
            "2026-11-22T10:00:00Z",
            json!({"title": name, "image_key": name}),
        ))
        .await;
    }
    for (name, _) in photos.iter().take(3) {
        app.wait_product(name, "indexed").await;
    }
    let Stopped {
        settings,
        images,
        tmp,
    } = app.stop().await;

    // While the service is down, an event lands in the inbox (as `vitrine
    // import` or a second instance would put it there).
    let (pending_name, pending_bytes) = &photos[3];
    images.put(pending_name, pending_bytes.clone());
    let (db, inbox) = vitrine::app::open_inbox(&settings).await.unwrap();
    let body = event(
        "product.created",
        "while-down",
        pending_name,
        "2026-11-22T10:00:00Z",
        json!({"title": "queued while down", "image_key": pending_name}),
    );
    let ev = vitrine::catalog::validate(serde_json::from_value(body.clone()).unwrap()).unwrap();
    inbox
        .insert(ev.to_new_event(body.to_string()))
        .await
        .unwrap();
    // Let go of the database before the service opens it again: both pools,
    // also the clone the inbox's intake writer holds.
    drop(inbox);
    db.close().await;

    let app = start(settings, images, tmp).await;
    // Indexed before the restart: still found, by product and by image.
    let (first, first_bytes) = &photos[0];
    let results = app.search_image(first_bytes.clone(), "limit=1").await;
    assert_eq!(results[0]["product_id"], first.as_str());
    let (code, body) = app.similar(first, "").await;
    assert_eq!(code, 200);
    let similar: Vec<&str> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["product_id"].as_str().unwrap())
        .collect();
    // The other two products indexed before the restart (the pending one may
    // already be there too).
    for (name, _) in &photos[1..3] {
        assert!(similar.contains(&name.as_str()), "{similar:?}");
    }
    // Pending before the restart: processed after it.
    let p = app.wait_product(pending_name, "indexed").await;
    assert_eq!(p["title"], "queued while down");
    let results = app.search_image(pending_bytes.clone(), "limit=1").await;
    assert_eq!(results[0]["product_id"], pending_name.as_str());
}
