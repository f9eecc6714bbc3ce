//! Admin event API: history, detail and manual retry, behind the bearer
//! token `VITRINE_ADMIN_TOKEN`.

use axum::{
    extract::{Path, Request, State},
    http::header::AUTHORIZATION,
    middleware::Next,
    response::Response,
};
use chrono::{NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use utoipa::IntoParams;

use super::{
    extract::{ApiJson, ApiQuery},
    schemas::{ErrorBody, EventDetail, EventList, RetryResponse},
    state::AdminState,
};
use crate::{
    error::ApiError,
    inbox::{EventQuery, EventStatus},
};

/// Middleware: the admin API fails closed when no token is configured.
pub async fn require_admin(
    State(st): State<AdminState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(token) = st
        .token
        .as_ref()
        .map(|t| t.expose())
        .filter(|t| !t.trim().is_empty())
    else {
        return Err(ApiError::Unavailable(
            "the admin API is disabled: set VITRINE_ADMIN_TOKEN".into(),
        ));
    };
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Compare digests, so the comparison takes the same time whatever the
    // length or content of the guess.
    let equal = Sha256::digest(given.as_bytes()) == Sha256::digest(token.as_bytes());
    if !equal {
        return Err(ApiError::Unauthorized(
            "missing or invalid bearer token".into(),
        ));
    }
    Ok(next.run(req).await)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// From 1.
    #[param(minimum = 1, example = 1)]
    page: Option<u32>,
    /// 1 to 100; default 20.
    #[param(example = 20)]
    limit: Option<u32>,
    /// pending, processing, completed, failed or retrying.
    #[param(example = "failed")]
    status: Option<String>,
    #[param(example = "bakai")]
    provider: Option<String>,
    #[param(example = "product.created")]
    event_type: Option<String>,
    /// `YYYY-MM-DD` (that day's start) or RFC 3339.
    #[param(example = "2026-11-22")]
    start_date: Option<String>,
    /// `YYYY-MM-DD` (through that day's end) or RFC 3339.
    #[param(example = "2026-11-30")]
    end_date: Option<String>,
}

/// RFC 3339, or a plain date: the start of that day, or with `end_of_day`
/// its last millisecond (so `end_date=2026-11-22` includes that day).
fn parse_date(field: &str, s: &str, end_of_day: bool) -> Result<i64, ApiError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
        ApiError::Unprocessable(format!("{field} must be YYYY-MM-DD or RFC 3339, not `{s}`"))
    })?;
    let t = if end_of_day {
        d.and_hms_milli_opt(23, 59, 59, 999)
    } else {
        d.and_hms_opt(0, 0, 0)
    }
    .expect("valid time of day");
    Ok(t.and_utc().timestamp_millis())
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.filter(|v| !v.trim().is_empty())
}

/// `GET /api/v1/events`
#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(ListParams),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "One page of events, newest first", body = EventList),
        (status = 400, description = "Malformed query", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 422, description = "Unknown status or unreadable date", body = ErrorBody),
        (status = 503, description = "No admin token configured", body = ErrorBody),
    ))]
pub async fn list(
    State(st): State<AdminState>,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<ApiJson<Value>, ApiError> {
    let status = nonempty(p.status)
        .map(|s| s.parse::<EventStatus>())
        .transpose()
        .map_err(|_| {
            let words: Vec<_> = EventStatus::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::Unprocessable(format!("status must be one of {}", words.join(", ")))
        })?;
    let page = p.page.unwrap_or(1).max(1);
    let limit = p.limit.unwrap_or(20).clamp(1, 100);
    let query = EventQuery {
        status,
        provider: nonempty(p.provider),
        event_type: nonempty(p.event_type),
        start_ms: nonempty(p.start_date)
            .map(|s| parse_date("start_date", &s, false))
            .transpose()?,
        end_ms: nonempty(p.end_date)
            .map(|s| parse_date("end_date", &s, true))
            .transpose()?,
        page,
        limit,
    };
    let (rows, total) = st.inbox.list(&query).await?;
    let total_pages = (total + i64::from(limit) - 1) / i64::from(limit);
    Ok(ApiJson(json!({
        "data": rows.iter().map(|r| r.view(false)).collect::<Vec<_>>(),
        "pagination": { "page": page, "limit": limit, "total": total, "totalPages": total_pages },
    })))
}

/// `GET /api/v1/events/{id}`: with the full payload.
#[utoipa::path(get, path = "/api/v1/events/{id}", tag = "events",
    params(("id" = String, Path, description = "The event's id (its `task_id`)")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The event with its payload", body = EventDetail),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such event", body = ErrorBody),
        (status = 503, description = "No admin token configured", body = ErrorBody),
    ))]
pub async fn get(
    State(st): State<AdminState>,
    Path(id): Path<String>,
) -> Result<ApiJson<Value>, ApiError> {
    let rec = st.inbox.get(&id).await?;
    Ok(ApiJson(json!({ "data": rec.view(true) })))
}

/// `POST /api/v1/events/{id}/retry`
#[utoipa::path(post, path = "/api/v1/events/{id}/retry", tag = "events",
    params(("id" = String, Path, description = "The event's id (its `task_id`)")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Put back to pending", body = RetryResponse),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such event", body = ErrorBody),
        (status = 409, description = "Being processed right now", body = ErrorBody),
        (status = 503, description = "No admin token configured", body = ErrorBody),
    ))]
pub async fn retry(
    State(st): State<AdminState>,
    Path(id): Path<String>,
) -> Result<ApiJson<Value>, ApiError> {
    let rec = st.inbox.retry(&id).await?;
    st.wake.notify_one();
    tracing::info!(id = %id, at = %Utc::now(), "manual retry requested");
    Ok(ApiJson(json!({
        "success": true,
        "message": "Event queued for another try",
        "data": rec.view(false),
    })))
}
