//! Product lookup and shopper search routes.

use axum::{
    Json,
    body::Body,
    extract::{FromRequest, Multipart, Path, Query, Request, State, rejection::QueryRejection},
    http::header::CONTENT_TYPE,
};
use serde_json::{Value, json};

use super::webhook::read_limited;
use crate::{
    app::AppState,
    catalog::{ProductStatus, sync::ENTITY},
    error::ApiError,
    search::SearchParams,
};

fn params(q: Result<Query<SearchParams>, QueryRejection>) -> Result<SearchParams, ApiError> {
    q.map(|Query(p)| p)
        .map_err(|e| ApiError::BadRequest(format!("invalid query parameters: {}", e.body_text())))
}

/// `GET /api/v1/products/{id}`: metadata plus index status.
pub async fn get(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let unprocessed = st.inbox.latest_unprocessed(ENTITY, &id).await?;
    if let Some(p) = st.products.get(&id).await? {
        let updated_at =
            chrono::DateTime::from_timestamp_millis(p.updated_at).map(|t| t.to_rfc3339());
        return Ok(Json(json!({
            "product_id": p.product_id,
            "title": p.title,
            "description": p.description,
            "category": p.category,
            "price": p.price,
            "currency": p.currency,
            "image": p.image_ref,
            "image_sha256": p.image_sha256,
            "status": p.status,
            "error": p.error,
            "model_version": p.model_version,
            "embed_count": p.embed_count,
            "last_event_id": p.last_event_id,
            "updated_at": updated_at,
            "pending_event": unprocessed.map(|e| e.id),
        })));
    }
    // Not applied yet: report what the queued event says.
    match unprocessed {
        Some(e) => {
            let data = serde_json::from_str::<Value>(&e.payload)
                .ok()
                .and_then(|v| v.get("data").cloned())
                .unwrap_or(Value::Null);
            Ok(Json(json!({
                "product_id": id,
                "title": data.get("title"),
                "description": data.get("description"),
                "category": data.get("category"),
                "price": data.get("price"),
                "currency": data.get("currency"),
                "status": ProductStatus::Pending,
                "error": e.error,
                "embed_count": 0,
                "pending_event": e.id,
            })))
        }
        None => Err(ApiError::NotFound(format!("product {id} not found"))),
    }
}

/// `GET /api/v1/products/{id}/similar`
pub async fn similar(
    State(st): State<AppState>,
    Path(id): Path<String>,
    q: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let p = params(q)?;
    let started = std::time::Instant::now();
    let results = st.search.similar_to(&id, &p).await?;
    metrics::histogram!("visual_search_search_duration_seconds", "kind" => "product")
        .record(started.elapsed().as_secs_f64());
    Ok(Json(
        json!({ "results": results, "model_version": st.embed.info().version }),
    ))
}

/// `POST /api/v1/search/image`: multipart field `image`, or the raw image as
/// the body.
pub async fn by_image(
    State(st): State<AppState>,
    q: Result<Query<SearchParams>, QueryRejection>,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    let p = params(q)?;
    let limit = st.settings.fetch_max_bytes;
    let is_multipart = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("multipart/form-data"));
    let bytes = if is_multipart {
        let mut mp = Multipart::from_request(req, &st)
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        let mut found = None;
        while let Some(field) = mp.next_field().await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(format!("image is larger than the {limit}-byte limit"))
            } else {
                ApiError::BadRequest(e.body_text())
            }
        })? {
            if field.name() == Some("image") {
                found = Some(field.bytes().await.map_err(|e| {
                    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                        ApiError::PayloadTooLarge(format!(
                            "image is larger than the {limit}-byte limit"
                        ))
                    } else {
                        ApiError::BadRequest(e.body_text())
                    }
                })?);
                break;
            }
        }
        found
            .ok_or_else(|| ApiError::Unprocessable("multipart body has no `image` field".into()))?
    } else {
        let (parts, body) = req.into_parts();
        read_limited(&parts.headers, Body::new(body), limit).await?
    };
    if bytes.is_empty() {
        return Err(ApiError::Unprocessable("no image in the request".into()));
    }
    let started = std::time::Instant::now();
    let results = st.search.by_image(bytes, &p).await?;
    metrics::histogram!("visual_search_search_duration_seconds", "kind" => "image")
        .record(started.elapsed().as_secs_f64());
    Ok(Json(
        json!({ "results": results, "model_version": st.embed.info().version }),
    ))
}
