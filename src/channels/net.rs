//! What both messenger clients share on the wire: the HTTP client, reading
//! `Retry-After`, the backoff between tries, capped downloads, and the SSRF
//! check for media URLs that an API hands us.
//!
//! The API base URLs (`telegram.api_base_url`, `whatsapp.graph_base_url`)
//! are trusted like `IMAGE_BASE_URL`: an operator configured them, so they
//! may be loopback (a local fake, a proxy). Any other host a response
//! points us at (WhatsApp's media URL) must resolve to public addresses
//! only, checked with the same rule as image fetches
//! ([`crate::embed::fetch::is_internal`]) and then pinned, so a second DNS
//! answer cannot swap in an internal one.

use std::{net::SocketAddr, time::Duration};

use bytes::Bytes;
use url::Url;

/// Tries of one API call: the first and three retries.
pub const MAX_TRIES: u32 = 4;
/// The longest `retry_after` waited out in place; a longer one fails the
/// try as transient, and the inbox retries the event on its own schedule.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(30);

/// A client for one API: no proxy from the environment, no redirects
/// (an API answers, it does not redirect; a redirect could leave the
/// trusted host), bounded time.
pub fn client(timeout: Duration) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(timeout)
        .user_agent(concat!("vitrine/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a plain rustls client builds")
}

/// The wait between tries after a 5xx or a network error: 0.25 s, 0.5 s,
/// 1 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250 << attempt.min(6))
}

/// `Retry-After` in seconds (the HTTP-date form is not used by either API).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// Why a download stopped.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("the file is larger than {0} bytes")]
    TooLarge(usize),
    #[error("download failed: {0}")]
    Http(reqwest::Error),
    #[error("download answered HTTP {0}")]
    Status(u16),
    #[error("refused destination: {0}")]
    Refused(String),
}

impl DownloadError {
    pub fn is_transient(&self) -> bool {
        match self {
            DownloadError::Http(_) => true,
            DownloadError::Status(s) => *s == 429 || *s >= 500,
            DownloadError::TooLarge(_) | DownloadError::Refused(_) => false,
        }
    }
}

/// The most an API answer (a Bot API or Graph API envelope, a
/// `getUpdates` batch) may be: far above what either sends, so that a
/// broken or hostile endpoint cannot make us buffer without bound.
pub const MAX_API_ANSWER: usize = 4 * 1024 * 1024;

/// Reads a successful response's body, refusing past `max` bytes (at once
/// when the declared length says so).
pub async fn read_capped(resp: reqwest::Response, max: usize) -> Result<Bytes, DownloadError> {
    if !resp.status().is_success() {
        return Err(DownloadError::Status(resp.status().as_u16()));
    }
    read_body_capped(resp, max).await
}

/// An API answer's JSON, whatever its status (error envelopes carry the
/// reason), read up to [`MAX_API_ANSWER`]; `None` when it is larger, cut
/// off or not JSON.
pub async fn api_json<T: serde::de::DeserializeOwned>(resp: reqwest::Response) -> Option<T> {
    let body = read_body_capped(resp, MAX_API_ANSWER).await.ok()?;
    serde_json::from_slice(&body).ok()
}

/// Reads a response body, whatever its status, refusing past `max` bytes.
async fn read_body_capped(mut resp: reqwest::Response, max: usize) -> Result<Bytes, DownloadError> {
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(DownloadError::TooLarge(max));
    }
    let mut buf = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| DownloadError::Http(e.without_url()))?
    {
        if buf.len() + chunk.len() > max {
            return Err(DownloadError::TooLarge(max));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.into())
}

/// Checks a URL that a response gave us. A host in `trusted` (the
/// configured API hosts, with their ports) passes as it is; any other must
/// resolve to public addresses only, and the returned client is pinned to
/// them.
pub async fn guarded_client(
    url: &Url,
    trusted: &[(String, u16)],
    timeout: Duration,
) -> Result<reqwest::Client, DownloadError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(DownloadError::Refused(format!(
            "scheme `{}` is not http(s)",
            url.scheme()
        )));
    }
    let host = url
        .host_str()
        .ok_or_else(|| DownloadError::Refused("no host".into()))?
        .trim_matches(['[', ']'])
        .to_ascii_lowercase();
    let port = url
        .port_or_known_default()
        .ok_or_else(|| DownloadError::Refused("no port".into()))?;
    if trusted.iter().any(|(h, p)| *h == host && *p == port) {
        return Ok(client(timeout));
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|_| DownloadError::Refused(format!("{host} does not resolve")))?
        .collect();
    if addrs.is_empty()
        || addrs
            .iter()
            .any(|a| crate::embed::fetch::is_internal(a.ip()))
    {
        return Err(DownloadError::Refused(format!(
            "{host} resolves to an internal address"
        )));
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .resolve_to_addrs(&host, &addrs)
        .build()
        .map_err(|e| DownloadError::Refused(format!("HTTP client: {e}")))
}

/// The `(host, port)` of a configured base URL, for `trusted`.
pub fn host_port(url: &Url) -> Option<(String, u16)> {
    Some((
        url.host_str()?
            .trim_matches(['[', ']'])
            .to_ascii_lowercase(),
        url.port_or_known_default()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn media_urls_on_internal_hosts_are_refused_unless_trusted() {
        let url = Url::parse("http://127.0.0.1:9/media").unwrap();
        assert!(matches!(
            guarded_client(&url, &[], Duration::from_secs(1)).await,
            Err(DownloadError::Refused(_))
        ));
        let trusted = [host_port(&url).unwrap()];
        assert!(
            guarded_client(&url, &trusted, Duration::from_secs(1))
                .await
                .is_ok()
        );
        let file = Url::parse("file:///etc/passwd").unwrap();
        assert!(
            guarded_client(&file, &trusted, Duration::from_secs(1))
                .await
                .is_err()
        );
    }

    #[test]
    fn backoff_grows_and_retry_after_reads_seconds() {
        assert!(backoff(2) > backoff(1));
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
    }
}
