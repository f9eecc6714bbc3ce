//! BakaiMarket catalog sync, the first [`crate::provider::Provider`]. Owns
//! the product event ([`event`]: wire shape, validation), the `products`
//! table ([`store`]: metadata, index status, stale-event detection), the
//! rules for applying each event kind ([`sync`]: the inbox handler for the
//! `bakai` provider), and its routes: the signed webhook ([`webhook`]) and
//! the product lookup ([`products`]).

pub mod event;
pub(crate) mod products;
pub mod provider;
pub mod store;
pub mod sync;
pub(crate) mod webhook;

pub use event::{EventKind, ProductData, ProductEvent, RawEvent, ValidationError, validate};
pub use provider::Catalog;
pub use store::{ProductRow, ProductStore};
pub use sync::CatalogSync;
