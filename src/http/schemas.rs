//! The shapes of the JSON bodies the core handlers build with `json!`, for
//! the OpenAPI document ([`super::openapi`]): documentation only, never
//! built. Handlers name them in their `#[utoipa::path]`; keeping them out
//! of `openapi` (which lists the handlers) keeps the modules acyclic.

use serde_json::Value;
use utoipa::ToSchema;

use crate::{inbox::EventRecord, search::SearchResult};

/// Every error response: `{"success": false, "error": "…"}`.
#[derive(ToSchema)]
#[schema(example = json!({"success": false, "error": "missing or invalid bearer token"}))]
#[allow(dead_code)]
pub struct ErrorBody {
    success: bool,
    /// What went wrong, for a person. Never a path, host or credential.
    error: String,
}

/// Search results, best first.
#[derive(ToSchema)]
#[schema(example = json!({"results": [{"product_id": "demo-0009", "score": 0.93,
    "title": "Red leather handbag", "category": "bags", "price": 49.9, "currency": "USD"}],
    "model_version": "effnet-lite0@3f2a9c1e"}))]
#[allow(dead_code)]
pub struct SearchResponse {
    results: Vec<SearchResult>,
    /// The model the query and the index were embedded with.
    model_version: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Pagination {
    page: u32,
    limit: u32,
    total: i64,
    #[serde(rename = "totalPages")]
    total_pages: i64,
}

/// One page of event history, newest first.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct EventList {
    data: Vec<EventRecord>,
    pagination: Pagination,
}

/// An event with its payload (the JSON body as received; a string when it
/// is not JSON).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct EventDetail {
    #[schema(inline)]
    data: EventWithPayload,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct EventWithPayload {
    #[serde(flatten)]
    event: EventRecord,
    payload: Value,
}

/// What `POST /api/v1/events/{id}/retry` answers.
#[derive(ToSchema)]
#[schema(example = json!({"success": true, "message": "Event queued for another try",
    "data": {"id": "0193…", "status": "pending"}}))]
#[allow(dead_code)]
pub struct RetryResponse {
    success: bool,
    message: String,
    data: EventRecord,
}

/// `GET /api/v1/health`. `database`, `index` and `model` each have a
/// `status` of `ok` or `error`; on `error`, `error` names a class of fault.
#[derive(ToSchema)]
#[schema(example = json!({"status": "healthy", "service": "vitrine", "version": "0.1.0",
    "database": {"status": "ok", "engine": "sqlite"},
    "index": {"status": "ok", "backend": "embedded", "points": 24, "dim": 1280},
    "model": {"status": "ok", "name": "effnet-lite0", "version": "effnet-lite0@3f2a9c1e",
        "dim": 1280, "threads": 2, "supports_text": false}}))]
#[allow(dead_code)]
pub struct Health {
    /// `healthy` or `unhealthy`.
    status: String,
    service: String,
    version: String,
    database: Value,
    index: Value,
    model: Value,
}

/// `GET /api/v1/webhooks/health`: the mounted providers and, under each
/// one's name, its status (never a secret).
#[derive(ToSchema)]
#[schema(example = json!({"status": "healthy", "service": "webhooks", "providers": ["bakai"],
    "timestamp": "2026-12-01T10:00:00+00:00", "bakai": {"secret_configured": true},
    "secret_configured": true}))]
#[allow(dead_code)]
pub struct WebhooksHealth {
    status: String,
    service: String,
    providers: Vec<String>,
    timestamp: String,
    /// BakaiMarket's `secret_configured`, kept at the top level too.
    secret_configured: Option<bool>,
}

/// The multipart form of an image search.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ImageUpload {
    #[schema(value_type = String, format = Binary)]
    image: Vec<u8>,
}

/// An image sent as the raw request body.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct ImageBytes(Vec<u8>);
