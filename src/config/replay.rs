//! `[replay]`: bulk replay of stored events (`POST /api/v1/events/replay`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplaySettings {
    /// The most events one replay job puts back to `pending` (the hard
    /// cap); the dry run says how many a filter matches.
    pub max_events: u64,
    /// Events per batch: one short write each.
    pub batch_size: u64,
    /// Pause between batches, so workers and webhooks get the database in
    /// between.
    pub batch_pause_ms: u64,
}

impl Default for ReplaySettings {
    fn default() -> Self {
        Self {
            max_events: 10_000,
            batch_size: 100,
            batch_pause_ms: 100,
        }
    }
}

impl ReplaySettings {
    pub fn batch_pause(&self) -> Duration {
        Duration::from_millis(self.batch_pause_ms)
    }
}
