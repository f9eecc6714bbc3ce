//! The durable inbox: every provider's webhooks are stored here before they
//! are acknowledged, then processed by workers with leases and retries.
//!
//! Owns the shared vocabulary ([`event`]), the `webhook_events` table
//! ([`record`]: a row; [`store`]: writes; [`history`]: reads), group commit
//! of incoming events ([`intake`]), the retry schedule ([`retry`]),
//! retention ([`retention`]) and the worker loop that dispatches events to
//! provider handlers ([`worker`]). It knows nothing about products or images: a
//! provider module plugs in through [`worker::EventHandler`].

/// The columns of [`EventRecord`], as a macro so queries stay `&'static str`
/// (sqlx refuses unaudited dynamic SQL). Defined before the modules that use
/// it.
macro_rules! columns {
    () => {
        "id, provider, external_id, event_type, event_subtype, entity_type, \
         entity_id, org, status, retry_count, max_retries, next_retry_at, processing_started_at, \
         processed_at, error, outcome, payload, created_at, updated_at"
    };
}

pub mod event;
pub mod history;
pub mod intake;
pub mod record;
pub mod retention;
pub mod retry;
pub mod store;
pub mod worker;

pub use event::{
    ErrorKind, EventStatus, FailOutcome, HandlerError, InboxError, Inserted, NewEvent, Outcome,
    OutcomeKind,
};
pub use history::EventQuery;
pub use record::{EventRecord, EventView};
pub use retry::RetryPolicy;
pub use store::{Claimed, Inbox};
pub use worker::{EventHandler, WorkerConfig};
