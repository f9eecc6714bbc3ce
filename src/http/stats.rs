//! `GET /api/v1/stats`: the admin dashboard's figures, per minute over the
//! last hour (or `?minutes=`, 1 to 1440), from the database
//! ([`crate::inbox::stats`] says what each series counts). Behind the admin
//! token, like the event API.

use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    extract::{ApiJson, ApiQuery},
    schemas::ErrorBody,
    state::AdminState,
};
use crate::{
    db::now_ms,
    error::ApiError,
    inbox::stats::{InboxStats, MAX_MINUTES},
};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// The window, in minutes up to now: 1 to 1440; default 60.
    #[param(minimum = 1, maximum = 1440, example = 60)]
    minutes: Option<u32>,
}

/// `GET /api/v1/stats`
#[utoipa::path(get, path = "/api/v1/stats", tag = "ops", params(StatsParams),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Per-minute series over the window, and the queue depth now", body = StatsBody),
        (status = 400, description = "Malformed query", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 422, description = "minutes outside 1 to 1440", body = ErrorBody),
        (status = 503, description = "No admin token configured", body = ErrorBody),
    ))]
pub async fn stats(
    State(st): State<AdminState>,
    ApiQuery(p): ApiQuery<StatsParams>,
) -> Result<ApiJson<Value>, ApiError> {
    let minutes = p.minutes.unwrap_or(60);
    if !(1..=MAX_MINUTES).contains(&minutes) {
        return Err(ApiError::Unprocessable(format!(
            "minutes must be between 1 and {MAX_MINUTES}"
        )));
    }
    let s: InboxStats = st.inbox.stats(minutes, now_ms()).await?;
    Ok(ApiJson(json!({ "data": s })))
}

/// `{"data": …}`: [`InboxStats`] (documentation only).
#[derive(utoipa::ToSchema)]
#[schema(example = json!({"data": {"minutes": 2, "bucket_secs": 60,
    "from": "2026-12-02T10:00:00.000Z", "until": "2026-12-02T10:02:00.000Z",
    "timestamps": [1764669600, 1764669660],
    "received": {"total": [3, 1], "by_provider": {"bakai": [3, 1]},
        "by_status": {"completed": [2, 1], "failed": [1, 0]}},
    "failures": {"final": [1, 0], "final_by_provider": {"bakai": [1, 0]}, "tries": [2, 0]},
    "embeddings": [2, 1],
    "queue_depth": {"pending": 0, "retrying": 0, "processing": 0, "total": 0}}}))]
#[allow(dead_code)]
pub struct StatsBody {
    #[schema(value_type = Object)]
    data: Value,
}
