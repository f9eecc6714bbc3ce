//! Every processing try of an event, for operators: the
//! `webhook_event_attempts` table. A claim opens one attempt per event it
//! takes (and closes, as `abandoned`, any try of those events whose worker
//! died holding the lease); completing, failing or releasing the event
//! closes it. [`super::store`] calls these inside its own statements'
//! transactions, so an event and its attempts never disagree.

use serde::{Serialize, Serializer};
use sqlx::{Any, AnyConnection};

use crate::db::text_vocabulary;

/// Who started a try.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttemptKind {
    /// A worker took it by itself: the first try, a scheduled retry, or a
    /// lease taken over.
    Automatic,
    /// The first try after an operator's retry (`POST /api/v1/events/{id}/retry`).
    Manual,
}

impl AttemptKind {
    pub const ALL: [AttemptKind; 2] = [AttemptKind::Automatic, AttemptKind::Manual];

    pub fn as_str(self) -> &'static str {
        match self {
            AttemptKind::Automatic => "automatic",
            AttemptKind::Manual => "manual",
        }
    }
}

text_vocabulary!(AttemptKind, "attempt kind");

/// How a try ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttemptOutcome {
    /// The handler applied (or skipped) the event.
    Completed,
    /// It failed with a transient error, and another try is scheduled.
    Retrying,
    /// It failed for good: a permanent error, or out of tries.
    Failed,
    /// Shutdown handed the event back before the handler finished.
    Released,
    /// Its worker stopped renewing the lease (died or stalled), and another
    /// worker took the event over.
    Abandoned,
}

impl AttemptOutcome {
    pub const ALL: [AttemptOutcome; 5] = [
        AttemptOutcome::Completed,
        AttemptOutcome::Retrying,
        AttemptOutcome::Failed,
        AttemptOutcome::Released,
        AttemptOutcome::Abandoned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Completed => "completed",
            AttemptOutcome::Retrying => "retrying",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::Released => "released",
            AttemptOutcome::Abandoned => "abandoned",
        }
    }
}

text_vocabulary!(AttemptOutcome, "attempt outcome");

/// One try, as stored and as the admin API shows it (times RFC 3339).
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Attempt {
    #[serde(skip)]
    pub event_id: String,
    pub kind: AttemptKind,
    #[serde(serialize_with = "rfc3339")]
    pub started_at: i64,
    #[serde(serialize_with = "rfc3339_opt")]
    pub ended_at: Option<i64>,
    /// `None` while the try runs.
    pub outcome: Option<AttemptOutcome>,
    pub error: Option<String>,
}

fn rfc3339<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    super::event::time_text(*ms).serialize(s)
}

fn rfc3339_opt<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    ms.and_then(super::event::time_text).serialize(s)
}

/// Why a try was closed as abandoned.
const ABANDONED: &str =
    "the lease ran out (the worker stopped or stalled); another worker took the event over";

/// Opens an attempt for each event just claimed with `token` at `now`, after
/// closing any try of theirs still open: such a try's worker lost the lease
/// (the claim took the event over), so it ended as `abandoned`.
pub(super) async fn open(
    conn: &mut AnyConnection,
    // (event id, whether its next try was asked for by hand)
    claimed: &[(&str, bool)],
    token: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    if claimed.is_empty() {
        return Ok(());
    }
    // Built from numbers only (one placeholder per claimed event, at most
    // the worker's concurrency), never from data: safe to assert.
    let list = |from: usize| -> String {
        (0..claimed.len())
            .map(|i| format!("${}", from + i))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let close = format!(
        "UPDATE webhook_event_attempts SET ended_at = $1, outcome = $2, error = $3 \
         WHERE ended_at IS NULL AND event_id IN ({})",
        list(4)
    );
    let mut q = sqlx::query::<Any>(sqlx::AssertSqlSafe(close))
        .bind(now)
        .bind(AttemptOutcome::Abandoned)
        .bind(ABANDONED);
    for e in claimed {
        q = q.bind(e.0);
    }
    q.execute(&mut *conn).await?;

    let rows: Vec<String> = (0..claimed.len())
        .map(|i| format!("(${}, $1, ${}, $2)", 3 + 2 * i, 4 + 2 * i))
        .collect();
    let insert = format!(
        "INSERT INTO webhook_event_attempts (event_id, lease_token, kind, started_at) VALUES {}",
        rows.join(", ")
    );
    let mut q = sqlx::query::<Any>(sqlx::AssertSqlSafe(insert))
        .bind(token)
        .bind(now);
    for e in claimed {
        let kind = if e.1 {
            AttemptKind::Manual
        } else {
            AttemptKind::Automatic
        };
        q = q.bind(e.0).bind(kind);
    }
    q.execute(&mut *conn).await?;
    Ok(())
}

/// Closes the try that holds `token` on `event_id`, if it is still open.
pub(super) async fn close(
    conn: &mut AnyConnection,
    event_id: &str,
    token: &str,
    now: i64,
    outcome: AttemptOutcome,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE webhook_event_attempts SET ended_at = $1, outcome = $2, error = $3 \
         WHERE event_id = $4 AND lease_token = $5 AND ended_at IS NULL",
    )
    .bind(now)
    .bind(outcome)
    .bind(error)
    .bind(event_id)
    .bind(token)
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_words_round_trip_and_match_the_schema() {
        for schema in [
            include_str!("../../migrations/sqlite/20261201000401_event_attempts.sql"),
            include_str!("../../migrations/postgres/20261201000401_event_attempts.sql"),
        ] {
            let kinds: Vec<_> = AttemptKind::ALL
                .iter()
                .map(|k| format!("'{}'", k.as_str()))
                .collect();
            assert!(schema.contains(&format!("CHECK (kind IN ({}))", kinds.join(", "))));
            let outcomes: Vec<_> = AttemptOutcome::ALL
                .iter()
                .map(|k| format!("'{}'", k.as_str()))
                .collect();
            assert!(schema.contains(&format!("CHECK (outcome IN ({}))", outcomes.join(", "))));
        }
        for o in AttemptOutcome::ALL {
            assert_eq!(o.as_str().parse::<AttemptOutcome>().ok(), Some(o));
        }
        assert_eq!(
            "manual".parse::<AttemptKind>().ok(),
            Some(AttemptKind::Manual)
        );
        assert!("Manual".parse::<AttemptKind>().is_err());
    }
}
