//! The CRM provider end to end: Kommo deliveries through the real app into
//! the inbox, rules fired by the worker against local fakes of Telegram,
//! a webhook target and the Kommo API (their documented wire formats).

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::IntoResponse,
};
use serde_json::{Value, json};
use vitrine::{config::Secret, http::signature};

use crate::helpers::{ADMIN, TestApp, spawn_app_with};

const KOMMO_SECRET: &str = "kommo-url-secret-0123456789";
const BOT: &str = "123:bot-token";

/// One request a fake received.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Seen {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Default)]
struct FakeInner {
    seen: Vec<Seen>,
    /// Statuses to answer with before the normal answer, in order.
    fail_with: VecDeque<u16>,
}

/// A fake of Telegram's Bot API, a webhook target and Kommo's API v4, all
/// on one port: `/bot<token>/sendMessage`, `/hook`, `/api/v4/…`.
#[derive(Clone, Default)]
struct Fake {
    inner: Arc<Mutex<FakeInner>>,
    base: String,
}

async fn answer(
    State(f): State<Fake>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let path = uri.path().to_string();
    let fail = {
        let mut i = f.inner.lock().unwrap();
        i.seen.push(Seen {
            method: method.clone(),
            path: path.clone(),
            headers,
            body,
        });
        i.fail_with.pop_front()
    };
    if let Some(code) = fail {
        return (StatusCode::from_u16(code).unwrap(), "{}".to_string()).into_response();
    }
    let body = if path.ends_with("/sendMessage") {
        json!({"ok": true, "result": {"message_id": 77, "chat": {"id": -100}, "date": 0}})
    } else if path.ends_with("/notes") {
        json!({"_embedded": {"notes": [{"id": 555, "entity_id": 31926520}]}})
    } else if method == Method::GET && path.starts_with("/api/v4/leads/") {
        json!({"id": 31926520, "_embedded": {"tags": [{"id": 1, "name": "vip"}]}})
    } else {
        json!({})
    };
    (StatusCode::OK, axum::Json(body)).into_response()
}

impl Fake {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = Fake {
            inner: Arc::default(),
            base: format!("http://{}/", listener.local_addr().unwrap()),
        };
        let app = Router::new().fallback(answer).with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        fake
    }

    fn seen(&self, path_end: &str) -> Vec<Seen> {
        let i = self.inner.lock().unwrap();
        i.seen
            .iter()
            .filter(|s| s.path.ends_with(path_end))
            .cloned()
            .collect()
    }

    fn fail_next(&self, codes: &[u16]) {
        self.inner.lock().unwrap().fail_with.extend(codes);
    }
}

async fn crm_app(fake: &Fake) -> TestApp {
    let base = fake.base.clone();
    spawn_app_with(|s| {
        s.crm.kommo_webhook_secret = Some(Secret::new(KOMMO_SECRET));
        s.crm.telegram_api_base_url = base.parse().unwrap();
        s.crm.telegram_bot_token = Some(Secret::new(BOT));
        s.crm.kommo_api_base_url = Some(base.parse().unwrap());
        s.crm.kommo_api_token = Some(Secret::new("kommo-token"));
        s.crm.action_timeout_ms = 5_000;
    })
    .await
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/webhooks/kommo/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

async fn deliver(app: &TestApp, secret: &str, body: &[u8]) -> (u16, Value) {
    let resp = app
        .client
        .post(format!("{}/api/v1/webhooks/kommo/{secret}", app.addr))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn admin_send(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let (status, json, _) = app.admin_send(method, path, body).await;
    (status, json)
}

async fn kommo_events(app: &TestApp) -> Vec<Value> {
    let (code, body) = app
        .admin_get_json("/api/v1/events?provider=kommo&limit=100")
        .await;
    assert_eq!(code, 200, "{body}");
    body["data"].as_array().unwrap().clone()
}

async fn add_rule(app: &TestApp, rule: Value) -> String {
    let (code, body) = admin_send(app, Method::POST, "/api/v1/crm/rules", Some(rule)).await;
    assert_eq!(code, 201, "{body}");
    body["data"]["id"].as_str().unwrap().to_string()
}

/// The status fixture moves lead 31926520 to stage 10216994.
fn watched_stage_rule(stage: i64) -> Value {
    json!({
        "name": format!("stage {stage} to the sales chat"),
        "trigger": "stage_changed",
        "conditions": { "all": [
            { "field": "status_id", "op": "in", "value": [stage] },
            { "field": "pipeline_id", "op": "==", "value": 2116 },
        ]},
        "actions": [
            { "type": "telegram", "chat_id": -100, "text": "Lead {name} is won: {price}" }
        ],
    })
}

#[tokio::test]
async fn a_wrong_secret_is_401_and_stores_nothing() {
    let fake = Fake::start().await;
    let app = crm_app(&fake).await;
    let body = fixture("amocrm-legacy-status-lead.form");
    for secret in [
        "wrong",
        "kommo-url-secret-012345678",
        "kommo-url-secret-01234567890",
    ] {
        let (code, resp) = deliver(&app, secret, &body).await;
        assert_eq!(code, 401, "{secret}: {resp}");
        assert!(!resp.to_string().contains(KOMMO_SECRET));
    }
    assert!(kommo_events(&app).await.is_empty());
    // The CRM admin API is behind the admin token.
    let (code, _) = app.get_json("/api/v1/crm/rules").await;
    assert_eq!(code, 401);
    let (code, _) = app.get_json("/api/v1/crm/organisations").await;
    assert_eq!(code, 401);
    // The right one is taken.
    let (code, resp) = deliver(&app, KOMMO_SECRET, &body).await;
    assert_eq!(code, 200, "{resp}");
    assert_eq!(kommo_events(&app).await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn one_stored_event_per_change_with_subtype_entity_and_org() {
    let fake = Fake::start().await;
    let app = crm_app(&fake).await;
    let body = b"leads[status][0][id]=1&leads[status][0][status_id]=142&leads[status][1][id]=2\
&contacts[add][0][id]=3&contacts[add][0][type]=company&contacts[add][0][x_unknown]=kept\
&account[subdomain]=acme&account[id]=9";
    let (code, resp) = deliver(&app, KOMMO_SECRET, body).await;
    assert_eq!(code, 200, "{resp}");
    assert_eq!(resp["organisation"], "default");
    assert_eq!(resp["events"].as_array().unwrap().len(), 3);
    let mut got: Vec<(String, String, String)> = kommo_events(&app)
        .await
        .iter()
        .map(|e| {
            (
                e["event_subtype"].as_str().unwrap().to_string(),
                e["entity_type"].as_str().unwrap().to_string(),
                e["entity_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("company_created".into(), "company".into(), "3".into()),
            ("lead_status_changed".into(), "lead".into(), "1".into()),
            ("lead_status_changed".into(), "lead".into(), "2".into()),
        ]
    );
    // Unknown keys are kept in the stored payload, with the organisation.
    let company = resp["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["entity_type"] == "company")
        .unwrap();
    let stored = app.event_record(company["task_id"].as_str().unwrap()).await;
    assert_eq!(stored["payload"]["fields"]["x_unknown"], "kept");
    assert_eq!(stored["payload"]["org"], "default");
    assert_eq!(stored["org"], "default");
    assert_eq!(stored["payload"]["account_subdomain"], "acme");
    // A second organisation from the database, pinned to its account.
    let (code, _) = admin_send(
        &app,
        Method::POST,
        "/api/v1/crm/organisations",
        Some(json!({"name": "beta", "webhook_secret": "beta-secret-0123456789", "subdomain": "beta"})),
    )
    .await;
    assert_eq!(code, 201);
    let (code, resp) = deliver(
        &app,
        "beta-secret-0123456789",
        b"leads[add][0][id]=5&account[subdomain]=beta",
    )
    .await;
    assert_eq!((code, resp["organisation"].clone()), (200, json!("beta")));
    // The history filters on the organisation.
    let (_, beta) = app
        .admin_get_json("/api/v1/events?provider=kommo&org=beta")
        .await;
    assert_eq!(beta["data"].as_array().unwrap().len(), 1, "{beta}");
    assert_eq!(beta["data"][0]["entity_id"], "5");
    let (code, _) = deliver(
        &app,
        "beta-secret-0123456789",
        b"leads[add][0][id]=6&account[subdomain]=acme",
    )
    .await;
    assert_eq!(code, 401, "another account's delivery with beta's secret");
    // Malformed: a key both a value and a parent.
    let (code, _) = deliver(&app, KOMMO_SECRET, b"leads=1&leads[add][0][id]=1").await;
    assert_eq!(code, 400);
    assert_eq!(kommo_events(&app).await.len(), 4);
    app.stop().await;
}

#[tokio::test]
async fn a_watched_stage_fires_once_even_when_delivered_twice() {
    let fake = Fake::start().await;
    let app = crm_app(&fake).await;
    let mut rule = watched_stage_rule(10216994);
    rule["actions"][0]["text"] = json!("Lead {name} moved to {status_id}, price {price}");
    let rule_id = add_rule(&app, rule).await;
    let body = fixture("amocrm-legacy-status-lead.form");
    let (c1, first) = deliver(&app, KOMMO_SECRET, &body).await;
    let (c2, second) = deliver(&app, KOMMO_SECRET, &body).await;
    assert_eq!((c1, c2), (200, 200), "{first} {second}");
    assert_eq!(second["events"][0]["duplicate"], true);
    let task = first["events"][0]["task_id"].as_str().unwrap().to_string();
    let done = app.wait_event_done(&task).await;
    assert_eq!(done["status"], "completed", "{done}");
    let sent = fake.seen("/sendMessage");
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].path, format!("/bot{BOT}/sendMessage"));
    assert_eq!(
        sent[0].json(),
        json!({"chat_id": -100, "text": "Lead Some test lead moved to 10216994, price 1000"})
    );
    // A manual retry of the finished event does not send it again.
    let (code, _) = admin_send(
        &app,
        Method::POST,
        &format!("/api/v1/events/{task}/retry"),
        None,
    )
    .await;
    assert_eq!(code, 200);
    let again = app.wait_event_done(&task).await;
    assert_eq!(again["status"], "completed");
    assert_eq!(fake.seen("/sendMessage").len(), 1);
    // Both runs are recorded as fired, and counted.
    let (_, runs) = app
        .admin_get_json(&format!("/api/v1/crm/rules/{rule_id}/runs"))
        .await;
    let outcomes: Vec<&str> = runs["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["fired", "fired"]);
    let (_, m) = app.admin_get_json("/api/v1/crm/rules/metrics").await;
    assert_eq!(m["data"][0]["fired"], 2, "{m}");
    app.stop().await;
}

#[tokio::test]
async fn a_stage_that_does_not_match_fires_nothing() {
    let fake = Fake::start().await;
    let app = crm_app(&fake).await;
    let rule_id = add_rule(&app, watched_stage_rule(142)).await;
    let (code, resp) = deliver(
        &app,
        KOMMO_SECRET,
        &fixture("amocrm-legacy-status-lead.form"),
    )
    .await;
    assert_eq!(code, 200);
    let task = resp["events"][0]["task_id"].as_str().unwrap().to_string();
    let done = app.wait_event_done(&task).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert!(fake.seen("/sendMessage").is_empty());
    let (_, m) = app.admin_get_json("/api/v1/crm/rules/metrics").await;
    assert_eq!(
        (
            m["data"][0]["rule_id"].as_str(),
            m["data"][0]["skipped"].as_i64(),
            m["data"][0]["fired"].as_i64()
        ),
        (Some(rule_id.as_str()), Some(1), Some(0))
    );
    // The dry run says why: the stage, actual against expected.
    let (code, dry) = admin_send(
        &app,
        Method::POST,
        "/api/v1/crm/rules/dry-run",
        Some(json!({ "event_id": task })),
    )
    .await;
    assert_eq!(code, 200, "{dry}");
    let verdict = &dry["data"][0]["rules"][0];
    assert_eq!(verdict["trigger_matches"], true);
    assert_eq!(verdict["would_fire"], false);
    assert_eq!(
        verdict["conditions"]["items"][0],
        json!({"field": "status_id", "op": "in", "expected": [142], "actual": 10216994, "pass": false})
    );
    assert_eq!(verdict["conditions"]["items"][1]["pass"], true);
    app.stop().await;
}

#[tokio::test]
async fn a_webhook_target_failing_twice_completes_through_retries_signed() {
    let fake = Fake::start().await;
    let app = crm_app(&fake).await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    add_rule(
        &app,
        json!({
            "name": "messages out",
            "trigger": "message_received",
            "actions": [{ "type": "webhook", "url": format!("{}hook", fake.base), "secret": secret }],
        }),
    )
    .await;
    fake.fail_next(&[500, 500]);
    let body = b"message[add][0][id]=m1&message[add][0][type]=incoming&message[add][0][text]=Hello\
&message[add][0][entity_type]=lead&message[add][0][entity_id]=9";
    let (code, resp) = deliver(&app, KOMMO_SECRET, body).await;
    assert_eq!(code, 200, "{resp}");
    assert_eq!(resp["events"][0]["event_subtype"], "message_received");
    let task = resp["events"][0]["task_id"].as_str().unwrap().to_string();
    let done = app.wait_event_done(&task).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["retry_count"], 2, "{done}");
    let hits = fake.seen("/hook");
    assert_eq!(hits.len(), 3);
    // Every try carries the same id, and a valid Standard Webhooks
    // signature of its own timestamp.
    let ids: Vec<&str> = hits
        .iter()
        .map(|h| h.headers["webhook-id"].to_str().unwrap())
        .collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    for h in &hits {
        let ts: i64 = h.headers["webhook-timestamp"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let want = signature::standard_webhooks_sign(secret, ids[0], ts, &h.body).unwrap();
        assert_eq!(h.headers["webhook-signature"].to_str().unwrap(), want);
    }
    let sent = hits[2].json();
    assert_eq!(sent["type"], "message_received");
    assert_eq!(sent["event"]["fields"]["text"], "Hello");
    // Every try is a recorded run: two failures with their reason, then fired.
    let (_, runs) = app
        .admin_get_json(&format!("/api/v1/crm/runs?event_id={task}"))
        .await;
    let mut runs = runs["data"].as_array().unwrap().clone();
    runs.reverse();
    let outcomes: Vec<&str> = runs
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["failed", "failed", "fired"]);
    assert!(
        runs[0]["error"].as_str().unwrap().contains("HTTP 500"),
        "{}",
        runs[0]
    );
    app.stop().await;
}

#[tokio::test]
async fn kommo_note_and_tag_read_merge_write_and_rules_import_from_toml() {
    let fake = Fake::start().await;
    let app = crm_app(&fake).await;
    let toml = r#"
[[rule]]
name = "note and tag won leads"
trigger = "lead_status_changed"
conditions = { any = [ { custom_field = "Some text field", op = "==", value = "some text" } ] }
actions = [
  { type = "kommo_note", text = "Moved to {status_id} by the rule" },
  { type = "kommo_tag", tag = "won" },
]
"#;
    let resp = app
        .client
        .post(format!("{}/api/v1/crm/rules/import", app.addr))
        .bearer_auth(ADMIN)
        .body(toml)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let imported: Value = resp.json().await.unwrap();
    assert_eq!(imported["data"][0]["created"], true);
    // Importing again replaces by name.
    let again: Value = app
        .client
        .post(format!("{}/api/v1/crm/rules/import", app.addr))
        .bearer_auth(ADMIN)
        .body(toml)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["data"][0]["created"], false);
    let (_, list) = app.admin_get_json("/api/v1/crm/rules").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);

    let (_, resp) = deliver(
        &app,
        KOMMO_SECRET,
        &fixture("amocrm-legacy-status-lead.form"),
    )
    .await;
    let task = resp["events"][0]["task_id"].as_str().unwrap().to_string();
    let done = app.wait_event_done(&task).await;
    assert_eq!(done["status"], "completed", "{done}");
    let notes = fake.seen("/api/v4/leads/31926520/notes");
    assert_eq!(notes.len(), 1);
    assert_eq!(
        notes[0].json(),
        json!([{"note_type": "common", "params": {"text": "Moved to 10216994 by the rule"}}])
    );
    assert_eq!(notes[0].headers["authorization"], "Bearer kommo-token");
    let lead: Vec<Seen> = fake.seen("/api/v4/leads/31926520");
    let methods: Vec<&Method> = lead.iter().map(|s| &s.method).collect();
    assert_eq!(methods, [&Method::GET, &Method::PATCH]);
    assert_eq!(
        lead[1].json(),
        json!({"_embedded": {"tags": [{"id": 1}, {"name": "won"}]}}),
        "the existing tag is kept"
    );
    // Bad rules are refused with the reason.
    let (code, body) = admin_send(
        &app,
        Method::POST,
        "/api/v1/crm/rules",
        Some(json!({"name": "x", "trigger": "lead_created", "actions": []})),
    )
    .await;
    assert_eq!(code, 422, "{body}");
    // Read, replace (disable), name clash, delete.
    let id = list["data"][0]["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/crm/rules/{id}");
    let (code, got) = app.admin_get_json(&path).await;
    assert_eq!(
        (code, got["data"]["name"].clone()),
        (200, json!("note and tag won leads"))
    );
    let mut spec = got["data"].clone();
    for k in ["id", "created_at", "updated_at"] {
        spec.as_object_mut().unwrap().remove(k);
    }
    spec["enabled"] = json!(false);
    let (code, put) = admin_send(&app, Method::PUT, &path, Some(spec.clone())).await;
    assert_eq!(
        (code, put["data"]["enabled"].clone()),
        (200, json!(false)),
        "{put}"
    );
    let (code, _) = admin_send(&app, Method::POST, "/api/v1/crm/rules", Some(spec)).await;
    assert_eq!(code, 409);
    let (code, _) = admin_send(&app, Method::DELETE, &path, None).await;
    assert_eq!(code, 204);
    let (code, _) = app.admin_get_json(&path).await;
    assert_eq!(code, 404);
    app.stop().await;
}

#[tokio::test]
async fn a_required_signature_and_the_body_limit_are_checked_before_storing() {
    let app = spawn_app_with(|s| {
        s.crm.kommo_webhook_secret = Some(Secret::new(KOMMO_SECRET));
        s.crm.kommo_signature_secret = Some(Secret::new("proxy-key"));
        s.server.max_body_bytes = 4096;
    })
    .await;
    let body = fixture("amocrm-legacy-add-lead.form");
    let post = |sig: Option<String>, body: Vec<u8>| {
        let mut req = app
            .client
            .post(format!("{}/api/v1/webhooks/kommo/{KOMMO_SECRET}", app.addr))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(s) = sig {
            req = req.header("X-Signature", s);
        }
        req.send()
    };
    let unsigned = post(None, body.clone()).await.unwrap();
    assert_eq!(unsigned.status(), 401);
    let wrong = post(Some(signature::sign("other-key", &body)), body.clone())
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let big = vec![b'a'; 5000];
    let too_big = post(Some(signature::sign("proxy-key", &big)), big)
        .await
        .unwrap();
    assert_eq!(too_big.status(), 413);
    assert!(kommo_events(&app).await.is_empty());
    let signed = post(Some(signature::sign("proxy-key", &body)), body.clone())
        .await
        .unwrap();
    assert_eq!(signed.status(), 200);
    assert_eq!(kommo_events(&app).await.len(), 1);
    app.stop().await;
}
