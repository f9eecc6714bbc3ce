//! [`BotApi`]: the Telegram Bot API client, reusable by any module that
//! needs to talk to a bot (the CRM's rule actions send with
//! [`BotApi::send_message`]).
//!
//! Calls are `POST {base}/bot{token}/{method}` with a JSON body; the answer
//! is `{"ok": true, "result": …}` or `{"ok": false, "error_code",
//! "description", "parameters": {"retry_after"}}`. A 429 is waited out for
//! `retry_after` seconds (up to [`MAX_RETRY_WAIT`]) and a 5xx or a network
//! error retried with backoff, [`MAX_TRIES`] tries in all. The token is in
//! every URL, so no error here carries a URL (`reqwest::Error::without_url`).

use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use crate::{
    channels::net::{self, DownloadError, MAX_RETRY_WAIT, MAX_TRIES},
    config::Secret,
};

/// The update kinds the bots handle: what `setWebhook` and `getUpdates`
/// ask for, so Telegram need not send anything else.
pub const ALLOWED_UPDATES: &[&str] = &["message", "edited_message", "callback_query"];

/// Telegram lets bots download files of up to 20 MB.
pub const MAX_FILE_BYTES: usize = 20 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum BotApiError {
    /// Telegram refused the call; `description` is its own words.
    #[error("Bot API {method}: {code} {description}")]
    Api {
        method: String,
        code: u16,
        description: String,
    },
    /// Still rate limited after the tries, or asked to wait longer than we
    /// wait in place.
    #[error("Bot API {method}: rate limited, retry after {retry_after:?}")]
    RateLimited {
        method: String,
        retry_after: Duration,
    },
    #[error("Bot API {method}: {source}")]
    Network {
        method: String,
        source: reqwest::Error,
    },
    #[error("Bot API {method}: unreadable answer: {reason}")]
    Decode { method: String, reason: String },
    #[error("file download: {0}")]
    Download(#[from] DownloadError),
}

impl BotApiError {
    /// Whether trying again later may help.
    pub fn is_transient(&self) -> bool {
        match self {
            BotApiError::RateLimited { .. } | BotApiError::Network { .. } => true,
            BotApiError::Api { code, .. } => *code >= 500,
            BotApiError::Decode { .. } => false,
            BotApiError::Download(e) => e.is_transient(),
        }
    }

    /// 409 "Conflict" from `getUpdates`: another poller, or a webhook.
    pub fn is_conflict(&self) -> bool {
        matches!(self, BotApiError::Api { code: 409, .. })
    }
}

#[derive(Debug, Deserialize)]
struct Envelope {
    ok: bool,
    #[serde(default)]
    result: Value,
    #[serde(default)]
    error_code: Option<u16>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Parameters>,
}

#[derive(Debug, Deserialize)]
struct Parameters {
    #[serde(default)]
    retry_after: Option<u64>,
}

/// `getWebhookInfo`'s answer, the parts health and metrics use.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
pub struct WebhookInfo {
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub pending_update_count: i64,
    #[serde(default)]
    pub last_error_date: Option<i64>,
    #[serde(default)]
    pub last_error_message: Option<String>,
    #[serde(default)]
    pub max_connections: Option<i64>,
    #[serde(default)]
    pub allowed_updates: Option<Vec<String>>,
}

/// One bot's client. Cheap to clone.
#[derive(Clone)]
pub struct BotApi {
    http: reqwest::Client,
    base: String,
    token: Secret,
}

impl std::fmt::Debug for BotApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BotApi").field("base", &self.base).finish()
    }
}

impl BotApi {
    /// A client for the bot with `token`, at `base` (`https://api.telegram.org`
    /// or a local fake).
    pub fn new(base: &Url, token: Secret) -> Self {
        Self {
            // Long enough for a 20 MB download and a long-polling call.
            http: net::client(Duration::from_secs(90)),
            base: base.as_str().trim_end_matches('/').to_string(),
            token,
        }
    }

    /// Calls `method` with `params` and returns its `result`.
    pub async fn call(&self, method: &str, params: &Value) -> Result<Value, BotApiError> {
        let url = format!("{}/bot{}/{method}", self.base, self.token.expose());
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= MAX_TRIES;
            let resp = match self.http.post(&url).json(params).send().await {
                Ok(r) => r,
                Err(e) if !last => {
                    tracing::debug!(method, error = %e.without_url(), "Bot API call failed; retrying");
                    tokio::time::sleep(net::backoff(attempt)).await;
                    continue;
                }
                Err(e) => {
                    return Err(BotApiError::Network {
                        method: method.into(),
                        source: e.without_url(),
                    });
                }
            };
            let status = resp.status().as_u16();
            let header_wait = net::retry_after(resp.headers());
            let envelope: Option<Envelope> = net::api_json(resp).await;
            match envelope {
                Some(env) if env.ok => return Ok(env.result),
                env => {
                    let code = env.as_ref().and_then(|e| e.error_code).unwrap_or(status);
                    if code == 429 {
                        let wait = env
                            .as_ref()
                            .and_then(|e| e.parameters.as_ref())
                            .and_then(|p| p.retry_after)
                            .map(Duration::from_secs)
                            .or(header_wait)
                            .unwrap_or(Duration::from_secs(1));
                        if last || wait > MAX_RETRY_WAIT {
                            return Err(BotApiError::RateLimited {
                                method: method.into(),
                                retry_after: wait,
                            });
                        }
                        tracing::info!(method, ?wait, "Bot API rate limit; waiting as told");
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    if code >= 500 && !last {
                        tokio::time::sleep(net::backoff(attempt)).await;
                        continue;
                    }
                    return Err(match env {
                        Some(e) => BotApiError::Api {
                            method: method.into(),
                            code,
                            description: e.description.unwrap_or_default(),
                        },
                        None if code >= 400 => BotApiError::Api {
                            method: method.into(),
                            code,
                            description: "(no JSON answer)".into(),
                        },
                        None => BotApiError::Decode {
                            method: method.into(),
                            reason: format!("HTTP {status} without a Bot API answer"),
                        },
                    });
                }
            }
        }
    }

    /// `sendMessage`: `text` to `chat_id`, with an optional `reply_markup`.
    pub async fn send_message(
        &self,
        chat_id: i64,
        text: &str,
        reply_markup: Option<Value>,
    ) -> Result<Value, BotApiError> {
        let mut params = json!({ "chat_id": chat_id, "text": text });
        if let Some(m) = reply_markup {
            params["reply_markup"] = m;
        }
        self.call("sendMessage", &params).await
    }

    /// `answerCallbackQuery`, so the shopper's client stops spinning.
    pub async fn answer_callback_query(&self, id: &str) -> Result<Value, BotApiError> {
        self.call("answerCallbackQuery", &json!({ "callback_query_id": id }))
            .await
    }

    /// `getFile` and then the download from `{base}/file/bot{token}/{path}`,
    /// at most [`MAX_FILE_BYTES`].
    pub async fn download_file(&self, file_id: &str) -> Result<Bytes, BotApiError> {
        let file = self.call("getFile", &json!({ "file_id": file_id })).await?;
        if file["file_size"]
            .as_u64()
            .is_some_and(|n| n > MAX_FILE_BYTES as u64)
        {
            return Err(DownloadError::TooLarge(MAX_FILE_BYTES).into());
        }
        let path = file["file_path"]
            .as_str()
            .ok_or_else(|| BotApiError::Decode {
                method: "getFile".into(),
                reason: "no file_path".into(),
            })?;
        let url = format!("{}/file/bot{}/{path}", self.base, self.token.expose());
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| DownloadError::Http(e.without_url()))?;
        Ok(net::read_capped(resp, MAX_FILE_BYTES).await?)
    }

    /// `setWebhook` with the delivery secret and what to deliver.
    pub async fn set_webhook(
        &self,
        url: &str,
        secret_token: Option<&str>,
        allowed_updates: &[&str],
        max_connections: u32,
        drop_pending_updates: bool,
    ) -> Result<Value, BotApiError> {
        let mut params = json!({
            "url": url,
            "allowed_updates": allowed_updates,
            "max_connections": max_connections,
            "drop_pending_updates": drop_pending_updates,
        });
        if let Some(s) = secret_token {
            params["secret_token"] = Value::from(s);
        }
        self.call("setWebhook", &params).await
    }

    pub async fn delete_webhook(&self, drop_pending_updates: bool) -> Result<Value, BotApiError> {
        self.call(
            "deleteWebhook",
            &json!({ "drop_pending_updates": drop_pending_updates }),
        )
        .await
    }

    pub async fn webhook_info(&self) -> Result<WebhookInfo, BotApiError> {
        let v = self.call("getWebhookInfo", &json!({})).await?;
        serde_json::from_value(v).map_err(|e| BotApiError::Decode {
            method: "getWebhookInfo".into(),
            reason: e.to_string(),
        })
    }
}
