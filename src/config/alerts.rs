//! `[alerts]`: where operators hear of events that failed for good (any
//! provider), and how often.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Secret;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsSettings {
    /// The Telegram bot that sends alerts; with `telegram_chat_id`.
    pub telegram_bot_token: Option<Secret>,
    /// The chat (a numeric id, or `@channelname`) alerts go to.
    pub telegram_chat_id: Option<String>,
    /// The Bot API's base URL (a local Bot API server, or a fake in tests).
    pub telegram_api_base_url: String,
    /// A URL that receives each alert as a JSON POST. A secret: such URLs
    /// often carry a token.
    pub webhook_url: Option<Secret>,
    /// When set (`whsec_<base64>`), alert webhooks are signed with the
    /// Standard Webhooks headers.
    pub signing_secret: Option<Secret>,
    /// At most one alert per provider per this many seconds.
    pub interval_secs: u64,
    /// How old the first failure of a quiet spell must be before its alert
    /// goes, so that a burst is gathered into one alert with its count.
    pub group_secs: u64,
    /// How long one delivery (one HTTP call) may take.
    pub timeout_ms: u64,
}

impl Default for AlertsSettings {
    fn default() -> Self {
        Self {
            telegram_bot_token: None,
            telegram_chat_id: None,
            telegram_api_base_url: "https://api.telegram.org".into(),
            webhook_url: None,
            signing_secret: None,
            interval_secs: 300,
            group_secs: 30,
            timeout_ms: 10_000,
        }
    }
}

impl AlertsSettings {
    /// Whether any destination is configured.
    pub fn enabled(&self) -> bool {
        self.telegram().is_some() || self.webhook().is_some()
    }

    /// The bot token and chat, when both are set.
    pub fn telegram(&self) -> Option<(&Secret, &str)> {
        let token = self.telegram_bot_token.as_ref().filter(|t| !t.is_empty())?;
        let chat = self
            .telegram_chat_id
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())?;
        Some((token, chat))
    }

    /// The webhook URL, when set.
    pub fn webhook(&self) -> Option<&Secret> {
        self.webhook_url.as_ref().filter(|u| !u.is_empty())
    }

    /// The signing secret, when set.
    pub fn signing(&self) -> Option<&Secret> {
        self.signing_secret.as_ref().filter(|s| !s.is_empty())
    }

    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.interval_secs)
    }

    pub fn group(&self) -> Duration {
        Duration::from_secs(self.group_secs)
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// What `Settings::validate` checks of this section.
    pub(super) fn check(&self) -> Result<(), (&'static str, String)> {
        if self.interval_secs == 0 {
            return Err(("alerts.interval_secs", "must be at least 1".into()));
        }
        if self.group_secs == 0 {
            return Err(("alerts.group_secs", "must be at least 1".into()));
        }
        if self.timeout_ms == 0 {
            return Err(("alerts.timeout_ms", "must be at least 1".into()));
        }
        if let Some(s) = self.signing() {
            use base64::Engine as _;
            let text = s.expose().trim();
            let b64 = text.strip_prefix("whsec_").unwrap_or(text);
            let key = base64::engine::general_purpose::STANDARD.decode(b64);
            if !matches!(key, Ok(k) if !k.is_empty()) {
                return Err((
                    "alerts.signing_secret",
                    "must be `whsec_` followed by base64 (a Standard Webhooks secret)".into(),
                ));
            }
        }
        for (field, url) in [
            (
                "alerts.telegram_api_base_url",
                Some(self.telegram_api_base_url.as_str()),
            ),
            ("alerts.webhook_url", self.webhook().map(Secret::expose)),
        ] {
            if let Some(u) = url {
                match url::Url::parse(u) {
                    Ok(p) if matches!(p.scheme(), "http" | "https") => {}
                    // Never the URL itself: the webhook's may hold a token.
                    _ => return Err((field, "must be an http(s) URL".into())),
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checks_refuse_what_cannot_work() {
        assert!(AlertsSettings::default().check().is_ok());
        assert!(
            !AlertsSettings::default().enabled(),
            "no destination, no alerts"
        );
        let with = |f: fn(&mut AlertsSettings)| {
            let mut s = AlertsSettings::default();
            f(&mut s);
            s.check().err().map(|(field, _)| field)
        };
        assert_eq!(with(|s| s.interval_secs = 0), Some("alerts.interval_secs"));
        assert_eq!(with(|s| s.group_secs = 0), Some("alerts.group_secs"));
        assert_eq!(
            with(|s| s.signing_secret = Some(Secret::new("not base64!"))),
            Some("alerts.signing_secret")
        );
        assert_eq!(
            with(|s| s.signing_secret = Some(Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))),
            None
        );
        assert_eq!(
            with(|s| s.webhook_url = Some(Secret::new("ftp://token@example.com/"))),
            Some("alerts.webhook_url")
        );
        // A chat without a token (or the reverse) is no destination.
        let mut s = AlertsSettings {
            telegram_chat_id: Some("-100".into()),
            ..Default::default()
        };
        assert!(!s.enabled());
        s.telegram_bot_token = Some(Secret::new("1:x"));
        assert!(s.enabled());
    }
}
