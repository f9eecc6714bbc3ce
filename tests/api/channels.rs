//! The Telegram and WhatsApp bots, end to end: the real fixtures through
//! the receivers, then a photo through the real model and index to a reply
//! sent to a local fake Bot API / Graph API that speaks their wire format.

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    extract::{Path as UrlPath, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};
use vitrine::{Settings, config::Secret, http::signature};

use crate::{
    helpers::{ADMIN, TestApp, event, photos, spawn_app_with},
    pipeline::augment,
};

pub const TOKEN: &str = "123456:TEST-token_abc";
pub const BOT_ID: &str = "123456";
pub const TG_SECRET: &str = "tg-secret-1";
pub const WA_SECRET: &str = "wa-app-secret";
pub const WA_VERIFY: &str = "wa-verify-1";
pub const WA_TOKEN: &str = "wa-access-token";
pub const WA_NUMBER: &str = "106540352242922";

fn fixtures(dir: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/webhooks")
        .join(dir);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// One call a fake API received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub body: Value,
    pub at: Instant,
    /// The bot token in the URL path (Bot API calls), else empty.
    pub token: String,
}

/// A fake Bot API and Graph API in one server: it records every call and
/// answers in their documented shapes.
#[derive(Clone, Default)]
pub struct FakeApis {
    pub addr: Option<SocketAddr>,
    calls: Arc<Mutex<Vec<Seen>>>,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    /// Answer this many `sendMessage` calls with 429 first.
    throttle: Arc<Mutex<usize>>,
    /// The bot tokens the Bot API knows (others get 401).
    tokens: Arc<Mutex<Vec<String>>>,
    /// What `getWebhookInfo` answers.
    webhook_info: Arc<Mutex<Value>>,
    /// Updates `getUpdates` serves, kept (as Telegram keeps them) until an
    /// `offset` past their `update_id` confirms them.
    updates: Arc<Mutex<Vec<Value>>>,
    /// Answer this many `getUpdates` calls with 409 Conflict first.
    conflicts: Arc<Mutex<usize>>,
    /// The WhatsApp numbers the Graph API knows, with their access tokens.
    numbers: Arc<Mutex<Vec<(String, String)>>>,
}

impl FakeApis {
    pub async fn start() -> Self {
        let mut fake = FakeApis::default();
        fake.tokens.lock().unwrap().push(TOKEN.to_string());
        fake.allow_number(WA_NUMBER, WA_TOKEN);
        *fake.webhook_info.lock().unwrap() =
            json!({"url": "", "has_custom_certificate": false, "pending_update_count": 0});
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        fake.addr = Some(listener.local_addr().unwrap());
        let app = Router::new()
            .route("/file/{bot}/{*path}", get(tg_file))
            .route("/graph/download/{id}", get(wa_download))
            .route("/graph/{id}", get(wa_media))
            .route("/graph/{id}/messages", post(wa_send))
            .route("/{bot}/{method}", post(tg_call))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        fake
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr.unwrap())
    }

    pub fn put_file(&self, id: &str, bytes: Vec<u8>) {
        self.files.lock().unwrap().insert(id.into(), bytes);
    }

    pub fn throttle_next(&self, n: usize) {
        *self.throttle.lock().unwrap() = n;
    }

    /// Makes `token` a bot the Bot API knows.
    pub fn allow_token(&self, token: &str) {
        self.tokens.lock().unwrap().push(token.to_string());
    }

    /// Makes `number` a WhatsApp number the Graph API knows, with `token`.
    pub fn allow_number(&self, number: &str, token: &str) {
        self.numbers
            .lock()
            .unwrap()
            .push((number.to_string(), token.to_string()));
    }

    /// The bearer token of a request, when it is a known number's.
    fn bearer(&self, h: &HeaderMap) -> Option<String> {
        let given = h
            .get("authorization")?
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")?;
        self.numbers
            .lock()
            .unwrap()
            .iter()
            .any(|(_, t)| t == given)
            .then(|| given.to_string())
    }

    pub fn set_webhook_info(&self, info: Value) {
        *self.webhook_info.lock().unwrap() = info;
    }

    /// Queues an update for `getUpdates`.
    pub fn push_update(&self, update: Value) {
        self.updates.lock().unwrap().push(update);
    }

    pub fn conflict_next(&self, n: usize) {
        *self.conflicts.lock().unwrap() = n;
    }

    pub fn calls(&self) -> Vec<Seen> {
        self.calls.lock().unwrap().clone()
    }

    /// The calls other than downloads.
    pub fn sends(&self) -> Vec<Seen> {
        self.calls()
            .into_iter()
            .filter(|c| !matches!(c.method.as_str(), "getFile" | "media" | "download"))
            .collect()
    }

    fn record(&self, method: &str, body: Value) {
        self.record_for("", method, body);
    }

    fn record_for(&self, token: &str, method: &str, body: Value) {
        self.calls.lock().unwrap().push(Seen {
            method: method.into(),
            body,
            at: Instant::now(),
            token: token.into(),
        });
    }

    /// The token of a `bot<token>` path segment, when the Bot API knows it.
    fn known(&self, segment: &str) -> Option<String> {
        let token = segment.strip_prefix("bot")?;
        self.tokens
            .lock()
            .unwrap()
            .iter()
            .any(|t| t == token)
            .then(|| token.to_string())
    }
}

async fn tg_call(
    State(f): State<FakeApis>,
    UrlPath((bot, method)): UrlPath<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    let Some(token) = f.known(&bot) else {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"ok": false, "error_code": 401, "description": "Unauthorized"})),
        )
            .into_response();
    };
    f.record_for(&token, &method, body.clone());
    let n = f.calls.lock().unwrap().len() as i64;
    match method.as_str() {
        "getWebhookInfo" => {
            Json(json!({"ok": true, "result": f.webhook_info.lock().unwrap().clone()}))
                .into_response()
        }
        "getUpdates" => {
            {
                let mut c = f.conflicts.lock().unwrap();
                if *c > 0 {
                    *c -= 1;
                    return (StatusCode::CONFLICT, Json(json!({"ok": false, "error_code": 409,
                        "description": "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"})))
                        .into_response();
                }
            }
            let offset = body["offset"].as_i64().unwrap_or(0);
            let ready: Vec<Value> = {
                let mut u = f.updates.lock().unwrap();
                u.retain(|x| x["update_id"].as_i64().unwrap_or(0) >= offset);
                u.clone()
            };
            if ready.is_empty() {
                // A short long poll, so an idle poller does not spin.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Json(json!({"ok": true, "result": ready})).into_response()
        }
        "getFile" => {
            let id = body["file_id"].as_str().unwrap_or("").to_string();
            let size = f.files.lock().unwrap().get(&id).map(Vec::len);
            match size {
                Some(s) => Json(json!({"ok": true, "result": {
                    "file_id": id, "file_unique_id": "u", "file_size": s, "file_path": format!("photos/{id}.jpg")}}))
                .into_response(),
                None => (StatusCode::BAD_REQUEST, Json(json!({"ok": false, "error_code": 400,
                    "description": "Bad Request: invalid file_id"}))).into_response(),
            }
        }
        "sendMessage" => {
            let mut t = f.throttle.lock().unwrap();
            if *t > 0 {
                *t -= 1;
                return (StatusCode::TOO_MANY_REQUESTS, Json(json!({"ok": false, "error_code": 429,
                    "description": "Too Many Requests: retry after 1", "parameters": {"retry_after": 1}})))
                    .into_response();
            }
            Json(json!({"ok": true, "result": {"message_id": n, "chat": {"id": body["chat_id"]}}}))
                .into_response()
        }
        "sendMediaGroup" => {
            Json(json!({"ok": true, "result": [{"message_id": n}]})).into_response()
        }
        "sendPhoto" => Json(json!({"ok": true, "result": {"message_id": n}})).into_response(),
        "answerCallbackQuery" => Json(json!({"ok": true, "result": true})).into_response(),
        _ => Json(json!({"ok": true, "result": true})).into_response(),
    }
}

async fn tg_file(
    State(f): State<FakeApis>,
    UrlPath((bot, path)): UrlPath<(String, String)>,
) -> Response {
    if f.known(&bot).is_none() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let id = path
        .trim_start_matches("photos/")
        .trim_end_matches(".jpg")
        .to_string();
    f.record("download", json!({ "path": path }));
    match f.files.lock().unwrap().get(&id) {
        Some(b) => b.clone().into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn wa_media(
    State(f): State<FakeApis>,
    UrlPath(id): UrlPath<String>,
    h: HeaderMap,
) -> Response {
    if f.bearer(&h).is_none() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    f.record("media", json!({ "id": id }));
    let size = f.files.lock().unwrap().get(&id).map(Vec::len).unwrap_or(0);
    Json(
        json!({"messaging_product": "whatsapp", "id": id, "mime_type": "image/jpeg",
        "sha256": "x", "file_size": size, "url": format!("{}/graph/download/{id}", f.base())}),
    )
    .into_response()
}

async fn wa_download(
    State(f): State<FakeApis>,
    UrlPath(id): UrlPath<String>,
    h: HeaderMap,
) -> Response {
    if f.bearer(&h).is_none() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    f.record("download", json!({ "id": id }));
    match f.files.lock().unwrap().get(&id) {
        Some(b) => b.clone().into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn wa_send(
    State(f): State<FakeApis>,
    UrlPath(number): UrlPath<String>,
    h: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let token = f.bearer(&h).unwrap_or_default();
    let owns = f
        .numbers
        .lock()
        .unwrap()
        .iter()
        .any(|(n, t)| *n == number && *t == token);
    if !owns {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"code": 190, "message": "bad token"}})),
        )
            .into_response();
    }
    f.record_for(&token, "messages", body.clone());
    let n = f.calls.lock().unwrap().len();
    Json(json!({"messaging_product": "whatsapp",
        "contacts": [{"input": body["to"], "wa_id": body["to"]}],
        "messages": [{"id": format!("wamid.out.{n}")}]}))
    .into_response()
}

pub fn configure(s: &mut Settings, fake: &FakeApis) {
    s.telegram.bot_token = Some(Secret::new(TOKEN));
    s.telegram.webhook_secret = Some(Secret::new(TG_SECRET));
    s.telegram.api_base_url = fake.base().parse().unwrap();
    s.whatsapp.app_secret = Some(Secret::new(WA_SECRET));
    s.whatsapp.verify_token = Some(Secret::new(WA_VERIFY));
    s.whatsapp.access_token = Some(Secret::new(WA_TOKEN));
    s.whatsapp.phone_number_id = Some(WA_NUMBER.into());
    s.whatsapp.graph_base_url = format!("{}/graph", fake.base()).parse().unwrap();
    s.channels.product_url = Some("https://market.example/p/{id}".into());
}

async fn spawn_bots() -> (TestApp, FakeApis) {
    let fake = FakeApis::start().await;
    let app = spawn_app_with(|s| configure(s, &fake)).await;
    (app, fake)
}

impl TestApp {
    pub async fn post_telegram(
        &self,
        path: &str,
        secret: Option<&str>,
        body: &[u8],
    ) -> reqwest::Response {
        let mut req = self
            .client
            .post(format!("{}/api/v1/webhooks/telegram{path}", self.addr))
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(s) = secret {
            req = req.header("X-Telegram-Bot-Api-Secret-Token", s);
        }
        req.send().await.unwrap()
    }

    pub async fn post_whatsapp(&self, body: &[u8], signature: Option<String>) -> reqwest::Response {
        let mut req = self
            .client
            .post(format!("{}/api/v1/webhooks/whatsapp", self.addr))
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(s) = signature {
            req = req.header("X-Hub-Signature-256", s);
        }
        req.send().await.unwrap()
    }

    pub async fn events_of(&self, provider: &str) -> Vec<Value> {
        let (code, body) = self
            .admin_get_json(&format!("/api/v1/events?provider={provider}&limit=100"))
            .await;
        assert_eq!(code, 200, "{body}");
        body["data"].as_array().cloned().unwrap_or_default()
    }
}

#[tokio::test]
async fn telegram_fixtures_are_stored_once_and_bad_requests_refused() {
    let (app, _fake) = spawn_bots().await;
    let all = fixtures("telegram");
    assert!(all.len() >= 9);
    for (name, body) in &all {
        for path in ["", &format!("/{BOT_ID}")] {
            let resp = app.post_telegram(path, Some(TG_SECRET), body).await;
            assert_eq!(resp.status(), 200, "{name} via {path:?}");
        }
        // The token-in-path style, without the header.
        let resp = app.post_telegram(&format!("/{TOKEN}"), None, body).await;
        assert_eq!(resp.status(), 200, "{name} token in path");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(
            v["duplicate"], true,
            "{name}: deduplicated by (bot, update_id)"
        );
    }
    let stored = app.events_of("telegram").await;
    // Fixtures from one source share update ids, and (bot, update_id) is
    // the dedup key: one event per distinct id.
    let mut ids: Vec<i64> = all
        .iter()
        .map(|(_, b)| {
            serde_json::from_slice::<Value>(b).unwrap()["update_id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(stored.len(), ids.len(), "one event per update id");
    assert!(
        stored.iter().any(|e| e["event_type"] == "new_update_kind"),
        "unknown kinds are stored"
    );

    let body = &all[0].1;
    for (path, secret) in [
        ("", None),
        ("", Some("wrong")),
        (&format!("/{BOT_ID}") as &str, Some("tg-secret-")),
        ("/999", Some(TG_SECRET)),
        ("/123456:wrong-token", None),
    ] {
        let resp = app.post_telegram(path, secret, body).await;
        assert_eq!(resp.status(), 401, "{path} {secret:?}");
    }
    for bad in [&b"{not json"[..], b"[1]", br#"{"message": {}}"#] {
        let resp = app.post_telegram("", Some(TG_SECRET), bad).await;
        assert_eq!(resp.status(), 400);
    }
    let big = vec![b' '; app.settings.server.max_body_bytes + 1];
    assert_eq!(
        app.post_telegram("", Some(TG_SECRET), &big).await.status(),
        413
    );
}

#[tokio::test]
async fn whatsapp_handshake_signature_and_fixtures() {
    let (app, _fake) = spawn_bots().await;
    let url = |q: &str| format!("{}/api/v1/webhooks/whatsapp?{q}", app.addr);
    let resp = app
        .client
        .get(url(&format!(
            "hub.mode=subscribe&hub.verify_token={WA_VERIFY}&hub.challenge=1158201444"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "1158201444");
    let resp = app
        .client
        .get(url(
            "hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let resp = app
        .client
        .get(url(&format!(
            "hub.mode=unsubscribe&hub.verify_token={WA_VERIFY}&hub.challenge=1"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let resp = app
        .client
        .get(url("hub.mode=subscribe"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    // Every fixture, signed with our secret, is stored (statuses and
    // messages each as an event), and a redelivery stores nothing new.
    let mut expected = 0;
    for (name, body) in fixtures("whatsapp") {
        if name.starts_with("pywa-signature") || name.contains("send-text") {
            continue;
        }
        let resp = app
            .post_whatsapp(&body, Some(signature::sign(WA_SECRET, &body)))
            .await;
        assert_eq!(resp.status(), 200, "{name}");
        let v: Value = resp.json().await.unwrap();
        // pywa's fixtures share wamids, which are the dedup key.
        let parts = v["stored"].as_u64().unwrap() + v["duplicates"].as_u64().unwrap();
        assert!(parts >= 1, "{name}: {v}");
        expected += v["stored"].as_u64().unwrap();
        let again: Value = app
            .post_whatsapp(&body, Some(signature::sign(WA_SECRET, &body)))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(again["stored"], 0, "{name}: deduplicated");
    }
    assert_eq!(app.events_of("whatsapp").await.len() as u64, expected);

    // The real signed body verifies with its app secret; one changed byte
    // does not.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/webhooks/whatsapp");
    let vector: Value =
        serde_json::from_slice(&std::fs::read(dir.join("pywa-signature-vector.json")).unwrap())
            .unwrap();
    let raw = std::fs::read(dir.join("pywa-signature-vector.body.bin")).unwrap();
    let header = vector["X-Hub-Signature-256"].as_str().unwrap().to_string();
    let real = spawn_app_with(|s| {
        s.whatsapp.app_secret = Some(Secret::new(vector["app_secret"].as_str().unwrap()));
    })
    .await;
    assert_eq!(
        real.post_whatsapp(&raw, Some(header.clone()))
            .await
            .status(),
        200
    );
    let mut tampered = raw.clone();
    let i = tampered.iter().position(|b| *b == b'H').unwrap();
    tampered[i] = b'h';
    assert_eq!(
        real.post_whatsapp(&tampered, Some(header)).await.status(),
        401
    );
    assert_eq!(real.post_whatsapp(&raw, None).await.status(), 401);
    let junk = b"not json";
    assert_eq!(
        real.post_whatsapp(
            junk,
            Some(signature::sign(
                vector["app_secret"].as_str().unwrap(),
                junk
            ))
        )
        .await
        .status(),
        400
    );
    // Without an app secret the webhook is closed.
    let closed = spawn_app_with(|_| {}).await;
    assert_eq!(closed.post_whatsapp(&raw, None).await.status(), 503);
}

/// Indexes the first photos as products and returns them.
async fn load_catalog(app: &TestApp, n: usize) -> Vec<(String, Vec<u8>)> {
    let photos: Vec<_> = photos().into_iter().take(n).collect();
    for (i, (name, bytes)) in photos.iter().enumerate() {
        let key = format!("img/{name}");
        app.images.put(&key, bytes.clone());
        app.send(&event(
            "product.created",
            &format!("create-{name}"),
            name,
            "2026-11-22T10:00:00Z",
            json!({"title": format!("Product {name}"), "category": "things",
                   "price": 100.0 * (i as f64 + 1.0), "currency": "KGS", "image_key": key}),
        ))
        .await;
    }
    for (name, _) in &photos {
        app.wait_product(name, "indexed").await;
    }
    photos
}

/// A photo whose augmented copy the search ranks first, with that copy.
async fn findable(app: &TestApp, photos: &[(String, Vec<u8>)]) -> (String, Vec<u8>) {
    for (name, bytes) in photos {
        let query = augment(bytes);
        let results = app.search_image(query.clone(), "limit=5").await;
        if results[0]["product_id"] == name.as_str() {
            return (name.clone(), query);
        }
    }
    panic!("no augmented photo found its product first");
}

fn tg_photo_update(update_id: i64, file_id: &str) -> Value {
    json!({"update_id": update_id, "message": {
        "message_id": 7, "date": 1_700_000_000,
        "chat": {"id": 4242, "type": "private"},
        "from": {"id": 4242, "is_bot": false, "first_name": "A", "language_code": "en"},
        "photo": [
            {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 90},
            {"file_id": file_id, "file_unique_id": "l", "width": 800, "height": 800}]}})
}

#[tokio::test]
async fn a_telegram_photo_is_answered_with_that_product_first_once() {
    let (app, fake) = spawn_bots().await;
    let photos = load_catalog(&app, 8).await;
    let (name, query) = findable(&app, &photos).await;
    fake.put_file("big", query);

    // Three concurrent deliveries of the same update.
    let body = tg_photo_update(501, "big").to_string();
    let sends = (0..3).map(|_| app.post_telegram("", Some(TG_SECRET), body.as_bytes()));
    for r in futures::future::join_all(sends).await {
        assert_eq!(r.status(), 200);
    }
    let task: Value = app
        .post_telegram("", Some(TG_SECRET), body.as_bytes())
        .await
        .json()
        .await
        .unwrap();
    let task_id = task["task_id"].as_str().unwrap().to_string();
    let ev = app.wait_event_done(&task_id).await;
    assert_eq!(ev["status"], "completed", "{ev}");

    // getFile for the largest size, then the download, then the replies.
    let calls = fake.calls();
    let get_file = calls
        .iter()
        .find(|c| c.method == "getFile")
        .expect("getFile");
    assert_eq!(get_file.body["file_id"], "big");
    let sends = fake.sends();
    let methods: Vec<&str> = sends.iter().map(|c| c.method.as_str()).collect();
    assert_eq!(
        methods,
        ["sendMediaGroup", "sendMessage"],
        "exactly one reply"
    );
    let media = sends[0].body["media"].as_array().unwrap();
    assert!((2..=10).contains(&media.len()));
    assert!(
        media[0]["media"]
            .as_str()
            .unwrap()
            .ends_with(&format!("img/{name}")),
        "{media:?}"
    );
    let text = sends[1].body["text"].as_str().unwrap();
    let first = text.lines().find(|l| l.starts_with("1. ")).unwrap();
    assert!(first.contains(&format!("Product {name}")), "{text}");
    assert!(
        text.contains(&format!("https://market.example/p/{name}")),
        "{text}"
    );
    assert!(sends[1].body["reply_markup"]["inline_keyboard"].is_array());

    // The worker dies after sending and before completing: the event is
    // handed back (here by the admin retry), and the outbox, not the
    // messenger, answers the second try.
    let resp = app
        .client
        .post(format!("{}/api/v1/events/{task_id}/retry", app.addr))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let ev = app.wait_event_done(&task_id).await;
    assert_eq!(ev["status"], "completed");
    assert_eq!(
        fake.sends().len(),
        2,
        "nothing sent twice: {:?}",
        fake.sends()
    );
    assert_eq!(
        fake.calls()
            .iter()
            .filter(|c| c.method == "getFile")
            .count(),
        1
    );

    // "2" gives the second product's details; a callback is answered.
    let cb = json!({"update_id": 502, "callback_query": {"id": "cb1",
        "from": {"id": 4242, "is_bot": false, "first_name": "A", "language_code": "en"},
        "message": {"message_id": 9, "chat": {"id": 4242, "type": "private"}, "date": 1},
        "data": "n:2"}});
    let t: Value = app
        .post_telegram("", Some(TG_SECRET), cb.to_string().as_bytes())
        .await
        .json()
        .await
        .unwrap();
    app.wait_event_done(t["task_id"].as_str().unwrap()).await;
    let sends = fake.sends();
    assert_eq!(sends[2].method, "answerCallbackQuery");
    assert_eq!(sends[2].body["callback_query_id"], "cb1");
    assert_eq!(sends[3].method, "sendPhoto");
    assert!(
        sends[3].body["caption"]
            .as_str()
            .unwrap()
            .starts_with("2. Product ")
    );

    // A sticker gets a polite answer, in Russian for a Russian client.
    let sticker = json!({"update_id": 503, "message": {"message_id": 10, "date": 1,
        "chat": {"id": 77, "type": "private"},
        "from": {"id": 77, "is_bot": false, "first_name": "Б", "language_code": "ru"},
        "sticker": {"file_id": "st", "file_unique_id": "st", "width": 512, "height": 512,
                    "is_animated": false, "is_video": false, "type": "regular"}}});
    let t: Value = app
        .post_telegram("", Some(TG_SECRET), sticker.to_string().as_bytes())
        .await
        .json()
        .await
        .unwrap();
    app.wait_event_done(t["task_id"].as_str().unwrap()).await;
    let last = fake.sends().last().unwrap().clone();
    assert_eq!(last.body["chat_id"], 77);
    assert!(
        last.body["text"].as_str().unwrap().contains("только фото"),
        "{:?}",
        last.body
    );
}

#[tokio::test]
async fn a_429_is_waited_out_for_its_retry_after() {
    let (app, fake) = spawn_bots().await;
    fake.throttle_next(1);
    let start = json!({"update_id": 600, "message": {"message_id": 1, "date": 1, "text": "/start",
        "chat": {"id": 5, "type": "private"},
        "from": {"id": 5, "is_bot": false, "first_name": "A", "language_code": "en"}}});
    let t: Value = app
        .post_telegram("", Some(TG_SECRET), start.to_string().as_bytes())
        .await
        .json()
        .await
        .unwrap();
    let ev = app.wait_event_done(t["task_id"].as_str().unwrap()).await;
    assert_eq!(ev["status"], "completed", "{ev}");
    let tries: Vec<Seen> = fake
        .calls()
        .into_iter()
        .filter(|c| c.method == "sendMessage")
        .collect();
    assert_eq!(tries.len(), 2, "the refused call and its retry");
    let waited = tries[1].at - tries[0].at;
    assert!(
        waited >= Duration::from_secs(1),
        "retried after {waited:?}, before retry_after"
    );
    assert!(tries[1].body["text"].as_str().unwrap().starts_with("Hello"));
}

#[tokio::test]
async fn a_whatsapp_photo_is_answered_with_a_list_and_statuses_are_tracked() {
    let (app, fake) = spawn_bots().await;
    let photos = load_catalog(&app, 8).await;
    let (name, query) = findable(&app, &photos).await;
    fake.put_file("65463453", query);
    let body = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/webhooks/whatsapp/pywa-message-image.json"),
    )
    .unwrap();
    // Addressed to our number.
    let body = String::from_utf8(body)
        .unwrap()
        .replace("1122334455667", WA_NUMBER)
        .into_bytes();
    let v: Value = app
        .post_whatsapp(&body, Some(signature::sign(WA_SECRET, &body)))
        .await
        .json()
        .await
        .unwrap();
    let task_id = v["task_ids"][0].as_str().unwrap().to_string();
    let ev = app.wait_event_done(&task_id).await;
    assert_eq!(ev["status"], "completed", "{ev}");

    let calls = fake.calls();
    let order: Vec<&str> = calls.iter().map(|c| c.method.as_str()).collect();
    assert_eq!(
        order,
        ["media", "download", "messages", "messages"],
        "{calls:?}"
    );
    let image = &calls[2].body;
    assert_eq!(
        (image["type"].as_str(), image["to"].as_str()),
        (Some("image"), Some("972987654321"))
    );
    assert!(
        image["image"]["caption"]
            .as_str()
            .unwrap()
            .contains(&format!("Product {name}"))
    );
    let list = &calls[3].body["interactive"];
    assert_eq!(list["type"], "list");
    let rows = list["action"]["sections"][0]["rows"].as_array().unwrap();
    assert_eq!(rows[0]["id"], "n:1");
    assert!(rows.len() <= 10);
    assert!(
        list["body"]["text"]
            .as_str()
            .unwrap()
            .contains(&format!("1. Product {name}"))
    );

    // The status of our list message comes back and is recorded.
    let status = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "1", "phone_number_id": WA_NUMBER},
            "statuses": [{"id": "wamid.out.4", "status": "read", "timestamp": "1", "recipient_id": "972987654321"}]}}]}]});
    let raw = status.to_string().into_bytes();
    let v: Value = app
        .post_whatsapp(&raw, Some(signature::sign(WA_SECRET, &raw)))
        .await
        .json()
        .await
        .unwrap();
    let ev = app
        .wait_event_done(v["task_ids"][0].as_str().unwrap())
        .await;
    assert_eq!(ev["outcome"], "message wamid.out.4 is read", "{ev}");
}

#[tokio::test]
async fn a_text_naming_a_title_word_lists_that_product_first() {
    let (app, fake) = spawn_bots().await;
    load_catalog(&app, 8).await;
    let text = json!({"update_id": 700, "message": {"message_id": 1, "date": 1, "text": "baboon",
        "chat": {"id": 9, "type": "private"},
        "from": {"id": 9, "is_bot": false, "first_name": "A", "language_code": "en"}}});
    let t: Value = app
        .post_telegram("", Some(TG_SECRET), text.to_string().as_bytes())
        .await
        .json()
        .await
        .unwrap();
    let ev = app.wait_event_done(t["task_id"].as_str().unwrap()).await;
    assert_eq!(ev["status"], "completed", "{ev}");
    let sends = fake.sends();
    let msg = sends
        .iter()
        .find(|c| c.method == "sendMessage")
        .expect("a reply");
    let body = msg.body["text"].as_str().unwrap();
    let first = body.lines().find(|l| l.starts_with("1. ")).unwrap_or("");
    assert!(first.contains("Product baboon"), "{body}");
}
