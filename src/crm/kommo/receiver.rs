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
    http::{extract::read_limited, signature},
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
