//! The `webhook_events` table's write side: insert with dedup, claim with a
//! lease, renew, complete/fail, release and manual retry. The reads behind
//! the admin API are in [`super::history`].

use std::time::Duration;

use tokio_util::task::TaskTracker;

use super::{
    attempt::{self, AttemptOutcome},
    event::{
        ErrorKind, EventStatus, FailOutcome, HandlerError, InboxError, Inserted, NewEvent, Outcome,
    },
    intake::GroupCommit,
    record::EventRecord,
    retry::RetryPolicy,
};
use crate::db::{Backend, Db, now_ms};

/// An event held by one worker until `complete`/`fail` or the lease ends.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub event: EventRecord,
    /// Proves the lease is still ours: a worker whose lease expired and was
    /// taken over cannot overwrite the new holder's result.
    pub lease_token: String,
}

/// The statement behind [`Inbox::claim`], with its binds: `$1` now, `$2`
/// the end of the lease, `$3` the lease token, `$4` the provider (or NULL),
/// `$5` how many.
fn claim_sql(backend: Backend) -> &'static str {
    // Unlike the other queries of the inbox, this one spells its statuses
    // instead of binding them. Bound, PostgreSQL's generic plan for the
    // prepared statement (which it may switch to after five runs) cannot use
    // the statistics of each status, and joins the due ids back by a
    // sequential scan of the whole table: 4.0 ms instead of 0.53 ms per claim
    // with 30k events (`EXPLAIN ANALYZE`, `plan_cache_mode =
    // force_generic_plan`, PostgreSQL 15). A test checks that every word
    // quoted here is an [`EventStatus`].
    //
    // Not while another event of the same entity is being applied, so
    // one product's events are not applied concurrently across instances.
    macro_rules! not_blocked {
        () => {
            "($4 IS NULL OR e.provider = $4) \
             AND (e.entity_id IS NULL OR NOT EXISTS (SELECT 1 FROM webhook_events o \
                  WHERE o.entity_type = e.entity_type AND o.entity_id = e.entity_id \
                    AND o.id <> e.id AND o.status = 'processing' AND o.lease_expires_at >= $1))"
        };
    }
    // Due: pending, a retry whose time has come, or a lease that ran out,
    // asked as one query per status and merged. As a single query with
    // `status IN (…) OR …`, both engines read every pending row and sort
    // them: 93 ms (SQLite) and 173 ms (PostgreSQL) per claim with a
    // backlog of 30k events, while the claim holds a write connection
    // (on SQLite, *the* write connection, so webhooks wait too). Per
    // status, the (status, created_at, id) index yields rows already in
    // order and each part stops after `$5` rows: 0.3–0.5 ms.
    //
    // SQLite has one writer at a time, so its UPDATE is atomic as it is;
    // PostgreSQL needs the row locks, and SKIP LOCKED lets concurrent
    // workers take different rows instead of queueing on the same ones.
    // The lock goes inside each part: FOR UPDATE is not allowed on a
    // UNION itself.
    macro_rules! due {
        ($cond:literal, $lock:literal) => {
            concat!(
                "SELECT * FROM (SELECT e.id, e.created_at FROM webhook_events e WHERE ",
                $cond,
                " AND ",
                not_blocked!(),
                " ORDER BY e.created_at, e.id LIMIT $5",
                $lock,
                ") part"
            )
        };
    }
    macro_rules! claim {
        ($lock:literal) => {
            concat!(
                "UPDATE webhook_events SET status = 'processing', processing_started_at = $1, \
                 lease_expires_at = $2, lease_token = $3, updated_at = $1 \
                 WHERE id IN (SELECT id FROM (",
                due!(
                    "e.status = 'pending' AND (e.next_retry_at IS NULL OR e.next_retry_at <= $1)",
                    $lock
                ),
                " UNION ALL ",
                due!(
                    "e.status = 'retrying' AND (e.next_retry_at IS NULL OR e.next_retry_at <= $1)",
                    $lock
                ),
                " UNION ALL ",
                due!("e.status = 'processing' AND e.lease_expires_at < $1", $lock),
                ") due ORDER BY created_at, id LIMIT $5) RETURNING ",
                columns!()
            )
        };
    }
    match backend {
        Backend::Sqlite => claim!(""),
        Backend::Postgres => claim!(" FOR UPDATE SKIP LOCKED"),
    }
}

/// The PostgreSQL advisory lock key that claims take turns on ("vitrine"
/// and 1 in ASCII; advisory keys are one 64-bit space per database).
const CLAIM_LOCK: i64 = 0x7669_7472_696e_6501;

#[derive(Debug, Clone)]
pub struct Inbox {
    pub(super) db: Db,
    policy: RetryPolicy,
    intake: GroupCommit,
}

/// The claimed events as the attempt log needs them: id, and whether this
/// try was asked for by hand.
fn claimed_ids(rows: &[EventRecord]) -> Vec<(&str, bool)> {
    rows.iter()
        .map(|r| (r.id.as_str(), r.manual_retry_at.is_some()))
        .collect()
}

impl Inbox {
    /// Must be called inside a tokio runtime: it starts the group-commit
    /// writer that [`Inbox::insert`] hands events to.
    pub fn new(db: Db, policy: RetryPolicy) -> Self {
        Self::with_tasks(db, policy, &TaskTracker::new())
    }

    /// [`Inbox::new`], with the intake writers tracked by `tasks`.
    pub fn with_tasks(db: Db, policy: RetryPolicy, tasks: &TaskTracker) -> Self {
        let intake = GroupCommit::start(db.clone(), i64::from(policy.max_retries), tasks);
        Self { db, policy, intake }
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Stores an event unless one with the same `(provider, external_id)` is
    /// already there; in that case returns the existing task id with
    /// `duplicate: true`. The unique constraint, not a read-then-write,
    /// decides, so concurrent copies of one delivery still store one row.
    ///
    /// Concurrent calls are committed together ([`super::intake`]); each
    /// returns only once its row is durably stored.
    pub async fn insert(&self, e: NewEvent) -> Result<Inserted, InboxError> {
        self.intake.insert(e).await
    }

    /// Claims up to `n` due events: pending ones, retries whose time has come,
    /// and events whose worker's lease ran out (that worker is presumed dead).
    /// SQLite runs one writer at a time, so this single `UPDATE … RETURNING`
    /// is atomic: two workers never claim the same row. On PostgreSQL,
    /// claims from all instances take turns (an advisory lock), so an event
    /// is never claimed while another event of its entity is being applied
    /// anywhere.
    pub async fn claim(
        &self,
        provider: Option<&str>,
        n: usize,
        lease: Duration,
    ) -> Result<Vec<Claimed>, InboxError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let token = uuid::Uuid::new_v4().to_string();
        let sql = claim_sql(self.db.backend());
        let lease_ms = lease.as_millis() as i64;
        let _turn = self.db.background_turn().await;
        // SQLite: one writer at a time, so the claim is serialised as it is;
        // the transaction only keeps the claim and its attempts together.
        let mut tx = self.db.writer().begin().await?;
        if self.db.backend() == Backend::Postgres {
            // The claim's guard (no other event of the entity is being
            // applied) reads other rows, and under READ COMMITTED and SKIP
            // LOCKED two concurrent claims do not see each other's: two
            // instances could each take an event of one product and apply
            // them at once. So claims from every instance take turns, on a
            // transaction-scoped advisory lock taken before the claim's
            // snapshot: each claim then sees every claim committed before
            // it. A claim holds it for well under a millisecond (see
            // `claim_sql`), and nothing else takes it. Wrapped so the result
            // column is an integer: the Any driver cannot decode `void`.
            sqlx::query("SELECT 1 FROM (SELECT pg_advisory_xact_lock($1)) turn")
                .bind(CLAIM_LOCK)
                .execute(&mut *tx)
                .await?;
        }
        // Read the clock once it is our turn, so that a lease never starts
        // before the claim that ended the previous one.
        let now = now_ms();
        let mut rows: Vec<EventRecord> = sqlx::query_as(sql)
            .bind(now)
            .bind(now + lease_ms)
            .bind(&token)
            .bind(provider)
            .bind(n as i64)
            .fetch_all(&mut *tx)
            .await?;
        attempt::open(&mut tx, &claimed_ids(&rows), &token, now).await?;
        tx.commit().await?;
        // RETURNING gives no order guarantee; process oldest first.
        rows.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(rows
            .into_iter()
            .map(|event| Claimed {
                event,
                lease_token: token.clone(),
            })
            .collect())
    }

    /// Extends a claimed event's lease to `lease` from now, while its
    /// handler is still at work (the worker's heartbeat). Returns false if
    /// the lease is no longer ours: it ran out and another worker took the
    /// event, or the event was finished or released meanwhile.
    pub async fn renew(&self, c: &Claimed, lease: Duration) -> Result<bool, InboxError> {
        let now = now_ms();
        let _turn = self.db.background_turn().await;
        let r = sqlx::query(
            "UPDATE webhook_events SET lease_expires_at = $1 \
             WHERE id = $2 AND lease_token = $3 AND status = $4",
        )
        .bind(now + lease.as_millis() as i64)
        .bind(&c.event.id)
        .bind(&c.lease_token)
        .bind(EventStatus::Processing)
        .execute(self.db.writer())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Marks a claimed event done, keeping what applying it did. Returns
    /// false if the lease was lost.
    pub async fn complete(&self, c: &Claimed, outcome: &Outcome) -> Result<bool, InboxError> {
        let now = now_ms();
        let _turn = self.db.background_turn().await;
        let mut tx = self.db.writer().begin().await?;
        let r = sqlx::query(
            "UPDATE webhook_events SET status = $5, processed_at = $1, outcome = $2, \
             error = NULL, next_retry_at = NULL, lease_token = NULL, lease_expires_at = NULL, \
             manual_retry_at = NULL, updated_at = $1 \
             WHERE id = $3 AND lease_token = $4 AND status = $6",
        )
        .bind(now)
        .bind(outcome.detail.as_str())
        .bind(&c.event.id)
        .bind(&c.lease_token)
        .bind(EventStatus::Completed)
        .bind(EventStatus::Processing)
        .execute(&mut *tx)
        .await?;
        let ours = r.rows_affected() == 1;
        if ours {
            attempt::close(
                &mut tx,
                &c.event.id,
                &c.lease_token,
                now,
                AttemptOutcome::Completed,
                None,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(ours)
    }

    /// Records a failed try: schedules a retry if the error is transient and
    /// tries remain, otherwise marks the event `failed` and keeps the error.
    /// Says which of the two it did.
    pub async fn fail(&self, c: &Claimed, err: &HandlerError) -> Result<FailOutcome, InboxError> {
        let outcome = self.failure_outcome(c, err);
        self.record_failure(c, err, outcome).await?;
        Ok(outcome)
    }

    /// What a failed try leads to: another try later (transient, tries
    /// left), or the end. Decided before anything is written, so a handler
    /// can reflect a final failure before the event shows it.
    pub fn failure_outcome(&self, c: &Claimed, err: &HandlerError) -> FailOutcome {
        let retries = c.event.retry_count.max(0) as u32;
        let may_retry =
            err.kind == ErrorKind::Transient && retries < c.event.max_retries.max(0) as u32;
        if may_retry {
            let delay = self.policy.delay_with_jitter(retries);
            FailOutcome::Retrying {
                next_retry_at: now_ms() + delay.as_millis() as i64,
            }
        } else {
            FailOutcome::Failed
        }
    }

    /// Records a failed try with the `outcome` [`Inbox::failure_outcome`]
    /// decided.
    pub async fn record_failure(
        &self,
        c: &Claimed,
        err: &HandlerError,
        outcome: FailOutcome,
    ) -> Result<(), InboxError> {
        let now = now_ms();
        let retries = c.event.retry_count.max(0) as u32;
        let (retry_count, processed) = match outcome {
            FailOutcome::Retrying { .. } => (retries + 1, None),
            FailOutcome::Failed => (retries, Some(now)),
        };
        let next = match outcome {
            FailOutcome::Retrying { next_retry_at } => Some(next_retry_at),
            FailOutcome::Failed => None,
        };
        let _turn = self.db.background_turn().await;
        let mut tx = self.db.writer().begin().await?;
        let r = sqlx::query(
            "UPDATE webhook_events SET status = $1, retry_count = $2, next_retry_at = $3, \
             processed_at = $4, error = $5, lease_token = NULL, lease_expires_at = NULL, \
             manual_retry_at = NULL, updated_at = $6 \
             WHERE id = $7 AND lease_token = $8 AND status = $9",
        )
        .bind(outcome.status())
        .bind(i64::from(retry_count))
        .bind(next)
        .bind(processed)
        .bind(err.for_operators())
        .bind(now)
        .bind(&c.event.id)
        .bind(&c.lease_token)
        .bind(EventStatus::Processing)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 1 {
            let ended = match outcome {
                FailOutcome::Retrying { .. } => AttemptOutcome::Retrying,
                FailOutcome::Failed => AttemptOutcome::Failed,
            };
            let error = Some(err.for_operators());
            attempt::close(&mut tx, &c.event.id, &c.lease_token, now, ended, error).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Gives claimed events back untouched (graceful shutdown), so the next
    /// start takes them at once instead of waiting for the lease to expire.
    pub async fn release(&self, c: &Claimed) -> Result<(), InboxError> {
        // The row's retry_count is the claimed one: only the lease holder
        // changes it, and the `lease_token` check below makes sure that is us.
        let back = if c.event.retry_count > 0 {
            EventStatus::Retrying
        } else {
            EventStatus::Pending
        };
        let now = now_ms();
        let _turn = self.db.background_turn().await;
        let mut tx = self.db.writer().begin().await?;
        let r = sqlx::query(
            "UPDATE webhook_events SET status = $4, \
             lease_token = NULL, lease_expires_at = NULL, processing_started_at = NULL, updated_at = $1 \
             WHERE id = $2 AND lease_token = $3 AND status = $5",
        )
        .bind(now)
        .bind(&c.event.id)
        .bind(&c.lease_token)
        .bind(back)
        .bind(EventStatus::Processing)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 1 {
            let why = Some("shutdown: handed back before the handler finished");
            let outcome = AttemptOutcome::Released;
            attempt::close(&mut tx, &c.event.id, &c.lease_token, now, outcome, why).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Manual retry from the admin API: the event gets a fresh set of tries.
    pub async fn retry(&self, id: &str) -> Result<EventRecord, InboxError> {
        let current = self.get(id).await?;
        if current.status == EventStatus::Processing {
            return Err(InboxError::Busy(id.to_string()));
        }
        sqlx::query(
            "UPDATE webhook_events SET status = $3, retry_count = 0, next_retry_at = NULL, \
             processed_at = NULL, error = NULL, outcome = NULL, manual_retry_at = $1, \
             updated_at = $1 WHERE id = $2 AND status <> $4",
        )
        .bind(now_ms())
        .bind(id)
        .bind(EventStatus::Pending)
        .bind(EventStatus::Processing)
        .execute(self.db.writer())
        .await?;
        self.get(id).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::inbox::history::EventQuery;

    async fn inbox(dir: &std::path::Path, max_retries: u32) -> Inbox {
        let db = crate::db::test_sqlite(dir).await;
        Inbox::new(
            db,
            RetryPolicy::new(vec![Duration::from_millis(1)], max_retries),
        )
    }

    fn new_event(id: &str) -> NewEvent {
        NewEvent {
            provider: "bakai".into(),
            external_id: id.into(),
            event_type: "product.created".into(),
            event_subtype: Some("created".into()),
            entity_type: Some("product".into()),
            entity_id: Some("p".into()),
            org: None,
            payload: "{}".into(),
        }
    }

    /// The claim spells its statuses (see [`claim_sql`]): each must be a
    /// word of [`EventStatus`].
    #[test]
    fn the_claim_spells_only_event_statuses() {
        for backend in [Backend::Sqlite, Backend::Postgres] {
            let sql = claim_sql(backend);
            let quoted: Vec<&str> = sql.split('\'').skip(1).step_by(2).collect();
            assert_eq!(quoted.len(), 7, "{sql}");
            for word in quoted {
                assert!(word.parse::<EventStatus>().is_ok(), "`{word}` in {sql}");
            }
        }
    }

    #[tokio::test]
    async fn concurrent_inserts_are_all_stored_once_with_duplicates_sharing_a_task_id() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = inbox(dir.path(), 3).await;
        // 300 events, each delivered twice at once: the copies land in the
        // same group or in different ones, and must resolve the same way.
        let sends = (0..600).map(|i| {
            let inbox = inbox.clone();
            tokio::spawn(async move {
                (
                    i % 300,
                    inbox.insert(new_event(&format!("e{}", i % 300))).await,
                )
            })
        });
        let mut by_event: HashMap<i32, Vec<Inserted>> = HashMap::new();
        for r in futures::future::join_all(sends).await {
            let (i, inserted) = r.unwrap();
            by_event.entry(i).or_default().push(inserted.unwrap());
        }
        assert_eq!(by_event.len(), 300);
        for copies in by_event.values() {
            assert_eq!(copies.len(), 2);
            assert_eq!(copies[0].task_id, copies[1].task_id);
            assert_eq!(copies.iter().filter(|c| !c.duplicate).count(), 1);
        }
        let (rows, total) = inbox
            .list(&EventQuery {
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!((rows.len(), total), (300, 300));
    }

    #[tokio::test]
    async fn a_renewed_lease_is_kept_and_a_lost_one_cannot_be_renewed() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = inbox(dir.path(), 3).await;
        inbox.insert(new_event("e1")).await.unwrap();
        let lease = Duration::from_millis(150);
        let held = inbox.claim(None, 10, lease).await.unwrap().pop().unwrap();
        // Renewed before it runs out, the lease outlives its first term.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(inbox.renew(&held, lease).await.unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
        let none = inbox.claim(None, 10, lease).await.unwrap();
        assert!(none.is_empty(), "a renewed lease is still held");
        // Not renewed, it runs out; the new holder's lease is not ours.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let taken = inbox
            .claim(None, 10, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(taken.len(), 1);
        assert!(!inbox.renew(&held, lease).await.unwrap());
        assert!(inbox.renew(&taken[0], lease).await.unwrap());
    }

    #[tokio::test]
    async fn an_expired_lease_is_claimed_again_and_the_old_holder_cannot_complete() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = inbox(dir.path(), 3).await;
        let first = inbox.insert(new_event("e1")).await.unwrap();
        assert!(!first.duplicate);
        assert!(inbox.insert(new_event("e1")).await.unwrap().duplicate);

        let claimed = inbox
            .claim(None, 10, Duration::from_millis(50))
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        // Held: nobody else gets it.
        assert!(
            inbox
                .claim(None, 10, Duration::from_secs(60))
                .await
                .unwrap()
                .is_empty()
        );
        // The holder "dies"; once the lease runs out another worker takes over.
        tokio::time::sleep(Duration::from_millis(80)).await;
        let taken = inbox
            .claim(None, 10, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].event.id, first.task_id);
        // The stale holder's late result is ignored; the new holder's counts.
        let late = Outcome::applied("late");
        assert!(!inbox.complete(&claimed[0], &late).await.unwrap());
        assert!(
            inbox
                .complete(&taken[0], &Outcome::applied("done"))
                .await
                .unwrap()
        );
        let rec = inbox.get(&first.task_id).await.unwrap();
        assert_eq!(
            (rec.status, rec.outcome.as_deref()),
            (EventStatus::Completed, Some("done"))
        );
    }

    /// A try whose worker died holding the lease ends `abandoned` when
    /// another worker takes the event over; one handed back on shutdown
    /// ends `released`; a manual retry marks the next try `manual`.
    #[tokio::test]
    async fn abandoned_and_released_tries_are_recorded() {
        use crate::inbox::{AttemptKind, AttemptOutcome};
        let dir = tempfile::tempdir().unwrap();
        let inbox = inbox(dir.path(), 3).await;
        let id = inbox.insert(new_event("e1")).await.unwrap().task_id;
        let short = Duration::from_millis(30);
        let dead = inbox.claim(None, 1, short).await.unwrap().pop().unwrap();
        let open = inbox.attempts(&id).await.unwrap();
        assert_eq!(
            (open.len(), open[0].outcome, open[0].ended_at),
            (1, None, None)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        let taker = inbox
            .claim(None, 1, Duration::from_secs(60))
            .await
            .unwrap()
            .pop()
            .unwrap();
        // The dead worker's late word changes nothing.
        assert!(
            !inbox
                .complete(&dead, &Outcome::applied("late"))
                .await
                .unwrap()
        );
        inbox.release(&taker).await.unwrap();
        inbox.retry(&id).await.unwrap();
        let c = inbox
            .claim(None, 1, Duration::from_secs(60))
            .await
            .unwrap()
            .pop()
            .unwrap();
        inbox.complete(&c, &Outcome::applied("done")).await.unwrap();
        let tries: Vec<_> = inbox
            .attempts(&id)
            .await
            .unwrap()
            .into_iter()
            .map(|a| (a.kind, a.outcome))
            .collect();
        assert_eq!(
            tries,
            vec![
                (AttemptKind::Automatic, Some(AttemptOutcome::Abandoned)),
                (AttemptKind::Automatic, Some(AttemptOutcome::Released)),
                (AttemptKind::Manual, Some(AttemptOutcome::Completed)),
            ]
        );
    }

    #[tokio::test]
    async fn transient_failures_retry_then_fail_and_permanent_ones_fail_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = inbox(dir.path(), 2).await;
        let t = inbox.insert(new_event("t")).await.unwrap().task_id;
        let unavailable = HandlerError::transient("HTTP 503");
        for expected in [
            EventStatus::Retrying,
            EventStatus::Retrying,
            EventStatus::Failed,
        ] {
            let c = loop {
                let mut c = inbox.claim(None, 1, Duration::from_secs(60)).await.unwrap();
                if let Some(c) = c.pop() {
                    break c;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            };
            let outcome = inbox.fail(&c, &unavailable).await.unwrap();
            assert_eq!(outcome.status(), expected);
            let rec = inbox.get(&c.event.id).await.unwrap();
            assert_eq!(rec.status, expected);
            match outcome {
                FailOutcome::Retrying { next_retry_at } => {
                    assert_eq!(rec.next_retry_at, Some(next_retry_at))
                }
                FailOutcome::Failed => assert_eq!(rec.next_retry_at, None),
            }
        }
        let rec = inbox.get(&t).await.unwrap();
        assert_eq!(rec.retry_count, 2);
        assert_eq!(rec.error.as_deref(), Some("HTTP 503"));

        let p = inbox.insert(new_event("p")).await.unwrap().task_id;
        let c = inbox
            .claim(None, 1, Duration::from_secs(60))
            .await
            .unwrap()
            .pop()
            .unwrap();
        let corrupt = HandlerError::permanent("corrupt image");
        assert_eq!(inbox.fail(&c, &corrupt).await.unwrap(), FailOutcome::Failed);
        assert_eq!(inbox.get(&p).await.unwrap().retry_count, 0);

        // A manual retry gives a failed event a fresh set of tries.
        let rec = inbox.retry(&t).await.unwrap();
        assert_eq!((rec.status, rec.retry_count), (EventStatus::Pending, 0));
        assert!(rec.error.is_none());
    }
}
