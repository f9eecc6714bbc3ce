//! `[crm]`: the CRM provider (Kommo webhooks, automation rules and the
//! services their actions call).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Secret;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrmSettings {
    /// Whether the Kommo receiver, the rule engine and their admin API are
    /// mounted.
    pub enabled: bool,
    /// The URL secret of the default organisation
    /// (`/api/v1/webhooks/kommo/{secret}`); more organisations live in the
    /// database. Unset, only those are accepted.
    pub kommo_webhook_secret: Option<Secret>,
    /// When set, every Kommo delivery must also carry
    /// `X-Signature: sha256=<hex HMAC-SHA256 of the body>` under this key
    /// (Kommo itself does not sign; a signing proxy in front may).
    pub kommo_signature_secret: Option<Secret>,
    /// Kommo API v4 base, e.g. `https://acme.kommo.com`; unset, note and
    /// tag actions fail with a readable reason.
    pub kommo_api_base_url: Option<url::Url>,
    /// The long-lived token of a private Kommo integration (bearer).
    pub kommo_api_token: Option<Secret>,
    /// Kommo API calls per second, all actions together (Kommo allows 7).
    pub kommo_rate_per_sec: u32,
    /// The Telegram Bot API base of the `telegram` action.
    pub telegram_api_base_url: url::Url,
    /// The bot that `telegram` actions send through.
    pub telegram_bot_token: Option<Secret>,
    /// How long one outbound action call (Telegram, webhook, Kommo) may take.
    pub action_timeout_ms: u64,
}

impl Default for CrmSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            kommo_webhook_secret: None,
            kommo_signature_secret: None,
            kommo_api_base_url: None,
            kommo_api_token: None,
            kommo_rate_per_sec: 7,
            telegram_api_base_url: url::Url::parse("https://api.telegram.org")
                .expect("a valid URL"),
            telegram_bot_token: None,
            action_timeout_ms: 10_000,
        }
    }
}

impl CrmSettings {
    pub fn action_timeout(&self) -> Duration {
        Duration::from_millis(self.action_timeout_ms)
    }
}
