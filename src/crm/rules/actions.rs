//! Doing a rule's actions: a Telegram message, a signed JSON webhook, a
//! Kommo note or tag. Each returns what it did (its *effect*, stored so a
//! retried event does not do it again) or an [`ActionError`] saying whether
//! trying again may help.
//!
//! The Telegram call is a small client of this module's own
//! (`POST {TELEGRAM_API_BASE_URL}/bot<token>/sendMessage` with
//! `{chat_id, text}`, answered `{"ok": true, "result": {"message_id": …}}`),
//! because the messenger module's client had not landed when this was
//! written; the two should become one.

use serde_json::{Value, json};

use super::{model::ActionSpec, template};
use crate::{
    config::{CrmSettings, Secret},
    crm::kommo::{KommoEvent, api::KommoApi},
    http::signature,
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ActionError {
    pub transient: bool,
    pub message: String,
}

impl ActionError {
    fn transient(message: impl Into<String>) -> Self {
        Self {
            transient: true,
            message: message.into(),
        }
    }
    fn permanent(message: impl Into<String>) -> Self {
        Self {
            transient: false,
            message: message.into(),
        }
    }
    /// 429 and 5xx may pass; other refusals will not.
    fn from_status(what: &str, status: u16) -> Self {
        let message = format!("{what}: HTTP {status}");
        if status == 429 || status >= 500 {
            Self::transient(message)
        } else {
            Self::permanent(message)
        }
    }
}

#[derive(Clone)]
pub struct ActionRunner {
    http: reqwest::Client,
    telegram_base: url::Url,
    telegram_token: Option<Secret>,
    kommo: KommoApi,
}

impl ActionRunner {
    pub fn from_settings(s: &CrmSettings) -> Self {
        // reqwest is built without a default TLS provider (see
        // DEPENDENCIES.md): install ring's before the first client.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(s.action_timeout())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client with a timeout builds");
        Self {
            kommo: KommoApi::new(
                http.clone(),
                s.kommo_api_base_url.clone(),
                s.kommo_api_token.clone(),
                s.kommo_rate_per_sec,
            ),
            http,
            telegram_base: s.telegram_api_base_url.clone(),
            telegram_token: s.telegram_bot_token.clone().filter(|t| !t.is_empty()),
        }
    }

    /// Does one action for `event` (context `ctx`); `message_id` is the
    /// same on every try of this (event, rule, action), so a receiver can
    /// deduplicate too.
    pub async fn run(
        &self,
        action: &ActionSpec,
        event: &KommoEvent,
        ctx: &Value,
        message_id: &str,
    ) -> Result<Value, ActionError> {
        match action {
            ActionSpec::Telegram { chat_id, text } => {
                let text = template::render(text, ctx).map_err(ActionError::permanent)?;
                self.telegram(chat_id, &text).await
            }
            ActionSpec::Webhook { url, secret } => {
                self.webhook(url, secret.as_deref(), event, message_id)
                    .await
            }
            ActionSpec::KommoNote { text } => {
                let text = template::render(text, ctx).map_err(ActionError::permanent)?;
                let id = entity_id(event)?;
                let note = self
                    .kommo
                    .add_note(&event.entity_type, id, &text)
                    .await
                    .map_err(kommo_error)?;
                Ok(json!({ "note_id": note }))
            }
            ActionSpec::KommoTag { tag } => {
                let id = entity_id(event)?;
                let wrote = self
                    .kommo
                    .add_tag(&event.entity_type, id, tag)
                    .await
                    .map_err(kommo_error)?;
                Ok(json!({ "tag": tag, "already_there": !wrote }))
            }
        }
    }

    async fn telegram(&self, chat_id: &Value, text: &str) -> Result<Value, ActionError> {
        let Some(token) = &self.telegram_token else {
            return Err(ActionError::permanent(
                "telegram: no bot configured (VITRINE_CRM_TELEGRAM_BOT_TOKEN)",
            ));
        };
        let url = self
            .telegram_base
            // `./`: a token has a `:` (`123:ABC`), which would otherwise make
            // `bot123:` read as a URL scheme.
            .join(&format!("./bot{}/sendMessage", token.expose()))
            .map_err(|_| ActionError::permanent("telegram: bad API base URL"))?;
        let resp = self
            .http
            .post(url)
            .json(&json!({ "chat_id": chat_id, "text": text }))
            .send()
            .await
            // Never the error's own text: it holds the URL, and the URL the
            // bot token.
            .map_err(|e| ActionError::transient(format!("telegram: {}", net_kind(&e))))?;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status == 200 && body["ok"] == json!(true) {
            return Ok(json!({ "message_id": body["result"]["message_id"] }));
        }
        let why = body["description"].as_str().unwrap_or("").to_string();
        let mut e = ActionError::from_status("telegram sendMessage", status);
        if !why.is_empty() {
            e.message = format!("{}: {why}", e.message);
        }
        Err(e)
    }

    async fn webhook(
        &self,
        url: &url::Url,
        secret: Option<&str>,
        event: &KommoEvent,
        message_id: &str,
    ) -> Result<Value, ActionError> {
        let body = serde_json::to_vec(&json!({
            "type": event.subtype,
            "event": event,
        }))
        .expect("JSON serialises");
        let ts = chrono::Utc::now().timestamp();
        let mut req = self
            .http
            .post(url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", message_id)
            .header("webhook-timestamp", ts.to_string());
        if let Some(s) = secret {
            let sig = signature::standard_webhooks_sign(s, message_id, ts, &body)
                .map_err(|_| ActionError::permanent("webhook: secret is not whsec_<base64>"))?;
            req = req.header("webhook-signature", sig);
        }
        let resp = req
            .body(body)
            .send()
            .await
            .map_err(|e| ActionError::transient(format!("webhook: {}", net_kind(&e))))?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            Ok(json!({ "status": status }))
        } else {
            Err(ActionError::from_status("webhook", status))
        }
    }
}

fn entity_id(event: &KommoEvent) -> Result<&str, ActionError> {
    event
        .entity_id
        .as_deref()
        .ok_or_else(|| ActionError::permanent("the event names no entity id"))
}

fn kommo_error(e: crate::crm::kommo::api::KommoApiError) -> ActionError {
    ActionError {
        transient: e.is_transient(),
        message: e.to_string(),
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
