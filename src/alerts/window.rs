//! The `alert_windows` table: what has been alerted, per provider, and the
//! claim that lets one instance (of several on one database) send a
//! provider's alert.
//!
//! The failures themselves are not copied anywhere: a final failure is a
//! row of `webhook_event_attempts` with outcome `failed`, written in the
//! same transaction that marks its event `failed` (`inbox::store`). So an
//! alert counts what the database holds, whichever instance's worker
//! failed the event, and nothing counted is lost when an instance stops.
//!
//! The queries spell the outcomes (`'failed'`) instead of binding them, so
//! that both engines can use the partial index on failed tries (SQLite
//! matches a partial index's predicate only against the query's literal
//! terms); a test checks the words against [`AttemptOutcome`].
//!
//! [`AttemptOutcome`]: crate::inbox::AttemptOutcome

use sqlx::Row;

use super::Alert;
use crate::db::Db;

/// The row whose `counted_through` is where counting starts for a provider
/// seen for the first time: when alerts were first enabled on this
/// database. No provider is called `*` (they are code-given keys).
pub(super) const START: &str = "*";

/// One provider with failures not yet in a delivered alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pending {
    pub provider: String,
    pub count: i64,
    /// When the oldest of them ended (Unix ms).
    pub first_at_ms: i64,
    /// Whether the provider has a row of its own yet.
    pub has_row: bool,
}

/// Creates the start row once, at `now_ms`; later calls keep the first.
pub(super) async fn init(db: &Db, now_ms: i64) -> Result<(), sqlx::Error> {
    let _turn = db.background_turn().await;
    sqlx::query(
        "INSERT INTO alert_windows (provider, counted_through, updated_at) VALUES ($1, $2, $2) \
         ON CONFLICT (provider) DO NOTHING",
    )
    .bind(START)
    .bind(now_ms)
    .execute(db.writer())
    .await?;
    Ok(())
}

/// Every provider with final failures that ended after its cursor and at
/// or before `cut`.
pub(super) async fn pending(db: &Db, cut: i64) -> Result<Vec<Pending>, sqlx::Error> {
    let Some(floor) =
        sqlx::query_scalar::<_, Option<i64>>("SELECT MIN(counted_through) FROM alert_windows")
            .fetch_one(db.reader())
            .await?
    else {
        // No start row yet (`init` has not run): nothing is counted.
        return Ok(Vec::new());
    };
    // `floor` bounds the range on the partial index of failed tries; each
    // provider's own cursor (or the start row's) then narrows it.
    let rows = sqlx::query(
        "SELECT e.provider, COUNT(*) AS n, MIN(a.ended_at) AS first_at, \
                CAST(MAX(CASE WHEN w.provider IS NULL THEN 0 ELSE 1 END) AS BIGINT) AS has_row \
         FROM webhook_event_attempts a \
         JOIN webhook_events e ON e.id = a.event_id \
         LEFT JOIN alert_windows w ON w.provider = e.provider \
         WHERE a.outcome IN ('retrying', 'failed') AND a.outcome = 'failed' \
           AND a.ended_at > $1 AND a.ended_at <= $2 \
           AND a.ended_at > COALESCE(w.counted_through, \
                 (SELECT s.counted_through FROM alert_windows s WHERE s.provider = $3)) \
         GROUP BY e.provider ORDER BY e.provider",
    )
    .bind(floor)
    .bind(cut)
    .bind(START)
    .fetch_all(db.reader())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Pending {
                provider: r.try_get("provider")?,
                count: r.try_get("n")?,
                first_at_ms: r.try_get("first_at")?,
                has_row: r.try_get::<i64, _>("has_row")? == 1,
            })
        })
        .collect()
}

/// Claims `provider`'s window for this instance until `until`, if no
/// other instance holds it and its last try is at least `interval_ms` old.
/// Returns the cursor (failures after it are not yet alerted) when the
/// claim is ours.
pub(super) async fn claim(
    db: &Db,
    provider: &str,
    token: &str,
    now: i64,
    until: i64,
    interval_ms: i64,
) -> Result<Option<i64>, sqlx::Error> {
    let _turn = db.background_turn().await;
    let mut tx = db.writer().begin().await?;
    // A provider's first window starts where the start row says.
    sqlx::query(
        "INSERT INTO alert_windows (provider, counted_through, updated_at) \
         SELECT $1, counted_through, $2 FROM alert_windows WHERE provider = $3 \
         ON CONFLICT (provider) DO NOTHING",
    )
    .bind(provider)
    .bind(now)
    .bind(START)
    .execute(&mut *tx)
    .await?;
    let r = sqlx::query(
        "UPDATE alert_windows SET claimed_until = $1, claim_token = $2, updated_at = $3 \
         WHERE provider = $4 AND (claimed_until IS NULL OR claimed_until < $3) \
           AND (last_try_at IS NULL OR last_try_at <= $5)",
    )
    .bind(until)
    .bind(token)
    .bind(now)
    .bind(provider)
    .bind(now - interval_ms)
    .execute(&mut *tx)
    .await?;
    let cursor = if r.rows_affected() == 1 {
        Some(
            sqlx::query_scalar::<_, i64>(
                "SELECT counted_through FROM alert_windows WHERE provider = $1",
            )
            .bind(provider)
            .fetch_one(&mut *tx)
            .await?,
        )
    } else {
        None
    };
    tx.commit().await?;
    Ok(cursor)
}

/// Sums up `provider`'s failures in `(since, cut]`: `None` when there are
/// none (another instance alerted them meanwhile).
pub(super) async fn summary(
    db: &Db,
    provider: &str,
    since: i64,
    cut: i64,
) -> Result<Option<Alert>, sqlx::Error> {
    const FROM: &str = "FROM webhook_event_attempts a JOIN webhook_events e ON e.id = a.event_id \
         WHERE a.outcome IN ('retrying', 'failed') AND a.outcome = 'failed' \
           AND e.provider = $1 AND a.ended_at > $2 AND a.ended_at <= $3";
    let (count, first, last): (i64, Option<i64>, Option<i64>) =
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*), MIN(a.ended_at), MAX(a.ended_at) {FROM}"
        )))
        .bind(provider)
        .bind(since)
        .bind(cut)
        .fetch_one(db.reader())
        .await?;
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(None);
    };
    if count == 0 {
        return Ok(None);
    }
    // The most common error; ties go to the alphabetically first, so two
    // instances (or two tries) name the same one.
    let (top_error, top_error_count): (String, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT COALESCE(a.error, '') AS err, COUNT(*) AS n {FROM} \
             GROUP BY COALESCE(a.error, '') ORDER BY n DESC, err LIMIT 1"
    )))
    .bind(provider)
    .bind(since)
    .bind(cut)
    .fetch_one(db.reader())
    .await?;
    Ok(Some(Alert {
        provider: provider.to_string(),
        count: count as u64,
        top_error,
        top_error_count: top_error_count as u64,
        since_ms: since,
        until_ms: cut,
        first_at_ms: first,
        last_at_ms: last,
    }))
}

/// Ends a claim (a no-op if it was lost: its token no longer matches).
pub(super) async fn finish(
    db: &Db,
    provider: &str,
    token: &str,
    now: i64,
    result: Finish<'_>,
) -> Result<(), sqlx::Error> {
    // Each statement numbers the shared values $1–$3 and its own $4.
    let sql = match result {
        Finish::Nothing => {
            "UPDATE alert_windows SET claimed_until = NULL, claim_token = NULL, updated_at = $1 \
             WHERE provider = $2 AND claim_token = $3"
        }
        Finish::Delivered { .. } => {
            "UPDATE alert_windows SET claimed_until = NULL, claim_token = NULL, updated_at = $1, \
               counted_through = $4, last_try_at = $1, last_sent_at = $1, failed_tries = 0, \
               last_error = NULL \
             WHERE provider = $2 AND claim_token = $3"
        }
        Finish::Failed { .. } => {
            "UPDATE alert_windows SET claimed_until = NULL, claim_token = NULL, updated_at = $1, \
               last_try_at = $1, failed_tries = failed_tries + 1, last_error = $4 \
             WHERE provider = $2 AND claim_token = $3"
        }
    };
    let _turn = db.background_turn().await;
    let q = sqlx::query(sql).bind(now).bind(provider).bind(token);
    let q = match result {
        Finish::Nothing => q,
        Finish::Delivered { through } => q.bind(through),
        Finish::Failed { error } => q.bind(error),
    };
    q.execute(db.writer()).await?;
    Ok(())
}

/// How a claim ends.
#[derive(Debug, Clone, Copy)]
pub(super) enum Finish<'a> {
    /// Nothing to send after all (another instance alerted meanwhile).
    Nothing,
    /// Every destination took the alert: the cursor moves to the last
    /// failure it counted.
    Delivered { through: i64 },
    /// A destination did not: the cursor stays, so the next window's alert
    /// carries these failures with the new ones. The interval still starts,
    /// so a broken destination is not hammered.
    Failed { error: &'a str },
}

/// Providers whose cursor is older than `stale_before` and that have no
/// failure pending: their cursor moves to `cut`, so the range that
/// [`pending`] reads stays short. Safe because nothing of theirs lies in
/// between (the caller just read that), and done by compare-and-set, so
/// a concurrent alert of another instance wins.
pub(super) async fn catch_up(
    db: &Db,
    pending: &[Pending],
    stale_before: i64,
    cut: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT provider, counted_through FROM alert_windows \
         WHERE counted_through < $1 AND claimed_until IS NULL",
    )
    .bind(stale_before)
    .fetch_all(db.reader())
    .await?;
    for (provider, through) in rows {
        let busy = if provider == START {
            // The start row serves providers without a row of their own.
            pending.iter().any(|p| !p.has_row)
        } else {
            pending.iter().any(|p| p.provider == provider)
        };
        if busy {
            continue;
        }
        let _turn = db.background_turn().await;
        sqlx::query(
            "UPDATE alert_windows SET counted_through = $1, updated_at = $2 \
             WHERE provider = $3 AND counted_through = $4 AND claimed_until IS NULL",
        )
        .bind(cut)
        .bind(now)
        .bind(&provider)
        .bind(through)
        .execute(db.writer())
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::inbox::AttemptOutcome;

    #[test]
    fn the_spelled_outcomes_are_attempt_outcomes() {
        assert_eq!(AttemptOutcome::Failed.as_str(), "failed");
        assert_eq!(AttemptOutcome::Retrying.as_str(), "retrying");
    }
}
