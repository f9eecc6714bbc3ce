//! The inbox's shared vocabulary: what the intake path hands over
//! ([`NewEvent`]), what storing it returns ([`Inserted`]) and how inbox
//! operations fail ([`InboxError`]).
//!
//! Both [`super::store`] and [`super::intake`] use these, and neither imports
//! the other: the store starts the intake, the intake writes rows, and what
//! they share lives here.

#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error("inbox database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("event {0} not found")]
    NotFound(String),
    #[error("event {0} is being processed right now; retry it once that attempt ends")]
    Busy(String),
    #[error("the inbox is shutting down")]
    Closed,
}

/// An event to store, as the intake path hands it over.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub provider: String,
    /// The provider's own id for this delivery: the dedup key.
    pub external_id: String,
    pub event_type: String,
    pub event_subtype: Option<String>,
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    pub payload: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inserted {
    pub task_id: String,
    pub duplicate: bool,
}
