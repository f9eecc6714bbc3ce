//! Where alerts go: a Telegram chat (Bot API `sendMessage`) and/or a
//! webhook URL (a JSON POST, signed with the Standard Webhooks headers when
//! `alerts.signing_secret` is set).
//!
//! The Telegram client is a small one of its own, on purpose:
//! `channels::telegram::BotApi` lives in the channels provider (the core
//! must not depend on a provider), and it retries in place (up to four
//! tries, waiting out `retry_after`), while an alert must make one short
//! try and leave the retry to the next window. One `sendMessage` call is a
//! dozen lines. The signature is the core's
//! ([`crate::http::signature::standard_webhooks_sign`]), which the CRM's
//! webhook action uses too.

use std::time::Duration;

use serde_json::{Value, json};

use super::Alert;
use crate::{
    config::{AlertsSettings, Secret},
    http::signature::standard_webhooks_sign,
    inbox::event::time_text,
};

/// One destination's name, for logs and the metric's label.
pub type Destination = &'static str;
pub const TELEGRAM: Destination = "telegram";
pub const WEBHOOK: Destination = "webhook";

/// The configured destinations. Cheap to clone.
#[derive(Clone)]
pub struct Destinations {
    http: reqwest::Client,
    /// `{base}/bot{token}/sendMessage` (holds the token: never logged) and
    /// the chat.
    telegram: Option<(Secret, String)>,
    webhook: Option<Secret>,
    signing: Option<Secret>,
}

impl std::fmt::Debug for Destinations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Destinations")
            .field("telegram", &self.telegram.is_some())
            .field("webhook", &self.webhook.is_some())
            .field("signed", &self.signing.is_some())
            .finish()
    }
}

impl Destinations {
    pub fn from_settings(s: &AlertsSettings) -> Self {
        // reqwest is built without a default TLS crypto provider; a second
        // install is a harmless no-op.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            // An operator's URLs: no proxy from the environment, and no
            // redirects (an API answers; a redirect could leave the host).
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(s.timeout().min(Duration::from_secs(10)))
            .timeout(s.timeout())
            .user_agent(concat!("vitrine/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a plain rustls client builds");
        let telegram = s.telegram().map(|(token, chat)| {
            let base = s.telegram_api_base_url.trim_end_matches('/');
            (
                Secret::new(format!("{base}/bot{}/sendMessage", token.expose())),
                chat.to_string(),
            )
        });
        Self {
            http,
            telegram,
            webhook: s.webhook().cloned(),
            signing: s.signing().cloned(),
        }
    }

    /// Sends `alert` to every destination; returns each one's result (an
    /// error text without any URL, which may hold a token).
    pub async fn send(&self, alert: &Alert) -> Vec<(Destination, Result<(), String>)> {
        let text = alert.text();
        let mut results = Vec::new();
        if let Some((url, chat)) = &self.telegram {
            let body = json!({
                "chat_id": chat,
                "text": text,
                "disable_web_page_preview": true,
            });
            results.push((TELEGRAM, self.telegram(url, &body).await));
        }
        if let Some(url) = &self.webhook {
            results.push((WEBHOOK, self.webhook(url, alert, &text).await));
        }
        results
    }

    async fn telegram(&self, url: &Secret, body: &Value) -> Result<(), String> {
        let resp = self
            .http
            .post(url.expose())
            .json(body)
            .send()
            .await
            .map_err(|e| format!("Telegram sendMessage: {}", net_kind(&e)))?;
        let status = resp.status();
        // Telegram answers `{"ok": true, …}`, or `{"ok": false,
        // "description": …}` with the HTTP status as `error_code`.
        let answer: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_success() && answer["ok"] == true {
            return Ok(());
        }
        let why = answer["description"]
            .as_str()
            .unwrap_or("no Bot API answer");
        Err(format!(
            "Telegram sendMessage: HTTP {}: {}",
            status.as_u16(),
            clip(why, 200)
        ))
    }

    async fn webhook(&self, url: &Secret, alert: &Alert, text: &str) -> Result<(), String> {
        let now = chrono::Utc::now();
        let body = serde_json::to_vec(&json!({
            "type": "inbox.dead_letters",
            "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "data": alert.to_json(text),
        }))
        .expect("JSON serialises");
        let id = format!("msg_{}", uuid::Uuid::now_v7().simple());
        let ts = now.timestamp();
        let mut req = self
            .http
            .post(url.expose())
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", ts.to_string());
        if let Some(secret) = &self.signing {
            // The settings check made sure it is `whsec_<base64>`.
            let sig = standard_webhooks_sign(secret.expose().trim(), &id, ts, &body)
                .map_err(|_| "webhook: the signing secret is not whsec_<base64>".to_string())?;
            req = req.header("webhook-signature", sig);
        }
        let resp = req
            .body(body)
            .send()
            .await
            .map_err(|e| format!("webhook: {}", net_kind(&e)))?;
        let status = resp.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("webhook: HTTP {}", status.as_u16()))
        }
    }
}

impl Alert {
    /// The alert as the webhook's `data` (and the tests') JSON.
    pub fn to_json(&self, text: &str) -> Value {
        json!({
            "provider": self.provider,
            "count": self.count,
            "top_error": self.top_error,
            "top_error_count": self.top_error_count,
            "window": {
                "from": time_text(self.since_ms),
                "until": time_text(self.until_ms),
            },
            "first_failure_at": time_text(self.first_at_ms),
            "last_failure_at": time_text(self.last_at_ms),
            "events": format!("/api/v1/events?status=failed&provider={}", self.provider),
            "text": text,
        })
    }
}

/// What went wrong with a request, without its URL.
fn net_kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    }
}

/// At most `n` characters of `s`, with an ellipsis when cut.
pub(super) fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(n).collect();
        out.push('…');
        out
    }
}
