//! The Telegram provider: the webhook receiver ([`webhook`]), the update
//! parser ([`update`]), the Bot API client ([`BotApi`], reusable), the bots
//! ([`bots`]), how replies become Bot API calls ([`render`]) and the inbox
//! handler ([`handler`]).

/// The inbox's `provider` for Telegram updates.
pub const PROVIDER: &str = "telegram";

pub mod api;
pub mod bots;
pub mod handler;
pub(crate) mod provider;
pub mod render;
pub(crate) mod state;
pub mod update;
pub(crate) mod webhook;

pub use api::{BotApi, BotApiError, WebhookInfo};
pub use bots::{TelegramBot, TelegramBots};
pub(crate) use provider::Telegram;
pub use update::{UpdateMeta, parse_update};
