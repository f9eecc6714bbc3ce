//! Figures for the admin dashboard (`GET /api/v1/stats`), read from the
//! database so that every instance shows the same, per minute over a
//! window that ends now, shaped for a chart library: one array of minute
//! timestamps and, per series, one array of counts of the same length
//! (uPlot's `[xs, ys…]`).
//!
//! - **received**: events stored, by provider and by the status they have
//!   now, per minute of `created_at`;
//! - **failures**: events that failed for good (tries whose outcome is
//!   `failed`), and all failed tries (`retrying` or `failed`), per minute
//!   the try ended;
//! - **embeddings**: events whose processing embedded an image and
//!   upserted its vector (completed with the catalog's `indexed` outcome),
//!   per minute of `processed_at`. An event replayed later counts again at
//!   its new time; `vitrine reindex` embeds outside the inbox and is not
//!   counted;
//! - **queue depth**: events pending, retrying and processing now (the
//!   database keeps no history of it; a dashboard samples it).
//!
//! The queries spell statuses and outcomes instead of binding them, so
//! that both engines can use the partial indexes they rely on (see
//! `migrations/*/20261202000100_alert_windows.sql`); a test checks the
//! words against the vocabularies.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{event::InboxError, store::Inbox};

pub const MINUTE_MS: i64 = 60_000;

/// The most minutes one request may ask for: a day.
pub const MAX_MINUTES: u32 = 1440;

/// What `outcome` starts with for an event that embedded an image: the
/// catalog's `SyncOutcome::Indexed` text (a catalog test keeps the two
/// equal). The inbox knows no provider; this prefix is the one fact of
/// the catalog's vocabulary the dashboard needs.
pub const EMBEDDED_OUTCOME_PREFIX: &str = "indexed:";

/// The dashboard's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InboxStats {
    pub minutes: u32,
    pub bucket_secs: i64,
    /// The window: `[from, until)`, RFC 3339; the last minute is the
    /// current one, so it is still filling.
    pub from: Option<String>,
    pub until: Option<String>,
    /// Each minute's start, in Unix seconds (what chart libraries take).
    pub timestamps: Vec<i64>,
    pub received: Received,
    pub failures: Failures,
    pub embeddings: Vec<i64>,
    pub queue_depth: QueueDepth,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Received {
    pub total: Vec<i64>,
    pub by_provider: BTreeMap<String, Vec<i64>>,
    pub by_status: BTreeMap<String, Vec<i64>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failures {
    /// Events that failed for good, all providers.
    #[serde(rename = "final")]
    pub final_: Vec<i64>,
    pub final_by_provider: BTreeMap<String, Vec<i64>>,
    /// Tries that failed (retried or final).
    pub tries: Vec<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QueueDepth {
    pub pending: i64,
    pub retrying: i64,
    pub processing: i64,
    pub total: i64,
}

/// Rows `(minute start ms, key, count)` into one series per key.
fn series(
    rows: &[(i64, String, i64)],
    from: i64,
    n: usize,
) -> (Vec<i64>, BTreeMap<String, Vec<i64>>) {
    let mut total = vec![0; n];
    let mut by: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (minute, key, count) in rows {
        let Ok(i) = usize::try_from((minute - from) / MINUTE_MS) else {
            continue;
        };
        if i >= n {
            continue;
        }
        total[i] += count;
        by.entry(key.clone()).or_insert_with(|| vec![0; n])[i] += count;
    }
    (total, by)
}

impl Inbox {
    /// The figures for the `minutes` minutes up to and including the one
    /// `now_ms` falls in.
    pub async fn stats(&self, minutes: u32, now_ms: i64) -> Result<InboxStats, InboxError> {
        let minutes = minutes.clamp(1, MAX_MINUTES);
        let n = minutes as usize;
        let until = (now_ms / MINUTE_MS + 1) * MINUTE_MS;
        let from = until - i64::from(minutes) * MINUTE_MS;
        let db = self.db.reader();
        // Integer division buckets the Unix-ms times into minutes on both
        // engines (the columns are BIGINT).
        let received: Vec<(i64, String, String, i64)> = sqlx::query_as(
            "SELECT (created_at / 60000) * 60000, provider, status, COUNT(*) FROM webhook_events \
             WHERE created_at >= $1 AND created_at < $2 GROUP BY 1, 2, 3",
        )
        .bind(from)
        .bind(until)
        .fetch_all(db)
        .await?;
        let by_provider: Vec<(i64, String, i64)> = received
            .iter()
            .map(|(m, p, _, c)| (*m, p.clone(), *c))
            .collect();
        let by_status: Vec<(i64, String, i64)> = received
            .iter()
            .map(|(m, _, s, c)| (*m, s.clone(), *c))
            .collect();
        // `outcome` is the key: failed tries split into final and retried.
        let tries: Vec<(i64, String, String, i64)> = sqlx::query_as(
            "SELECT (a.ended_at / 60000) * 60000, e.provider, a.outcome, COUNT(*) \
             FROM webhook_event_attempts a JOIN webhook_events e ON e.id = a.event_id \
             WHERE a.outcome IN ('retrying', 'failed') AND a.ended_at >= $1 AND a.ended_at < $2 \
             GROUP BY 1, 2, 3",
        )
        .bind(from)
        .bind(until)
        .fetch_all(db)
        .await?;
        let final_rows: Vec<(i64, String, i64)> = tries
            .iter()
            .filter(|(_, _, o, _)| o == "failed")
            .map(|(m, p, _, c)| (*m, p.clone(), *c))
            .collect();
        let try_rows: Vec<(i64, String, i64)> = tries
            .iter()
            .map(|(m, p, _, c)| (*m, p.clone(), *c))
            .collect();
        // Only a completed event has an `outcome` (a manual retry or a
        // replay clears it), so no status test: with one, SQLite walked the
        // status index through every completed event instead of the
        // `processed_at` range (`EXPLAIN QUERY PLAN`).
        let embedded: Vec<(i64, String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT (processed_at / 60000) * 60000, provider, COUNT(*) FROM webhook_events \
             WHERE processed_at IS NOT NULL AND processed_at >= $1 AND processed_at < $2 \
               AND outcome LIKE '{EMBEDDED_OUTCOME_PREFIX}%' \
             GROUP BY 1, 2"
        )))
        .bind(from)
        .bind(until)
        .fetch_all(db)
        .await?;
        let depth: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, COUNT(*) FROM webhook_events \
             WHERE status IN ('pending', 'retrying', 'processing') GROUP BY status",
        )
        .fetch_all(db)
        .await?;
        let mut queue_depth = QueueDepth::default();
        for (status, count) in depth {
            match status.as_str() {
                "pending" => queue_depth.pending = count,
                "retrying" => queue_depth.retrying = count,
                "processing" => queue_depth.processing = count,
                _ => continue,
            }
            queue_depth.total += count;
        }

        let (received_total, by_provider) = series(&by_provider, from, n);
        let (_, by_status) = series(&by_status, from, n);
        let (final_total, final_by_provider) = series(&final_rows, from, n);
        let (tries_total, _) = series(&try_rows, from, n);
        let (embeddings, _) = series(&embedded, from, n);
        Ok(InboxStats {
            minutes,
            bucket_secs: MINUTE_MS / 1000,
            from: super::event::time_text(from),
            until: super::event::time_text(until),
            timestamps: (0..i64::from(minutes))
                .map(|i| (from + i * MINUTE_MS) / 1000)
                .collect(),
            received: Received {
                total: received_total,
                by_provider,
                by_status,
            },
            failures: Failures {
                final_: final_total,
                final_by_provider,
                tries: tries_total,
            },
            embeddings,
            queue_depth,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbox::{AttemptOutcome, EventStatus};

    #[test]
    fn the_spelled_words_are_the_vocabularies() {
        for s in ["pending", "retrying", "processing"] {
            assert!(s.parse::<EventStatus>().is_ok(), "{s}");
        }
        for o in ["retrying", "failed"] {
            assert!(o.parse::<AttemptOutcome>().is_ok(), "{o}");
        }
        assert!(
            !EMBEDDED_OUTCOME_PREFIX.contains(['\'', '%', '_']),
            "the prefix goes into a LIKE pattern as is"
        );
    }

    #[test]
    fn rows_become_aligned_series() {
        let from = 1_764_633_600_000;
        let rows = vec![
            (from, "a".to_string(), 2),
            (from + 2 * MINUTE_MS, "b".to_string(), 5),
            (from + 2 * MINUTE_MS, "a".to_string(), 1),
            // Outside the window: ignored.
            (from - MINUTE_MS, "a".to_string(), 9),
            (from + 3 * MINUTE_MS, "a".to_string(), 9),
        ];
        let (total, by) = series(&rows, from, 3);
        assert_eq!(total, vec![2, 0, 6]);
        assert_eq!(by["a"], vec![2, 0, 1]);
        assert_eq!(by["b"], vec![0, 0, 5]);
    }
}
