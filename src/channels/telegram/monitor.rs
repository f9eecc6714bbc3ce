//! The webhook monitor: every `telegram.webhook_info_secs` it asks each bot's
//! `getWebhookInfo` (Telegram's own view of the deliveries) and publishes
//!
//! - the gauges `visual_search_telegram_webhook_pending_updates{bot}` and
//!   `visual_search_telegram_webhook_last_error_timestamp_seconds{bot}`;
//! - the `telegram` part of `/api/v1/health`: `ok`, or `degraded` when a
//!   bot's last delivery error is recent ([`RECENT_ERROR`]) or its pending
//!   updates are over `telegram.pending_updates_threshold` (or the Bot API
//!   does not answer). Bot ids and Telegram's own error text only: never a
//!   token, nor the webhook URL (in the token-in-path style it holds one).

use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::bots::{TelegramBot, TelegramBots};
use crate::telemetry::HealthBoard;

/// A delivery error this recent makes the bot's webhook degraded.
pub const RECENT_ERROR: Duration = Duration::from_secs(600);
/// How long one `getWebhookInfo` may take before the bot counts as not
/// answering.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// The health board's part.
pub const PART: &str = "telegram";

#[derive(Clone)]
pub struct WebhookMonitor {
    pub bots: TelegramBots,
    pub health: HealthBoard,
    pub interval: Duration,
    pub pending_threshold: i64,
}

impl WebhookMonitor {
    /// Checks at once, then every interval, until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = self.check() => {}
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(self.interval) => {}
            }
        }
    }

    /// One round over every bot; sets the health part (none without bots).
    pub async fn check(&self) {
        let bots = self.bots.all().await;
        if bots.is_empty() {
            self.health.clear(PART);
            return;
        }
        let mut parts = Vec::with_capacity(bots.len());
        let mut degraded = false;
        for bot in &bots {
            let (part, ok) = self.one(bot).await;
            degraded |= !ok;
            parts.push(part);
        }
        self.health.set(
            PART,
            json!({
                "status": if degraded { "degraded" } else { "ok" },
                "bots": parts,
            }),
        );
    }

    async fn one(&self, bot: &TelegramBot) -> (Value, bool) {
        let info = match tokio::time::timeout(CALL_TIMEOUT, bot.api.webhook_info()).await {
            Ok(Ok(info)) => info,
            Ok(Err(e)) => {
                // BotApiError carries no URL, so no token.
                tracing::warn!(bot = %bot.id, error = %e, "getWebhookInfo failed");
                return (
                    json!({"id": bot.id, "status": "error", "error": "getWebhookInfo failed"}),
                    false,
                );
            }
            Err(_) => {
                tracing::warn!(bot = %bot.id, "getWebhookInfo did not answer in time");
                return (
                    json!({"id": bot.id, "status": "error", "error": "getWebhookInfo did not answer"}),
                    false,
                );
            }
        };
        metrics::gauge!("visual_search_telegram_webhook_pending_updates", "bot" => bot.id.clone())
            .set(info.pending_update_count as f64);
        if let Some(d) = info.last_error_date {
            metrics::gauge!(
                "visual_search_telegram_webhook_last_error_timestamp_seconds",
                "bot" => bot.id.clone()
            )
            .set(d as f64);
        }
        let now = chrono::Utc::now().timestamp();
        let recent_error = info
            .last_error_date
            .is_some_and(|d| now - d < RECENT_ERROR.as_secs() as i64);
        let backlog = info.pending_update_count > self.pending_threshold;
        let ok = !recent_error && !backlog;
        (
            json!({
                "id": bot.id,
                "status": if ok { "ok" } else { "degraded" },
                "pending_update_count": info.pending_update_count,
                "last_error_message": info.last_error_message,
                "last_error_date": info.last_error_date,
            }),
            ok,
        )
    }
}
