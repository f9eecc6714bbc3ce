//! The shapes of the JSON bodies the core handlers build with `json!`, for
//! the OpenAPI document ([`super::openapi`]): documentation only, never
//! built. Handlers name them in their `#[utoipa::path]`; keeping them out
//! of `openapi` (which lists the handlers) keeps the modules acyclic.

use serde_json::Value;
use utoipa::ToSchema;

use crate::{inbox::EventRecord, search::SearchResult};

/// Any JSON value (`"type"` lists every JSON type): for a body kept as it
/// was received.
pub fn any_json() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::Array(vec![
            Type::Object,
            Type::Array,
            Type::String,
            Type::Number,
            Type::Boolean,
            Type::Null,
        ]))
        .build()
}

/// Every error response: `{"success": false, "error": "…"}`.
#[derive(ToSchema)]
#[schema(example = json!({"success": false, "error": "missing or invalid bearer token"}))]
#[allow(dead_code)]
pub struct ErrorBody {
    success: bool,
    /// What went wrong, for a person. Never a path, host or credential.
    error: String,
}

/// One page of search results, best first.
#[derive(ToSchema)]
#[schema(example = json!({"results": [{"product_id": "demo-0009", "score": 0.93,
    "title": "Red leather handbag", "category": "bags", "price": 49.9, "currency": "USD",
    "signals": {"vector": 0.93, "text": false, "label": false}}],
    "next_offset": 10, "model_version": "effnet-lite0@3f2a9c1e"}))]
#[allow(dead_code)]
pub struct SearchResponse {
    results: Vec<SearchResult>,
    /// Where the next page starts (`offset`), or null after the last one.
    next_offset: Option<usize>,
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
    #[schema(schema_with = any_json)]
    payload: Value,
    /// Every processing try, oldest first.
    attempts: Vec<AttemptBody>,
}

/// One processing try of an event.
#[derive(ToSchema)]
#[schema(example = json!({"kind": "automatic", "started_at": "2026-12-01T10:00:00.120Z",
    "ended_at": "2026-12-01T10:00:00.480Z", "outcome": "retrying",
    "error": "fetching the image: the host answered 503"}))]
#[allow(dead_code)]
pub struct AttemptBody {
    /// `automatic` (first try, scheduled retry, lease taken over) or
    /// `manual` (the first try after an operator's retry).
    kind: String,
    started_at: String,
    /// Null while the try runs.
    ended_at: Option<String>,
    /// `completed`, `retrying`, `failed`, `released` or `abandoned`; null
    /// while the try runs.
    outcome: Option<String>,
    error: Option<String>,
}

/// `POST /api/v1/events/replay?dry_run=true`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ReplayCount {
    #[schema(inline)]
    data: ReplayCountData,
}

#[derive(ToSchema)]
#[schema(example = json!({"dry_run": true, "filter": {"status": "failed"}, "matched": 12,
    "cap": 10000, "would_replay": 12}))]
#[allow(dead_code)]
pub struct ReplayCountData {
    dry_run: bool,
    /// The filter as understood.
    #[schema(value_type = Object)]
    filter: Value,
    /// Events the filter matches now.
    matched: i64,
    /// The most events one job replays (`inbox.replay_cap`).
    cap: i64,
    would_replay: i64,
}

/// A bulk replay job.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ReplayJobBody {
    #[schema(inline)]
    data: ReplayJobData,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ReplayJobData {
    id: String,
    #[schema(value_type = Object)]
    filter: Value,
    /// `running`, `completed`, `cancelled` or `failed`.
    status: String,
    /// Events the filter matched when the job started.
    matched: i64,
    cap: i64,
    /// Events put back to `pending` so far.
    replayed: i64,
    /// Events passed over because they were being processed.
    skipped: i64,
    cancel_requested_at: Option<String>,
    error: Option<String>,
    created_at: String,
    updated_at: String,
    finished_at: Option<String>,
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
/// Background-measured parts (`image_source`, a messenger's `telegram`)
/// appear beside them with a `status` of `ok`, `degraded` or `error`.
#[derive(ToSchema)]
#[schema(example = json!({"status": "healthy", "service": "vitrine", "version": "0.1.0",
    "database": {"status": "ok", "engine": "sqlite"},
    "index": {"status": "ok", "backend": "embedded", "points": 24, "dim": 1280},
    "model": {"status": "ok", "name": "effnet-lite0", "version": "effnet-lite0@3f2a9c1e",
        "dim": 1280, "threads": 2, "supports_text": false}}))]
#[allow(dead_code)]
pub struct Health {
    /// `healthy` or `degraded`.
    status: String,
    service: String,
    version: String,
    #[schema(value_type = Object)]
    database: Value,
    #[schema(value_type = Object)]
    index: Value,
    #[schema(value_type = Object)]
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
