//! Inbox retention: completed events older than a retention period are
//! deleted in the background; failed ones are kept (they are what an
//! operator retries or investigates), and so is everything unfinished.
//!
//! Kept apart from `store.rs` (the claim, completion and history queries);
//! it needs only the database, so it takes a [`Db`] rather than the inbox.
//!
//! Purging a completed event also forgets its `event_id`, so a redelivery
//! of it after the retention period is stored again; the product's clock
//! (only newer events apply) then skips it as stale.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::EventStatus;
use crate::db::{Db, now_ms};

/// Rows deleted per statement: on SQLite every write goes through the one
/// writer connection, so a purge of a large backlog is cut into short
/// statements that webhook inserts can slip between.
const PURGE_BATCH: i64 = 1000;

/// Deletes completed events whose processing finished before `cutoff_ms`
/// (Unix milliseconds); returns how many.
pub async fn purge_completed(db: &Db, cutoff_ms: i64) -> Result<u64, sqlx::Error> {
    let mut total = 0;
    loop {
        let deleted = {
            // A write nobody waits on: see `Db::background_turn`.
            let _turn = db.background_turn().await;
            sqlx::query(
                "DELETE FROM webhook_events WHERE id IN (SELECT id FROM webhook_events \
                 WHERE status = $1 AND processed_at < $2 LIMIT $3)",
            )
            .bind(EventStatus::Completed)
            .bind(cutoff_ms)
            .bind(PURGE_BATCH)
            .execute(db.writer())
            .await?
            .rows_affected()
        };
        total += deleted;
        if deleted < PURGE_BATCH as u64 {
            return Ok(total);
        }
    }
}

/// Purges every `every` until `stop`, keeping `retention` of completed
/// events. Errors are logged and retried at the next turn.
pub async fn run(db: Db, retention: Duration, every: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        let cutoff = now_ms() - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        // Not raced against `stop`: a batch is short, and cutting a
        // statement off would only waste it.
        match purge_completed(&db, cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "inbox retention: purged completed events"),
            Err(e) => tracing::warn!(error = %e, "inbox retention: purge failed; retrying later"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbox::{Inbox, NewEvent, RetryPolicy};

    fn event(id: &str) -> NewEvent {
        NewEvent {
            provider: "test".into(),
            external_id: id.into(),
            event_type: "thing.happened".into(),
            event_subtype: None,
            entity_type: Some("thing".into()),
            entity_id: Some(id.into()),
            org: None,
            payload: "{}".into(),
        }
    }

    #[tokio::test]
    async fn only_old_completed_events_go() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let db = crate::db::connect(&url).await.unwrap();
        crate::db::migrate(&db).await.unwrap();
        let inbox = Inbox::new(
            db.clone(),
            RetryPolicy::new(vec![Duration::from_secs(1)], 1),
        );
        for (i, status) in ["completed", "completed", "failed", "pending"]
            .iter()
            .enumerate()
        {
            inbox.insert(event(&format!("e{i}"))).await.unwrap();
            sqlx::query(
                "UPDATE webhook_events SET status = $1, processed_at = $2 WHERE external_id = $3",
            )
            .bind(*status)
            .bind(if i == 1 { 5_000_i64 } else { 1_000_i64 })
            .bind(format!("e{i}"))
            .execute(db.writer())
            .await
            .unwrap();
        }
        // e0 is completed at 1000: purged; e1 completed at 5000: kept;
        // failed and pending are never purged, whatever their age.
        assert_eq!(purge_completed(&db, 2_000).await.unwrap(), 1);
        let left: Vec<(String,)> =
            sqlx::query_as("SELECT external_id FROM webhook_events ORDER BY external_id")
                .fetch_all(db.reader())
                .await
                .unwrap();
        let left: Vec<&str> = left.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(left, ["e1", "e2", "e3"]);
        assert_eq!(purge_completed(&db, 2_000).await.unwrap(), 0);
    }
}
