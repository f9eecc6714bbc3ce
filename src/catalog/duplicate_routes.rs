//! `GET /api/v1/products/{id}/duplicates` (public) and the admin list of
//! clusters, `GET /api/v1/duplicates` (see [`super::duplicates`]).

use axum::{
    Json,
    extract::{Path, State},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ProductStatus, state::CatalogState};
use crate::{
    error::ApiError,
    http::{extract::ApiQuery, schemas::ErrorBody},
};

#[utoipa::path(get, path = "/api/v1/products/{id}/duplicates", tag = "catalog",
    params(("id" = String, Path, description = "The product's id", example = "demo-0001")),
    responses(
        (status = 200, description = "Its near-duplicates, best first", body = DuplicatesBody),
        (status = 404, description = "No such product (or deleted)", body = ErrorBody),
    ))]
pub async fn of_product(
    State(st): State<CatalogState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    match st.products.get(&id).await? {
        Some(p) if p.status != ProductStatus::Deleted => {}
        _ => return Err(ApiError::NotFound(format!("product {id} not found"))),
    }
    let data = st.duplicates.of(&id).await?;
    Ok(Json(json!({ "product_id": id, "data": data })))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ClusterParams {
    /// From 1.
    #[param(minimum = 1, example = 1)]
    page: Option<u32>,
    /// 1 to 100; default 20.
    #[param(example = 20)]
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/duplicates", tag = "catalog", params(ClusterParams),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Clusters of near-duplicate products, largest first", body = ClustersBody),
        (status = 400, description = "Malformed query", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 503, description = "No admin token configured", body = ErrorBody),
    ))]
pub async fn clusters(
    State(st): State<CatalogState>,
    ApiQuery(p): ApiQuery<ClusterParams>,
) -> Result<Json<Value>, ApiError> {
    let page = p.page.unwrap_or(1).max(1);
    let limit = p.limit.unwrap_or(20).clamp(1, 100);
    let offset = (page as usize - 1) * limit as usize;
    let (data, total) = st.duplicates.clusters(offset, limit as usize).await?;
    let total_pages = total.div_ceil(limit as usize);
    Ok(Json(json!({
        "data": data,
        "pagination": { "page": page, "limit": limit, "total": total, "totalPages": total_pages },
    })))
}

/// `{"product_id", "data": [{"product_id", "score", "identical", "found_at"}]}`.
#[derive(utoipa::ToSchema)]
#[schema(example = json!({"product_id": "demo-0001", "data": [{"product_id": "demo-0031",
    "score": 0.93, "identical": false, "found_at": "2026-12-02T10:00:00.000Z"}]}))]
#[allow(dead_code)]
pub struct DuplicatesBody {
    product_id: String,
    #[schema(value_type = Vec<Object>)]
    data: Vec<Value>,
}

/// `{"data": [{"product_ids", "pairs", "best_score"}], "pagination"}`.
#[derive(utoipa::ToSchema)]
#[schema(example = json!({"data": [{"product_ids": ["demo-0001", "demo-0031"], "pairs": 1,
    "best_score": 0.93}], "pagination": {"page": 1, "limit": 20, "total": 1, "totalPages": 1}}))]
#[allow(dead_code)]
pub struct ClustersBody {
    #[schema(value_type = Vec<Object>)]
    data: Vec<Value>,
    #[schema(value_type = Object)]
    pagination: Value,
}
