//! The messenger providers' sections: `[channels]` (what both bots share),
//! `[telegram]` and `[whatsapp]`. The default bot and number come from the
//! environment names the seed deployments used (`TELEGRAM_BOT_TOKEN`,
//! `WHATSAPP_ACCESS_TOKEN`, …), so a single-business deployment needs no
//! database set-up at all. More bots, one per business, live in the
//! database with their tokens encrypted under `[channels] secret_key`.

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
    /// The AES-256-GCM key of the bots' tokens in the database: 32 bytes as
    /// 64 hex characters or base64. Unset, bots can come only from the
    /// environment and the bots admin API answers 503.
    pub secret_key: Option<Secret>,
    /// The optional phrasing model of the bots' own texts.
    pub llm: LlmSettings,
}

impl Default for ChannelsSettings {
    fn default() -> Self {
        Self {
            results: 5,
            product_url: None,
            secret_key: None,
            llm: LlmSettings::default(),
        }
    }
}

/// `[channels.llm]`: an OpenAI-compatible chat-completions endpoint that
/// rephrases the bots' own plain-text replies. Off without a URL.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmSettings {
    /// The endpoint itself, e.g. `https://api.openai.com/v1/chat/completions`.
    pub url: Option<Url>,
    /// Sent as `Authorization: Bearer`.
    pub key: Option<Secret>,
    pub model: String,
    /// How long a reply waits for the model before the bot's own text goes.
    pub timeout_ms: u64,
}

impl Default for LlmSettings {
    fn default() -> Self {
        Self {
            url: None,
            key: None,
            model: "gpt-4o-mini".into(),
            timeout_ms: 3000,
        }
    }
}

impl LlmSettings {
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.timeout_ms.max(1))
    }
}

/// The length of `[channels] secret_key`, in bytes.
pub const SECRET_KEY_BYTES: usize = 32;

impl ChannelsSettings {
    /// The link to a product, when a template is configured.
    pub fn product_link(&self, id: &str) -> Option<String> {
        self.product_url
            .as_deref()
            .filter(|t| !t.trim().is_empty())
            .map(|t| t.replace("{id}", id))
    }

    /// The 32 bytes of `secret_key`, when it is set: 64 hex characters, or
    /// base64 (standard or URL-safe, padded or not). Anything else is an
    /// error that says what was expected, never what was given.
    pub fn secret_key_bytes(&self) -> Result<Option<[u8; SECRET_KEY_BYTES]>, String> {
        let Some(k) = self.secret_key.as_ref().filter(|k| !k.is_empty()) else {
            return Ok(None);
        };
        Ok(Some(parse_key(k.expose().trim())?))
    }
}

fn parse_key(text: &str) -> Result<[u8; SECRET_KEY_BYTES], String> {
    use base64::Engine as _;
    let hex_form =
        text.len() == 2 * SECRET_KEY_BYTES && text.bytes().all(|b| b.is_ascii_hexdigit());
    let bytes = if hex_form {
        hex::decode(text).map_err(|e| e.to_string())?
    } else {
        let engines = [
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::STANDARD_NO_PAD,
            base64::engine::general_purpose::URL_SAFE,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ];
        engines
            .iter()
            .find_map(|e| e.decode(text).ok())
            .ok_or_else(|| {
                format!(
                    "must be {SECRET_KEY_BYTES} bytes as 64 hex characters or base64 \
                     (for example `openssl rand -hex 32`); it is neither"
                )
            })?
    };
    bytes.try_into().map_err(|b: Vec<u8>| {
        format!(
            "must be {SECRET_KEY_BYTES} bytes (64 hex characters or base64), but it decodes \
             to {} bytes",
            b.len()
        )
    })
}

/// How the Telegram bots get their updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TelegramMode {
    /// Telegram posts them to `/api/v1/webhooks/telegram[/{bot}]`.
    Webhook,
    /// This instance asks for them with `getUpdates` (development: no
    /// public https address needed). Deletes each bot's webhook first.
    Polling,
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
    /// `webhook` (Telegram posts updates) or `polling` (`getUpdates`, for
    /// development).
    pub mode: TelegramMode,
    /// How long one `getUpdates` long poll waits for an update (1–50 s).
    pub poll_timeout_secs: u64,
    /// How often each bot's `getWebhookInfo` is read into the health
    /// report and the metrics; 0 = never.
    pub webhook_info_secs: u64,
    /// Pending updates above which a bot's webhook reads as degraded.
    pub pending_updates_threshold: i64,
    /// Messages sent per second to one chat (Telegram's limit is about 1).
    pub send_per_chat_per_sec: u32,
    /// Messages sent per second by one bot, all chats together (Telegram's
    /// limit is about 30).
    pub send_per_bot_per_sec: u32,
}

impl Default for TelegramSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            bot_token: None,
            webhook_secret: None,
            api_base_url: Url::parse("https://api.telegram.org").expect("a valid URL"),
            mode: TelegramMode::Webhook,
            poll_timeout_secs: 25,
            webhook_info_secs: 300,
            pending_updates_threshold: 100,
            send_per_chat_per_sec: 1,
            send_per_bot_per_sec: 30,
        }
    }
}

impl TelegramSettings {
    /// Checks the ranges, as `(field, reason)`.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.send_per_chat_per_sec == 0 {
            return Err((
                "telegram.send_per_chat_per_sec",
                "must be at least 1".into(),
            ));
        }
        if self.send_per_bot_per_sec == 0 {
            return Err(("telegram.send_per_bot_per_sec", "must be at least 1".into()));
        }
        if !(1..=50).contains(&self.poll_timeout_secs) {
            return Err(("telegram.poll_timeout_secs", "must be 1 to 50".into()));
        }
        Ok(())
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
    /// Messages sent per second by one number (Meta's default throughput
    /// is 80); sends wait for their turn.
    pub send_per_number_per_sec: u32,
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
            send_per_number_per_sec: 80,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_key(k: &str) -> ChannelsSettings {
        ChannelsSettings {
            secret_key: Some(Secret::new(k)),
            ..ChannelsSettings::default()
        }
    }

    #[test]
    fn the_secret_key_is_32_bytes_of_hex_or_base64() {
        let hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        let k = with_key(hex).secret_key_bytes().unwrap().unwrap();
        assert_eq!(k[1], 0x11);
        let b64 = "ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8=";
        assert_eq!(with_key(b64).secret_key_bytes().unwrap().unwrap(), k);
        assert_eq!(
            with_key(b64.trim_end_matches('='))
                .secret_key_bytes()
                .unwrap(),
            Some(k)
        );
        assert_eq!(
            ChannelsSettings::default().secret_key_bytes().unwrap(),
            None
        );
        for bad in [
            "short",
            &hex[..62],
            "ABEiM0RVZneImaq7zN3u/w==",
            "zz".repeat(32).as_str(),
        ] {
            let err = with_key(bad).secret_key_bytes().unwrap_err();
            assert!(err.contains("32 bytes"), "{bad}: {err}");
            assert!(!err.contains(bad), "the error shows the key: {err}");
        }
    }
}
