//! The bots admin API, behind the admin bearer token (mounted by the
//! Telegram provider, for both messengers' stored bots):
//!
//! - `GET /api/v1/channels/bots`: every stored bot, never a token or a
//!   secret (whether a secret is set is shown);
//! - `POST /api/v1/channels/bots`: add one (201);
//! - `POST /api/v1/channels/bots/{id}/disable`, `…/enable`: its deliveries
//!   are refused (401, nothing stored) while it is disabled;
//! - `POST /api/v1/channels/bots/{id}/rotate`: a new token and/or secret.
//!
//! Without `VITRINE_SECRET_KEY` every one of them answers 503 with a
//! message naming the key, and nothing is stored. A change is seen at once
//! by this instance's receivers and handlers, and by other instances within
//! [`crate::channels::bots_store::MAX_AGE`] (at once for a new bot: a miss
//! reloads).

use axum::{
    Router,
    extract::{Path, State},
    http::StatusCode,
    routing::{get, post},
};
use serde_json::{Value, json};

use super::bots_store::{BotInfo, BotStore, BotStoreError, NewBot, Rotation};
use crate::{error::ApiError, http::extract::ApiJson, http::schemas::ErrorBody};

/// The one place where the store's errors become HTTP answers.
impl From<BotStoreError> for ApiError {
    fn from(e: BotStoreError) -> Self {
        match e {
            BotStoreError::NoKey => ApiError::Unavailable(e.to_string()),
            BotStoreError::Invalid(m) => ApiError::Unprocessable(m),
            BotStoreError::Conflict(m) => ApiError::Conflict(m),
            BotStoreError::NotFound(_) => ApiError::NotFound(e.to_string()),
            BotStoreError::Seal(_) | BotStoreError::Db(_) => ApiError::Internal(e.into()),
        }
    }
}

#[derive(Clone)]
pub struct BotsAdmin {
    pub store: BotStore,
}

/// The routes, without the admin guard (the provider layers it on).
pub fn router(api: BotsAdmin) -> Router {
    Router::new()
        .route("/api/v1/channels/bots", get(list).post(add))
        .route("/api/v1/channels/bots/{id}/disable", post(disable))
        .route("/api/v1/channels/bots/{id}/enable", post(enable))
        .route("/api/v1/channels/bots/{id}/rotate", post(rotate))
        .with_state(api)
}

fn need_key(api: &BotsAdmin) -> Result<(), ApiError> {
    if api.store.has_key() {
        Ok(())
    } else {
        Err(BotStoreError::NoKey.into())
    }
}

#[utoipa::path(get, path = "/api/v1/channels/bots", tag = "channels",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Every stored bot (never a token or a secret)", body = BotList),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 503, description = "No admin token, or no VITRINE_SECRET_KEY, configured", body = ErrorBody),
    ))]
async fn list(State(api): State<BotsAdmin>) -> Result<ApiJson<Value>, ApiError> {
    need_key(&api)?;
    Ok(ApiJson(json!({ "data": api.store.list().await? })))
}

#[utoipa::path(post, path = "/api/v1/channels/bots", tag = "channels",
    request_body = NewBotDoc,
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "Stored, its token and secret encrypted", body = BotOne),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 409, description = "That bot or number is stored already, or is the settings' default", body = ErrorBody),
        (status = 422, description = "An invalid bot (not a Telegram token, a secret outside Telegram's rule, no phone_number_id), with the reason", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 503, description = "No admin token, or no VITRINE_SECRET_KEY, configured: nothing stored", body = ErrorBody),
    ))]
async fn add(
    State(api): State<BotsAdmin>,
    ApiJson(new): ApiJson<NewBot>,
) -> Result<(StatusCode, ApiJson<Value>), ApiError> {
    need_key(&api)?;
    let bot = api.store.add(&new).await?;
    tracing::info!(bot = %bot.id, kind = bot.kind.as_str(), external_id = %bot.external_id, "bot added");
    Ok((StatusCode::CREATED, ApiJson(json!({ "data": bot }))))
}

async fn set_enabled(api: &BotsAdmin, id: &str, on: bool) -> Result<ApiJson<Value>, ApiError> {
    need_key(api)?;
    let bot = api.store.set_enabled(id, on).await?;
    tracing::info!(bot = %bot.id, enabled = on, "bot switched");
    Ok(ApiJson(json!({ "data": bot })))
}

#[utoipa::path(post, path = "/api/v1/channels/bots/{id}/disable", tag = "channels",
    params(("id" = String, Path, description = "The stored bot's id")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Disabled: its deliveries are refused with 401 and not stored", body = BotOne),
        (status = 404, description = "No such bot", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 503, description = "No admin token, or no VITRINE_SECRET_KEY, configured", body = ErrorBody),
    ))]
async fn disable(
    State(api): State<BotsAdmin>,
    Path(id): Path<String>,
) -> Result<ApiJson<Value>, ApiError> {
    set_enabled(&api, &id, false).await
}

#[utoipa::path(post, path = "/api/v1/channels/bots/{id}/enable", tag = "channels",
    params(("id" = String, Path, description = "The stored bot's id")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Enabled", body = BotOne),
        (status = 404, description = "No such bot", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 503, description = "No admin token, or no VITRINE_SECRET_KEY, configured", body = ErrorBody),
    ))]
async fn enable(
    State(api): State<BotsAdmin>,
    Path(id): Path<String>,
) -> Result<ApiJson<Value>, ApiError> {
    set_enabled(&api, &id, true).await
}

#[utoipa::path(post, path = "/api/v1/channels/bots/{id}/rotate", tag = "channels",
    params(("id" = String, Path, description = "The stored bot's id")),
    request_body = RotationDoc,
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Replaced: the old token or secret no longer works here", body = BotOne),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "No such bot", body = ErrorBody),
        (status = 422, description = "Nothing to rotate, another bot's token, or an invalid secret", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 503, description = "No admin token, or no VITRINE_SECRET_KEY, configured", body = ErrorBody),
    ))]
async fn rotate(
    State(api): State<BotsAdmin>,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<Rotation>,
) -> Result<ApiJson<Value>, ApiError> {
    need_key(&api)?;
    let bot = api.store.rotate(&id, &r).await?;
    tracing::info!(
        bot = %bot.id,
        token = r.token.is_some(),
        secret = r.secret.is_some(),
        "bot credentials rotated"
    );
    Ok(ApiJson(json!({ "data": bot })))
}

/// The bots admin API's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list, add, disable, enable, rotate),
    components(schemas(ErrorBody, BotInfo, NewBotDoc, RotationDoc)),
    tags((name = "channels", description = "Admin: the messenger bots stored in the database, one per business"))
)]
pub struct BotsApi;

/// A new bot (documentation only; the handler reads [`NewBot`]).
#[derive(utoipa::ToSchema)]
#[schema(example = json!({"kind": "telegram", "name": "Acme shop", "token": "123456:AAE…", "secret": "k7Qe2mVbX9pLr4Tz"}))]
#[allow(dead_code)]
struct NewBotDoc {
    /// `telegram` or `whatsapp`.
    kind: String,
    /// The business it answers for.
    name: String,
    /// The bot token (Telegram) or the Graph API access token (WhatsApp).
    token: String,
    /// The webhook secret (Telegram: 1–256 of `A-Za-z0-9_-`, sent by
    /// setWebhook as `secret_token`) or the verify token (WhatsApp).
    secret: Option<String>,
    /// WhatsApp only.
    phone_number_id: Option<String>,
}

/// New credentials; what is absent is kept.
#[derive(utoipa::ToSchema)]
#[schema(example = json!({"secret": "n3wS3cret-value"}))]
#[allow(dead_code)]
struct RotationDoc {
    /// A Telegram token must be the same bot's (BotFather's revoke keeps
    /// the id).
    token: Option<String>,
    secret: Option<String>,
}

/// `{"data": <bot>}`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct BotOne {
    data: BotInfo,
}

/// `{"data": [<bot>…]}`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct BotList {
    data: Vec<BotInfo>,
}
