//! The Telegram provider: the webhook receiver ([`webhook`]), the update
//! parser ([`update`]), the Bot API client ([`BotApi`], reusable), the bots
//! ([`bots`]), how replies become Bot API calls ([`render`]), the inbox
//! handler ([`handler`]), the webhook monitor ([`monitor`]) and the
//! development poller ([`polling`]).

/// The inbox's `provider` for Telegram updates.
pub const PROVIDER: &str = "telegram";

pub mod api;
pub mod bots;
pub mod handler;
pub mod monitor;
pub mod polling;
pub(crate) mod provider;
pub mod render;
pub(crate) mod state;
pub mod update;
pub(crate) mod webhook;

pub use api::{BotApi, BotApiError, WebhookInfo};
pub use bots::{TelegramBot, TelegramBots};
pub(crate) use provider::Telegram;
pub use update::{UpdateMeta, parse_update};
