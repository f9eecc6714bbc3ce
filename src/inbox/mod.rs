//! The durable inbox: every provider's webhooks are stored here before they
//! are acknowledged, then processed by workers with leases and retries.
//!
//! Owns the shared vocabulary ([`event`]), the `webhook_events` table
//! ([`store`]), group commit of incoming events ([`intake`]), the retry schedule
//! ([`retry`]) and the worker loop that dispatches events to provider
//! handlers ([`worker`]). It knows nothing about products or images: a
//! provider module plugs in through [`worker::EventHandler`].

pub mod event;
pub mod intake;
pub mod retention;
pub mod retry;
pub mod store;
pub mod worker;

pub use event::{
    ErrorKind, EventStatus, FailOutcome, HandlerError, InboxError, Inserted, NewEvent, Outcome,
    OutcomeKind,
};
pub use retry::RetryPolicy;
pub use store::{Claimed, EventQuery, EventRecord, Inbox};
pub use worker::{EventHandler, WorkerConfig};
