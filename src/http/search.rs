//! Shopper search routes: similar-by-product and search-by-image.

use axum::extract::{Path, Request, State};
use serde_json::{Value, json};

use super::{
    extract::{ApiJson, ApiQuery, drain, read_upload},
    state::SearchState,
};
use crate::{error::ApiError, search::SearchParams};

/// `GET /api/v1/products/{id}/similar`
pub async fn similar(
    State(st): State<SearchState>,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<SearchParams>,
) -> Result<ApiJson<Value>, ApiError> {
    let started = std::time::Instant::now();
    let results = st.search.similar_to(&id, &p).await?;
    metrics::histogram!("visual_search_search_duration_seconds", "kind" => "product")
        .record(started.elapsed().as_secs_f64());
    Ok(ApiJson(
        json!({ "results": results, "model_version": st.embed.info().version }),
    ))
}

/// `POST /api/v1/search/image`: multipart field `image`, or the raw image as
/// the body.
pub async fn by_image(
    State(st): State<SearchState>,
    ApiQuery(p): ApiQuery<SearchParams>,
    req: Request,
) -> Result<ApiJson<Value>, ApiError> {
    // Taken before the body is read, and held until the search is done: the
    // body and its decoded image are what it bounds.
    // Refused uploads are drained like a 413 (see `extract::drain`), so the
    // client reads the 429; draining discards, it holds nothing.
    let _permit = match st.upload_permits.try_acquire() {
        Ok(p) => p,
        Err(e) => {
            let (parts, body) = req.into_parts();
            drain(&parts.headers, body, st.max_upload_bytes, 0).await;
            return Err(e);
        }
    };
    let bytes = read_upload(req, "image", st.max_upload_bytes).await?;
    if bytes.is_empty() {
        return Err(ApiError::Unprocessable("no image in the request".into()));
    }
    let started = std::time::Instant::now();
    let results = st.search.by_image(bytes, &p).await?;
    metrics::histogram!("visual_search_search_duration_seconds", "kind" => "image")
        .record(started.elapsed().as_secs_f64());
    Ok(ApiJson(
        json!({ "results": results, "model_version": st.embed.info().version }),
    ))
}
