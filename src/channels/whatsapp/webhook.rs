//! `GET /api/v1/webhooks/whatsapp`: the subscription handshake (200 with
//! `hub.challenge` as plain text, 403 for a wrong token or mode, 400 for
//! missing parameters).
//!
//! `POST /api/v1/webhooks/whatsapp`: 503 without an app secret (fail
//! closed), 413 for an oversized body, 401 for a missing or wrong
//! `X-Hub-Signature-256` (HMAC-SHA256 of the raw bytes), 400 for a body
//! that is not a delivery, 401 when it is only for stored numbers that are
//! disabled (their parts are never stored). Then every message, status and
//! other change is stored as an event of its own ([`super::payload::split`]), deduplicated
//! by its `wamid`, and only then the 200 goes out.

use std::collections::HashMap;

use axum::{
    Json,
    body::Body,
    extract::{Query, State},
    http::HeaderMap,
};
use serde_json::{Value, json};

use super::{PROVIDER, payload::split, state::WhatsappState};
use crate::{
    error::ApiError,
    http::{extract::read_limited, schemas::ErrorBody, signature},
    inbox::NewEvent,
};

pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

#[utoipa::path(get, path = "/api/v1/webhooks/whatsapp", tag = "webhooks",
    params(
        ("hub.mode" = String, Query, description = "`subscribe`"),
        ("hub.verify_token" = String, Query, description = "WHATSAPP_VERIFY_TOKEN"),
        ("hub.challenge" = String, Query, description = "Echoed back on success"),
    ),
    responses(
        (status = 200, description = "The challenge, as plain text", body = String, content_type = "text/plain"),
        (status = 400, description = "A parameter is missing", body = ErrorBody),
        (status = 403, description = "Wrong mode or verify token", body = ErrorBody),
    ))]
pub async fn handshake(
    State(st): State<WhatsappState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<String, ApiError> {
    let (Some(mode), Some(token), Some(challenge)) = (
        q.get("hub.mode"),
        q.get("hub.verify_token"),
        q.get("hub.challenge"),
    ) else {
        return Err(ApiError::BadRequest(
            "hub.mode, hub.verify_token and hub.challenge are required".into(),
        ));
    };
    if mode != "subscribe" || !st.numbers.verify_token_matches(token).await {
        return Err(ApiError::Forbidden("verification failed".into()));
    }
    Ok(challenge.clone())
}

fn count_error() {
    metrics::counter!("visual_search_webhooks_errors_total", "event_type" => "whatsapp")
        .increment(1);
}

#[utoipa::path(post, path = "/api/v1/webhooks/whatsapp", tag = "webhooks",
    request_body(content = Object, description = "A WhatsApp Cloud API delivery (`object`, `entry[].changes[].value`)",
        example = json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages",
            "value": {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "contacts": [{"profile": {"name": "Aida"}, "wa_id": "996700000001"}],
            "messages": [{"from": "996700000001", "id": "wamid.HBgM…", "timestamp": "1733050000", "type": "text", "text": {"body": "red bag"}}]}}]}]})),
    security(("whatsapp_signature" = [])),
    responses(
        (status = 200, description = "Every message and status stored (duplicates by wamid counted)", body = WhatsappAck),
        (status = 400, description = "Not a delivery", body = ErrorBody),
        (status = 401, description = "Missing or wrong X-Hub-Signature-256, or only for disabled numbers", body = ErrorBody),
        (status = 413, description = "Body over server.max_body_bytes", body = ErrorBody),
        (status = 503, description = "No WHATSAPP_APP_SECRET configured (fails closed)", body = ErrorBody),
    ))]
pub async fn receive(
    State(st): State<WhatsappState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let Some(secret) = st.app_secret.clone() else {
        count_error();
        return Err(ApiError::Unavailable(
            "WhatsApp webhooks are disabled: no WHATSAPP_APP_SECRET is configured".into(),
        ));
    };
    let body = read_limited(&headers, body, st.max_body_bytes)
        .await
        .inspect_err(|_| count_error())?;
    let header = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    signature::verify(header, &body, std::slice::from_ref(&secret)).map_err(|e| {
        count_error();
        ApiError::Unauthorized(format!("invalid X-Hub-Signature-256: {e}"))
    })?;
    let all = split(&body).map_err(|e| {
        count_error();
        ApiError::BadRequest(e.to_string())
    })?;
    // A stored number that is disabled: its parts are not stored. When
    // they are all there is, 401, as for a disabled Telegram bot.
    let mut parts = Vec::with_capacity(all.len());
    let mut refused = 0;
    for p in all {
        match &p.phone_number_id {
            Some(id) if st.numbers.is_disabled(id).await => refused += 1,
            _ => parts.push(p),
        }
    }
    if parts.is_empty() && refused > 0 {
        count_error();
        return Err(ApiError::Unauthorized(
            "this WhatsApp number is disabled here".into(),
        ));
    }
    let inserts = parts.iter().map(|p| {
        st.inbox.insert(NewEvent {
            provider: PROVIDER.into(),
            external_id: p.external_id.clone(),
            event_type: p.kind.into(),
            event_subtype: p.subtype.clone(),
            entity_type: p.from.as_ref().map(|_| "whatsapp_contact".to_string()),
            entity_id: p
                .from
                .as_ref()
                .map(|f| format!("{}:{f}", p.phone_number_id.as_deref().unwrap_or(""))),
            org: p.phone_number_id.clone(),
            payload: p.payload.to_string(),
        })
    });
    // Concurrent inserts share one group commit (`inbox::intake`).
    let results = futures::future::try_join_all(inserts).await?;
    let mut duplicates = 0;
    for (p, r) in parts.iter().zip(&results) {
        if r.duplicate {
            duplicates += 1;
        } else {
            crate::channels::count_update(PROVIDER, p.subtype.as_deref().unwrap_or(p.kind));
        }
    }
    if duplicates < results.len() {
        st.wake.notify_one();
    }
    Ok(Json(json!({
        "ok": true,
        "stored": results.len() - duplicates,
        "duplicates": duplicates,
        "refused": refused,
        "task_ids": results.iter().map(|r| r.task_id.clone()).collect::<Vec<_>>(),
    })))
}

#[derive(utoipa::ToSchema)]
#[schema(example = json!({"ok": true, "stored": 1, "duplicates": 0, "refused": 0, "task_ids": ["0193a1b2-…"]}))]
#[allow(dead_code)]
pub struct WhatsappAck {
    ok: bool,
    stored: usize,
    duplicates: usize,
    /// Parts for disabled numbers, not stored.
    refused: usize,
    task_ids: Vec<String>,
}

/// WhatsApp's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(handshake, receive), components(schemas(ErrorBody, WhatsappAck)),
    modifiers(&HubSignature))]
pub struct WhatsappApi;

struct HubSignature;

impl utoipa::Modify for HubSignature {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        crate::http::openapi::add_header_scheme(
            openapi,
            "whatsapp_signature",
            "X-Hub-Signature-256",
            "`sha256=<hex>`: HMAC-SHA256 of the raw body with WHATSAPP_APP_SECRET",
        );
    }
}
