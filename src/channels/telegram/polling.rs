//! Long polling, for development (`telegram.mode = "polling"`): no public
//! https address is needed. For each bot, `deleteWebhook` first (Telegram
//! refuses `getUpdates` while a webhook is set), then `getUpdates` in a
//! loop with `timeout` = `telegram.poll_timeout_secs`, `offset` = the last
//! stored `update_id` + 1 and the same `allowed_updates` as `setWebhook`.
//! Each update is stored exactly as the webhook receiver stores it
//! ([`super::webhook::store_update`], dedup key `(bot, update_id)`), so the
//! handler cannot tell the two apart. The offset moves past an update only
//! once it is stored: a database error means it is asked for again.
//!
//! A 409 Conflict means another poller runs for the bot (another instance,
//! a developer's laptop) or someone set a webhook again: it is logged with
//! that explanation, shown in the `telegram_polling` health part, and
//! retried with a growing back-off, never in a tight loop. The supervisor
//! starts a poller for each bot (new stored ones within
//! [`SUPERVISE_EVERY`]) and stops the poller of a bot that went away.
//! Everything stops at once at shutdown: the long poll is dropped.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{
    api::{ALLOWED_UPDATES, BotApiError},
    bots::{TelegramBot, TelegramBots},
    webhook::store_update,
};
use crate::{inbox::Inbox, telemetry::HealthBoard};

/// How often the supervisor looks for bots added or removed.
pub const SUPERVISE_EVERY: Duration = Duration::from_secs(5);
/// The first wait after a failed poll; it doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// The health board's part.
pub const PART: &str = "telegram_polling";

const CONFLICT_EXPLANATION: &str = "another getUpdates poller is running for this bot (another \
     instance or a developer's machine), or a webhook is set for it again: only one of them can \
     get the updates";

#[derive(Clone)]
pub struct Poller {
    pub bots: TelegramBots,
    pub inbox: Inbox,
    pub wake: Arc<Notify>,
    pub health: HealthBoard,
    pub timeout_secs: u64,
    /// Each bot's last problem, for the health part (`None`: polling fine).
    problems: Arc<Mutex<BTreeMap<String, Option<String>>>>,
}

impl Poller {
    pub fn new(
        bots: TelegramBots,
        inbox: Inbox,
        wake: Arc<Notify>,
        health: HealthBoard,
        timeout_secs: u64,
    ) -> Self {
        Self {
            bots,
            inbox,
            wake,
            health,
            timeout_secs,
            problems: Arc::default(),
        }
    }

    /// Polls for every bot until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        let mut running: HashMap<String, (String, CancellationToken)> = HashMap::new();
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            let bots = self.bots.all().await;
            // A bot gone (disabled), or with another token (rotated): stop
            // its poller; a new one starts below with the current token.
            running.retain(|id, (token, cancel)| {
                let keep = bots
                    .iter()
                    .any(|b| b.id == *id && crate::channels::secret_eq(b.token.expose(), token));
                if !keep {
                    cancel.cancel();
                }
                keep
            });
            for bot in bots {
                if running.contains_key(&bot.id) {
                    continue;
                }
                let cancel = stop.child_token();
                running.insert(
                    bot.id.clone(),
                    (bot.token.expose().to_string(), cancel.clone()),
                );
                tasks.spawn(self.clone().poll_bot(bot, cancel));
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(SUPERVISE_EVERY) => {}
            }
            while tasks.try_join_next().is_some() {}
        }
        while tasks.join_next().await.is_some() {}
    }

    fn note(&self, bot: &str, problem: Option<String>) {
        let Ok(mut p) = self.problems.lock() else {
            return;
        };
        if p.get(bot) == Some(&problem) {
            return;
        }
        p.insert(bot.to_string(), problem);
        let degraded = p.values().any(Option::is_some);
        let bots: Vec<Value> = p
            .iter()
            .map(|(id, e)| json!({"id": id, "status": if e.is_some() { "degraded" } else { "ok" }, "error": e}))
            .collect();
        self.health.set(
            PART,
            json!({"status": if degraded { "degraded" } else { "ok" }, "bots": bots}),
        );
    }

    /// Sleeps `wait`, or returns false at once when `stop` fires.
    async fn pause(stop: &CancellationToken, wait: Duration) -> bool {
        tokio::select! {
            _ = stop.cancelled() => false,
            _ = tokio::time::sleep(wait) => true,
        }
    }

    async fn poll_bot(self, bot: Arc<TelegramBot>, stop: CancellationToken) {
        let mut backoff = FIRST_BACKOFF;
        // Telegram refuses getUpdates while a webhook is set. Pending
        // updates are kept: polling picks them up.
        loop {
            let deleted = tokio::select! {
                _ = stop.cancelled() => return,
                r = bot.api.delete_webhook(false) => r,
            };
            match deleted {
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(bot = %bot.id, error = %e, ?backoff, "deleteWebhook failed before polling; retrying");
                    self.note(&bot.id, Some(format!("deleteWebhook failed: {e}")));
                    if !Self::pause(&stop, backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        tracing::info!(bot = %bot.id, "polling Telegram for updates (getUpdates)");
        let mut offset: Option<i64> = None;
        backoff = FIRST_BACKOFF;
        loop {
            let mut params = json!({
                "timeout": self.timeout_secs,
                "allowed_updates": ALLOWED_UPDATES,
            });
            if let Some(o) = offset {
                params["offset"] = json!(o);
            }
            let answer = tokio::select! {
                _ = stop.cancelled() => return,
                r = bot.api.call("getUpdates", &params) => r,
            };
            let problem = match answer {
                Ok(Value::Array(updates)) => {
                    self.store_all(&bot, &updates, &mut offset).await.err()
                }
                Ok(_) => Some("getUpdates answered something other than a list".to_string()),
                Err(e) => Some(self.explain(&bot, &e, backoff)),
            };
            match problem {
                None => {
                    backoff = FIRST_BACKOFF;
                    self.note(&bot.id, None);
                }
                Some(p) => {
                    self.note(&bot.id, Some(p));
                    if !Self::pause(&stop, backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    fn explain(&self, bot: &TelegramBot, e: &BotApiError, backoff: Duration) -> String {
        if e.is_conflict() {
            tracing::warn!(
                bot = %bot.id, error = %e, retry_in = ?backoff,
                "getUpdates: 409 Conflict: {CONFLICT_EXPLANATION}"
            );
            format!("409 Conflict: {CONFLICT_EXPLANATION} ({e})")
        } else {
            tracing::warn!(bot = %bot.id, error = %e, retry_in = ?backoff, "getUpdates failed");
            format!("getUpdates failed: {e}")
        }
    }

    /// Stores updates in order, moving `offset` past each one stored.
    async fn store_all(
        &self,
        bot: &TelegramBot,
        updates: &[Value],
        offset: &mut Option<i64>,
    ) -> Result<(), String> {
        for u in updates {
            let Some(id) = u["update_id"].as_i64() else {
                // Cannot be stored or skipped past by id; Telegram never
                // sends one.
                tracing::warn!(bot = %bot.id, "getUpdates returned an update without update_id");
                continue;
            };
            let body = u.to_string();
            match store_update(&self.inbox, &self.wake, &bot.id, body.as_bytes()).await {
                Ok(_) => {}
                Err(crate::error::ApiError::BadRequest(why)) => {
                    tracing::warn!(bot = %bot.id, update_id = id, why, "an update that is not one; skipped");
                }
                Err(e) => {
                    tracing::warn!(bot = %bot.id, update_id = id, error = %e, "an update could not be stored; asking again");
                    return Err(format!("an update could not be stored: {e}"));
                }
            }
            *offset = Some(offset.map_or(id + 1, |o| o.max(id + 1)));
        }
        Ok(())
    }
}
