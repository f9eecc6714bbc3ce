//! The Telegram bots this instance answers for: the default bot from
//! `TELEGRAM_BOT_TOKEN` / `TELEGRAM_WEBHOOK_SECRET`, and the bots stored in
//! the database ([`crate::channels::bots_store`]), each with its client.

use std::sync::Arc;

use super::api::BotApi;
use crate::{
    channels::{
        bots_store::{BotKind, BotStore, Directory},
        secret_eq,
    },
    config::Secret,
};

pub use crate::channels::bots_store::telegram_bot_id as bot_id;

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

/// The default bot and the stored ones. Cheap to clone; clones share the
/// stored bots' snapshot.
#[derive(Clone, Default)]
pub struct TelegramBots {
    default: Option<Arc<TelegramBot>>,
    stored: Option<Directory<TelegramBot>>,
}

impl TelegramBots {
    /// The default bot of the settings only.
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
            default,
            stored: None,
        }
    }

    /// Also the enabled bots of `store`, with clients at the settings' Bot
    /// API base.
    pub fn with_store(
        mut self,
        settings: &crate::config::TelegramSettings,
        store: BotStore,
    ) -> Self {
        let base = settings.api_base_url.clone();
        self.stored = Some(Directory::new(store, BotKind::Telegram, move |b| {
            TelegramBot::new(b.token, b.secret, &base)
        }));
        self
    }

    pub fn default_bot(&self) -> Option<&Arc<TelegramBot>> {
        self.default.as_ref()
    }

    /// The bot with this id: the default one, or an enabled stored one.
    pub async fn by_id(&self, id: &str) -> Option<Arc<TelegramBot>> {
        if let Some(b) = self.default.as_ref().filter(|b| b.id == id) {
            return Some(b.clone());
        }
        match &self.stored {
            Some(d) => d.find(|b| b.id == id).await,
            None => None,
        }
    }

    /// The bot whose token is `token` (the token-in-path style): found by
    /// the token's id, then compared in constant time.
    pub async fn by_token(&self, token: &str) -> Option<Arc<TelegramBot>> {
        let id = bot_id(token)?;
        self.by_id(&id)
            .await
            .filter(|b| secret_eq(b.token.expose(), token))
    }

    /// Every bot now: the default one first (stored ones reloaded when
    /// stale).
    pub async fn all(&self) -> Vec<Arc<TelegramBot>> {
        let mut out: Vec<_> = self.default.iter().cloned().collect();
        if let Some(d) = &self.stored {
            out.extend(d.current().await.iter().cloned());
        }
        out
    }

    /// How many bots, as last loaded.
    pub fn len(&self) -> usize {
        usize::from(self.default.is_some()) + self.stored.as_ref().map_or(0, |d| d.cached().len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
