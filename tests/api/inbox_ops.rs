//! The inbox as operators use it, for every provider (issue 12, items 2 and
//! 4): history filters on the entity, the subtype and the organisation,
//! and every processing try recorded.

use serde_json::{Value, json};
use vitrine::inbox::NewEvent;

use crate::helpers::{TestApp, event, photos, spawn_app};

/// The `pagination.total` and the ids of one history query.
async fn history(app: &TestApp, query: &str) -> (i64, Vec<String>) {
    let (status, body) = app
        .admin_get_json(&format!("/api/v1/events?limit=100&{query}"))
        .await;
    assert_eq!(status, 200, "{query}: {body}");
    let ids = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    (body["pagination"]["total"].as_i64().unwrap(), ids)
}

/// Events stored by any provider carry `entity_type`, `event_subtype` and
/// `org`; the history API filters on each, alone and together, and shows
/// them on the event.
#[tokio::test]
async fn history_filters_on_entity_type_subtype_and_org() {
    let app = spawn_app().await;
    let inbox = app.inbox();
    let lead_acme = inbox
        .insert(
            NewEvent::new("crm", "d1", "leads.status", "{}")
                .with_subtype("lead_status_changed")
                .with_entity("lead", "42")
                .with_org("acme"),
        )
        .await
        .unwrap()
        .task_id;
    let contact_acme = inbox
        .insert(
            NewEvent::new("crm", "d2", "contacts.add", "{}")
                .with_subtype("contact_created")
                .with_entity("contact", "7")
                .with_org("acme"),
        )
        .await
        .unwrap()
        .task_id;
    let lead_globex = inbox
        .insert(
            NewEvent::new("crm", "d3", "leads.status", "{}")
                .with_subtype("lead_status_changed")
                .with_entity("lead", "43")
                .with_org("globex"),
        )
        .await
        .unwrap()
        .task_id;
    // The catalog's own webhook: a product, no organisation.
    let product = app
        .send(&event(
            "product.deleted",
            "evt-1",
            "p-1",
            "2026-11-22T10:00:00Z",
            json!({}),
        ))
        .await["task_id"]
        .as_str()
        .unwrap()
        .to_string();

    assert_eq!(history(&app, "").await.0, 4);
    let (n, ids) = history(&app, "org=acme").await;
    assert_eq!(n, 2);
    assert!(
        ids.contains(&lead_acme) && ids.contains(&contact_acme),
        "{ids:?}"
    );
    assert_eq!(
        history(&app, "entity_type=lead").await,
        (2, vec![lead_globex.clone(), lead_acme.clone()]),
        "newest first"
    );
    assert_eq!(
        history(&app, "event_subtype=lead_status_changed&org=globex").await,
        (1, vec![lead_globex.clone()])
    );
    assert_eq!(
        history(&app, "entity_type=product").await,
        (1, vec![product.clone()])
    );
    assert_eq!(history(&app, "org=initech").await, (0, vec![]));
    // Empty filters are no filters.
    assert_eq!(history(&app, "org=&entity_type=").await.0, 4);

    let e = app.event_record(&lead_acme).await;
    assert_eq!(
        (
            &e["entity_type"],
            &e["event_subtype"],
            &e["org"],
            &e["entity_id"]
        ),
        (
            &json!("lead"),
            &json!("lead_status_changed"),
            &json!("acme"),
            &json!("42")
        )
    );
    let p = app.event_record(&product).await;
    assert_eq!(
        (&p["entity_type"], &p["org"]),
        (&json!("product"), &json!(null))
    );
}

/// The `(kind, outcome)` of each try of an event, oldest first, after
/// checking that every ended try ended no earlier than it started and that
/// the tries come in order.
fn tries(rec: &Value) -> Vec<(String, String)> {
    let attempts = rec["attempts"].as_array().expect("attempts are shown");
    let mut last_start = String::new();
    attempts
        .iter()
        .map(|a| {
            let started = a["started_at"].as_str().unwrap().to_string();
            let ended = a["ended_at"].as_str().expect("the try has ended");
            assert!(ended >= started.as_str(), "{a}");
            assert!(started >= last_start, "in order: {rec}");
            last_start = started;
            (
                a["kind"].as_str().unwrap().to_string(),
                a["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn auto(outcome: &str) -> (String, String) {
    ("automatic".into(), outcome.into())
}

/// An image server that answers 503 twice and then serves the photo: the
/// event's detail shows three automatic tries, the two failures with their
/// error. A manual retry of the completed event adds a `manual` try, and
/// the try after it is automatic again.
#[tokio::test]
async fn every_try_is_recorded_in_order_with_manual_retries_marked() {
    let app = spawn_app().await;
    let (_, jpeg) = photos().into_iter().next().unwrap();
    app.images.put_flaky("flaky.jpg", jpeg, 2);
    let ev = event(
        "product.created",
        "evt-a1",
        "p-a1",
        "2026-11-22T10:00:00Z",
        json!({"image_key": "flaky.jpg"}),
    );
    let task = app.send(&ev).await["task_id"].as_str().unwrap().to_string();
    let rec = app.wait_event_done(&task).await;
    assert_eq!(rec["status"], "completed", "{rec}");
    assert_eq!(
        tries(&rec),
        vec![auto("retrying"), auto("retrying"), auto("completed")]
    );
    let errors: Vec<&Value> = rec["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["error"])
        .collect();
    assert!(errors[0].as_str().unwrap().contains("503"), "{rec}");
    assert!(errors[2].is_null(), "{rec}");

    // A manual retry: the next try is marked manual.
    let resp = app
        .client
        .post(format!("{}/api/v1/events/{task}/retry", app.addr))
        .bearer_auth(crate::helpers::ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let pending = app.event_record(&task).await;
    assert!(pending["manual_retry_at"].is_string(), "{pending}");
    let rec = app.wait_event_done(&task).await;
    let mut expected = vec![auto("retrying"), auto("retrying"), auto("completed")];
    expected.push(("manual".into(), "completed".into()));
    assert_eq!(tries(&rec), expected, "{rec}");
    assert!(
        rec["manual_retry_at"].is_null(),
        "cleared once tried: {rec}"
    );

    // An event whose provider has no handler fails at its first try.
    let orphan = app
        .inbox()
        .insert(NewEvent::new("nobody", "o1", "thing.happened", "{}"))
        .await
        .unwrap()
        .task_id;
    let rec = app.wait_event_done(&orphan).await;
    assert_eq!(tries(&rec), vec![auto("failed")]);
    assert!(
        rec["attempts"][0]["error"]
            .as_str()
            .unwrap()
            .contains("no handler"),
        "{rec}"
    );
}

async fn admin_post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let (status, json, _) = app
        .admin_send(reqwest::Method::POST, path, Some(body))
        .await;
    (status, json)
}

/// Stores `n` events of a provider that has no handler and drives them
/// until each has failed (at its first try: permanent). Returns their ids.
async fn failed_events(app: &TestApp, provider: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let e = NewEvent::new(provider, format!("{provider}-{i}"), "thing.happened", "{}")
            .with_org("acme");
        ids.push(app.inbox().insert(e).await.unwrap().task_id);
    }
    for id in &ids {
        assert_eq!(app.wait_event_done(id).await["status"], "failed");
    }
    ids
}

/// Polls a replay job until `done` holds for it (10 s at most).
async fn job_until(app: &TestApp, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, body) = app
            .admin_get_json(&format!("/api/v1/events/replay/{id}"))
            .await;
        assert_eq!(status, 200, "{body}");
        if done(&body["data"]) {
            return body["data"].clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// How many tries of these events were manual.
async fn manual_tries(app: &TestApp, ids: &[String]) -> usize {
    let mut n = 0;
    for id in ids {
        let rec = app.event_record(id).await;
        n += rec["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["kind"] == "manual")
            .count();
    }
    n
}

/// Bulk replay of failed events: the dry run's count is what the job
/// replays, every replayed event gets a manual try, other events are left
/// alone; cancelling a job stops it before its next batch.
#[tokio::test]
async fn bulk_replay_replays_what_the_dry_run_counted_and_cancelling_stops_it() {
    let app = crate::helpers::spawn_app_with(|s| {
        s.replay.batch_size = 2;
        s.replay.batch_pause_ms = 150;
    })
    .await;
    let failed = failed_events(&app, "nobody", 5).await;
    let others = failed_events(&app, "elsewhere", 2).await;
    // A completed event of the catalog, which the filter must not touch.
    app.send(&event(
        "product.deleted",
        "evt-r1",
        "p-r1",
        "2026-11-22T10:00:00Z",
        json!({}),
    ))
    .await;

    let filter = json!({"status": "failed", "provider": "nobody"});
    let (status, dry) =
        admin_post(&app, "/api/v1/events/replay?dry_run=true", filter.clone()).await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(dry["data"]["matched"], 5, "{dry}");
    let (status, bad) = admin_post(
        &app,
        "/api/v1/events/replay?dry_run=true",
        json!({"status": "broken"}),
    )
    .await;
    assert_eq!(status, 422, "{bad}");
    let (status, bad) = admin_post(
        &app,
        "/api/v1/events/replay?dry_run=true",
        json!({"colour": "red"}),
    )
    .await;
    assert_eq!(status, 422, "unknown filters are refused: {bad}");

    let (status, started) = admin_post(&app, "/api/v1/events/replay", filter).await;
    assert_eq!(status, 202, "{started}");
    let job_id = started["data"]["id"].as_str().unwrap().to_string();
    let job = job_until(&app, &job_id, |j| j["status"] != "running").await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(
        (
            job["matched"].clone(),
            job["replayed"].clone(),
            job["skipped"].clone()
        ),
        (dry["data"]["matched"].clone(), json!(5), json!(0)),
        "{job}"
    );
    // The replayed events are tried again, each once, as manual tries.
    app.drive_until(
        || "the replayed events are done".into(),
        || async { app.inbox().unfinished().await.unwrap() == 0 },
    )
    .await;
    assert_eq!(manual_tries(&app, &failed).await, 5);
    assert_eq!(manual_tries(&app, &others).await, 0, "outside the filter");

    // Cancelling: one event per batch, a pause between batches.
    let many = failed_events(&app, "many", 12).await;
    let app_filter = json!({"provider": "many", "org": "acme"});
    let (_, dry) = admin_post(
        &app,
        "/api/v1/events/replay?dry_run=true",
        app_filter.clone(),
    )
    .await;
    assert_eq!(dry["data"]["matched"], 12);
    let (status, started) = admin_post(&app, "/api/v1/events/replay", app_filter).await;
    assert_eq!(status, 202);
    let job_id = started["data"]["id"].as_str().unwrap().to_string();
    job_until(&app, &job_id, |j| j["replayed"].as_i64().unwrap() >= 2).await;
    let (status, cancelled) = admin_post(
        &app,
        &format!("/api/v1/events/replay/{job_id}/cancel"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{cancelled}");
    assert!(
        cancelled["data"]["cancel_requested_at"].is_string(),
        "{cancelled}"
    );
    let job = job_until(&app, &job_id, |j| j["status"] != "running").await;
    assert_eq!(job["status"], "cancelled", "{job}");
    let replayed = job["replayed"].as_i64().unwrap();
    assert!((2..12).contains(&replayed), "{job}");
    // Nothing more happens after it stopped.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let later = job_until(&app, &job_id, |_| true).await;
    assert_eq!(later["replayed"], replayed, "{later}");
    app.drive_until(
        || "the replayed events are done".into(),
        || async { app.inbox().unfinished().await.unwrap() == 0 },
    )
    .await;
    assert_eq!(manual_tries(&app, &many).await as i64, replayed);
    let (status, _) = app
        .admin_get_json("/api/v1/events/replay/no-such-job")
        .await;
    assert_eq!(status, 404);
}
