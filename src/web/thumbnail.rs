//! `GET /api/v1/products/{id}/thumbnail`: the JPEG made at ingest, with a
//! strong `ETag` (`If-None-Match` gets a 304) and a short public cache
//! life, since a product's photo can change.

use axum::{
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use super::WebState;
use crate::{
    error::ApiError,
    http::schemas::{ErrorBody, ImageBytes},
};

/// Browsers and proxies may keep a thumbnail five minutes, then revalidate
/// with its `ETag` (a 304 costs no body).
pub const CACHE_CONTROL: &str = "public, max-age=300, must-revalidate";

#[utoipa::path(get, path = "/api/v1/products/{id}/thumbnail", tag = "catalog",
    params(("id" = String, Path, description = "The product's id", example = "demo-0001"),
        ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer")),
    responses(
        (status = 200, description = "A JPEG at most 320 pixels on its longest side",
            content_type = "image/jpeg", body = ImageBytes,
            headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "Not modified since the given ETag"),
        (status = 404, description = "No thumbnail (unknown product, or its image not fetched yet)", body = ErrorBody),
    ))]
pub async fn serve(
    State(st): State<WebState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(t) = st.thumbs.get(&id).await? else {
        return Err(ApiError::NotFound(format!("no thumbnail for product {id}")));
    };
    let etag = HeaderValue::from_str(&t.etag).map_err(|e| ApiError::Internal(e.into()))?;
    let cache = [
        (header::ETAG, etag),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static(CACHE_CONTROL),
        ),
    ];
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == t.etag
        });
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, cache).into_response());
    }
    let content_type =
        HeaderValue::from_str(&t.content_type).map_err(|e| ApiError::Internal(e.into()))?;
    Ok((cache, [(header::CONTENT_TYPE, content_type)], t.bytes).into_response())
}
