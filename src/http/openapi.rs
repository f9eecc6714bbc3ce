//! The OpenAPI 3.1 document of the core routes ([`CoreApi`]; the bodies'
//! shapes are in [`super::schemas`]), the security schemes, and the router
//! that serves `/api/v1/openapi.json` and Swagger UI at `/docs`.
//!
//! Each provider documents its own routes (`Provider::openapi`); `app`
//! merges them with [`document`]. A test in `tests/api/openapi.rs` compares
//! the router's paths with the document's, so a route cannot be forgotten.
//!
//! A new handler gets one `#[utoipa::path(...)]` above it, in the shape of
//! the ones here: its parameters, its body, every status it answers, and
//! `security(("admin_token" = []))` when it is behind the admin token.

use axum::Router;
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_swagger_ui::SwaggerUi;

use super::schemas::ErrorBody;
use crate::inbox::EventStatus;

/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/api/v1/openapi.json";
/// Where Swagger UI is served.
pub const DOCS_PATH: &str = "/docs";

/// The core routes' document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Vitrine",
        description = "Visual product search kept in sync with a marketplace's catalog. \
            Shopper search is public; the event API needs the admin token \
            (`Authorization: Bearer <VITRINE_ADMIN_TOKEN>`); webhooks are signed \
            with HMAC-SHA256 of the raw body.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        super::search::by_image,
        super::search::text,
        super::search::similar,
        super::events::list,
        super::events::get,
        super::events::retry,
        super::events::replay,
        super::events::replay_job,
        super::events::cancel_replay,
        super::health::health,
        super::health::webhooks,
        super::health::metrics,
        super::stats::stats,
    ),
    components(schemas(ErrorBody, EventStatus)),
    modifiers(&AdminToken),
    tags(
        (name = "search", description = "Shopper search: by image (upload or URL), by product, by text, and hybrid"),
        (name = "events", description = "Admin: the event inbox, its history and retries"),
        (name = "ops", description = "Health and metrics"),
        (name = "webhooks", description = "Signed deliveries from the providers"),
        (name = "catalog", description = "Products as Vitrine knows them"),
    )
)]
pub struct CoreApi;

/// The `admin_token` bearer scheme of the event API.
struct AdminToken;

impl Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The value of VITRINE_ADMIN_TOKEN"))
                    .build(),
            ),
        );
    }
}

/// Adds a security scheme of an API key in the request header `header`:
/// how the webhook receivers' signatures and secrets are documented.
pub fn add_header_scheme(
    openapi: &mut utoipa::openapi::OpenApi,
    scheme: &str,
    header: &str,
    description: &str,
) {
    use utoipa::openapi::security::{ApiKey, ApiKeyValue};
    openapi
        .components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            scheme,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                header,
                description,
            ))),
        );
}

/// The whole document: the core's, then each provider's.
pub fn document(
    providers: impl IntoIterator<Item = utoipa::openapi::OpenApi>,
) -> utoipa::openapi::OpenApi {
    let mut doc = CoreApi::openapi();
    for p in providers {
        doc.merge(p);
    }
    doc
}

/// `/api/v1/openapi.json` and Swagger UI under `/docs`, its assets compiled
/// into the binary (`utoipa-swagger-ui`'s `vendored` feature: nothing is
/// fetched at build or run time), with the page headers.
pub fn docs_router(doc: utoipa::openapi::OpenApi) -> Router {
    let ui: Router = SwaggerUi::new(DOCS_PATH).url(DOCUMENT_PATH, doc).into();
    super::headers::with_page_headers(ui, super::headers::SWAGGER_CSP)
}
