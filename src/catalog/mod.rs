//! BakaiMarket catalog sync. Owns the product event ([`event`]: wire shape,
//! validation), the `products` table ([`store`]: metadata, index status,
//! stale-event detection) and the rules for applying each event kind
//! ([`sync`]: the inbox handler for the `bakai` provider).

pub mod event;
pub mod store;
pub mod sync;

pub use event::{
    EventKind, ImageRef, ProductData, ProductEvent, RawEvent, ValidationError, validate,
};
pub use store::{ProductRow, ProductStore};
pub use sync::CatalogSync;
