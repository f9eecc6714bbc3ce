//! `GET /api/v1/products/{id}`: a product's fields and index status, or
//! what its queued first event says while that is not applied yet.

use axum::{
    Json,
    extract::{Path, State},
};
use serde_json::{Value, json};

use super::{ENTITY, ProductStatus, schemas::ProductView, state::CatalogState};
use crate::{error::ApiError, http::schemas::ErrorBody};

#[utoipa::path(get, path = "/api/v1/products/{id}", tag = "catalog",
    params(("id" = String, Path, description = "The product's id", example = "demo-0001")),
    responses(
        (status = 200, description = "The product and its index status", body = ProductView),
        (status = 404, description = "Never heard of", body = ErrorBody),
    ))]
pub async fn get(
    State(st): State<CatalogState>,
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
            "labels": p.labels.as_deref().and_then(|l| serde_json::from_str::<Value>(l).ok()),
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
