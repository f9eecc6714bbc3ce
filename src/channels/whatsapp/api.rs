//! [`GraphApi`]: the WhatsApp Cloud API client of one number. Sends with
//! `POST {base}/{phone_number_id}/messages`; downloads media with
//! `GET {base}/{media_id}` (which gives a short-lived URL) and then `GET`
//! on that URL with the same bearer token, at once.
//!
//! Retries 429 and 5xx (honouring `Retry-After`) and the throughput error
//! codes; the codes that say "this message can never go" fail at once
//! ([`code_is_transient`]).

use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use url::Url;

use crate::{
    channels::net::{self, DownloadError, MAX_RETRY_WAIT, MAX_TRIES},
    config::Secret,
};

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("Graph API: HTTP {status}, error {code}: {message}")]
    Api {
        status: u16,
        code: i64,
        message: String,
    },
    #[error("Graph API: {0}")]
    Network(reqwest::Error),
    #[error("Graph API: unreadable answer: {0}")]
    Decode(String),
    #[error("media download: {0}")]
    Download(#[from] DownloadError),
    #[error("refused before sending: {0}")]
    Invalid(String),
}

/// Whether a Cloud API error code is worth retrying (`pywa/errors.py`):
/// throughput and rate limits are; outside the 24-hour window (131047),
/// undeliverable (131026) and everything else are not.
pub fn code_is_transient(code: i64) -> bool {
    matches!(code, 4 | 80007 | 130429 | 131048 | 131056 | 131000 | 2)
}

impl GraphError {
    pub fn is_transient(&self) -> bool {
        match self {
            GraphError::Api { status, code, .. } => {
                *status == 429 || *status >= 500 || code_is_transient(*code)
            }
            GraphError::Network(_) => true,
            GraphError::Download(e) => e.is_transient(),
            GraphError::Decode(_) | GraphError::Invalid(_) => false,
        }
    }
}

#[derive(Clone)]
pub struct GraphApi {
    http: reqwest::Client,
    base: String,
    token: Secret,
    /// Hosts trusted for media URLs: the Graph host.
    trusted: Vec<(String, u16)>,
    max_media_bytes: usize,
}

impl std::fmt::Debug for GraphApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphApi")
            .field("base", &self.base)
            .finish()
    }
}

const TIMEOUT: Duration = Duration::from_secs(60);

impl GraphApi {
    pub fn new(base: &Url, token: Secret, max_media_bytes: usize) -> Self {
        Self {
            http: net::client(TIMEOUT),
            base: base.as_str().trim_end_matches('/').to_string(),
            token,
            trusted: net::host_port(base).into_iter().collect(),
            max_media_bytes,
        }
    }

    async fn request(
        &self,
        what: &str,
        make: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Value, GraphError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= MAX_TRIES;
            let resp = match make().bearer_auth(self.token.expose()).send().await {
                Ok(r) => r,
                Err(e) if !last => {
                    tracing::debug!(what, error = %e.without_url(), "Graph API call failed; retrying");
                    tokio::time::sleep(net::backoff(attempt)).await;
                    continue;
                }
                Err(e) => return Err(GraphError::Network(e.without_url())),
            };
            let status = resp.status().as_u16();
            let wait = net::retry_after(resp.headers());
            let body: Value = net::api_json(resp).await.unwrap_or(Value::Null);
            if (200..300).contains(&status) {
                return Ok(body);
            }
            let err = GraphError::Api {
                status,
                code: body
                    .pointer("/error/code")
                    .and_then(Value::as_i64)
                    .unwrap_or(0),
                message: body
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("(no error message)")
                    .to_string(),
            };
            if err.is_transient() && !last {
                let wait = wait.unwrap_or_else(|| net::backoff(attempt));
                if wait <= MAX_RETRY_WAIT {
                    tracing::info!(what, ?wait, error = %err, "Graph API asks to retry; waiting");
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            return Err(err);
        }
    }

    /// Sends one message body (`{"messaging_product": "whatsapp", "to", "type", …}`)
    /// from `phone_number_id`; returns the new message's `wamid`.
    pub async fn send(
        &self,
        phone_number_id: &str,
        body: &Value,
    ) -> Result<Option<String>, GraphError> {
        super::limits::validate(body).map_err(GraphError::Invalid)?;
        let url = format!("{}/{phone_number_id}/messages", self.base);
        let answer = self
            .request("messages", || self.http.post(&url).json(body))
            .await?;
        Ok(answer
            .pointer("/messages/0/id")
            .and_then(Value::as_str)
            .map(String::from))
    }

    /// Downloads a received medium: its URL first, then the bytes (capped).
    pub async fn download_media(&self, media_id: &str) -> Result<Bytes, GraphError> {
        let url = format!("{}/{media_id}", self.base);
        let meta = self.request("media", || self.http.get(&url)).await?;
        if meta["file_size"]
            .as_u64()
            .is_some_and(|n| n > self.max_media_bytes as u64)
        {
            return Err(DownloadError::TooLarge(self.max_media_bytes).into());
        }
        let link = meta["url"]
            .as_str()
            .ok_or_else(|| GraphError::Decode("the media answer has no url".into()))?;
        let link = Url::parse(link).map_err(|e| GraphError::Decode(format!("media url: {e}")))?;
        let client = net::guarded_client(&link, &self.trusted, TIMEOUT).await?;
        let resp = client
            .get(link)
            .bearer_auth(self.token.expose())
            .send()
            .await
            .map_err(|e| DownloadError::Http(e.without_url()))?;
        Ok(net::read_capped(resp, self.max_media_bytes).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughput_codes_retry_and_final_ones_do_not() {
        for code in [130429, 131056] {
            assert!(code_is_transient(code), "{code}");
        }
        for code in [131047, 131026] {
            assert!(!code_is_transient(code), "{code}");
            let e = GraphError::Api {
                status: 400,
                code,
                message: String::new(),
            };
            assert!(!e.is_transient());
        }
        let e = GraphError::Api {
            status: 503,
            code: 0,
            message: String::new(),
        };
        assert!(e.is_transient());
    }
}
