//! `GET /api/v1/stats`: the admin dashboard's figures, per minute over the
//! last hour (or `?minutes=`, 1 to 1440), from the database
//! ([`crate::inbox::stats`] says what each series counts). Behind the admin
//! token, like the event API.

use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    extract::{ApiJson, ApiQuery},
    state::AdminState,
};
use crate::{
    db::now_ms,
    error::ApiError,
    inbox::stats::{InboxStats, MAX_MINUTES},
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsParams {
    minutes: Option<u32>,
}

/// `GET /api/v1/stats`
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
