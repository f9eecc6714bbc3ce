//! The state of the core routes: [`AppState`], and the narrow sub-states
//! that handlers take through axum's `FromRef` so each sees only what it
//! uses.

use std::sync::Arc;

use axum::extract::FromRef;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Notify;

use super::limits::UploadPermits;
use crate::{
    config::Secret,
    db::Db,
    embed::EmbedService,
    inbox::{Inbox, ReplayLimits},
    index::VectorIndex,
    search::SearchService,
    telemetry::HealthBoard,
};

/// Everything a core route may need: cheap handles, cloned per request.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub inbox: Inbox,
    pub index: Arc<dyn VectorIndex>,
    pub embed: EmbedService,
    pub search: SearchService,
    pub wake: Arc<Notify>,
    pub metrics: PrometheusHandle,
    /// The admin API's bearer token; `None` disables that API.
    pub admin_token: Option<Secret>,
    /// Byte cap on a search upload.
    pub max_upload_bytes: usize,
    /// Bound on search uploads in flight.
    pub upload_permits: UploadPermits,
    /// How bulk replay jobs run (`[replay]`).
    pub replay: ReplayLimits,
    /// Name and status of each mounted provider.
    pub providers: Arc<Vec<(&'static str, serde_json::Value)>>,
    /// The parts of the health report measured in the background.
    pub health: HealthBoard,
}

/// The admin event API: the inbox, the token, and the workers' wake-up.
#[derive(Clone)]
pub struct AdminState {
    pub token: Option<Secret>,
    pub inbox: Inbox,
    pub wake: Arc<Notify>,
    pub replay: ReplayLimits,
}

impl FromRef<AppState> for AdminState {
    fn from_ref(s: &AppState) -> Self {
        Self {
            token: s.admin_token.clone(),
            inbox: s.inbox.clone(),
            wake: s.wake.clone(),
            replay: s.replay,
        }
    }
}

/// Shopper search.
#[derive(Clone)]
pub struct SearchState {
    pub search: SearchService,
    pub embed: EmbedService,
    pub max_upload_bytes: usize,
    pub upload_permits: UploadPermits,
}

impl FromRef<AppState> for SearchState {
    fn from_ref(s: &AppState) -> Self {
        Self {
            search: s.search.clone(),
            embed: s.embed.clone(),
            max_upload_bytes: s.max_upload_bytes,
            upload_permits: s.upload_permits.clone(),
        }
    }
}
