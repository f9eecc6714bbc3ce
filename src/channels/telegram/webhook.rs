//! `POST /api/v1/webhooks/telegram[/{bot}]`: verify, store, acknowledge.
//!
//! Two styles of verification, both constant-time: the secret that
//! `setWebhook` registered, in `X-Telegram-Bot-Api-Secret-Token` (the
//! default route, or `/{bot_id}`), or the bot's token itself as the path
//! segment (the style the seed deployments used). Anything else is 401,
//! and so is a stored bot that is disabled.
//! Then 413 for an oversized body and 400 for one that is not an update
//! (a JSON object with an integer `update_id`). Unknown update kinds are
//! stored like any other: a 2xx is all Telegram needs, and a refusal would
//! only make it retry.

use axum::{
    Json,
    body::Body,
    extract::{Path, State},
    http::HeaderMap,
};
use serde_json::{Value, json};

use super::{PROVIDER, bots::TelegramBot, state::TelegramState, update::parse_update};
use tokio::sync::Notify;

use crate::{
    error::ApiError,
    http::{extract::read_limited, schemas::ErrorBody},
    inbox::{Inbox, Inserted, NewEvent},
};

pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

fn unauthorized() -> ApiError {
    metrics::counter!("visual_search_webhooks_errors_total", "event_type" => "telegram")
        .increment(1);
    ApiError::Unauthorized("invalid or missing Telegram webhook secret".into())
}

fn header_secret(headers: &HeaderMap) -> Option<&str> {
    headers.get(SECRET_HEADER).and_then(|v| v.to_str().ok())
}

/// The default bot, by the secret header.
#[utoipa::path(post, path = "/api/v1/webhooks/telegram", tag = "webhooks",
    request_body(content = Object, description = "A Telegram `Update` object, as the Bot API posts it", example = json!({"update_id": 10000, "message": {"message_id": 1, "date": 1733050000, "chat": {"id": 1111111, "type": "private"}, "from": {"id": 1111111, "is_bot": false, "first_name": "Aida"}, "text": "red bag"}})),
    security(("telegram_secret" = [])),
    responses(
        (status = 200, description = "Stored (or a duplicate of a stored update)", body = TelegramAck),
        (status = 400, description = "Not an update: not a JSON object with an integer `update_id`", body = ErrorBody),
        (status = 401, description = "Wrong or missing secret", body = ErrorBody),
        (status = 413, description = "Body over server.max_body_bytes", body = ErrorBody),
    ))]
pub async fn receive_default(
    State(st): State<TelegramState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let bot = st.bots.default_bot().cloned();
    let bot = bot
        .filter(|b| header_secret(&headers).is_some_and(|s| b.secret_matches(s)))
        .ok_or_else(unauthorized)?;
    store(&st, &bot, &headers, body).await
}

/// `/{key}`: a bot id with the secret header, or a bot's token.
#[utoipa::path(post, path = "/api/v1/webhooks/telegram/{bot}", tag = "webhooks",
    params(("bot" = String, Path, description = "A bot's id, the default one or an enabled stored one (then the secret header is required), or the bot's token itself")),
    request_body(content = Object, description = "A Telegram `Update` object, as the Bot API posts it", example = json!({"update_id": 10000, "message": {"message_id": 1, "date": 1733050000, "chat": {"id": 1111111, "type": "private"}, "from": {"id": 1111111, "is_bot": false, "first_name": "Aida"}, "text": "red bag"}})),
    security(("telegram_secret" = []), ()),
    responses(
        (status = 200, description = "Stored (or a duplicate of a stored update)", body = TelegramAck),
        (status = 400, description = "Not an update: not a JSON object with an integer `update_id`", body = ErrorBody),
        (status = 401, description = "Wrong or missing secret, an unknown bot, or a disabled one (nothing stored)", body = ErrorBody),
        (status = 413, description = "Body over server.max_body_bytes", body = ErrorBody),
    ))]
pub async fn receive(
    State(st): State<TelegramState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    // A stored bot that is disabled is not found: 401, like an unknown one,
    // and nothing is stored (Telegram retries for up to 24 h, so enabling it
    // again soon loses nothing).
    let bot = if key.contains(':') {
        st.bots.by_token(&key).await
    } else {
        st.bots
            .by_id(&key)
            .await
            .filter(|b| header_secret(&headers).is_some_and(|s| b.secret_matches(s)))
    };
    let bot = bot.ok_or_else(unauthorized)?;
    store(&st, &bot, &headers, body).await
}

async fn store(
    st: &TelegramState,
    bot: &TelegramBot,
    headers: &HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let body = read_limited(headers, body, st.max_body_bytes).await?;
    let inserted = store_update(&st.inbox, &st.wake, &bot.id, &body).await?;
    let mut resp = json!({ "ok": true, "task_id": inserted.task_id });
    if inserted.duplicate {
        resp["duplicate"] = Value::Bool(true);
    }
    Ok(Json(resp))
}

/// Stores one update of `bot_id` in the inbox, deduplicated by
/// `(bot_id, update_id)`: what a webhook delivery and a `getUpdates` poll
/// ([`super::polling`]) both do, so the handler cannot tell them apart.
/// 400 for a body that is not an update.
pub(crate) async fn store_update(
    inbox: &Inbox,
    wake: &Notify,
    bot_id: &str,
    body: &[u8],
) -> Result<Inserted, ApiError> {
    let meta = parse_update(body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    // Parsed as JSON above, so the body is UTF-8.
    let payload = String::from_utf8_lossy(body).into_owned();
    let inserted = inbox
        .insert(NewEvent {
            provider: PROVIDER.into(),
            external_id: format!("{bot_id}:{}", meta.update_id),
            event_type: meta.kind.clone(),
            event_subtype: None,
            entity_type: meta.chat_id.map(|_| "telegram_chat".to_string()),
            entity_id: meta.chat_id.map(|c| format!("{bot_id}:{c}")),
            org: Some(bot_id.to_string()),
            payload,
        })
        .await?;
    if !inserted.duplicate {
        crate::channels::count_update(PROVIDER, &meta.kind);
        wake.notify_one();
    }
    Ok(inserted)
}

/// What a stored update is answered with.
#[derive(utoipa::ToSchema)]
#[schema(example = json!({"ok": true, "task_id": "0193a1b2-…"}))]
#[allow(dead_code)]
pub struct TelegramAck {
    ok: bool,
    /// The stored event's id (`GET /api/v1/events/{id}`).
    task_id: String,
    /// Present, and true, when this update was stored before.
    duplicate: Option<bool>,
}

/// Telegram's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(receive_default, receive), components(schemas(ErrorBody, TelegramAck)),
    modifiers(&SecretHeader))]
pub struct TelegramApi;

struct SecretHeader;

impl utoipa::Modify for SecretHeader {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        crate::http::openapi::add_header_scheme(
            openapi,
            "telegram_secret",
            "X-Telegram-Bot-Api-Secret-Token",
            "The secret_token the bot's setWebhook registered (TELEGRAM_WEBHOOK_SECRET)",
        );
    }
}
