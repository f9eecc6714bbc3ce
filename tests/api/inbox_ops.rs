//! The inbox as operators use it, for every provider (issue 12, items 2 and
//! 4): history filters on the entity, the subtype and the organisation.

use serde_json::json;
use vitrine::inbox::NewEvent;

use crate::helpers::{TestApp, event, spawn_app};

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
