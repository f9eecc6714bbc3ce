//! The Telegram bots this instance answers for: the default bot from
//! `TELEGRAM_BOT_TOKEN` / `TELEGRAM_WEBHOOK_SECRET`, each with its client.

use std::sync::Arc;

use super::api::BotApi;
use crate::{channels::secret_eq, config::Secret};

/// One bot.
pub struct TelegramBot {
    /// The numeric prefix of its token: `/api/v1/webhooks/telegram/{id}`
    /// and the first half of every dedup key.
    pub id: String,
    pub token: Secret,
    /// What its deliveries carry in `X-Telegram-Bot-Api-Secret-Token`.
    pub secret: Option<Secret>,
    pub api: BotApi,
}

impl TelegramBot {
    pub fn new(token: Secret, secret: Option<Secret>, base: &url::Url) -> Option<Self> {
        let id = bot_id(token.expose())?;
        Some(Self {
            id,
            api: BotApi::new(base, token.clone()),
            token,
            secret: secret.filter(|s| !s.is_empty()),
        })
    }

    /// Whether `given` is this bot's delivery secret (constant time).
    pub fn secret_matches(&self, given: &str) -> bool {
        self.secret
            .as_ref()
            .is_some_and(|s| secret_eq(s.expose(), given))
    }
}

/// The id in a token `123456:AA…`: its digits before the colon.
pub fn bot_id(token: &str) -> Option<String> {
    let (id, rest) = token.trim().split_once(':')?;
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_digit()) && !rest.is_empty())
        .then(|| id.to_string())
}

#[derive(Clone, Default)]
pub struct TelegramBots {
    bots: Arc<Vec<Arc<TelegramBot>>>,
    default: Option<Arc<TelegramBot>>,
}

impl TelegramBots {
    pub fn from_settings(settings: &crate::config::TelegramSettings) -> Self {
        let default = settings
            .bot_token
            .as_ref()
            .filter(|t| !t.is_empty())
            .and_then(|t| {
                let bot = TelegramBot::new(
                    t.clone(),
                    settings.webhook_secret.clone(),
                    &settings.api_base_url,
                );
                if bot.is_none() {
                    tracing::warn!(
                        "TELEGRAM_BOT_TOKEN is not of the form <digits>:<secret>; ignored"
                    );
                }
                bot
            })
            .map(Arc::new);
        Self {
            bots: Arc::new(default.iter().cloned().collect()),
            default,
        }
    }

    pub fn default_bot(&self) -> Option<&Arc<TelegramBot>> {
        self.default.as_ref()
    }

    pub fn by_id(&self, id: &str) -> Option<&Arc<TelegramBot>> {
        self.bots.iter().find(|b| b.id == id)
    }

    /// The bot whose token is `token` (the token-in-path style), compared
    /// in constant time with every bot's.
    pub fn by_token(&self, token: &str) -> Option<&Arc<TelegramBot>> {
        let mut found = None;
        for b in self.bots.iter() {
            if secret_eq(b.token.expose(), token) {
                found = Some(b);
            }
        }
        found
    }

    pub fn len(&self) -> usize {
        self.bots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bots.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bot_id_is_the_tokens_prefix() {
        assert_eq!(bot_id("123456:ABC-def").as_deref(), Some("123456"));
        assert_eq!(bot_id("abc:def"), None);
        assert_eq!(bot_id("123456"), None);
        assert_eq!(bot_id("123456:"), None);
    }
}
