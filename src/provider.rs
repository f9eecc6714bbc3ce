//! The seam where providers plug in.
//!
//! A provider is a source of events: BakaiMarket today ([`crate::catalog`]),
//! the messengers and the CRM next. Each contributes three things:
//!
//! - its **routes**: an `axum::Router` with its own state already applied,
//!   so the core never learns its handlers' state types;
//! - its inbox **handlers**: one [`EventHandler`] per inbox provider key;
//! - its typed **settings section** (`crate::config`, e.g. `[bakai]`),
//!   read when it is built.
//!
//! It is built from the [`Core`]: the handles the core offers every
//! provider. Providers call the core; the core never calls a provider except
//! through this trait, so adding one edits only `app` (the list of enabled
//! providers) and `config` (its section), never `inbox`, `index` or `embed`.

use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::Notify;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    config::Settings,
    db::Db,
    embed::{EmbedService, ImageFetcher},
    inbox::{EventHandler, Inbox},
    index::VectorIndex,
    search::SearchService,
    telemetry::HealthBoard,
};

/// What the core hands a provider when the application is built: cheap
/// handles, cloned as needed.
#[derive(Clone)]
pub struct Core {
    pub settings: Arc<Settings>,
    pub db: Db,
    /// Where every provider stores its events before acknowledging them.
    pub inbox: Inbox,
    pub index: Arc<dyn VectorIndex>,
    pub embed: EmbedService,
    pub fetcher: ImageFetcher,
    pub search: SearchService,
    /// Notify after storing a new event, so the workers need not poll fast.
    pub wake: Arc<Notify>,
    /// Tasks a provider spawns go here, so shutdown waits for them.
    pub tasks: TaskTracker,
    /// Background-measured parts of `/api/v1/health`: a provider sets its
    /// own under its name (for example a messenger's webhook queue).
    pub health: HealthBoard,
}

/// One provider, as the application mounts it.
pub trait Provider: Send + Sync {
    /// A short name for logs and `/api/v1/webhooks/health`.
    fn name(&self) -> &'static str;

    /// Its HTTP routes, state applied. Request metrics, tracing and the
    /// request timeout are layered on by the core.
    fn router(&self) -> axum::Router;

    /// The inbox handlers, keyed by the `provider` column of the events
    /// they process.
    fn handlers(&self) -> Vec<(&'static str, Arc<dyn EventHandler>)>;

    /// What `/api/v1/webhooks/health` shows about it (for example whether
    /// its secret is configured). Never a secret itself.
    fn status(&self) -> serde_json::Value {
        serde_json::json!({})
    }

    /// Its routes' part of the OpenAPI document (`#[derive(utoipa::OpenApi)]`
    /// over its handlers' `#[utoipa::path]`s), merged into the one served
    /// at `/api/v1/openapi.json`. Every route it mounts must be in it: a
    /// test compares the router with the document.
    fn openapi(&self) -> utoipa::openapi::OpenApi {
        utoipa::openapi::OpenApi::default()
    }

    /// Its long-running tasks (a poller, a monitor), started when the
    /// application runs, on the core's task tracker. Each must end soon
    /// after `stop` is cancelled: shutdown waits for them.
    fn background(&self, stop: CancellationToken) -> Vec<BoxFuture<'static, ()>> {
        let _ = stop;
        Vec::new()
    }
}
