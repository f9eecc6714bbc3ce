//! Alerts for operators: when events of any provider fail for good (a
//! permanent error, or out of retries), a message goes to a Telegram chat
//! and/or a webhook URL, as configured in `[alerts]`.
//!
//! Owns the summing-up ([`Alerter::check_at`]), the record of what was
//! alerted ([`window`], the `alert_windows` table) and the two small
//! clients ([`send`]). It knows no provider: it reads the final failures
//! that the inbox records for every provider alike (tries whose outcome is
//! `failed`, in `webhook_event_attempts`), so the workers do nothing for
//! alerts and can never be held up by them.
//!
//! **No spam.** Per provider, at most one alert per `interval_secs`. The
//! first failure after a quiet spell waits `group_secs` before its alert
//! goes, so that a burst is gathered: 50 failures in a minute, or 1,000,
//! give one alert carrying their count, the most common error among them
//! and the time window they fell in. Failures after that wait for the next
//! window and come as one more alert with their own count.
//!
//! **Not lost.** An alert that a destination refuses (or that cannot be
//! delivered at all) is logged and counted in
//! `visual_search_alerts_total{outcome="failed"}`, and its failures stay
//! un-alerted: the next window's alert carries them along with the new
//! ones. A destination is tried at most once per window, so a broken one
//! is not hammered.
//!
//! **Several instances.** The window is enforced through the database:
//! before sending, an instance claims the provider's row (a lease, so a
//! crashed sender does not block it for ever), and only the holder sends
//! and moves the cursor. Two instances therefore send one alert, not one
//! each. A failure's time is when its try ended; the last few seconds are
//! left for the next look ([`Timing::settle`]), so that a transaction that
//! committed a little after its clock read is not skipped.
//!
//! Time is a parameter ([`Alerter::check_at`]): the background loop passes
//! the clock, tests pass the minutes they want to have passed.

pub mod send;
mod window;

use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use send::Destinations;
use window::Finish;

use crate::{
    config::AlertsSettings,
    db::{Db, now_ms},
};

/// Longest error text quoted in an alert (characters): enough to recognise
/// it, far short of Telegram's 4,096-character message limit.
const MAX_ERROR_CHARS: usize = 500;

/// A cursor older than this, with nothing pending, is moved up to date so
/// that each look reads a short range of failures.
const CATCH_UP_MS: i64 = 3_600_000;

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("alerts: database: {0}")]
    Db(#[from] sqlx::Error),
}

/// What failed for one provider in one window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub provider: String,
    /// Events that failed for good in the window.
    pub count: u64,
    /// The most common error among them, and how many had it.
    pub top_error: String,
    pub top_error_count: u64,
    /// The window (Unix ms): failures that ended after `since_ms` (the
    /// previous alert's end, or when alerts were enabled) and at or before
    /// `until_ms`.
    pub since_ms: i64,
    pub until_ms: i64,
    /// The first and the last of them.
    pub first_at_ms: i64,
    pub last_at_ms: i64,
}

impl Alert {
    /// The message text, for a chat.
    pub fn text(&self) -> String {
        let when = |ms| {
            chrono::DateTime::from_timestamp_millis(ms)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_default()
        };
        let events = if self.count == 1 { "event" } else { "events" };
        format!(
            "Vitrine: {} {events} of provider `{}` failed for good between {} and {}.\n\
             Most common error ({} of {}): {}\n\
             List them: GET /api/v1/events?status=failed&provider={}; replay: POST /api/v1/events/replay",
            self.count,
            self.provider,
            when(self.first_at_ms),
            when(self.last_at_ms),
            self.top_error_count,
            self.count,
            send::clip(&self.top_error, MAX_ERROR_CHARS),
            self.provider,
        )
    }
}

/// One alert this instance sent (or tried to), as [`Alerter::check_at`]
/// reports it.
#[derive(Debug, Clone)]
pub struct Sent {
    pub alert: Alert,
    /// Each destination's result; `Err` holds the reason, without URLs.
    pub results: Vec<(send::Destination, Result<(), String>)>,
}

impl Sent {
    pub fn delivered(&self) -> bool {
        self.results.iter().all(|(_, r)| r.is_ok())
    }
}

/// The alerter's clock settings, from `[alerts]`.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub interval: Duration,
    pub group: Duration,
    /// Failures of the last `settle` are left for the next look.
    pub settle: Duration,
    /// How often the background loop looks.
    pub tick: Duration,
    /// How long a claim holds: every destination's timeout, and a margin.
    pub lease: Duration,
}

impl Timing {
    pub fn from_settings(s: &AlertsSettings) -> Self {
        let group = s.group();
        Self {
            interval: s.interval(),
            group,
            settle: group.min(Duration::from_secs(5)),
            tick: (group / 4).clamp(Duration::from_millis(250), Duration::from_secs(5)),
            lease: s.timeout() * 2 + Duration::from_secs(10),
        }
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Sums up final failures per provider and sends the alerts. Cheap to
/// clone.
#[derive(Clone, Debug)]
pub struct Alerter {
    db: Db,
    dest: Destinations,
    timing: Timing,
}

impl Alerter {
    /// From `[alerts]`, or `None` when no destination is configured.
    pub fn from_settings(db: Db, s: &AlertsSettings) -> Option<Self> {
        s.enabled()
            .then(|| Self::new(db, Destinations::from_settings(s), Timing::from_settings(s)))
    }

    pub fn new(db: Db, dest: Destinations, timing: Timing) -> Self {
        Self { db, dest, timing }
    }

    /// Marks now as when alerts were enabled on this database, unless an
    /// earlier start is recorded: failures before it are not alerted (they
    /// are in the event history).
    pub async fn init(&self) -> Result<(), AlertError> {
        window::init(&self.db, now_ms()).await?;
        Ok(())
    }

    /// One look at `now_ms`: for every provider whose failures are due (the
    /// oldest is `group` + `settle` old, the last alert `interval` ago) and not held by
    /// another instance, sends one alert. Returns what this instance sent.
    pub async fn check_at(&self, now_ms: i64) -> Result<Vec<Sent>, AlertError> {
        let t = &self.timing;
        let cut = now_ms - ms(t.settle);
        let pending = window::pending(&self.db, cut).await?;
        window::catch_up(&self.db, &pending, cut - CATCH_UP_MS, cut, now_ms).await?;
        let token = uuid::Uuid::now_v7().to_string();
        let mut sent = Vec::new();
        for p in pending {
            // Gathering: the alert goes once the window counts `group` of
            // failures after the first (so against `cut`, not `now_ms`:
            // against the clock it counted only the first `group - settle`).
            if p.first_at_ms > cut - ms(t.group) {
                continue;
            }
            let until = now_ms + ms(t.lease);
            let claim = window::claim(&self.db, &p.provider, &token, now_ms, until, ms(t.interval));
            let Some(since) = claim.await? else {
                continue; // within the interval, or another instance has it
            };
            let Some(alert) = window::summary(&self.db, &p.provider, since, cut).await? else {
                window::finish(&self.db, &p.provider, &token, now_ms, Finish::Nothing).await?;
                continue;
            };
            let results = self.dest.send(&alert).await;
            for (to, r) in &results {
                let outcome = if r.is_ok() { "sent" } else { "failed" };
                metrics::counter!("visual_search_alerts_total", "destination" => *to, "outcome" => outcome)
                    .increment(1);
                match r {
                    Ok(()) => tracing::info!(
                        to, provider = %alert.provider, count = alert.count, "dead-letter alert sent"
                    ),
                    Err(e) => tracing::warn!(
                        to, provider = %alert.provider, count = alert.count, error = %e,
                        "dead-letter alert not delivered; its failures go with the next window's"
                    ),
                }
            }
            let s = Sent { alert, results };
            let errors: Vec<&str> = s
                .results
                .iter()
                .filter_map(|(_, r)| r.as_ref().err().map(String::as_str))
                .collect();
            let joined = errors.join("; ");
            let done = if errors.is_empty() {
                // Up to the last failure counted (not `cut`): whatever
                // ends after it is the next window's, even if the clock
                // this look was given runs ahead of the database's.
                Finish::Delivered {
                    through: s.alert.last_at_ms,
                }
            } else {
                Finish::Failed { error: &joined }
            };
            window::finish(&self.db, &p.provider, &token, now_ms, done).await?;
            sent.push(s);
        }
        Ok(sent)
    }

    /// Looks every `tick` until `stop`; a database error is logged and the
    /// next look tries again.
    pub async fn run(self, stop: CancellationToken) {
        let mut started = false;
        loop {
            if !started {
                match self.init().await {
                    Ok(()) => started = true,
                    Err(e) => tracing::warn!(error = %e, "alerts: cannot start; retrying"),
                }
            }
            if started && let Err(e) = self.check_at(now_ms()).await {
                tracing::warn!(error = %e, "alerts: look failed; retrying at the next tick");
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(self.timing.tick) => {}
            }
        }
    }
}
