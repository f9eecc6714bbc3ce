//! BakaiMarket catalog sync. Owns the product event ([`event`]: wire shape,
//! validation), the `products` table ([`store`]: metadata, index status,
//! stale-event detection, [`ProductStatus`]) and the rules for applying each
//! event kind ([`sync`]: the inbox handler for the `bakai` provider) with
//! what each did ([`outcome`]).

/// The inbox's `provider` for BakaiMarket events: their handler's key, and
/// half of their dedup key.
pub const PROVIDER: &str = "bakai";
/// The inbox's `entity_type` of these events; the `entity_id` is the product
/// id.
pub const ENTITY: &str = "product";

pub mod event;
pub mod outcome;
pub mod store;
pub mod sync;

pub use event::{
    EventKind, ImageRef, ProductData, ProductEvent, RawEvent, ValidationError, validate,
};
pub use outcome::SyncOutcome;
pub use store::{ProductRow, ProductStatus, ProductStore};
pub use sync::CatalogSync;
