//! `POST /api/v1/webhooks/kommo/{secret}`: check, store, acknowledge.
//!
//! In the order of cost: body size (413), the URL secret (401, compared in
//! constant time; see [`super::orgs`]), the optional HMAC header (401), the
//! form body (400), the account against the organisation's pins (401: the
//! secret is not that account's). Then one inbox event per entity change,
//! and the 200 only once they are committed; the rules run later, in the
//! worker. Nothing is stored before every check has passed.

use std::sync::Arc;

use axum::{
    Json,
    body::Body,
    extract::{Path, State},
    http::HeaderMap,
};
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::{delivery::Delivery, event::KommoEvent, form, orgs::Organisations};
use crate::{
    config::Secret,
    error::ApiError,
    http::{extract::read_limited, schemas::ErrorBody, signature},
    inbox::Inbox,
};

/// The header a signing sender puts its HMAC in, when
/// `crm.kommo_signature_secret` is set.
pub const SIGNATURE_HEADER: &str = "x-signature";

#[derive(Clone)]
pub struct ReceiverState {
    pub orgs: Organisations,
    pub signature_secret: Option<Secret>,
    pub max_body_bytes: usize,
    pub inbox: Inbox,
    pub wake: Arc<Notify>,
}

fn count(outcome: &'static str) {
    metrics::counter!("visual_search_kommo_webhooks_total", "outcome" => outcome).increment(1);
}

#[utoipa::path(post, path = "/api/v1/webhooks/kommo/{secret}", tag = "webhooks",
    params(("secret" = String, Path, description = "The organisation's webhook secret (KOMMO_WEBHOOK_SECRET for the default one); Kommo does not sign")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "Kommo's form body: nested keys such as `leads[status][0][id]` and `account[subdomain]`",
        example = json!("leads[status][0][id]=25399013&leads[status][0][status_id]=142&leads[status][0][pipeline_id]=3166396&account[subdomain]=acme&account[id]=29085955")),
    security((), ("kommo_signature" = [])),
    responses(
        (status = 200, description = "One stored event per entity change", body = KommoAck),
        (status = 400, description = "Not a form body", body = ErrorBody),
        (status = 401, description = "Unknown secret, bad signature (when one is required), or an account that is not this secret's", body = ErrorBody),
        (status = 413, description = "Body over server.max_body_bytes", body = ErrorBody),
    ))]
pub async fn receive(
    State(st): State<ReceiverState>,
    Path(secret): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let body = read_limited(&headers, body, st.max_body_bytes)
        .await
        .inspect_err(|_| count("rejected"))?;
    let unauthorized = |why: &str| {
        count("unauthorized");
        ApiError::Unauthorized(why.to_string())
    };
    let Some(org) = st.orgs.resolve(&secret).await? else {
        return Err(unauthorized("unknown webhook secret"));
    };
    if let Some(key) = &st.signature_secret {
        let header = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
        signature::verify(header, &body, std::slice::from_ref(key))
            .map_err(|e| unauthorized(&format!("invalid webhook signature: {e}")))?;
    }
    let tree = form::decode(&body).map_err(|e| {
        count("rejected");
        ApiError::BadRequest(format!("malformed form body: {e}"))
    })?;
    let delivery = Delivery::from_tree(&tree);
    if !org.admits(&delivery.account) {
        return Err(unauthorized(
            "the delivery's account is not the one of this webhook secret",
        ));
    }
    let events = KommoEvent::from_delivery(&org.name, &delivery);
    // Concurrent inserts share one group commit (inbox::intake).
    let stored =
        futures::future::try_join_all(events.iter().map(|e| st.inbox.insert(e.to_new_event())))
            .await?;
    let mut out = Vec::with_capacity(events.len());
    let mut fresh = false;
    for (e, s) in events.iter().zip(&stored) {
        fresh |= !s.duplicate;
        count(if s.duplicate { "duplicate" } else { "stored" });
        out.push(json!({
            "task_id": s.task_id,
            "event_subtype": e.subtype,
            "entity_type": e.entity_type,
            "entity_id": e.entity_id,
            "duplicate": s.duplicate,
        }));
    }
    if fresh {
        st.wake.notify_one();
    }
    Ok(Json(json!({
        "success": true,
        "organisation": org.name,
        "events": out,
    })))
}

#[derive(utoipa::ToSchema)]
#[schema(example = json!({"success": true, "organisation": "acme", "events": [{"task_id": "0193a1b2-…",
    "event_subtype": "lead_status_changed", "entity_type": "lead", "entity_id": "25399013", "duplicate": false}]}))]
#[allow(dead_code)]
pub struct KommoAck {
    success: bool,
    organisation: String,
    #[schema(value_type = Vec<Object>)]
    events: Vec<Value>,
}

/// The Kommo receiver's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(receive), components(schemas(ErrorBody, KommoAck)), modifiers(&KommoSignature))]
pub struct KommoApi;

struct KommoSignature;

impl utoipa::Modify for KommoSignature {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        crate::http::openapi::add_header_scheme(
            openapi,
            "kommo_signature",
            "X-Signature",
            "Optional (crm.kommo_signature_secret): `sha256=<hex>` HMAC-SHA256 of the raw body",
        );
    }
}
