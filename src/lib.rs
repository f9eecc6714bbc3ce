//! Vitrine keeps a marketplace's visual product search in sync with its
//! catalog, and answers shoppers through the same durable event path.
//!
//! # The event path
//!
//! ```text
//! provider webhook ─▶ verify (raw bytes) ─▶ inbox (group commit) ─▶ 200
//!                                              │
//!                    worker (lease, retries) ◀─┘
//!                       │
//!                       ▼ provider's EventHandler, e.g. catalog::sync
//!   fetch (caps, SSRF guard) ─▶ decode + SIMD resize ─▶ embed (ONNX, sized pool)
//!                       ─▶ index (embedded or Qdrant) ─▶ search
//! ```
//!
//! 1. BakaiMarket `POST`s a signed product event to `/api/v1/webhooks/bakai`
//!    (`catalog::webhook`); the HMAC is checked on the raw bytes
//!    ([`http::signature`]) and the event validated ([`catalog::event`]).
//! 2. The event is committed to the durable inbox ([`inbox`]), deduplicated
//!    by `(provider, external id)`, and only then acknowledged with 200.
//! 3. A worker claims it with a lease ([`inbox::worker`]) and hands it to its
//!    provider's handler ([`catalog::sync`]), which skips stale events.
//! 4. The product image is fetched with limits and an SSRF guard
//!    ([`embed::fetch`]), decoded and resized with SIMD into the model's
//!    tensor ([`embed::preprocess`]).
//! 5. Concurrent requests are batched and embedded by an ONNX model in a sized
//!    rayon pool ([`embed::EmbedService`], [`embed::model`]).
//! 6. The vector and the product's fields are upserted into the vector index
//!    ([`index`]); failures retry with backoff, then fail with the reason kept.
//! 7. Shoppers search by image or by product ([`search`], `http::search`).
//!
//! # Where a provider plugs in
//!
//! A provider ([`provider::Provider`]) contributes its routes, its inbox
//! handlers and its settings section, and is built from the
//! [`provider::Core`] handles:
//!
//! ```ignore
//! pub struct Telegram { state: TelegramState, handler: Arc<UpdateHandler> }
//!
//! impl Provider for Telegram {
//!     fn name(&self) -> &'static str { "telegram" }
//!     fn router(&self) -> Router {
//!         Router::new()
//!             .route("/api/v1/webhooks/telegram", post(receive))
//!             .with_state(self.state.clone())       // its own state
//!     }
//!     fn handlers(&self) -> Vec<(&'static str, Arc<dyn EventHandler>)> {
//!         vec![("telegram", self.handler.clone())]
//!     }
//! }
//! ```
//!
//! Its receiver verifies the request, stores the delivery with
//! `core.inbox.insert(NewEvent { provider: "telegram", .. })`, notifies
//! `core.wake` and answers; its handler does the work later, with retries.
//! Mounting it is one line in `app::providers` plus its section in
//! [`config::Settings`]; `inbox`, `index` and `embed` do not change.
//! [`catalog::Catalog`] is the first provider in that shape.
//!
//! # The library's API
//!
//! Public are what the binary, the integration tests and the benches use:
//! [`Application`] and [`Settings`], the [`commands`], and the capability
//! modules whose parts they drive directly. [`app`] wires everything;
//! [`config`] holds the settings tree; [`error`] is the one place errors
//! become HTTP responses.

pub mod alerts;
pub mod app;
pub mod catalog;
pub mod channels;
pub mod commands;
pub mod config;
pub mod crm;
pub mod db;
pub mod embed;
pub(crate) mod error;
pub mod http;
pub mod inbox;
pub mod index;
pub(crate) mod provider;
pub mod search;
pub mod telemetry;
pub mod thumbs;
pub mod web;

pub use app::Application;
pub use config::Settings;
