//! Bulk replay: every event matching a filter gets a fresh set of tries, as
//! a manual retry gives one (its next try is recorded as `manual`).
//!
//! First a dry run counts what the filter matches ([`Inbox::replay_count`]).
//! A real run is a job ([`Inbox::start_replay`]): a row in `replay_jobs`
//! and a background task that walks the matching events oldest first, in
//! batches of [`ReplayLimits::batch`] with a pause between them (so the
//! workers and the webhooks get the database in between), and stops after
//! [`ReplayLimits::cap`] events at most. Its progress is that row, readable
//! from any instance ([`Inbox::replay_job`]); cancelling sets a flag on it
//! ([`Inbox::cancel_replay`]) that the job reads before every batch.
//!
//! Only events received before the job started count, and the walk goes by
//! `(created_at, id)`, so events that fail again while the job runs are not
//! replayed twice by it. An event being processed when its batch comes is
//! skipped (counted as `skipped`), as a manual retry of it would be refused.
//!
//! A job lives in the task of the instance that started it: if that
//! instance stops, the job stays `running` with its last progress, and a
//! new replay with the same filter picks up what is left.

use std::{sync::Arc, time::Duration};

use serde::{Deserialize, Serialize, Serializer};
use sqlx::Any;
use tokio::sync::Notify;

use super::{
    event::time_text,
    event::{EventStatus, InboxError},
    store::Inbox,
};
use crate::db::{now_ms, text_vocabulary};

/// Which events: the history API's filters, without paging.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventFilter {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<EventStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_subtype: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// Received at or after (Unix ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_ms: Option<i64>,
    /// Received at or before (Unix ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_ms: Option<i64>,
}

/// How a job runs: set by `[replay]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayLimits {
    /// The most events one job replays (the hard cap).
    pub cap: u64,
    /// Events per batch (one short write each).
    pub batch: u64,
    /// Pause between batches.
    pub pause: Duration,
}

impl ReplayLimits {
    pub fn from_settings(s: &crate::config::ReplaySettings) -> Self {
        Self {
            cap: s.max_events,
            batch: s.batch_size,
            pause: s.batch_pause(),
        }
    }
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplayStatus {
    Running,
    /// Walked every matching event, or reached the cap.
    Completed,
    /// Stopped by an operator.
    Cancelled,
    /// Stopped by a database error; `error` says which.
    Failed,
}

impl ReplayStatus {
    pub const ALL: [ReplayStatus; 4] = [
        ReplayStatus::Running,
        ReplayStatus::Completed,
        ReplayStatus::Cancelled,
        ReplayStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReplayStatus::Running => "running",
            ReplayStatus::Completed => "completed",
            ReplayStatus::Cancelled => "cancelled",
            ReplayStatus::Failed => "failed",
        }
    }
}

text_vocabulary!(ReplayStatus, "replay status");

/// One job, as stored; serialised, the admin API's view of it.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct ReplayJob {
    pub id: String,
    #[serde(serialize_with = "json_text")]
    pub filter: String,
    pub status: ReplayStatus,
    /// Events the filter matched when the job started.
    pub matched: i64,
    pub cap: i64,
    /// Events put back to `pending` so far.
    pub replayed: i64,
    /// Events passed over because they were being processed.
    pub skipped: i64,
    #[serde(skip)]
    pub until_created_at: i64,
    #[serde(skip)]
    pub cursor_created_at: Option<i64>,
    #[serde(skip)]
    pub cursor_id: Option<String>,
    #[serde(serialize_with = "rfc3339_opt")]
    pub cancel_requested_at: Option<i64>,
    pub error: Option<String>,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: i64,
    #[serde(serialize_with = "rfc3339")]
    pub updated_at: i64,
    #[serde(serialize_with = "rfc3339_opt")]
    pub finished_at: Option<i64>,
}

fn json_text<S: Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    serde_json::from_str::<serde_json::Value>(text)
        .unwrap_or(serde_json::Value::Null)
        .serialize(s)
}

fn rfc3339<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    time_text(*ms).serialize(s)
}

fn rfc3339_opt<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    ms.and_then(time_text).serialize(s)
}

const JOB_COLUMNS: &str = "id, filter, status, matched, cap, replayed, skipped, until_created_at, \
     cursor_created_at, cursor_id, cancel_requested_at, error, created_at, updated_at, finished_at";

macro_rules! bind_filter {
    ($q:expr, $f:expr) => {
        $q.bind($f.status)
            .bind($f.provider.as_deref())
            .bind($f.event_type.as_deref())
            .bind($f.start_ms)
            .bind($f.end_ms)
            .bind($f.entity_type.as_deref())
            .bind($f.event_subtype.as_deref())
            .bind($f.org.as_deref())
    };
}

impl Inbox {
    /// How many stored events match `filter` now: the dry run.
    pub async fn replay_count(&self, filter: &EventFilter) -> Result<i64, InboxError> {
        let q = sqlx::query_scalar(concat!(
            "SELECT COUNT(*) FROM webhook_events WHERE ",
            event_filters!()
        ));
        Ok(bind_filter!(q, filter).fetch_one(self.db.reader()).await?)
    }

    /// Starts a job replaying what `filter` matches, in a background task;
    /// returns the job as it starts.
    pub async fn start_replay(
        &self,
        filter: EventFilter,
        limits: ReplayLimits,
        wake: Arc<Notify>,
    ) -> Result<ReplayJob, InboxError> {
        let now = now_ms();
        let matched = self.replay_count(&filter).await?;
        let id = uuid::Uuid::now_v7().to_string();
        let text = serde_json::to_string(&filter).expect("a filter serialises");
        sqlx::query(
            "INSERT INTO replay_jobs (id, filter, status, matched, cap, until_created_at, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6, $6)",
        )
        .bind(&id)
        .bind(&text)
        .bind(ReplayStatus::Running)
        .bind(matched)
        .bind(i64::try_from(limits.cap).unwrap_or(i64::MAX))
        .bind(now)
        .execute(self.db.writer())
        .await?;
        let job = self.replay_job(&id).await?;
        let inbox = self.clone();
        tokio::spawn(async move {
            if let Err(e) = inbox.run_replay(&id, &filter, limits, &wake).await {
                tracing::error!(job = %id, error = %e, "replay job failed");
                let _ = sqlx::query(
                    "UPDATE replay_jobs SET status = $1, error = $2, finished_at = $3, \
                     updated_at = $3 WHERE id = $4 AND status = $5",
                )
                .bind(ReplayStatus::Failed)
                .bind(e.to_string())
                .bind(now_ms())
                .bind(&id)
                .bind(ReplayStatus::Running)
                .execute(inbox.db.writer())
                .await;
            }
        });
        tracing::info!(job = %job.id, matched, filter = %text, "replay started");
        Ok(job)
    }

    pub async fn replay_job(&self, id: &str) -> Result<ReplayJob, InboxError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM replay_jobs WHERE id = $1");
        sqlx::query_as::<Any, ReplayJob>(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.db.reader())
            .await?
            .ok_or_else(|| InboxError::JobNotFound(id.to_string()))
    }

    /// Asks a running job to stop; it does before its next batch. A job
    /// that has ended is returned as it is.
    pub async fn cancel_replay(&self, id: &str) -> Result<ReplayJob, InboxError> {
        sqlx::query(
            "UPDATE replay_jobs SET cancel_requested_at = $1, updated_at = $1 \
             WHERE id = $2 AND status = $3 AND cancel_requested_at IS NULL",
        )
        .bind(now_ms())
        .bind(id)
        .bind(ReplayStatus::Running)
        .execute(self.db.writer())
        .await?;
        self.replay_job(id).await
    }

    async fn run_replay(
        &self,
        id: &str,
        filter: &EventFilter,
        limits: ReplayLimits,
        wake: &Notify,
    ) -> Result<(), InboxError> {
        let batch = i64::try_from(limits.batch.max(1)).unwrap_or(i64::MAX);
        loop {
            let job = self.replay_job(id).await?;
            let done = job.replayed + job.skipped;
            let (status, stop) = if job.cancel_requested_at.is_some() {
                (ReplayStatus::Cancelled, true)
            } else {
                (ReplayStatus::Completed, done >= job.cap)
            };
            let ids = if stop {
                Vec::new()
            } else {
                self.replay_batch_ids(filter, &job, batch.min(job.cap - done))
                    .await?
            };
            if ids.is_empty() {
                let now = now_ms();
                sqlx::query(
                    "UPDATE replay_jobs SET status = $1, finished_at = $2, updated_at = $2 \
                     WHERE id = $3",
                )
                .bind(status)
                .bind(now)
                .bind(id)
                .execute(self.db.writer())
                .await?;
                tracing::info!(job = %id, status = %status, replayed = job.replayed,
                    skipped = job.skipped, "replay ended");
                return Ok(());
            }
            self.replay_ids(id, &ids).await?;
            wake.notify_one();
            tokio::time::sleep(limits.pause).await;
        }
    }

    /// The next `n` matching events after the job's cursor, oldest first.
    async fn replay_batch_ids(
        &self,
        filter: &EventFilter,
        job: &ReplayJob,
        n: i64,
    ) -> Result<Vec<(String, i64)>, InboxError> {
        let q = sqlx::query_as(concat!(
            "SELECT id, created_at FROM webhook_events WHERE ",
            event_filters!(),
            " AND created_at <= $9 AND ($10 IS NULL OR created_at > $10 \
             OR (created_at = $10 AND id > $11)) ORDER BY created_at, id LIMIT $12"
        ));
        Ok(bind_filter!(q, filter)
            .bind(job.until_created_at)
            .bind(job.cursor_created_at)
            .bind(job.cursor_id.as_deref())
            .bind(n)
            .fetch_all(self.db.reader())
            .await?)
    }

    /// Puts one batch back to `pending` (except events being processed)
    /// and moves the job's cursor and counts, in one transaction.
    async fn replay_ids(&self, job: &str, ids: &[(String, i64)]) -> Result<(), InboxError> {
        let now = now_ms();
        // Built from numbers only (one placeholder per id, at most
        // `replay.batch_size`): safe to assert.
        let list: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 4)).collect();
        let sql = format!(
            "UPDATE webhook_events SET status = $2, retry_count = 0, next_retry_at = NULL, \
             processed_at = NULL, error = NULL, outcome = NULL, manual_retry_at = $1, \
             updated_at = $1 WHERE status <> $3 AND id IN ({})",
            list.join(", ")
        );
        let mut q = sqlx::query::<Any>(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(EventStatus::Pending)
            .bind(EventStatus::Processing);
        for (id, _) in ids {
            q = q.bind(id.as_str());
        }
        let _turn = self.db.background_turn().await;
        let mut tx = self.db.writer().begin().await?;
        let replayed = q.execute(&mut *tx).await?.rows_affected() as i64;
        let (last_id, last_at) = ids.last().expect("a batch is not empty");
        sqlx::query(
            "UPDATE replay_jobs SET replayed = replayed + $1, skipped = skipped + $2, \
             cursor_created_at = $3, cursor_id = $4, updated_at = $5 WHERE id = $6",
        )
        .bind(replayed)
        .bind(ids.len() as i64 - replayed)
        .bind(*last_at)
        .bind(last_id.as_str())
        .bind(now)
        .bind(job)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbox::{NewEvent, RetryPolicy};

    #[test]
    fn statuses_match_the_schema() {
        for schema in [
            include_str!("../../migrations/sqlite/20261201000402_replay_jobs.sql"),
            include_str!("../../migrations/postgres/20261201000402_replay_jobs.sql"),
        ] {
            let words: Vec<_> = ReplayStatus::ALL
                .iter()
                .map(|s| format!("'{}'", s.as_str()))
                .collect();
            assert!(schema.contains(&format!("CHECK (status IN ({}))", words.join(", "))));
        }
    }

    /// The cap stops a job that matches more; the dry run still counts
    /// everything.
    #[tokio::test]
    async fn a_job_stops_at_its_cap() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::test_sqlite(dir.path()).await;
        let inbox = Inbox::new(db, RetryPolicy::new(vec![Duration::from_millis(1)], 0));
        for i in 0..7 {
            inbox
                .insert(NewEvent::new("t", format!("e{i}"), "x", "{}"))
                .await
                .unwrap();
        }
        let filter = EventFilter {
            provider: Some("t".into()),
            ..Default::default()
        };
        assert_eq!(inbox.replay_count(&filter).await.unwrap(), 7);
        let limits = ReplayLimits {
            cap: 5,
            batch: 2,
            pause: Duration::ZERO,
        };
        let job = inbox
            .start_replay(filter, limits, Arc::new(Notify::new()))
            .await
            .unwrap();
        let job = loop {
            let j = inbox.replay_job(&job.id).await.unwrap();
            if j.status != ReplayStatus::Running {
                break j;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(
            (job.status, job.matched, job.replayed, job.skipped),
            (ReplayStatus::Completed, 7, 5, 0)
        );
        let all = crate::inbox::EventQuery {
            limit: 100,
            ..Default::default()
        };
        let (manual, _) = inbox.list(&all).await.unwrap();
        assert_eq!(
            manual
                .iter()
                .filter(|e| e.manual_retry_at.is_some())
                .count(),
            5
        );
    }
}
