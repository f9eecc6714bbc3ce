//! Shopper search routes: similar-by-product and search-by-image.

use axum::extract::{Path, Request, State};
use serde_json::{Value, json};

use super::{
    extract::{ApiJson, ApiQuery, drain, read_upload},
    schemas::{ErrorBody, ImageBytes, ImageUpload, SearchResponse},
    state::SearchState,
};
use crate::{error::ApiError, search::SearchParams};

/// `GET /api/v1/products/{id}/similar`
#[utoipa::path(get, path = "/api/v1/products/{id}/similar", tag = "search",
    params(("id" = String, Path, description = "An indexed product's id"), SearchParams),
    responses(
        (status = 200, description = "Products that look like it, best first, never itself", body = SearchResponse),
        (status = 400, description = "Malformed query", body = ErrorBody),
        (status = 404, description = "Not in the index", body = ErrorBody),
        (status = 422, description = "min_price above max_price", body = ErrorBody),
        (status = 429, description = "Over the per-IP search rate", body = ErrorBody),
    ))]
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
#[utoipa::path(post, path = "/api/v1/search/image", tag = "search", params(SearchParams),
    request_body(description = "A JPEG, PNG, WebP or GIF: the multipart field `image`, or the raw bytes as the body",
        content(
            (ImageUpload = "multipart/form-data"),
            (ImageBytes = "application/octet-stream"),
            (ImageBytes = "image/jpeg"),
            (ImageBytes = "image/png"),
        )),
    responses(
        (status = 200, description = "Products that look like the image, best first", body = SearchResponse),
        (status = 400, description = "Malformed query or multipart body", body = ErrorBody),
        (status = 413, description = "Image larger than fetch.max_bytes", body = ErrorBody),
        (status = 422, description = "No image, or not a readable image", body = ErrorBody),
        (status = 429, description = "Too many uploads in flight, or over the per-IP search rate", body = ErrorBody),
    ))]
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
