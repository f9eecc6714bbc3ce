//! BakaiMarket as a [`Provider`]: its routes (the signed webhook and the
//! product lookup), its inbox handler ([`CatalogSync`]) and its settings
//! section (`[bakai]`).

use std::sync::Arc;

use super::{CatalogSync, PROVIDER, ProductStore, products, state::CatalogState, webhook};
use crate::{
    inbox::EventHandler,
    provider::{Core, Provider},
};
use axum::{
    Router,
    routing::{get, post},
};

pub struct Catalog {
    state: CatalogState,
    /// The admin token check, for the duplicate clusters.
    admin_auth: crate::http::state::AdminState,
    sync: Arc<CatalogSync>,
}

impl Catalog {
    pub fn new(core: &Core) -> Self {
        let products = ProductStore::new(core.db.clone());
        let settings = &core.settings;
        if settings.bakai.webhook_secret.is_empty() {
            tracing::warn!(
                "WEBHOOK_SECRET is not set: BakaiMarket webhooks will be refused with 503"
            );
        }
        Self {
            state: CatalogState {
                secrets: Arc::new(settings.bakai.webhook_secret.clone()),
                max_body_bytes: settings.server.max_body_bytes,
                max_clock_skew: settings.bakai.max_clock_skew(),
                inbox: core.inbox.clone(),
                products: products.clone(),
                duplicates: super::duplicates::DuplicateStore::new(core.db.clone()),
                wake: core.wake.clone(),
            },
            admin_auth: crate::http::state::AdminState {
                token: settings.server.admin_token.clone(),
                inbox: core.inbox.clone(),
                wake: core.wake.clone(),
                replay: crate::inbox::ReplayLimits::from_settings(&settings.replay),
            },
            sync: Arc::new(
                CatalogSync::new(
                    products,
                    core.index.clone(),
                    core.embed.clone(),
                    core.fetcher.clone(),
                )
                .with_thumbnails(crate::thumbs::ThumbStore::new(core.db.clone()))
                .with_duplicates(
                    super::duplicates::DuplicateStore::new(core.db.clone()),
                    settings.duplicates.clone(),
                ),
            ),
        }
    }
}

impl Provider for Catalog {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn router(&self) -> Router {
        let admin = Router::new()
            .route("/api/v1/duplicates", get(super::duplicate_routes::clusters))
            .route_layer(axum::middleware::from_fn_with_state(
                self.admin_auth.clone(),
                crate::http::events::require_admin,
            ));
        Router::new()
            .route("/api/v1/webhooks/bakai", post(webhook::receive))
            .route("/api/v1/products/{id}", get(products::get))
            .route(
                "/api/v1/products/{id}/duplicates",
                get(super::duplicate_routes::of_product),
            )
            .merge(admin)
            .with_state(self.state.clone())
    }

    fn handlers(&self) -> Vec<(&'static str, Arc<dyn EventHandler>)> {
        vec![(PROVIDER, self.sync.clone())]
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        <super::openapi::CatalogApi as utoipa::OpenApi>::openapi()
    }

    fn status(&self) -> serde_json::Value {
        serde_json::json!({ "secret_configured": !self.state.secrets.is_empty() })
    }
}
