//! `vitrine telegram set-webhook|delete-webhook|webhook-info`: registers
//! the default bot's webhook with the Bot API (`TELEGRAM_API_BASE_URL`,
//! the real one by default), removes it, or shows what Telegram reports
//! (the URL, pending updates, the last delivery error).

use anyhow::Context;
use serde_json::Value;
use url::Url;

use crate::{
    channels::telegram::api::{ALLOWED_UPDATES, BotApi},
    config::Settings,
};
/// Telegram's default and maximum is 100; the receiver is cheap, but the
/// replies share one bot's rate.
const MAX_CONNECTIONS: u32 = 40;
/// The default bot's route.
const ROUTE: &str = "/api/v1/webhooks/telegram";

pub enum WebhookCommand {
    /// `url`: this server's public base (`https://shop.example.com`), or
    /// the full webhook URL.
    Set {
        url: Url,
        drop_pending: bool,
    },
    Delete {
        drop_pending: bool,
    },
    Info,
}

fn bot(settings: &Settings) -> anyhow::Result<BotApi> {
    let token = settings
        .telegram
        .bot_token
        .clone()
        .context("no bot: set TELEGRAM_BOT_TOKEN")?;
    Ok(BotApi::new(&settings.telegram.api_base_url, token))
}

/// The URL to register: `url` itself when it names a path, else the
/// default bot's route under it.
pub fn webhook_url(url: &Url) -> Url {
    if url.path() == "/" || url.path().is_empty() {
        url.join(ROUTE).expect("a path joins any base")
    } else {
        url.clone()
    }
}

/// Runs one command; returns what the Bot API answered, for printing.
pub async fn run(settings: &Settings, cmd: WebhookCommand) -> anyhow::Result<Value> {
    let api = bot(settings)?;
    Ok(match cmd {
        WebhookCommand::Set { url, drop_pending } => {
            anyhow::ensure!(
                url.scheme() == "https",
                "Telegram delivers webhooks to https URLs only, not {}",
                url.scheme()
            );
            // The default route verifies this header; without it every
            // delivery would be refused with 401.
            let secret = settings
                .telegram
                .webhook_secret
                .as_ref()
                .context("set TELEGRAM_WEBHOOK_SECRET first: the webhook route checks it")?;
            let target = webhook_url(&url);
            api.set_webhook(
                target.as_str(),
                Some(secret.expose()),
                ALLOWED_UPDATES,
                MAX_CONNECTIONS,
                drop_pending,
            )
            .await?;
            serde_json::json!({ "webhook": target.as_str(), "set": true })
        }
        WebhookCommand::Delete { drop_pending } => {
            api.delete_webhook(drop_pending).await?;
            serde_json::json!({ "deleted": true })
        }
        WebhookCommand::Info => serde_json::to_value(api.webhook_info().await?)?,
    })
}
