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
                wake: core.wake.clone(),
            },
            sync: Arc::new(
                CatalogSync::new(
                    products,
                    core.index.clone(),
                    core.embed.clone(),
                    core.fetcher.clone(),
                )
                .with_thumbnails(crate::thumbs::ThumbStore::new(core.db.clone())),
            ),
        }
    }
}

impl Provider for Catalog {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn router(&self) -> Router {
        Router::new()
            .route("/api/v1/webhooks/bakai", post(webhook::receive))
            .route("/api/v1/products/{id}", get(products::get))
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
