//! `vitrine telegram set-webhook|delete-webhook|webhook-info [--bot ID]`:
//! registers a bot's webhook with the Bot API (`TELEGRAM_API_BASE_URL`, the
//! real one by default), removes it, or shows what Telegram reports (the
//! URL, pending updates, the last delivery error). The bot is the default
//! one (`TELEGRAM_BOT_TOKEN`), or with `--bot` the one of that id (its
//! token's digits): the default bot, or an enabled bot stored in the
//! database (opened with `VITRINE_SECRET_KEY`).

use anyhow::Context;
use serde_json::Value;
use url::Url;

use crate::{
    channels::{
        bots_store::{BotKind, BotStore},
        telegram::{
            api::{ALLOWED_UPDATES, BotApi},
            bots::bot_id,
        },
    },
    config::{Secret, Settings},
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

/// The bot a command acts on: its client, its delivery secret, and its
/// route on this server.
struct Target {
    api: BotApi,
    secret: Option<Secret>,
    route: String,
}

async fn target(settings: &Settings, id: Option<&str>) -> anyhow::Result<Target> {
    let default = settings
        .telegram
        .bot_token
        .clone()
        .filter(|t| !t.is_empty());
    let default_id = default.as_ref().and_then(|t| bot_id(t.expose()));
    let Some(id) = id.filter(|id| Some(*id) != default_id.as_deref()) else {
        let token =
            default.context("no bot: set TELEGRAM_BOT_TOKEN, or name a stored bot with --bot")?;
        return Ok(Target {
            api: BotApi::new(&settings.telegram.api_base_url, token),
            secret: settings.telegram.webhook_secret.clone(),
            route: ROUTE.into(),
        });
    };
    let db = crate::db::connect(&settings.database_url())
        .await
        .context("opening the database, where stored bots are")?;
    let store = BotStore::from_settings(db.clone(), settings);
    anyhow::ensure!(
        store.has_key(),
        "bot {id} is not the default bot, and stored bots need VITRINE_SECRET_KEY to be opened"
    );
    let found = store
        .load_enabled(BotKind::Telegram)
        .await?
        .into_iter()
        .find(|b| b.info.external_id == id);
    db.close().await;
    let bot = found.with_context(|| format!("no enabled Telegram bot {id} is stored"))?;
    Ok(Target {
        api: BotApi::new(&settings.telegram.api_base_url, bot.token),
        secret: bot.secret,
        route: format!("{ROUTE}/{id}"),
    })
}

/// The URL to register: `url` itself when it names a path, else the
/// default bot's route under it.
pub fn webhook_url(url: &Url) -> Url {
    route_url(url, ROUTE)
}

fn route_url(url: &Url, route: &str) -> Url {
    if url.path() == "/" || url.path().is_empty() {
        url.join(route).expect("a path joins any base")
    } else {
        url.clone()
    }
}

/// Runs one command on the default bot, or with `bot` on the bot of that
/// id; returns what the Bot API answered, for printing.
pub async fn run(
    settings: &Settings,
    bot: Option<&str>,
    cmd: WebhookCommand,
) -> anyhow::Result<Value> {
    let Target { api, secret, route } = target(settings, bot).await?;
    Ok(match cmd {
        WebhookCommand::Set { url, drop_pending } => {
            anyhow::ensure!(
                url.scheme() == "https",
                "Telegram delivers webhooks to https URLs only, not {}",
                url.scheme()
            );
            // The route verifies this header; without it every delivery
            // would be refused with 401.
            let secret = secret.as_ref().filter(|s| !s.is_empty()).context(
                "the bot has no webhook secret: set TELEGRAM_WEBHOOK_SECRET (or rotate the \
                 stored bot's secret) first: the webhook route checks it",
            )?;
            let target = route_url(&url, &route);
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
