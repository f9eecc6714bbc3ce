//! The durable inbox: every provider's webhooks are stored here before they
//! are acknowledged, then processed by workers with leases and retries.
//!
//! Owns the shared vocabulary ([`event`]), the `webhook_events` table
//! ([`record`]: a row; [`store`]: writes; [`history`]: reads), the record
//! of every processing try ([`attempt`]), bulk replay by filter
//! ([`replay`]), the dashboard's per-minute figures ([`stats`]), group commit
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
         processed_at, manual_retry_at, error, outcome, payload, created_at, updated_at"
    };
}

pub mod attempt;
/// The history filters as SQL, binds `$1` … `$8`: status, provider,
/// event_type, start, end (on `created_at`), entity_type, event_subtype,
/// org; an unset filter is NULL. Shared by the history page and bulk
/// replay, so both select the same events.
macro_rules! event_filters {
    () => {
        "($1 IS NULL OR status = $1) \
         AND ($2 IS NULL OR provider = $2) AND ($3 IS NULL OR event_type = $3) \
         AND ($4 IS NULL OR created_at >= $4) AND ($5 IS NULL OR created_at <= $5) \
         AND ($6 IS NULL OR entity_type = $6) AND ($7 IS NULL OR event_subtype = $7) \
         AND ($8 IS NULL OR org = $8)"
    };
}

pub mod event;
pub mod history;
pub mod intake;
pub mod record;
pub mod replay;
pub mod retention;
pub mod retry;
pub mod stats;
pub mod store;
pub mod worker;

pub use attempt::{Attempt, AttemptKind, AttemptOutcome};
pub use event::{
    ErrorKind, EventStatus, FailOutcome, HandlerError, InboxError, Inserted, NewEvent, Outcome,
    OutcomeKind,
};
pub use history::EventQuery;
pub use record::{EventRecord, EventView};
pub use replay::{EventFilter, ReplayJob, ReplayLimits, ReplayStatus};
pub use retry::RetryPolicy;
pub use store::{Claimed, Inbox};
pub use worker::{EventHandler, WorkerConfig};
