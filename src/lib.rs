//! Vitrine keeps a marketplace's visual product search in sync with its
//! catalog.
//!
//! The event path, end to end:
//!
//! 1. BakaiMarket `POST`s a signed product event to `/api/v1/webhooks/bakai`
//!    ([`http::webhook`]); the HMAC is checked on the raw bytes
//!    ([`http::signature`]) and the event validated ([`catalog::event`]).
//! 2. The event is committed to the durable inbox ([`inbox`]), deduplicated
//!    by `event_id`, and only then acknowledged with 200.
//! 3. A worker claims it with a lease ([`inbox::worker`]) and hands it to the
//!    catalog handler ([`catalog::sync`]), which skips stale events.
//! 4. The product image is fetched with limits and an SSRF guard
//!    ([`embed::fetch`]), decoded and resized with SIMD into the model's
//!    tensor ([`embed::preprocess`]).
//! 5. Concurrent requests are batched and embedded by an ONNX model in a sized
//!    rayon pool ([`embed::EmbedService`], [`embed::model`]).
//! 6. The vector and the product's fields are upserted into the vector index
//!    ([`index`]); failures retry with backoff, then fail with the reason kept.
//! 7. Shoppers search by image or by product ([`search`]).
//!
//! [`app`] wires it together; [`config`] holds the settings; [`error`] is the
//! one place errors become HTTP responses.

pub mod app;
pub mod catalog;
pub mod config;
pub mod db;
pub mod embed;
pub mod error;
pub mod http;
pub mod inbox;
pub mod index;
pub mod search;
pub mod telemetry;

pub use app::{AppState, Application};
pub use config::Settings;
