//! The messenger providers' sections: `[channels]` (what both bots share),
//! `[telegram]` and `[whatsapp]`. The default bot and number come from the
//! environment names the seed deployments used (`TELEGRAM_BOT_TOKEN`,
//! `WHATSAPP_ACCESS_TOKEN`, …), so a single-business deployment needs no
//! database set-up at all.

use serde::{Deserialize, Serialize};
use url::Url;

use super::Secret;

/// `[channels]`: what the Telegram and WhatsApp bots share.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelsSettings {
    /// Products shown per page of results (2–10: a Telegram media group
    /// takes 2–10 items, a WhatsApp list 10 rows).
    pub results: usize,
    /// The shopper-facing link of a product, `{id}` replaced by its id;
    /// unset, replies carry no link.
    pub product_url: Option<String>,
}

impl Default for ChannelsSettings {
    fn default() -> Self {
        Self {
            results: 5,
            product_url: None,
        }
    }
}

impl ChannelsSettings {
    /// The link to a product, when a template is configured.
    pub fn product_link(&self, id: &str) -> Option<String> {
        self.product_url
            .as_deref()
            .filter(|t| !t.trim().is_empty())
            .map(|t| t.replace("{id}", id))
    }
}

/// `[telegram]`: the Telegram Bot API provider.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelegramSettings {
    /// Whether its routes and handler are mounted.
    pub enabled: bool,
    /// The default bot's token (`123456:ABC…`); its numeric prefix is the
    /// bot id in `/api/v1/webhooks/telegram/{bot_id}`.
    pub bot_token: Option<Secret>,
    /// What the default bot's deliveries carry in
    /// `X-Telegram-Bot-Api-Secret-Token`.
    pub webhook_secret: Option<Secret>,
    /// Where the Bot API is (a local fake in tests).
    pub api_base_url: Url,
}

impl Default for TelegramSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            bot_token: None,
            webhook_secret: None,
            api_base_url: Url::parse("https://api.telegram.org").expect("a valid URL"),
        }
    }
}

/// `[whatsapp]`: the WhatsApp Cloud API provider.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WhatsappSettings {
    /// Whether its routes and handler are mounted.
    pub enabled: bool,
    /// The Meta app's secret: the key of `X-Hub-Signature-256`. Unset, its
    /// webhook answers 503 (fail closed).
    pub app_secret: Option<Secret>,
    /// What the subscription handshake must present as `hub.verify_token`.
    pub verify_token: Option<Secret>,
    /// The default number's Graph API access token.
    pub access_token: Option<Secret>,
    /// The default number's `phone_number_id`: deliveries for it are
    /// answered with `access_token`.
    pub phone_number_id: Option<String>,
    /// Where the Graph API is, with its version (a local fake in tests).
    pub graph_base_url: Url,
}

impl Default for WhatsappSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            app_secret: None,
            verify_token: None,
            access_token: None,
            phone_number_id: None,
            graph_base_url: Url::parse("https://graph.facebook.com/v21.0").expect("a valid URL"),
        }
    }
}
