//! BakaiMarket catalog sync, the first [`crate::provider::Provider`]. Owns
//! the product event ([`event`]: wire shape, validation), the `products`
//! table ([`store`]: metadata, index status, stale-event detection,
//! [`ProductStatus`]), the rules for applying each event kind ([`sync`]: the
//! inbox handler for the `bakai` provider) with what each did
//! ([`outcome`]), and its routes: the signed webhook (`webhook`) and the
//! product lookup (`products`).

/// The inbox's `provider` for BakaiMarket events: their handler's key, and
/// half of their dedup key.
pub const PROVIDER: &str = "bakai";
/// The inbox's `entity_type` of these events; the `entity_id` is the product
/// id.
pub const ENTITY: &str = "product";

pub(crate) mod duplicate_routes;
pub mod duplicates;
pub mod event;
pub(crate) mod openapi;
pub mod outcome;
pub(crate) mod products;
pub(crate) mod provider;
pub(crate) mod schemas;
pub(crate) mod state;
pub mod store;
pub mod sync;
pub(crate) mod webhook;

pub use event::{
    EventKind, ParseError, ProductData, ProductEvent, RawEvent, ValidationError, from_json,
    parse_event, parse_json, validate,
};
pub use outcome::SyncOutcome;
pub(crate) use provider::Catalog;
pub use store::{ProductRow, ProductStatus, ProductStore};
pub use sync::CatalogSync;
