//! The worker loop: claim due events, hand each to its provider's handler,
//! record the result.
//!
//! One loop per instance runs up to `concurrency` events at once. That is
//! mostly waiting (image downloads); the CPU-heavy part, embedding, is funnelled
//! into one sized pool by the embedder, so the loop's concurrency does not
//! multiply CPU threads.
//!
//! While a handler runs, a heartbeat renews its event's lease every third of
//! the lease, so a slow download is not taken for a dead worker and claimed
//! again (and again). The lease thus only has to outlast a missed heartbeat,
//! not the slowest handler; what bounds a handler is its own deadline
//! (`handler_timeout`), after which the try fails as transient. If a renewal
//! finds the lease gone (taken over after a stall, or the event finished by
//! someone else), the handler is stopped: its result would not count.

use std::{collections::HashMap, sync::Arc, time::Duration};

use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use super::{
    event::{FailOutcome, HandlerError, Outcome, OutcomeKind},
    record::EventRecord,
    store::{Claimed, Inbox},
};

/// What a provider module implements to process its events.
#[async_trait::async_trait]
pub trait EventHandler: Send + Sync {
    /// Applies the event; the outcome's text is stored as its `outcome`. An
    /// error's [`ErrorKind`](super::event::ErrorKind) decides whether the
    /// event is tried again.
    async fn handle(&self, event: &EventRecord) -> Result<Outcome, HandlerError>;

    /// Called once an event has failed for good, to reflect it elsewhere
    /// (for example a product's status).
    async fn on_final_failure(&self, _event: &EventRecord, _error: &str) {}
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub concurrency: usize,
    pub lease: Duration,
    pub poll_interval: Duration,
    /// On shutdown, how long in-flight events may take to finish.
    pub shutdown_grace: Duration,
    /// Past that, how long one attempt still gets before it is aborted and
    /// its event released back to the inbox.
    pub abort_grace: Duration,
    /// The longest one try may take; past it the handler is stopped and the
    /// try fails as transient.
    pub handler_timeout: Duration,
}

/// The handlers of every mounted provider, by the inbox `provider` key.
pub type Handlers = HashMap<String, Arc<dyn EventHandler>>;

/// Claims and processes every event that is due now, in the caller's task
/// and up to `cfg.concurrency` at once, until a claim comes back empty;
/// returns how many it processed. Beside a running [`run`] loop this is
/// safe (a claim never hands one event to two callers), and tests use it to
/// drive the inbox deterministically instead of waiting on the loop.
pub async fn process_due(inbox: &Inbox, handlers: &Handlers, cfg: &WorkerConfig) -> usize {
    let never = CancellationToken::new();
    let mut done = 0;
    loop {
        let claimed = match inbox.claim(None, cfg.concurrency, cfg.lease).await {
            Ok(c) if !c.is_empty() => c,
            Ok(_) => return done,
            Err(e) => {
                tracing::error!(error = %e, "claiming events failed");
                return done;
            }
        };
        done += claimed.len();
        futures::future::join_all(claimed.into_iter().map(|c| {
            let handler = handlers.get(&c.event.provider).cloned();
            process(inbox, handler, c, never.clone(), cfg)
        }))
        .await;
    }
}

/// Runs until `shutdown` is cancelled, then waits for in-flight events (up to
/// a grace period) and hands unfinished ones back to the inbox.
pub async fn run(
    inbox: Inbox,
    handlers: Handlers,
    cfg: WorkerConfig,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let handlers = Arc::new(handlers);
    let slots = Arc::new(Semaphore::new(cfg.concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        // Wait until at least one slot is free before claiming, so a claimed
        // event never sits waiting while its lease runs down.
        let first = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("semaphore is never closed"),
            _ = shutdown.cancelled() => break,
        };
        let free = slots.available_permits() + 1;
        let claimed = match inbox.claim(None, free, cfg.lease).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "claiming events failed");
                drop(first);
                tokio::select! {
                    _ = tokio::time::sleep(cfg.poll_interval) => continue,
                    _ = shutdown.cancelled() => break,
                }
            }
        };
        while tasks.try_join_next().is_some() {}
        if claimed.is_empty() {
            drop(first);
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(cfg.poll_interval) => {}
                _ = shutdown.cancelled() => break,
            }
            continue;
        }
        let mut first = Some(first);
        for c in claimed {
            let permit = match first.take() {
                Some(p) => p,
                None => slots
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("semaphore is never closed"),
            };
            let handler = handlers.get(&c.event.provider).cloned();
            let inbox = inbox.clone();
            let stop = shutdown.clone();
            let cfg = cfg.clone();
            tasks.spawn(async move {
                process(&inbox, handler, c, stop, &cfg).await;
                drop(permit);
            });
        }
    }
    // Grace period: let in-flight events finish; past it, they are released
    // inside `process` when it sees the cancellation.
    let _ = tokio::time::timeout(cfg.shutdown_grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
}

/// How one try of an event ended, short of its handler's own result.
enum Ended {
    /// The handler returned (or panicked).
    Finished(Result<Result<Outcome, HandlerError>, tokio::task::JoinError>),
    /// A renewal found the lease taken: someone else holds the event now.
    LeaseLost,
    /// The handler ran past `handler_timeout`.
    TimedOut,
    /// Shutdown, and the abort grace ran out: hand the event back.
    Abandoned,
}

/// Renews `c`'s lease every third of `lease` for as long as it is polled;
/// resolves only once the lease is lost: a renewal matched no row (the lease
/// ran out and another worker took the event), or renewals kept failing
/// (database errors) until the lease would have run out anyway. Two
/// renewals fit in each lease, so one slow or failed write is not fatal.
async fn keep_lease(inbox: &Inbox, c: &Claimed, lease: Duration) {
    let every = lease / 3;
    // The claim set the lease a moment before this; counting from here
    // errs on the late side, so the first tick comes early enough.
    let mut held_until = tokio::time::Instant::now() + lease;
    loop {
        tokio::time::sleep(every).await;
        let asked = tokio::time::Instant::now();
        match inbox.renew(c, lease).await {
            Ok(true) => held_until = asked + lease,
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(id = %c.event.id, error = %e, "could not renew the lease");
                if tokio::time::Instant::now() >= held_until {
                    return;
                }
            }
        }
    }
}

async fn process(
    inbox: &Inbox,
    handler: Option<Arc<dyn EventHandler>>,
    c: Claimed,
    shutdown: CancellationToken,
    cfg: &WorkerConfig,
) {
    let event_type = c.event.event_type.clone();
    let started = std::time::Instant::now();
    let Some(handler) = handler else {
        let msg = format!("no handler for provider `{}`", c.event.provider);
        record_failure(inbox, None, &c, HandlerError::permanent(msg)).await;
        return;
    };
    let span = tracing::info_span!("event", id = %c.event.id, provider = %c.event.provider,
        event_type = %event_type, entity = c.event.entity_id.as_deref().unwrap_or(""));
    // The handler runs in its own task so that a panic fails this one event
    // instead of taking the worker down, and so that it can be stopped.
    let event = c.event.clone();
    let h = handler.clone();
    let mut job = tokio::spawn(tracing::Instrument::instrument(
        async move { h.handle(&event).await },
        span.clone(),
    ));
    // The heartbeat lives in this block only. Once the select is decided it
    // must be dropped, not merely left unpolled: a renewal caught mid-way
    // holds the SQLite writer's background turn (`Db::background_turn`),
    // and the completion below, like every later worker write of this
    // instance, would wait for that turn for ever (found by
    // scripts/chaos.sh: the worker stalled with 8 events `processing`).
    let ended = {
        let heartbeat = keep_lease(inbox, &c, cfg.lease);
        let deadline = tokio::time::sleep(cfg.handler_timeout);
        tokio::pin!(heartbeat, deadline);
        tokio::select! {
            r = &mut job => Ended::Finished(r),
            () = &mut heartbeat => Ended::LeaseLost,
            () = &mut deadline => Ended::TimedOut,
            () = shutdown.cancelled() => {
                // Give the attempt a little longer (still heartbeating), then
                // hand the event back.
                let grace = tokio::time::sleep(cfg.abort_grace);
                tokio::select! {
                    r = &mut job => Ended::Finished(r),
                    () = &mut heartbeat => Ended::LeaseLost,
                    () = &mut deadline => Ended::TimedOut,
                    () = grace => Ended::Abandoned,
                }
            }
        }
    };
    let result = match ended {
        Ended::Finished(r) => r,
        stopped => {
            job.abort();
            // Wait until it has stopped, so that nothing of this try runs on
            // while the event is released or tried again.
            let _ = job.await;
            match stopped {
                Ended::LeaseLost => {
                    tracing::warn!(parent: &span, "lease lost while handling; stopped the handler")
                }
                Ended::Abandoned => {
                    if let Err(e) = inbox.release(&c).await {
                        tracing::warn!(parent: &span, error = %e, "could not release event on shutdown");
                    }
                }
                Ended::TimedOut => {
                    let secs = cfg.handler_timeout.as_secs_f64();
                    let err = HandlerError::transient(format!(
                        "timed out: handling took longer than {secs} s (worker.handler_timeout_secs)"
                    ));
                    record_failure(inbox, Some(&*handler), &c, err).await;
                }
                Ended::Finished(_) => unreachable!("a finished handler is not stopped"),
            }
            return;
        }
    };
    metrics::histogram!("visual_search_webhook_processing_duration_seconds", "event_type" => event_type.clone())
        .record(started.elapsed().as_secs_f64());
    match result {
        Ok(Ok(outcome)) => match inbox.complete(&c, &outcome).await {
            Ok(true) => match outcome.kind {
                OutcomeKind::Applied => tracing::info!(parent: &span, %outcome, "event applied"),
                OutcomeKind::Skipped => tracing::info!(parent: &span, %outcome, "event skipped"),
            },
            Ok(false) => tracing::warn!(parent: &span, "lease lost before completion"),
            Err(e) => tracing::error!(parent: &span, error = %e, "could not mark event completed"),
        },
        Ok(Err(err)) => record_failure(inbox, Some(&*handler), &c, err).await,
        Err(join) => {
            let msg = if join.is_panic() {
                "internal error: the handler panicked (see logs)".to_string()
            } else {
                "internal error: the handler was cancelled".to_string()
            };
            tracing::error!(parent: &span, error = ?join, "handler task failed");
            record_failure(inbox, Some(&*handler), &c, HandlerError::permanent(msg)).await;
        }
    }
}

async fn record_failure(
    inbox: &Inbox,
    handler: Option<&dyn EventHandler>,
    c: &Claimed,
    err: HandlerError,
) {
    metrics::counter!("visual_search_webhooks_errors_total", "event_type" => c.event.event_type.clone())
        .increment(1);
    let outcome = inbox.failure_outcome(c, &err);
    // A final failure is reflected by the handler (a product's status)
    // before the event shows it, so whoever sees the event `failed` also
    // sees its effect.
    if outcome == FailOutcome::Failed
        && let Some(h) = handler
    {
        h.on_final_failure(&c.event, &err.message).await;
    }
    match inbox.record_failure(c, &err, outcome).await {
        Ok(()) => match outcome {
            FailOutcome::Failed => {
                tracing::warn!(id = %c.event.id, error = %err.for_operators(), "event failed for good")
            }
            FailOutcome::Retrying { next_retry_at } => {
                tracing::info!(id = %c.event.id, error = %err.for_operators(), next_retry_at, "event will be retried")
            }
        },
        Err(e) => tracing::error!(id = %c.event.id, error = %e, "could not record failure"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::inbox::{EventStatus, NewEvent, RetryPolicy};

    /// Counts its calls; each takes `takes`.
    struct Slow {
        takes: Duration,
        calls: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl EventHandler for Slow {
        async fn handle(&self, _: &EventRecord) -> Result<Outcome, HandlerError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.takes).await;
            Ok(Outcome::applied("done"))
        }
    }

    async fn setup(dir: &std::path::Path, takes: Duration) -> (Inbox, Handlers, Arc<Slow>) {
        let db = crate::db::test_sqlite(dir).await;
        let inbox = Inbox::new(db, RetryPolicy::new(vec![Duration::from_millis(1)], 1));
        inbox
            .insert(NewEvent {
                provider: "t".into(),
                external_id: "e1".into(),
                event_type: "x".into(),
                event_subtype: None,
                entity_type: None,
                entity_id: None,
                org: None,
                payload: "{}".into(),
            })
            .await
            .unwrap();
        let slow = Arc::new(Slow {
            takes,
            calls: AtomicUsize::new(0),
        });
        let mut handlers = Handlers::new();
        handlers.insert("t".into(), slow.clone() as Arc<dyn EventHandler>);
        (inbox, handlers, slow)
    }

    fn cfg(lease_ms: u64, timeout_ms: u64) -> WorkerConfig {
        WorkerConfig {
            concurrency: 4,
            lease: Duration::from_millis(lease_ms),
            poll_interval: Duration::from_millis(10),
            shutdown_grace: Duration::from_secs(1),
            abort_grace: Duration::from_secs(1),
            handler_timeout: Duration::from_millis(timeout_ms),
        }
    }

    /// A handler that takes four leases keeps its event: a second worker
    /// claiming all along gets nothing, and the handler runs once.
    #[tokio::test]
    async fn the_heartbeat_keeps_the_lease_of_a_slow_handler() {
        let dir = tempfile::tempdir().unwrap();
        let (inbox, handlers, slow) = setup(dir.path(), Duration::from_millis(1200)).await;
        let cfg = cfg(300, 10_000);
        let rival = {
            let inbox = inbox.clone();
            tokio::spawn(async move {
                let mut stolen = 0;
                for _ in 0..60 {
                    tokio::time::sleep(Duration::from_millis(25)).await;
                    stolen += inbox
                        .claim(None, 1, Duration::from_secs(60))
                        .await
                        .unwrap()
                        .len();
                }
                stolen
            })
        };
        assert_eq!(process_due(&inbox, &handlers, &cfg).await, 1);
        assert_eq!(rival.await.unwrap(), 0, "the lease was taken over");
        assert_eq!(slow.calls.load(Ordering::SeqCst), 1);
        let (rows, _) = inbox.list(&Default::default()).await.unwrap();
        assert_eq!(rows[0].status, EventStatus::Completed);
    }

    /// Past its deadline a try is stopped and fails as transient.
    #[tokio::test]
    async fn a_handler_past_its_deadline_is_stopped_and_retried() {
        let dir = tempfile::tempdir().unwrap();
        let (inbox, handlers, slow) = setup(dir.path(), Duration::from_secs(3600)).await;
        let cfg = cfg(3_000, 100);
        let started = std::time::Instant::now();
        // The first try and its one retry (max_retries 1).
        while process_due(&inbox, &handlers, &cfg).await > 0 {}
        let (rows, _) = inbox.list(&Default::default()).await.unwrap();
        let rec = &rows[0];
        if rec.status == EventStatus::Retrying {
            tokio::time::sleep(Duration::from_millis(20)).await;
            process_due(&inbox, &handlers, &cfg).await;
        }
        let (rows, _) = inbox.list(&Default::default()).await.unwrap();
        let rec = &rows[0];
        assert_eq!(rec.status, EventStatus::Failed, "{rec:?}");
        assert_eq!(rec.retry_count, 1, "a timeout is transient");
        assert!(
            rec.error.as_deref().unwrap().starts_with("timed out"),
            "{rec:?}"
        );
        assert_eq!(slow.calls.load(Ordering::SeqCst), 2);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    /// Waits until it is let go.
    struct Gate(tokio::sync::Notify);

    #[async_trait::async_trait]
    impl EventHandler for Gate {
        async fn handle(&self, _: &EventRecord) -> Result<Outcome, HandlerError> {
            self.0.notified().await;
            Ok(Outcome::applied("done"))
        }
    }

    /// A handler that finishes while its heartbeat is in the middle of a
    /// renewal: the renewal, holding SQLite's background turn, must not
    /// outlive the try, or the completion waits for the turn for ever.
    #[tokio::test]
    async fn a_handler_finishing_during_a_renewal_still_completes() {
        let dir = tempfile::tempdir().unwrap();
        let (inbox, _, _) = setup(dir.path(), Duration::ZERO).await;
        let gate = Arc::new(Gate(tokio::sync::Notify::new()));
        let cfg = cfg(300, 60_000);
        let c = inbox
            .claim(None, 1, cfg.lease)
            .await
            .unwrap()
            .pop()
            .unwrap();
        // Another background write holds the turn, and the one writer
        // connection is busy.
        let turn = inbox.db.background_turn().await;
        let conn = inbox.db.writer().acquire().await.unwrap();
        let task = {
            let (inbox, cfg) = (inbox.clone(), cfg.clone());
            let handler: Arc<dyn EventHandler> = gate.clone();
            tokio::spawn(async move {
                process(&inbox, Some(handler), c, CancellationToken::new(), &cfg).await;
            })
        };
        // The first renewal (at 100 ms) queues for the turn, then takes it
        // and waits for the connection; meanwhile the handler finishes.
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(turn);
        tokio::time::sleep(Duration::from_millis(50)).await;
        gate.0.notify_one();
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(conn);
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the completion waited for ever behind an abandoned renewal")
            .unwrap();
        let (rows, _) = inbox.list(&Default::default()).await.unwrap();
        assert_eq!(rows[0].status, EventStatus::Completed);
    }

    /// A try whose lease another worker took over is stopped, and its
    /// result does not count.
    #[tokio::test]
    async fn a_lost_lease_stops_the_handler() {
        let dir = tempfile::tempdir().unwrap();
        let (inbox, handlers, _slow) = setup(dir.path(), Duration::from_secs(3600)).await;
        let cfg = cfg(300, 60_000);
        let c = inbox
            .claim(None, 1, cfg.lease)
            .await
            .unwrap()
            .pop()
            .unwrap();
        // Its lease runs out and someone else takes the event over (as
        // after a stall longer than the lease).
        tokio::time::sleep(Duration::from_millis(350)).await;
        let taken = inbox.claim(None, 1, Duration::from_secs(60)).await.unwrap();
        assert_eq!(taken.len(), 1);
        let handler = handlers.get("t").cloned();
        let started = std::time::Instant::now();
        process(&inbox, handler, c, CancellationToken::new(), &cfg).await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "stopped at the first renewal"
        );
        let (rows, _) = inbox.list(&Default::default()).await.unwrap();
        assert_eq!(
            rows[0].status,
            EventStatus::Processing,
            "left to its holder"
        );
    }
}
