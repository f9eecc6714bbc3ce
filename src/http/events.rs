//! Admin event API: history, detail (with every try), manual retry and
//! bulk replay, behind the bearer token `VITRINE_ADMIN_TOKEN`.

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
use utoipa::{IntoParams, ToSchema};

use super::{
    extract::{ApiJson, ApiQuery},
    schemas::{ErrorBody, EventDetail, EventList, ReplayCount, ReplayJobBody, RetryResponse},
    state::AdminState,
};
use crate::{
    error::ApiError,
    inbox::{EventFilter, EventQuery, EventStatus},
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
    /// What the event is about: `product`, `lead`, `contact`, `message`…
    #[param(example = "lead")]
    entity_type: Option<String>,
    /// The provider's finer kind, e.g. `lead_status_changed`.
    #[param(example = "lead_status_changed")]
    event_subtype: Option<String>,
    /// The organisation (a Kommo account's subdomain).
    #[param(example = "acme")]
    org: Option<String>,
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

fn parse_status(s: Option<String>) -> Result<Option<EventStatus>, ApiError> {
    nonempty(s)
        .map(|s| s.parse::<EventStatus>())
        .transpose()
        .map_err(|_| {
            let words: Vec<_> = EventStatus::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::Unprocessable(format!("status must be one of {}", words.join(", ")))
        })
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
    let status = parse_status(p.status)?;
    let page = p.page.unwrap_or(1).max(1);
    let limit = p.limit.unwrap_or(20).clamp(1, 100);
    let query = EventQuery {
        status,
        provider: nonempty(p.provider),
        event_type: nonempty(p.event_type),
        entity_type: nonempty(p.entity_type),
        event_subtype: nonempty(p.event_subtype),
        org: nonempty(p.org),
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

/// `GET /api/v1/events/{id}`: with the full payload and every try,
/// oldest first.
#[utoipa::path(get, path = "/api/v1/events/{id}", tag = "events",
    params(("id" = String, Path, description = "The event's id (its `task_id`)")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The event with its payload and every try, oldest first", body = EventDetail),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such event", body = ErrorBody),
        (status = 503, description = "No admin token configured", body = ErrorBody),
    ))]
pub async fn get(
    State(st): State<AdminState>,
    Path(id): Path<String>,
) -> Result<ApiJson<Value>, ApiError> {
    let rec = st.inbox.get(&id).await?;
    let attempts = st.inbox.attempts(&id).await?;
    Ok(ApiJson(
        json!({ "data": rec.view_with_attempts(&attempts) }),
    ))
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

/// The body of `POST /api/v1/events/replay`: the history API's filters,
/// with the same names and the same rules.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"status": "failed", "provider": "kommo", "start_date": "2026-12-01"}))]
pub struct ReplayBody {
    status: Option<String>,
    provider: Option<String>,
    event_type: Option<String>,
    entity_type: Option<String>,
    event_subtype: Option<String>,
    org: Option<String>,
    start_date: Option<String>,
    end_date: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReplayParams {
    /// Only count what the filter matches; replay nothing.
    #[serde(default)]
    dry_run: bool,
}

/// `POST /api/v1/events/replay[?dry_run=true]`: with `dry_run`, how many
/// events the filter matches and how many a job would replay (the cap);
/// without, starts the job (202) and returns it.
#[utoipa::path(post, path = "/api/v1/events/replay", tag = "events", params(ReplayParams),
    request_body = ReplayBody,
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Dry run: how many events match, and how many a job would replay", body = ReplayCount),
        (status = 202, description = "The replay job, started in the background", body = ReplayJobBody),
        (status = 400, description = "Malformed body or query, or an unknown field", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 422, description = "Unknown status or unreadable date", body = ErrorBody),
        (status = 503, description = "No admin token configured", body = ErrorBody),
    ))]
pub async fn replay(
    State(st): State<AdminState>,
    ApiQuery(p): ApiQuery<ReplayParams>,
    ApiJson(b): ApiJson<ReplayBody>,
) -> Result<(axum::http::StatusCode, ApiJson<Value>), ApiError> {
    let filter = EventFilter {
        status: parse_status(b.status)?,
        provider: nonempty(b.provider),
        event_type: nonempty(b.event_type),
        entity_type: nonempty(b.entity_type),
        event_subtype: nonempty(b.event_subtype),
        org: nonempty(b.org),
        start_ms: nonempty(b.start_date)
            .map(|s| parse_date("start_date", &s, false))
            .transpose()?,
        end_ms: nonempty(b.end_date)
            .map(|s| parse_date("end_date", &s, true))
            .transpose()?,
    };
    if p.dry_run {
        let matched = st.inbox.replay_count(&filter).await?;
        let cap = i64::try_from(st.replay.cap).unwrap_or(i64::MAX);
        return Ok((
            axum::http::StatusCode::OK,
            ApiJson(json!({ "data": {
                "dry_run": true,
                "filter": filter,
                "matched": matched,
                "cap": cap,
                "would_replay": matched.min(cap),
            }})),
        ));
    }
    let job = st
        .inbox
        .start_replay(filter, st.replay, st.wake.clone())
        .await?;
    Ok((
        axum::http::StatusCode::ACCEPTED,
        ApiJson(json!({ "data": job })),
    ))
}

/// `GET /api/v1/events/replay/{job_id}`: a job's progress.
#[utoipa::path(get, path = "/api/v1/events/replay/{job_id}", tag = "events",
    params(("job_id" = String, Path, description = "The job's id")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The job and its progress", body = ReplayJobBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 503, description = "No admin token configured", body = ErrorBody),
    ))]
pub async fn replay_job(
    State(st): State<AdminState>,
    Path(id): Path<String>,
) -> Result<ApiJson<Value>, ApiError> {
    Ok(ApiJson(json!({ "data": st.inbox.replay_job(&id).await? })))
}

/// `POST /api/v1/events/replay/{job_id}/cancel`: the job stops before its
/// next batch.
#[utoipa::path(post, path = "/api/v1/events/replay/{job_id}/cancel", tag = "events",
    params(("job_id" = String, Path, description = "The job's id")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The job, cancelled (or already finished)", body = ReplayJobBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 503, description = "No admin token configured", body = ErrorBody),
    ))]
pub async fn cancel_replay(
    State(st): State<AdminState>,
    Path(id): Path<String>,
) -> Result<ApiJson<Value>, ApiError> {
    Ok(ApiJson(
        json!({ "data": st.inbox.cancel_replay(&id).await? }),
    ))
}
