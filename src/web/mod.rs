//! The web pages: the shopper page at `/` and a product's page
//! ([`shop`]), the admin console at `/admin` ([`admin`]), product
//! thumbnails ([`thumbnail`]) and the pages' own CSS and JavaScript,
//! compiled into the binary ([`assets`]).
//!
//! Server-rendered HTML (maud, which escapes every value it interpolates)
//! with a little plain JavaScript that calls the public API; nothing is
//! loaded from another host, and every response carries the page headers
//! of [`crate::http::headers`] (a Content-Security-Policy of this origin
//! only, no inline script).
//!
//! The pages sit on top of the core and the catalog: nothing calls into
//! them.

pub(crate) mod admin;
pub(crate) mod assets;
pub(crate) mod openapi;
pub(crate) mod shop;
pub(crate) mod thumbnail;

use axum::{Router, routing::get};

use crate::{catalog::ProductStore, http::headers, search::SearchService, thumbs::ThumbStore};

/// What the pages read.
#[derive(Clone)]
pub struct WebState {
    pub search: SearchService,
    pub products: ProductStore,
    pub thumbs: ThumbStore,
}

/// Products per page of the grid, and per "more".
pub const PAGE_SIZE: usize = 24;

/// The pages' routes, with the page headers.
pub fn router(state: WebState) -> Router {
    let pages = Router::new()
        .route("/", get(shop::home))
        .route("/products/{id}", get(shop::product))
        .route("/admin", get(admin::page))
        .route("/assets/{name}", get(assets::serve))
        .route("/api/v1/products/{id}/thumbnail", get(thumbnail::serve))
        .with_state(state);
    headers::with_page_headers(pages, headers::STRICT_CSP)
}
