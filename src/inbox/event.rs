//! The inbox's shared vocabulary: what the intake path hands over
//! ([`NewEvent`]), what storing it returns ([`Inserted`]), how inbox
//! operations fail ([`InboxError`]), where an event is in its life
//! ([`EventStatus`]), and what a handler reports back ([`Outcome`],
//! [`HandlerError`]) and the inbox makes of a failure ([`FailOutcome`]).
//!
//! [`super::store`], [`super::intake`] and [`super::worker`] all use these,
//! and none of them imports another for its types: the store starts the
//! intake and the worker drives the store, but what they share lives here.

use serde::{Deserialize, Serialize};

use crate::db::text_vocabulary;

#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error("inbox database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("event {0} not found")]
    NotFound(String),
    #[error("replay job {0} not found")]
    JobNotFound(String),
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
    /// The organisation the event belongs to (a CRM account, a shop), when
    /// the provider knows one: a history filter.
    pub org: Option<String>,
    pub payload: String,
}

impl NewEvent {
    /// An event with only the required fields; the builder methods below
    /// add the optional ones.
    pub fn new(
        provider: impl Into<String>,
        external_id: impl Into<String>,
        event_type: impl Into<String>,
        payload: impl Into<String>,
    ) -> Self {
        Self {
            provider: provider.into(),
            external_id: external_id.into(),
            event_type: event_type.into(),
            event_subtype: None,
            entity_type: None,
            entity_id: None,
            org: None,
            payload: payload.into(),
        }
    }

    /// What changed, finer than `event_type` (`lead_status_changed`).
    pub fn with_subtype(mut self, subtype: impl Into<String>) -> Self {
        self.event_subtype = Some(subtype.into());
        self
    }

    /// The entity the event is about: its type (`product`, `lead`) and id.
    /// Events of one entity are never applied concurrently.
    pub fn with_entity(
        mut self,
        entity_type: impl Into<String>,
        entity_id: impl Into<String>,
    ) -> Self {
        self.entity_type = Some(entity_type.into());
        self.entity_id = Some(entity_id.into());
        self
    }

    /// The entity type alone, for events about a kind of thing but no one
    /// entity.
    pub fn with_entity_type(mut self, entity_type: impl Into<String>) -> Self {
        self.entity_type = Some(entity_type.into());
        self
    }

    /// The organisation the event belongs to.
    pub fn with_org(mut self, org: impl Into<String>) -> Self {
        self.org = Some(org.into());
        self
    }
}

/// A stored millisecond time as the API shows it: RFC 3339, UTC.
pub(crate) fn time_text(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inserted {
    pub task_id: String,
    pub duplicate: bool,
}

/// Where an event is in its life: the `status` column of `webhook_events`
/// (its `CHECK` lists the same words), the `status` filter and field of the
/// admin API, and the label of the queue-depth gauge.
///
/// `pending → processing → completed`, or `processing → retrying →
/// processing …` while transient failures have tries left, or `processing →
/// failed`. A manual retry puts a finished event back to `pending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    /// Stored and waiting for its first try.
    Pending,
    /// Claimed by a worker that holds its lease.
    Processing,
    /// Applied; its `outcome` says what that did.
    Completed,
    /// Failed for good (a permanent error, or out of tries); `error` says why.
    Failed,
    /// A try failed with a transient error; due again at `next_retry_at`.
    Retrying,
}

impl EventStatus {
    pub const ALL: [EventStatus; 5] = [
        EventStatus::Pending,
        EventStatus::Processing,
        EventStatus::Completed,
        EventStatus::Failed,
        EventStatus::Retrying,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Pending => "pending",
            EventStatus::Processing => "processing",
            EventStatus::Completed => "completed",
            EventStatus::Failed => "failed",
            EventStatus::Retrying => "retrying",
        }
    }

    /// Completed or failed: nothing will happen to it unless retried by hand.
    pub fn is_final(self) -> bool {
        matches!(self, EventStatus::Completed | EventStatus::Failed)
    }
}

text_vocabulary!(EventStatus, "event status");

/// What kind of result applying an event had, as far as the inbox cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeKind {
    /// The event changed something.
    Applied,
    /// The event was accepted but changed nothing (for example, it was older
    /// than the last one applied to its entity).
    Skipped,
}

/// What applying an event did. The event completes with it, and `detail`
/// is stored as its `outcome` text: each provider words its own (see
/// `catalog::SyncOutcome`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub kind: OutcomeKind,
    pub detail: String,
}

impl Outcome {
    pub fn applied(detail: impl Into<String>) -> Self {
        Self {
            kind: OutcomeKind::Applied,
            detail: detail.into(),
        }
    }

    pub fn skipped(detail: impl Into<String>) -> Self {
        Self {
            kind: OutcomeKind::Skipped,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

/// Whether trying an event again may help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Network trouble, a 5xx, a timeout, a busy database: retry with backoff.
    Transient,
    /// A corrupt image, a 404, an invalid payload: fail at once, since
    /// retrying cannot help.
    Permanent,
}

/// Why handling an event failed. `message` may be shown to anyone (a
/// product's public `error`); `detail`, when there is one, says more (which
/// URL or file, the cause) and goes only to the event's `error` in the
/// admin API and to the logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HandlerError {
    pub kind: ErrorKind,
    pub message: String,
    pub detail: Option<String>,
}

impl HandlerError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            detail: None,
        }
    }

    /// Adds the detail for operators.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// What the event's `error` records: the detail when there is one.
    pub fn for_operators(&self) -> &str {
        self.detail.as_deref().unwrap_or(&self.message)
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Permanent, message)
    }

    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Transient, message)
    }
}

/// What the inbox did with a failed try ([`super::Inbox::fail`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// Transient, and tries remain: the event is `retrying` and due again at
    /// `next_retry_at` (Unix milliseconds, like every stored time).
    Retrying { next_retry_at: i64 },
    /// Permanent, or out of tries: the event has `failed` for good.
    Failed,
}

impl FailOutcome {
    /// The status the event has now.
    pub fn status(self) -> EventStatus {
        match self {
            FailOutcome::Retrying { .. } => EventStatus::Retrying,
            FailOutcome::Failed => EventStatus::Failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every word round-trips, and the enum and the `CHECK` constraint of
    /// both engines' schemas list the same words, in the same order.
    #[test]
    fn statuses_round_trip_and_match_the_schema() {
        crate::db::check_vocabulary(
            &EventStatus::ALL,
            &["pending", "processing", "completed", "failed", "retrying"],
            "skipped",
            "unknown event status `skipped`",
        );
        assert!("Pending".parse::<EventStatus>().is_err());
    }

    #[test]
    fn a_failure_says_which_status_it_left() {
        assert_eq!(
            FailOutcome::Retrying { next_retry_at: 1 }.status(),
            EventStatus::Retrying
        );
        assert_eq!(FailOutcome::Failed.status(), EventStatus::Failed);
        let e = HandlerError::transient("HTTP 503");
        assert_eq!(
            (e.kind, e.to_string()),
            (ErrorKind::Transient, "HTTP 503".into())
        );
        assert_eq!(HandlerError::permanent("x").kind, ErrorKind::Permanent);
        assert_eq!(Outcome::skipped("stale").to_string(), "stale");
    }

    #[test]
    fn the_builder_fills_the_optional_fields() {
        let e = NewEvent::new("kommo", "d1", "leads.status", "{}")
            .with_subtype("lead_status_changed")
            .with_entity("lead", "42")
            .with_org("acme");
        assert_eq!(
            (
                e.event_subtype.as_deref(),
                e.entity_type.as_deref(),
                e.entity_id.as_deref(),
                e.org.as_deref()
            ),
            (
                Some("lead_status_changed"),
                Some("lead"),
                Some("42"),
                Some("acme")
            )
        );
        let bare = NewEvent::new("p", "x", "t", "{}").with_entity_type("catalog");
        assert_eq!(
            (bare.entity_type.as_deref(), bare.entity_id, bare.org),
            (Some("catalog"), None, None)
        );
    }
}
