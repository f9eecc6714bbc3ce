//! The bodies of BakaiMarket's routes for the OpenAPI document
//! ([`super::openapi`]): they describe what the handlers take and build
//! with `json!`, and are never built themselves.

use utoipa::ToSchema;

use super::{EventKind, ProductData, ProductStatus};

/// A product event as BakaiMarket sends it.
#[derive(ToSchema)]
#[schema(example = json!({"event_type": "product.created", "event_id": "evt-0001",
    "timestamp": "2026-12-01T10:00:00Z",
    "data": {"product_id": "demo-0001", "title": "Red leather handbag", "category": "bags",
        "price": 49.9, "currency": "USD", "image_key": "demo-0001.jpg"}}))]
#[allow(dead_code)]
pub struct WebhookEvent {
    event_type: EventKind,
    /// The dedup key: a redelivery with the same id is acknowledged once more, not stored twice.
    event_id: String,
    /// RFC 3339; at most `bakai.max_clock_skew_secs` ahead of the server's clock.
    #[schema(format = DateTime)]
    timestamp: String,
    data: ProductData,
}

/// The acknowledgement: the event is stored and queued.
#[derive(ToSchema)]
#[schema(example = json!({"success": true, "message": "Webhook received and queued for processing",
    "event_id": "evt-0001", "task_id": "0193b2c4-7d1e-7a60-9f0e-2b9d3c4e5f60"}))]
#[allow(dead_code)]
pub struct WebhookAck {
    success: bool,
    message: String,
    event_id: String,
    /// The inbox event's id, for `GET /api/v1/events/{id}`.
    task_id: String,
    /// Present and true when this `event_id` was stored before.
    duplicate: Option<bool>,
}

/// A product as Vitrine knows it, or, while its first event is queued,
/// what that event says (`status: pending`).
#[derive(ToSchema)]
#[schema(example = json!({"product_id": "demo-0001", "title": "Red leather handbag",
    "description": "Soft leather, two pockets", "category": "bags", "price": 49.9,
    "currency": "USD", "image": "demo-0001.jpg", "image_sha256": "9f86d081…",
    "status": "indexed", "error": null, "model_version": "effnet-lite0@3f2a9c1e",
    "embed_count": 1, "last_event_id": "evt-0001",
    "updated_at": "2026-12-01T10:00:00+00:00", "pending_event": null}))]
#[allow(dead_code)]
pub struct ProductView {
    product_id: String,
    title: Option<String>,
    description: Option<String>,
    category: Option<String>,
    price: Option<f64>,
    currency: Option<String>,
    image: Option<String>,
    image_sha256: Option<String>,
    status: ProductStatus,
    error: Option<String>,
    model_version: Option<String>,
    embed_count: i64,
    last_event_id: Option<String>,
    updated_at: Option<String>,
    /// The inbox id of an event for this product not applied yet.
    pending_event: Option<String>,
}
