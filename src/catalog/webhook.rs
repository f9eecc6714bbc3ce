//! `POST /api/v1/webhooks/bakai`: verify, persist, acknowledge.
//!
//! The order of checks is the order of cost: no secret configured (503,
//! fail closed), body too large (413), signature (401) on the raw bytes,
//! JSON syntax (400), event validity (422: duplicate keys, a timestamp
//! beyond the allowed clock skew, anything [`super::validate`] refuses). Only then is the event written
//! to the inbox, and the 200 goes out only after that write has committed
//! (concurrent deliveries share one commit: see [`crate::inbox::intake`]).

use axum::{Json, body::Body, extract::State, http::HeaderMap};
use serde_json::{Value, json};

use super::{
    ParseError,
    schemas::{WebhookAck, WebhookEvent},
    state::CatalogState,
};
use crate::{
    error::ApiError,
    http::{extract::read_limited, schemas::ErrorBody, signature},
};

pub const SIGNATURE_HEADER: &str = "x-webhook-signature";

fn count_error(event_type: &str) {
    metrics::counter!("visual_search_webhooks_errors_total", "event_type" => event_type.to_string())
        .increment(1);
}

/// 400 for a body that is not JSON, 422 for one that is not a valid event.
fn rejection(e: ParseError) -> ApiError {
    match e {
        ParseError::Malformed(_) => ApiError::BadRequest(e.to_string()),
        ParseError::NotAnObject | ParseError::Invalid(_) => ApiError::Unprocessable(e.to_string()),
    }
}

#[utoipa::path(post, path = "/api/v1/webhooks/bakai", tag = "webhooks",
    request_body(content = WebhookEvent, description = "The event; its signature covers these exact bytes"),
    params(("X-Webhook-Signature" = String, Header, description = "`sha256=<hex>` HMAC-SHA256 of the raw body",
        example = "sha256=3f0a9c1e5b7d2f4a6c8e0b1d3f5a7c9e2b4d6f8a0c1e3b5d7f9a2c4e6b8d0f1a")),
    security(("webhook_signature" = [])),
    responses(
        (status = 200, description = "Stored durably and queued (also for a duplicate `event_id`)", body = WebhookAck),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong signature", body = ErrorBody),
        (status = 413, description = "Body larger than server.max_body_bytes", body = ErrorBody),
        (status = 422, description = "JSON, but not a valid event (the reason says which field)", body = ErrorBody),
        (status = 429, description = "Over the per-IP webhook rate", body = ErrorBody),
        (status = 503, description = "No WEBHOOK_SECRET configured", body = ErrorBody),
    ))]
pub async fn receive(
    State(st): State<CatalogState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let secrets = st.secrets.as_slice();
    if secrets.is_empty() {
        count_error("unknown");
        return Err(ApiError::Unavailable(
            "webhooks are disabled: no WEBHOOK_SECRET is configured".into(),
        ));
    }
    let body = read_limited(&headers, body, st.max_body_bytes)
        .await
        .inspect_err(|_| count_error("unknown"))?;
    let header = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    signature::verify(header, &body, secrets).map_err(|e| {
        count_error("unknown");
        ApiError::Unauthorized(format!("invalid webhook signature: {e}"))
    })?;

    // The same parse as the worker's (`super::parse_event`), in its two
    // halves so that rejections are counted by event type when there is one.
    let value = super::parse_json(&body).map_err(|e| {
        count_error("unknown");
        rejection(e)
    })?;
    let event_type = value
        .get("event_type")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_string();
    let event = super::from_json(value)
        .and_then(|ev| {
            ev.check_clock(chrono::Utc::now(), st.max_clock_skew)?;
            Ok(ev)
        })
        .map_err(|e| {
            count_error(&event_type);
            rejection(e)
        })?;
    // Verified and parsed above, so the body is valid UTF-8 JSON.
    let payload = String::from_utf8_lossy(&body).into_owned();
    let inserted = st.inbox.insert(event.to_new_event(payload)).await?;
    // Counted once stored, so a redelivery of the same event is not counted
    // twice; duplicates have their own counter.
    if inserted.duplicate {
        metrics::counter!("visual_search_webhooks_duplicates_total", "event_type" => event.kind.as_str())
            .increment(1);
    } else {
        metrics::counter!("visual_search_webhooks_total", "event_type" => event.kind.as_str())
            .increment(1);
        st.wake.notify_one();
    }
    let mut resp = json!({
        "success": true,
        "message": "Webhook received and queued for processing",
        "event_id": event.event_id,
        "task_id": inserted.task_id,
    });
    if inserted.duplicate {
        resp["duplicate"] = Value::Bool(true);
    }
    Ok(Json(resp))
}
