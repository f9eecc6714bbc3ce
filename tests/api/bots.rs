//! Bots stored in the database (one per business), end to end: added
//! through the admin API, found by the receivers, answered through the
//! fake Bot API with their own token, disabled, rotated, sealed at rest.
//! Then the send throttle, the webhook monitor in the health report, and
//! long polling. Runs on SQLite and, with `VITRINE_TEST_DB=postgres`, on
//! PostgreSQL.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vitrine::{
    Settings,
    config::{Secret, TelegramMode},
};

use vitrine::http::signature;

use crate::{
    channels::{FakeApis, TG_SECRET, TOKEN, WA_SECRET, configure},
    helpers::{ADMIN, TestApp, spawn_app_with},
};

const KEY_HEX: &str = "8c1f2a7e5d3b9046e1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7a8";
const SHOP_TOKEN: &str = "777000:STORED-token_Xy9";
const SHOP_ID: &str = "777000";
const SHOP_SECRET: &str = "stored-secret-1";
const OTHER_TOKEN: &str = "888000:OTHER-token_Qw3";

fn with_key(s: &mut Settings, fake: &FakeApis) {
    configure(s, fake);
    s.channels.secret_key = Some(Secret::new(KEY_HEX));
}

impl TestApp {
    async fn admin_post(&self, path: &str, body: Option<Value>) -> (u16, Value, String) {
        self.admin_send(reqwest::Method::POST, path, body).await
    }

    async fn add_bot(&self, body: Value) -> (u16, Value, String) {
        self.admin_post("/api/v1/channels/bots", Some(body)).await
    }

    async fn raw_db(&self) -> sqlx::AnyConnection {
        sqlx::any::install_default_drivers();
        <sqlx::AnyConnection as sqlx::Connection>::connect(&self.settings.database_url())
            .await
            .unwrap()
    }

    /// `/start` from `chat` to the bot at `path`, with `secret`.
    async fn start_from(
        &self,
        path: &str,
        secret: Option<&str>,
        update_id: i64,
        chat: i64,
    ) -> reqwest::Response {
        let start = json!({"update_id": update_id, "message": {"message_id": 1, "date": 1,
            "text": "/start", "chat": {"id": chat, "type": "private"},
            "from": {"id": chat, "is_bot": false, "first_name": "A", "language_code": "en"}}});
        self.post_telegram(path, secret, start.to_string().as_bytes())
            .await
    }

    async fn health(&self) -> Value {
        self.get_json("/api/v1/health").await.1
    }
}

fn shop_bot() -> Value {
    json!({"kind": "telegram", "name": "Acme shop", "token": SHOP_TOKEN, "secret": SHOP_SECRET})
}

#[tokio::test]
async fn without_the_secret_key_the_bots_api_says_so_and_stores_nothing() {
    let fake = FakeApis::start().await;
    let app = spawn_app_with(|s| configure(s, &fake)).await;
    let (code, body, _) = app.add_bot(shop_bot()).await;
    assert_eq!(code, 503, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("VITRINE_SECRET_KEY"),
        "{body}"
    );
    let (code, body) = app.admin_get_json("/api/v1/channels/bots").await;
    assert_eq!(code, 503, "{body}");
    let (code, _, _) = app
        .admin_post("/api/v1/channels/bots/x/disable", None)
        .await;
    assert_eq!(code, 503);
    let mut db = app.raw_db().await;
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM channel_bots")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(n, 0);
    // And the stored bot's deliveries are unknown: 401.
    assert_eq!(
        app.start_from(&format!("/{SHOP_ID}"), Some(SHOP_SECRET), 1, 5)
            .await
            .status(),
        401
    );
}

#[test]
fn a_malformed_secret_key_refuses_to_start() {
    let mut s = Settings::default();
    s.channels.secret_key = Some(Secret::new("not-a-key"));
    let err = s.validate().unwrap_err().to_string();
    assert!(
        err.contains("channels.secret_key") && err.contains("32 bytes"),
        "{err}"
    );
    assert!(!err.contains("not-a-key"), "{err}");
}

#[tokio::test]
async fn a_stored_bot_is_answered_with_its_own_token_and_sealed_at_rest() {
    let fake = FakeApis::start().await;
    fake.allow_token(SHOP_TOKEN);
    fake.allow_token(OTHER_TOKEN);
    let app = spawn_app_with(|s| with_key(s, &fake)).await;

    // Checked: 422 for what is not a bot, 400 for broken JSON, 409 for the
    // settings' own bot.
    let (code, _, _) = app
        .add_bot(json!({"kind": "telegram", "name": "x", "token": "not-a-token"}))
        .await;
    assert_eq!(code, 422);
    let (code, _, _) = app
        .add_bot(
            json!({"kind": "telegram", "name": "x", "token": SHOP_TOKEN, "secret": "has space"}),
        )
        .await;
    assert_eq!(code, 422);
    let (code, _, _) = app
        .add_bot(json!({"kind": "whatsapp", "name": "x", "token": "EAAG"}))
        .await;
    assert_eq!(code, 422, "a number needs its phone_number_id");
    let resp = app
        .client
        .post(format!("{}/api/v1/channels/bots", app.addr))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let (code, _, _) = app
        .add_bot(json!({"kind": "telegram", "name": "x", "token": format!("{}:other", TOKEN.split(':').next().unwrap())}))
        .await;
    assert_eq!(code, 409, "the default bot's id is taken");

    let (code, added, text) = app.add_bot(shop_bot()).await;
    assert_eq!(code, 201, "{text}");
    assert!(
        !text.contains(SHOP_TOKEN) && !text.contains(SHOP_SECRET),
        "{text}"
    );
    let id = added["data"]["id"].as_str().unwrap().to_string();
    assert_eq!(added["data"]["external_id"], SHOP_ID);
    let (code, _, _) = app.add_bot(shop_bot()).await;
    assert_eq!(code, 409, "stored twice");

    let resp = app
        .client
        .get(format!("{}/api/v1/channels/bots", app.addr))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(
        !text.contains("STORED-token") && !text.contains(SHOP_SECRET),
        "{text}"
    );
    let list: Value = serde_json::from_str(&text).unwrap();
    let listed = &list["data"][0];
    assert_eq!(
        (
            listed["kind"].as_str(),
            listed["name"].as_str(),
            listed["enabled"].as_bool(),
            listed["secret_set"].as_bool()
        ),
        (Some("telegram"), Some("Acme shop"), Some(true), Some(true)),
        "{list}"
    );

    // A delivery with its secret is stored and answered with ITS token.
    let resp = app
        .start_from(&format!("/{SHOP_ID}"), Some(SHOP_SECRET), 10, 31)
        .await;
    assert_eq!(resp.status(), 200);
    let t: Value = resp.json().await.unwrap();
    let ev = app.wait_event_done(t["task_id"].as_str().unwrap()).await;
    assert_eq!(ev["status"], "completed", "{ev}");
    let replies: Vec<_> = fake
        .sends()
        .into_iter()
        .filter(|c| c.method == "sendMessage")
        .collect();
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(
        replies[0].token, SHOP_TOKEN,
        "answered with the stored bot's token"
    );
    assert_eq!(replies[0].body["chat_id"], 31);
    // The token-in-path style works for it too; the default bot is untouched.
    assert_eq!(
        app.start_from(&format!("/{SHOP_TOKEN}"), None, 11, 31)
            .await
            .status(),
        200
    );
    assert_eq!(
        app.start_from("", Some(TG_SECRET), 12, 32).await.status(),
        200
    );
    // A wrong secret, or the default bot's secret for this bot: 401.
    for wrong in [Some("stored-secret-2"), Some(TG_SECRET), None] {
        assert_eq!(
            app.start_from(&format!("/{SHOP_ID}"), wrong, 13, 31)
                .await
                .status(),
            401,
            "{wrong:?}"
        );
    }

    // Disabled: refused and not stored; enabled again: accepted.
    let stored_before = app.events_of("telegram").await.len();
    let (code, body, _) = app
        .admin_post(&format!("/api/v1/channels/bots/{id}/disable"), None)
        .await;
    assert_eq!(
        (code, body["data"]["enabled"].as_bool()),
        (200, Some(false))
    );
    assert_eq!(
        app.start_from(&format!("/{SHOP_ID}"), Some(SHOP_SECRET), 14, 31)
            .await
            .status(),
        401
    );
    assert_eq!(
        app.start_from(&format!("/{SHOP_TOKEN}"), None, 15, 31)
            .await
            .status(),
        401
    );
    assert_eq!(
        app.events_of("telegram").await.len(),
        stored_before,
        "nothing stored"
    );
    let (code, _, _) = app
        .admin_post(&format!("/api/v1/channels/bots/{id}/enable"), None)
        .await;
    assert_eq!(code, 200);
    assert_eq!(
        app.start_from(&format!("/{SHOP_ID}"), Some(SHOP_SECRET), 16, 31)
            .await
            .status(),
        200
    );

    // Rotated: the old secret is refused, the new one accepted; a token of
    // another bot is not a rotation.
    let (code, _, text) = app
        .admin_post(
            &format!("/api/v1/channels/bots/{id}/rotate"),
            Some(json!({"secret": "rotated-secret-2"})),
        )
        .await;
    assert_eq!(code, 200, "{text}");
    assert!(!text.contains("rotated-secret-2"));
    assert_eq!(
        app.start_from(&format!("/{SHOP_ID}"), Some(SHOP_SECRET), 17, 31)
            .await
            .status(),
        401
    );
    assert_eq!(
        app.start_from(&format!("/{SHOP_ID}"), Some("rotated-secret-2"), 18, 31)
            .await
            .status(),
        200
    );
    let (code, _, _) = app
        .admin_post(
            &format!("/api/v1/channels/bots/{id}/rotate"),
            Some(json!({"token": OTHER_TOKEN})),
        )
        .await;
    assert_eq!(code, 422);
    let (code, _, _) = app
        .admin_post(
            &format!("/api/v1/channels/bots/{id}/rotate"),
            Some(json!({})),
        )
        .await;
    assert_eq!(code, 422);
    let (code, _, _) = app
        .admin_post(
            "/api/v1/channels/bots/no-such-bot/rotate",
            Some(json!({"secret": "abc"})),
        )
        .await;
    assert_eq!(code, 404);

    // At rest: neither the token nor the secret is in the row's bytes, nor
    // (SQLite) anywhere in the database files.
    let mut db = app.raw_db().await;
    let rows: Vec<(Vec<u8>, Option<Vec<u8>>)> =
        sqlx::query_as("SELECT token_ciphertext, secret_ciphertext FROM channel_bots")
            .fetch_all(&mut db)
            .await
            .unwrap();
    assert_eq!(rows.len(), 1);
    let contains =
        |hay: &[u8], needle: &str| hay.windows(needle.len()).any(|w| w == needle.as_bytes());
    for (token, secret) in &rows {
        assert!(token.len() >= 12 + SHOP_TOKEN.len() + 16);
        for plain in [SHOP_TOKEN, "STORED-token", "rotated-secret-2", SHOP_SECRET] {
            assert!(!contains(token, plain), "{plain} in the token column");
            assert!(
                !contains(secret.as_deref().unwrap_or_default(), plain),
                "{plain} in the secret column"
            );
        }
    }
    if app.settings.database.url.is_none() {
        let dir = &app.settings.data_dir;
        for name in ["vitrine.db", "vitrine.db-wal"] {
            if let Ok(bytes) = std::fs::read(dir.join(name)) {
                for plain in ["STORED-token", "rotated-secret-2", SHOP_SECRET] {
                    assert!(!contains(&bytes, plain), "{plain} in {name}");
                }
            }
        }
    }

    // A ciphertext copied into another row does not open there: that bot
    // is left out (401), the first one still works.
    let (code, other, _) = app
        .add_bot(json!({"kind": "telegram", "name": "Other shop", "token": OTHER_TOKEN, "secret": "other-secret"}))
        .await;
    assert_eq!(code, 201);
    assert_eq!(
        app.start_from("/888000", Some("other-secret"), 19, 40)
            .await
            .status(),
        200
    );
    sqlx::query(
        "UPDATE channel_bots SET token_ciphertext = (SELECT token_ciphertext FROM channel_bots WHERE external_id = '777000'), \
           secret_ciphertext = (SELECT secret_ciphertext FROM channel_bots WHERE external_id = '777000') \
         WHERE external_id = '888000'",
    )
    .execute(&mut db)
    .await
    .unwrap();
    // An admin change makes this instance reload its bots at once.
    let other_id = other["data"]["id"].as_str().unwrap();
    let (code, _, _) = app
        .admin_post(&format!("/api/v1/channels/bots/{other_id}/enable"), None)
        .await;
    assert_eq!(code, 200);
    for secret in ["other-secret", "rotated-secret-2"] {
        assert_eq!(
            app.start_from("/888000", Some(secret), 20, 40)
                .await
                .status(),
            401,
            "{secret}"
        );
    }
    assert_eq!(
        app.start_from(&format!("/{OTHER_TOKEN}"), None, 21, 40)
            .await
            .status(),
        401
    );
    assert_eq!(
        app.start_from(&format!("/{SHOP_ID}"), Some("rotated-secret-2"), 22, 31)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_stored_whatsapp_number_verifies_answers_with_its_token_and_can_be_disabled() {
    const NUMBER: &str = "2222333344";
    const NUMBER_TOKEN: &str = "EAAG-shop-access-token";
    const NUMBER_VERIFY: &str = "shop-verify-token";
    let fake = FakeApis::start().await;
    fake.allow_number(NUMBER, NUMBER_TOKEN);
    let app = spawn_app_with(|s| with_key(s, &fake)).await;
    let (code, added, text) = app
        .add_bot(
            json!({"kind": "whatsapp", "name": "Shop two", "token": NUMBER_TOKEN,
            "secret": NUMBER_VERIFY, "phone_number_id": NUMBER}),
        )
        .await;
    assert_eq!(code, 201, "{text}");
    assert!(!text.contains(NUMBER_TOKEN) && !text.contains(NUMBER_VERIFY));
    let id = added["data"]["id"].as_str().unwrap().to_string();
    let handshake = |token: &'static str| {
        let url = format!(
            "{}/api/v1/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=42",
            app.addr
        );
        let client = app.client.clone();
        async move { client.get(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(handshake(NUMBER_VERIFY).await, 200);
    let message = |wamid: &str| {
        json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages",
            "value": {"messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "1", "phone_number_id": NUMBER},
                "contacts": [{"profile": {"name": "A"}, "wa_id": "996700000009"}],
                "messages": [{"from": "996700000009", "id": wamid, "timestamp": "1", "type": "text",
                    "text": {"body": "hello"}}]}}]}]})
        .to_string()
        .into_bytes()
    };
    let body = message("wamid.in.1");
    let resp = app
        .post_whatsapp(&body, Some(signature::sign(WA_SECRET, &body)))
        .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    let ev = app
        .wait_event_done(v["task_ids"][0].as_str().unwrap())
        .await;
    assert_eq!(ev["status"], "completed", "{ev}");
    let sent: Vec<_> = fake
        .sends()
        .into_iter()
        .filter(|c| c.method == "messages")
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        sent[0].token, NUMBER_TOKEN,
        "answered with the stored number's token"
    );
    assert_eq!(sent[0].body["to"], "996700000009");

    // Disabled: its deliveries are refused and not stored, its verify token
    // no longer passes.
    let (code, _, _) = app
        .admin_post(&format!("/api/v1/channels/bots/{id}/disable"), None)
        .await;
    assert_eq!(code, 200);
    let before = app.events_of("whatsapp").await.len();
    let body = message("wamid.in.2");
    assert_eq!(
        app.post_whatsapp(&body, Some(signature::sign(WA_SECRET, &body)))
            .await
            .status(),
        401
    );
    assert_eq!(app.events_of("whatsapp").await.len(), before);
    assert_eq!(handshake(NUMBER_VERIFY).await, 403);
}

#[tokio::test]
async fn a_bot_added_by_another_instance_is_found_on_a_miss() {
    use vitrine::channels::secrets::{Binding, SealKey};
    let fake = FakeApis::start().await;
    fake.allow_token(SHOP_TOKEN);
    let app = spawn_app_with(|s| with_key(s, &fake)).await;
    // Not known yet: 401 (and the miss loads the, still empty, table).
    assert_eq!(
        app.start_from(&format!("/{SHOP_ID}"), Some(SHOP_SECRET), 1, 31)
            .await
            .status(),
        401
    );
    // Another instance, with the same key, stores it: a row this one's
    // admin API never saw.
    let mut key = [0u8; 32];
    hex::decode_to_slice(KEY_HEX, &mut key).unwrap();
    let key = SealKey::new(&key);
    let seal = |field, v: &str| {
        key.seal(
            Binding {
                kind: "telegram",
                external_id: SHOP_ID,
                field,
            },
            &Secret::new(v),
        )
        .unwrap()
    };
    let mut db = app.raw_db().await;
    sqlx::query(
        "INSERT INTO channel_bots (id, kind, external_id, name, token_ciphertext, secret_ciphertext, \
           enabled, created_at, updated_at) VALUES ('b2', 'telegram', $1, 'Acme', $2, $3, 1, 1, 1)",
    )
    .bind(SHOP_ID)
    .bind(seal("token", SHOP_TOKEN))
    .bind(seal("secret", SHOP_SECRET))
    .execute(&mut db)
    .await
    .unwrap();
    // This instance finds it on a miss, at most a second after the last
    // reload.
    tokio::time::sleep(vitrine::channels::bots_store::MISS_RELOAD_INTERVAL).await;
    let resp = app
        .start_from(&format!("/{SHOP_ID}"), Some(SHOP_SECRET), 2, 31)
        .await;
    assert_eq!(resp.status(), 200);
    let t: Value = resp.json().await.unwrap();
    app.wait_event_done(t["task_id"].as_str().unwrap()).await;
    let reply = fake
        .sends()
        .into_iter()
        .find(|c| c.method == "sendMessage")
        .unwrap();
    assert_eq!(reply.token, SHOP_TOKEN);
    let (code, list) = app.admin_get_json("/api/v1/channels/bots").await;
    assert_eq!((code, list["data"][0]["id"].as_str()), (200, Some("b2")));
}

#[tokio::test]
async fn sends_to_one_chat_are_spaced_by_the_throttle() {
    let fake = FakeApis::start().await;
    let app = spawn_app_with(|s| {
        configure(s, &fake);
        s.telegram.send_per_chat_per_sec = 4;
    })
    .await;
    let mut tasks = Vec::new();
    for i in 0..4 {
        let t: Value = app
            .start_from("", Some(TG_SECRET), 300 + i, 77)
            .await
            .json()
            .await
            .unwrap();
        tasks.push(t["task_id"].as_str().unwrap().to_string());
    }
    for t in &tasks {
        let ev = app.wait_event_done(t).await;
        assert_eq!(ev["status"], "completed", "{ev}");
    }
    let mut at: Vec<Instant> = fake
        .sends()
        .into_iter()
        .filter(|c| c.method == "sendMessage" && c.body["chat_id"] == 77)
        .map(|c| c.at)
        .collect();
    at.sort();
    assert_eq!(at.len(), 4);
    // Four messages at 4 a second with a burst of one: at least 3 × 250 ms
    // from the first to the last (a lower bound only: a loaded machine is
    // slower, never faster).
    let span = at[3] - at[0];
    assert!(span >= Duration::from_millis(740), "4 sends in {span:?}");
}

#[tokio::test]
async fn a_whatsapp_numbers_sends_keep_its_throughput() {
    let fake = FakeApis::start().await;
    let app = spawn_app_with(|s| {
        configure(s, &fake);
        s.whatsapp.send_per_number_per_sec = 4;
    })
    .await;
    // Eight shoppers write at once: eight replies from one number.
    let messages: Vec<Value> = (0..8)
        .map(|i| {
            json!({"from": format!("99670000010{i}"), "id": format!("wamid.burst.{i}"),
            "timestamp": "1", "type": "text", "text": {"body": "hello"}})
        })
        .collect();
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "1", "phone_number_id": crate::channels::WA_NUMBER},
            "messages": messages}}]}]})
    .to_string()
    .into_bytes();
    let v: Value = app
        .post_whatsapp(&body, Some(signature::sign(WA_SECRET, &body)))
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<String> = v["task_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 8);
    for id in &ids {
        assert_eq!(app.wait_event_done(id).await["status"], "completed");
    }
    let mut at: Vec<Instant> = fake
        .sends()
        .into_iter()
        .filter(|c| c.method == "messages")
        .map(|c| c.at)
        .collect();
    at.sort();
    assert_eq!(at.len(), 8);
    // A burst of four, then one every 250 ms: the eighth at least 1 s after
    // the first (a lower bound only).
    let span = at[7] - at[0];
    assert!(span >= Duration::from_millis(950), "8 sends in {span:?}");
}

#[tokio::test]
async fn the_webhook_monitor_puts_telegrams_view_in_the_health_report() {
    let fake = FakeApis::start().await;
    let recent = chrono::Utc::now().timestamp() - 60;
    fake.set_webhook_info(json!({"url": format!("https://shop.example/api/v1/webhooks/telegram/{TOKEN}"),
        "has_custom_certificate": false, "pending_update_count": 3,
        "last_error_date": recent, "last_error_message": "Wrong response from the webhook: 502 Bad Gateway",
        "max_connections": 40}));
    let app = spawn_app_with(|s| {
        configure(s, &fake);
        s.telegram.webhook_info_secs = 1;
    })
    .await;
    let wait_for = |status: &'static str| {
        let app = &app;
        async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let h = app.health().await;
                if h["telegram"]["status"] == status {
                    return h;
                }
                assert!(
                    Instant::now() < deadline,
                    "health never showed telegram {status}: {h}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let h = wait_for("degraded").await;
    assert_eq!(h["status"], "degraded", "{h}");
    let bot = &h["telegram"]["bots"][0];
    assert_eq!(bot["id"], "123456");
    assert_eq!(bot["pending_update_count"], 3);
    assert_eq!(bot["last_error_date"], recent);
    assert_eq!(
        bot["last_error_message"],
        "Wrong response from the webhook: 502 Bad Gateway"
    );
    assert!(
        !h.to_string().contains(TOKEN),
        "a token in the health report: {h}"
    );
    let (_, metrics) = {
        let resp = app
            .client
            .get(format!("{}/api/v1/metrics", app.addr))
            .send()
            .await
            .unwrap();
        (resp.status(), resp.text().await.unwrap())
    };
    assert!(
        metrics.contains("visual_search_telegram_webhook_pending_updates{bot=\"123456\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "visual_search_telegram_webhook_last_error_timestamp_seconds{bot=\"123456\"}"
        ),
        "{metrics}"
    );

    // Telegram's errors are over: ok again, and the report healthy.
    fake.set_webhook_info(
        json!({"url": "https://shop.example/api/v1/webhooks/telegram",
        "has_custom_certificate": false, "pending_update_count": 0}),
    );
    let h = wait_for("ok").await;
    assert_eq!(h["status"], "healthy", "{h}");
    assert_eq!(h["telegram"]["bots"][0]["last_error_message"], Value::Null);
}

#[tokio::test]
async fn polling_stores_and_answers_updates_once_and_explains_a_conflict() {
    let fake = FakeApis::start().await;
    for (id, chat) in [(900, 51), (901, 52)] {
        fake.push_update(
            json!({"update_id": id, "message": {"message_id": 1, "date": 1,
            "text": "/start", "chat": {"id": chat, "type": "private"},
            "from": {"id": chat, "is_bot": false, "first_name": "A", "language_code": "en"}}}),
        );
    }
    // Someone else polls this bot for the first two tries.
    fake.conflict_next(2);
    let app = spawn_app_with(|s| {
        configure(s, &fake);
        s.telegram.mode = TelegramMode::Polling;
        s.telegram.poll_timeout_secs = 1;
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let h = app.health().await;
        let error = h["telegram_polling"]["bots"][0]["error"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if error.contains("409") {
            assert!(
                error.contains("another getUpdates poller is running"),
                "{error}"
            );
            assert_eq!(h["telegram_polling"]["status"], "degraded");
            break;
        }
        assert!(Instant::now() < deadline, "no conflict shown: {h}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // After the back-off the updates come, are stored once and answered.
    let deadline = Instant::now() + Duration::from_secs(20);
    let events = loop {
        let events = app.events_of("telegram").await;
        if events.len() >= 2 {
            break events;
        }
        assert!(Instant::now() < deadline, "updates not stored: {events:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for e in &events {
        let ev = app.wait_event_done(e["id"].as_str().unwrap()).await;
        assert_eq!(ev["status"], "completed", "{ev}");
    }
    let calls = fake.calls();
    let first_poll = calls.iter().position(|c| c.method == "getUpdates").unwrap();
    let delete = calls
        .iter()
        .position(|c| c.method == "deleteWebhook")
        .expect("deleteWebhook");
    assert!(delete < first_poll, "the webhook is deleted before polling");
    assert_eq!(
        calls[first_poll].body["allowed_updates"],
        json!(["message", "edited_message", "callback_query"])
    );
    let mut chats: Vec<i64> = calls
        .iter()
        .filter(|c| c.method == "sendMessage")
        .map(|c| c.body["chat_id"].as_i64().unwrap())
        .collect();
    chats.sort();
    assert_eq!(chats, [51, 52], "each update answered once");
    // The offset moved past what was stored, so nothing comes twice.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !fake
        .calls()
        .iter()
        .any(|c| c.method == "getUpdates" && c.body["offset"] == 902)
    {
        assert!(Instant::now() < deadline, "the offset never reached 902");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.events_of("telegram").await.len(), 2);
    assert_eq!(app.health().await["telegram_polling"]["status"], "ok");
    // Shutdown stops the long poll at once (a generous bound: a poller that
    // ignored it would hold shutdown for the whole grace period).
    let started = Instant::now();
    app.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

/// A fake OpenAI-compatible chat-completions endpoint: `/v1/chat/completions`
/// answers "Rephrased: <the user message>", `/hang` never answers in time.
#[derive(Clone, Default)]
struct FakeLlm {
    seen: std::sync::Arc<std::sync::Mutex<Vec<LlmCall>>>,
}

/// One request the fake model got: its `Authorization` header and body.
type LlmCall = (Option<String>, Value);

async fn llm_answer(
    axum::extract::State(f): axum::extract::State<FakeLlm>,
    h: axum::http::HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> axum::Json<Value> {
    let auth = h
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    f.seen.lock().unwrap().push((auth, body.clone()));
    let user = body["messages"][1]["content"]
        .as_str()
        .unwrap_or("")
        .to_string();
    axum::Json(
        json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1,
        "model": body["model"], "choices": [{"index": 0, "finish_reason": "stop",
        "message": {"role": "assistant", "content": format!("Rephrased: {user}")}}]}),
    )
}

/// A well-formed answer padded past what the bot reads (256 KiB).
async fn llm_huge() -> axum::Json<Value> {
    axum::Json(json!({"padding": "x".repeat(1 << 20),
        "choices": [{"message": {"role": "assistant", "content": "Rephrased: huge"}}]}))
}

async fn llm_hang() -> &'static str {
    tokio::time::sleep(Duration::from_secs(30)).await;
    "{}"
}

impl FakeLlm {
    async fn start() -> (Self, String) {
        let fake = FakeLlm::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/v1/chat/completions", axum::routing::post(llm_answer))
            .route("/hang", axum::routing::post(llm_hang))
            .route("/huge", axum::routing::post(llm_huge))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (fake, base)
    }
}

#[tokio::test]
async fn the_phrasing_model_rephrases_the_bots_own_text_and_a_silent_one_is_not_waited_for() {
    let (llm, base) = FakeLlm::start().await;
    let fake = FakeApis::start().await;
    let app = spawn_app_with(|s| {
        configure(s, &fake);
        s.channels.llm.url = Some(format!("{base}/v1/chat/completions").parse().unwrap());
        s.channels.llm.key = Some(Secret::new("llm-key-1"));
        s.channels.llm.model = "small-model".into();
    })
    .await;
    let t: Value = app
        .start_from("", Some(TG_SECRET), 400, 61)
        .await
        .json()
        .await
        .unwrap();
    let task = t["task_id"].as_str().unwrap().to_string();
    let ev = app.wait_event_done(&task).await;
    assert_eq!(ev["status"], "completed", "{ev}");
    let sent = fake
        .sends()
        .into_iter()
        .find(|c| c.method == "sendMessage")
        .unwrap();
    let text = sent.body["text"].as_str().unwrap();
    assert!(text.starts_with("Rephrased: Hello"), "{text}");
    {
        let seen = llm.seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].0.as_deref(), Some("Bearer llm-key-1"));
        assert_eq!(seen[0].1["model"], "small-model");
        assert_eq!(seen[0].1["messages"][0]["role"], "system");
        assert!(
            seen[0].1["messages"][1]["content"]
                .as_str()
                .unwrap()
                .starts_with("Hello")
        );
    }
    // A retried event sends nothing again and does not ask the model again:
    // the rephrased text was committed with the plan.
    let resp = app
        .client
        .post(format!("{}/api/v1/events/{task}/retry", app.addr))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    app.wait_event_done(&task).await;
    assert_eq!(
        fake.sends()
            .iter()
            .filter(|c| c.method == "sendMessage")
            .count(),
        1
    );
    assert_eq!(llm.seen.lock().unwrap().len(), 1);

    // A model that does not answer: the bot's own text, after the timeout
    // (300 ms) and long before the model would have answered (30 s).
    let took = greets_in_its_own_words(&format!("{base}/hang"), 300, 401, 62).await;
    assert!(took < Duration::from_secs(20), "{took:?}");

    // A model whose answer is larger than the bot reads: not buffered, and
    // the bot's own text goes out.
    greets_in_its_own_words(&format!("{base}/huge"), 3000, 402, 63).await;
}

/// `/start` from `chat` to a bot whose phrasing model is at `url`, waited
/// for `timeout_ms`: the event completes and the bot's own greeting goes
/// out. Returns how long the event took.
async fn greets_in_its_own_words(
    url: &str,
    timeout_ms: u64,
    update_id: i64,
    chat: i64,
) -> Duration {
    let fake = FakeApis::start().await;
    let app = spawn_app_with(|s| {
        configure(s, &fake);
        s.channels.llm.url = Some(url.parse().unwrap());
        s.channels.llm.timeout_ms = timeout_ms;
    })
    .await;
    let started = Instant::now();
    let t: Value = app
        .start_from("", Some(TG_SECRET), update_id, chat)
        .await
        .json()
        .await
        .unwrap();
    let ev = app.wait_event_done(t["task_id"].as_str().unwrap()).await;
    let took = started.elapsed();
    assert_eq!(ev["status"], "completed", "{ev}");
    let sent = fake
        .sends()
        .into_iter()
        .find(|c| c.method == "sendMessage")
        .unwrap();
    assert!(
        sent.body["text"].as_str().unwrap().starts_with("Hello"),
        "{:?}",
        sent.body
    );
    took
}
