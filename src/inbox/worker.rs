//! The worker loop: claim due events, hand each to its provider's handler,
//! record the result.
//!
//! One loop per instance runs up to `concurrency` events at once. That is
//! mostly waiting (image downloads); the CPU-heavy part, embedding, is funnelled
//! into one sized pool by the embedder, so the loop's concurrency does not
//! multiply CPU threads.

use std::{collections::HashMap, sync::Arc, time::Duration};

use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use super::{
    event::{FailOutcome, HandlerError, Outcome, OutcomeKind},
    store::{Claimed, EventRecord, Inbox},
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
            process(inbox, handler, c, never.clone(), cfg.abort_grace)
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
            let abort_grace = cfg.abort_grace;
            tasks.spawn(async move {
                process(&inbox, handler, c, stop, abort_grace).await;
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

async fn process(
    inbox: &Inbox,
    handler: Option<Arc<dyn EventHandler>>,
    c: Claimed,
    shutdown: CancellationToken,
    abort_grace: Duration,
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
    // instead of taking the worker down.
    let event = c.event.clone();
    let h = handler.clone();
    let mut job = tokio::spawn(tracing::Instrument::instrument(
        async move { h.handle(&event).await },
        span.clone(),
    ));
    let result = tokio::select! {
        r = &mut job => r,
        _ = shutdown.cancelled() => {
            // Give the attempt a little longer, then hand the event back.
            match tokio::time::timeout(abort_grace, &mut job).await {
                Ok(r) => r,
                Err(_) => {
                    job.abort();
                    if let Err(e) = inbox.release(&c).await {
                        tracing::warn!(parent: &span, error = %e, "could not release event on shutdown");
                    }
                    return;
                }
            }
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
