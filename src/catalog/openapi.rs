//! BakaiMarket's part of the OpenAPI document: the signed webhook (its
//! `X-Webhook-Signature` scheme and body) and the product lookup.

use utoipa::{Modify, OpenApi};

use crate::http::schemas::ErrorBody;

#[derive(OpenApi)]
#[openapi(
    paths(
        super::webhook::receive,
        super::products::get,
        super::duplicate_routes::of_product,
        super::duplicate_routes::clusters
    ),
    components(schemas(ErrorBody)),
    modifiers(&WebhookSignature)
)]
pub struct CatalogApi;

/// The `webhook_signature` scheme: HMAC-SHA256 of the raw body.
struct WebhookSignature;

impl Modify for WebhookSignature {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        crate::http::openapi::add_header_scheme(
            openapi,
            "webhook_signature",
            "X-Webhook-Signature",
            "`sha256=<hex>`: HMAC-SHA256 of the raw request body with WEBHOOK_SECRET \
             (any of its comma-separated keys, for rotation). `vitrine sign` makes one.",
        );
    }
}
