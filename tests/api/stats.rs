//! `GET /api/v1/stats`: the dashboard's per-minute figures, from the
//! database, for events sent through the real webhook and processed by the
//! real worker (embedding with the real model).

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, event, photos, spawn_app};

async fn create(app: &TestApp, id: &str, key: &str) -> String {
    app.create_product(id, key).await
}

fn sum(v: &Value) -> i64 {
    v.as_array()
        .unwrap_or_else(|| panic!("not a series: {v}"))
        .iter()
        .map(|n| n.as_i64().unwrap())
        .sum()
}

#[tokio::test]
async fn stats_count_events_failures_embeddings_and_the_queue_per_minute() {
    let app = spawn_app().await;
    let mut photos = photos().into_iter();
    let (_, a) = photos.next().unwrap();
    let (_, b) = photos.next().unwrap();
    let (_, c) = photos.next().unwrap();
    app.images.put("a.jpg", a);
    app.images.put("b.jpg", b);
    // Fails once (503), then embeds: one failed try, no final failure.
    app.images.put_flaky("flaky.jpg", c, 1);
    app.images
        .put("html.jpg", b"<html>not a picture</html>".to_vec());

    let mut ids = Vec::new();
    for (id, key) in [
        ("s-a", "a.jpg"),
        ("s-b", "b.jpg"),
        ("s-flaky", "flaky.jpg"),
        ("s-bad1", "html.jpg"),
        ("s-bad2", "html.jpg"),
    ] {
        ids.push(create(&app, id, key).await);
    }
    // Metadata only: completed, but no embedding.
    let sent = app
        .send(&event(
            "product.updated",
            "evt-s-a-2",
            "s-a",
            "2026-11-22T11:00:00Z",
            json!({ "title": "renamed" }),
        ))
        .await;
    ids.push(sent["task_id"].as_str().unwrap().to_string());
    for id in &ids {
        app.wait_event_done(id).await;
    }

    let (status, body) = app.admin_get_json("/api/v1/stats").await;
    assert_eq!(status, 200, "{body}");
    let d = &body["data"];
    assert_eq!(d["minutes"], 60);
    assert_eq!(d["bucket_secs"], 60);
    let ts = d["timestamps"].as_array().unwrap();
    assert_eq!(ts.len(), 60);
    // Minute starts in Unix seconds, ascending, the last one now's.
    let now_s = chrono::Utc::now().timestamp();
    let last = ts[59].as_i64().unwrap();
    assert!(
        last % 60 == 0 && last <= now_s && now_s - last < 120,
        "{last} {now_s}"
    );
    assert!(
        ts.windows(2)
            .all(|w| w[1].as_i64().unwrap() - w[0].as_i64().unwrap() == 60)
    );
    // Every series is as long as the timestamps.
    for series in [
        &d["received"]["total"],
        &d["received"]["by_provider"]["bakai"],
        &d["received"]["by_status"]["completed"],
        &d["failures"]["final"],
        &d["failures"]["tries"],
        &d["embeddings"],
    ] {
        assert_eq!(series.as_array().map(Vec::len), Some(60), "{series}");
    }

    assert_eq!(sum(&d["received"]["total"]), 6, "{d}");
    assert_eq!(sum(&d["received"]["by_provider"]["bakai"]), 6, "{d}");
    assert_eq!(sum(&d["received"]["by_status"]["completed"]), 4, "{d}");
    assert_eq!(sum(&d["received"]["by_status"]["failed"]), 2, "{d}");
    assert_eq!(sum(&d["failures"]["final"]), 2, "{d}");
    assert_eq!(sum(&d["failures"]["final_by_provider"]["bakai"]), 2, "{d}");
    // The two final failures and the flaky image's first try.
    assert_eq!(sum(&d["failures"]["tries"]), 3, "{d}");
    // a, b and the flaky one; not the metadata-only update.
    assert_eq!(sum(&d["embeddings"]), 3, "{d}");
    assert_eq!(
        d["queue_depth"],
        json!({"pending": 0, "retrying": 0, "processing": 0, "total": 0})
    );

    // A narrower window, and one that is refused.
    let (status, body) = app.admin_get_json("/api/v1/stats?minutes=5").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["timestamps"].as_array().unwrap().len(), 5);
    assert_eq!(sum(&body["data"]["received"]["total"]), 6);
    for bad in ["minutes=0", "minutes=1441"] {
        let (status, body) = app.admin_get_json(&format!("/api/v1/stats?{bad}")).await;
        assert_eq!(status, 422, "{bad}: {body}");
    }
    let (status, _) = app.admin_get_json("/api/v1/stats?minutes=many").await;
    assert_eq!(status, 400);
    let (status, _) = app.get_json("/api/v1/stats").await;
    assert_eq!(status, 401, "admin only");

    // The queue: an event whose image takes a while is pending or
    // processing as soon as it is acknowledged.
    let (_, d2) = photos.next().unwrap();
    app.images.put_slow("slow.jpg", d2, Duration::from_secs(2));
    let slow = create(&app, "s-slow", "slow.jpg").await;
    let (_, body) = app.admin_get_json("/api/v1/stats").await;
    let q = &body["data"]["queue_depth"];
    assert_eq!(q["total"], 1, "{q}");
    assert_eq!(
        q["pending"].as_i64().unwrap() + q["processing"].as_i64().unwrap(),
        1,
        "{q}"
    );
    app.wait_event_done(&slow).await;
}
