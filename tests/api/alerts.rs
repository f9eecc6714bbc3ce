//! Alerts on events that failed for good (`[alerts]`): one alert per
//! provider and window, with the count and the most common error, to a
//! fake Telegram Bot API and a fake operator webhook (local servers that
//! speak their wire format). Time is driven through `Alerter::check_at`,
//! never by sleeping through the windows.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU16, Ordering},
    },
    time::Duration,
};

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode, Uri},
    routing::post,
};
use serde_json::{Value, json};
use vitrine::{
    alerts::{Alerter, Destinations, Timing},
    config::{AlertsSettings, Secret},
    db::now_ms,
    http::signature::standard_webhooks_sign,
    inbox::NewEvent,
};

use crate::helpers::{TestApp, photos, spawn_app, spawn_app_with};

/// A Standard Webhooks secret (`whsec_` + base64 of a random key).
const SIGNING: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const BOT_TOKEN: &str = "123456:alert-bot-token";
const CHAT: &str = "-100777";

#[derive(Debug, Clone)]
struct Call {
    path: String,
    headers: HeaderMap,
    raw: Vec<u8>,
    body: Value,
}

/// The fake targets: `POST /bot{token}/sendMessage` answered as Telegram
/// does, and `POST /hook`, answered with the status in `hook_status`.
#[derive(Clone)]
struct Fake {
    base: String,
    calls: Arc<Mutex<Vec<Call>>>,
    hook_status: Arc<AtomicU16>,
}

impl Fake {
    async fn start() -> Self {
        #[derive(Clone)]
        struct St {
            calls: Arc<Mutex<Vec<Call>>>,
            hook_status: Arc<AtomicU16>,
        }
        async fn telegram(
            State(st): State<St>,
            uri: Uri,
            headers: HeaderMap,
            raw: axum::body::Bytes,
        ) -> Json<Value> {
            let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
            st.calls.lock().unwrap().push(Call {
                path: uri.path().to_string(),
                headers,
                raw: raw.to_vec(),
                body: body.clone(),
            });
            Json(json!({"ok": true, "result": {"message_id": 1, "text": body["text"]}}))
        }
        async fn hook(
            State(st): State<St>,
            uri: Uri,
            headers: HeaderMap,
            raw: axum::body::Bytes,
        ) -> StatusCode {
            let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
            st.calls.lock().unwrap().push(Call {
                path: uri.path().to_string(),
                headers,
                raw: raw.to_vec(),
                body,
            });
            StatusCode::from_u16(st.hook_status.load(Ordering::SeqCst)).unwrap()
        }
        let st = St {
            calls: Arc::default(),
            hook_status: Arc::new(AtomicU16::new(200)),
        };
        let app = Router::new()
            .route("/bot{token}/sendMessage", post(telegram))
            .route("/hook", post(hook))
            .with_state(st.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            base: format!("http://{addr}"),
            calls: st.calls,
            hook_status: st.hook_status,
        }
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn hooks(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.path == "/hook")
            .collect()
    }

    fn messages(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.path.starts_with("/bot"))
            .collect()
    }

    /// `[alerts]` pointing at this fake: Telegram and/or the webhook.
    fn settings(&self, telegram: bool, webhook: bool) -> AlertsSettings {
        AlertsSettings {
            telegram_bot_token: telegram.then(|| Secret::new(BOT_TOKEN)),
            telegram_chat_id: telegram.then(|| CHAT.to_string()),
            telegram_api_base_url: self.base.clone(),
            webhook_url: webhook.then(|| Secret::new(format!("{}/hook", self.base))),
            signing_secret: webhook.then(|| Secret::new(SIGNING)),
            interval_secs: 300,
            group_secs: 60,
            timeout_ms: 5_000,
        }
    }
}

/// Another "instance" of the app's alerts on the app's own database (a
/// pool of its own), whose clock the test drives. Counting starts now.
async fn alerter(app: &TestApp, s: &AlertsSettings) -> Alerter {
    let (db, _) = vitrine::app::open_inbox(&app.settings).await.unwrap();
    let a = Alerter::new(db, Destinations::from_settings(s), Timing::from_settings(s));
    a.init().await.unwrap();
    a
}

async fn create(app: &TestApp, id: &str, key: &str) -> String {
    app.create_product(id, key).await
}

async fn wait_failed(app: &TestApp, ids: &[String]) {
    for id in ids {
        let rec = app.wait_event_done(id).await;
        assert_eq!(rec["status"], "failed", "{rec}");
    }
}

/// `n` events of `provider`, which no handler knows, so the real worker
/// fails each for good at once.
async fn failed_events(app: &TestApp, provider: &str, n: usize) -> Vec<String> {
    // At once, so the inbox commits them in groups.
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let inbox = app.inbox().clone();
        let e = NewEvent::new(provider, format!("{provider}-{i}"), "thing.happened", "{}");
        set.spawn(async move { inbox.insert(e).await.unwrap().task_id });
    }
    let ids = set.join_all().await;
    wait_failed(app, &ids).await;
    ids
}

fn counter(name_and_labels: &str) -> f64 {
    let text = vitrine::telemetry::metrics_handle().render();
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

const MINUTE: i64 = 60_000;

/// 50 catalog events that fail for good within a minute (35 with one error,
/// 15 with another), sent through the real webhook, give exactly one alert,
/// on Telegram and on the webhook, carrying the count 50 and the most common
/// error; a failure after that waits for the next window and comes as a
/// second alert with its own count.
#[tokio::test]
async fn fifty_failures_in_a_minute_give_one_alert_with_the_count_and_the_top_error() {
    let fake = Fake::start().await;
    let app = spawn_app().await;
    let s = fake.settings(true, true);
    let alerts = alerter(&app, &s).await;
    let (_, jpeg) = photos().into_iter().find(|(n, _)| n == "rocket").unwrap();
    app.images
        .put("html.jpg", b"<html>not a picture</html>".to_vec());
    app.images
        .put("truncated.jpg", jpeg[..jpeg.len() / 3].to_vec());

    let started = std::time::Instant::now();
    let mut ids = Vec::new();
    for i in 0..50 {
        let key = if i % 10 < 7 {
            "html.jpg"
        } else {
            "truncated.jpg"
        };
        ids.push(create(&app, &format!("p-{i}"), key).await);
    }
    wait_failed(&app, &ids).await;
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the 50 failures took more than a minute"
    );
    let t0 = now_ms();

    // Still gathering: the first failure is not a minute old.
    assert!(alerts.check_at(t0).await.unwrap().is_empty());
    assert!(fake.calls().is_empty());

    // A minute later: one alert.
    let sent = alerts.check_at(t0 + MINUTE + 5_000).await.unwrap();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let a = &sent[0];
    assert!(sent[0].delivered(), "{sent:?}");
    assert_eq!((a.alert.provider.as_str(), a.alert.count), ("bakai", 50));
    assert_eq!(a.alert.top_error_count, 35, "{:?}", a.alert);
    assert!(a.alert.top_error.contains("not an image"), "{:?}", a.alert);

    let messages = fake.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0].path, format!("/bot{BOT_TOKEN}/sendMessage"));
    assert_eq!(messages[0].body["chat_id"], CHAT);
    let text = messages[0].body["text"].as_str().unwrap();
    assert!(text.contains("50 events of provider `bakai`"), "{text}");
    assert!(text.contains("(35 of 50): not an image"), "{text}");

    let hooks = fake.hooks();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    let h = &hooks[0];
    assert_eq!(h.body["type"], "inbox.dead_letters");
    let data = &h.body["data"];
    assert_eq!(
        (&data["provider"], &data["count"], &data["top_error_count"]),
        (&json!("bakai"), &json!(50), &json!(35)),
        "{data}"
    );
    assert!(data["window"]["from"].is_string() && data["window"]["until"].is_string());
    assert!(data["first_failure_at"].as_str() <= data["last_failure_at"].as_str());
    // Signed as Standard Webhooks specifies.
    let header = |n: &str| h.headers[n].to_str().unwrap().to_string();
    let ts: i64 = header("webhook-timestamp").parse().unwrap();
    let expected = standard_webhooks_sign(SIGNING, &header("webhook-id"), ts, &h.raw).unwrap();
    assert_eq!(header("webhook-signature"), expected);

    // Nothing new: nothing more, now or later.
    assert!(alerts.check_at(t0 + 2 * MINUTE).await.unwrap().is_empty());

    // One more failure: within the interval it waits...
    let late = create(&app, "p-late", "html.jpg").await;
    wait_failed(&app, &[late]).await;
    let t1 = now_ms();
    assert!(alerts.check_at(t1 + 2 * MINUTE).await.unwrap().is_empty());
    assert_eq!(fake.messages().len(), 1);
    // ...and once the window has passed, it comes as a second alert.
    let sent = alerts.check_at(t0 + 7 * MINUTE).await.unwrap();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].alert.count, 1, "{sent:?}");
    assert_eq!(fake.messages().len(), 2);
    let text = fake.messages()[1].body["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("1 event of provider `bakai`"), "{text}");
    assert_eq!(fake.hooks()[1].body["data"]["count"], 1);
}

/// A webhook that answers 500 does not lose the alert: the failure is
/// counted in the metric, the next window's alert carries the held-back
/// failures with the new ones, and once delivered they are not sent again.
#[tokio::test]
async fn a_target_answering_500_does_not_lose_the_alert() {
    let fake = Fake::start().await;
    let app = spawn_app().await;
    let s = fake.settings(false, true);
    let alerts = alerter(&app, &s).await;
    fake.hook_status.store(500, Ordering::SeqCst);
    let failed_before =
        counter(r#"visual_search_alerts_total{destination="webhook",outcome="failed"}"#);

    failed_events(&app, "nobody", 3).await;
    let t0 = now_ms() + MINUTE + 5_000;
    let sent = alerts.check_at(t0).await.unwrap();
    assert_eq!(sent.len(), 1);
    assert!(!sent[0].delivered(), "{sent:?}");
    assert_eq!(sent[0].alert.count, 3);
    assert_eq!(fake.hooks().len(), 1);
    assert!(
        counter(r#"visual_search_alerts_total{destination="webhook",outcome="failed"}"#)
            >= failed_before + 1.0
    );

    // The next window only: no retry storm against a broken target.
    for i in 3..5 {
        let e = NewEvent::new("nobody", format!("nobody-{i}"), "thing.happened", "{}");
        let id = app.inbox().insert(e).await.unwrap().task_id;
        wait_failed(&app, &[id]).await;
    }
    assert!(alerts.check_at(t0 + MINUTE).await.unwrap().is_empty());
    assert_eq!(fake.hooks().len(), 1);

    // The target is back: one alert with all five.
    fake.hook_status.store(200, Ordering::SeqCst);
    let t1 = t0.max(now_ms() + MINUTE + 5_000) + 5 * MINUTE;
    let sent = alerts.check_at(t1).await.unwrap();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].delivered(), "{sent:?}");
    assert_eq!(sent[0].alert.count, 5, "{sent:?}");
    assert_eq!(fake.hooks()[1].body["data"]["count"], 5);
    assert!(
        fake.hooks()[1].body["data"]["top_error"]
            .as_str()
            .unwrap()
            .contains("nobody"),
        "{:?}",
        fake.hooks()[1].body
    );

    // Delivered: not sent again.
    assert!(alerts.check_at(t1 + 10 * MINUTE).await.unwrap().is_empty());
    assert_eq!(fake.hooks().len(), 2);
}

/// Two instances on one database that look at the same moment send one
/// alert between them, not one each; providers are counted apart; and a
/// burst of 1,000 failures is one alert.
#[tokio::test]
async fn two_instances_send_one_alert_per_provider_and_a_burst_of_1000_is_one() {
    let fake = Fake::start().await;
    let app = spawn_app_with(|s| s.worker.concurrency = 32).await;
    let s = fake.settings(true, false);
    let (a, b) = (alerter(&app, &s).await, alerter(&app, &s).await);

    failed_events(&app, "nobody", 1000).await;
    failed_events(&app, "elsewhere", 2).await;
    let t = now_ms() + MINUTE + 5_000;
    let (x, y) = tokio::join!(a.check_at(t), b.check_at(t));
    let mut sent: Vec<_> = x.unwrap().into_iter().chain(y.unwrap()).collect();
    sent.sort_by(|p, q| p.alert.provider.cmp(&q.alert.provider));
    let got: Vec<(&str, u64)> = sent
        .iter()
        .map(|s| (s.alert.provider.as_str(), s.alert.count))
        .collect();
    assert_eq!(got, vec![("elsewhere", 2), ("nobody", 1000)], "{sent:?}");
    assert_eq!(fake.messages().len(), 2);
    assert!(b.check_at(t + 1_000).await.unwrap().is_empty());
    assert!(a.check_at(t + 10 * MINUTE).await.unwrap().is_empty());
    assert_eq!(fake.messages().len(), 2);
}

/// The running app sends alerts by itself once `[alerts]` names a
/// destination: no test clock, a two-second gathering time (the five
/// failures come within it, even on a loaded machine).
#[tokio::test]
async fn the_app_sends_alerts_by_itself() {
    let fake = Fake::start().await;
    let settings = AlertsSettings {
        group_secs: 2,
        interval_secs: 3600,
        ..fake.settings(true, false)
    };
    let app = spawn_app_with(move |s| s.alerts = settings).await;
    // The app marks when alerts were enabled as it starts; give it a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    failed_events(&app, "nobody", 5).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while fake.messages().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no alert came");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Longer than a gathering time and a tick: still one.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let messages = fake.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let text = messages[0].body["text"].as_str().unwrap();
    assert!(text.contains("5 events of provider `nobody`"), "{text}");
    app.stop().await;
}
