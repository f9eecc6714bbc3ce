//! Fetching product images: `image_key` against `IMAGE_BASE_URL` (http(s) or
//! `file://`), or an absolute `image_url` from the event.
//!
//! Guards, each with its own error class:
//! - connect and overall timeouts (the overall one covers redirects and the
//!   body, and local reads too);
//! - a byte cap, enforced while streaming (a lying `Content-Length` or a
//!   file whose metadata says 0 bytes does not get past it);
//! - keys stay under their base, whatever their encoding ([`resolve`]);
//! - local reads only of regular files under the canonical base ([`local`]);
//! - an SSRF guard ([`guard`]): an event must not make us fetch from our own
//!   network. Every special-purpose address range is refused unless
//!   allow-listed (`VITRINE_FETCH_ALLOW`), checked before every request and
//!   redirect hop and again in the DNS resolver (so DNS rebinding gains
//!   nothing);
//! - no proxy from the environment (`HTTP_PROXY` & co. would otherwise take
//!   the target's resolution out of our hands); a proxy is used only when
//!   configured (`fetch.proxy`), and then the target is resolved and checked
//!   here before the request goes out;
//! - `file://` is only reachable through the configured base URL, never from
//!   an event's own `image_url`.
//!
//! Errors have two faces: `Display` (and [`FetchError::public_reason`]) is a
//! short class that may be shown to anyone (a product's public `error`);
//! [`FetchError::detail`] names the URL (credentials redacted) or file and
//! the cause, for logs and the admin event API.

mod guard;
mod local;
pub mod monitor;
pub mod resolve;
pub mod s3;

use std::{path::PathBuf, sync::Arc, time::Duration};

use bytes::Bytes;
use futures::StreamExt;
use url::Url;

pub use guard::{AllowList, is_internal};

use crate::config::{FetchSettings, S3Settings};

/// Where an image is: a key under the configured base (`IMAGE_BASE_URL`, or
/// an S3 bucket), or an absolute URL given by the marketplace.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageRef {
    Key(String),
    Url(String),
}

impl ImageRef {
    /// The text stored for it (a product's `image_ref` column).
    pub fn as_str(&self) -> &str {
        match self {
            ImageRef::Key(s) | ImageRef::Url(s) => s,
        }
    }

    /// Reads back what [`ImageRef::as_str`] stored: absolute http(s) URLs
    /// are URLs, anything else is a key.
    pub fn from_stored(s: &str) -> Self {
        if s.starts_with("http://") || s.starts_with("https://") {
            ImageRef::Url(s.to_string())
        } else {
            ImageRef::Key(s.to_string())
        }
    }
}

/// Why an image could not be fetched.
///
/// `Display` is the public face: a short class (plus the HTTP status or the
/// cap, which say nothing about our network), never a URL, a path or a
/// connect error. The fields hold the detail, URLs already redacted, for
/// [`FetchError::detail`].
#[derive(Debug, thiserror::Error, Clone)]
pub enum FetchError {
    #[error("no image base URL configured")]
    NoBaseUrl(String),
    #[error("invalid image URL")]
    InvalidUrl { url: String, reason: String },
    #[error("image URL refused")]
    Refused { url: String, reason: String },
    #[error("image not found")]
    NotFound(String),
    #[error("image host answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("image too large (over {cap} bytes)")]
    TooLarge { url: String, cap: usize },
    #[error("image fetch timed out")]
    Timeout(String),
    #[error("image host unreachable")]
    Network { url: String, reason: String },
    /// A local read failed for another reason than a missing file.
    #[error("image could not be read")]
    Local {
        url: String,
        reason: String,
        transient: bool,
    },
    /// The fetch settings are unusable (an allow-list entry, the proxy).
    #[error("image fetching is misconfigured")]
    Config(String),
}

impl FetchError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Status { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            FetchError::Timeout(_) | FetchError::Network { .. } => true,
            FetchError::Local { transient, .. } => *transient,
            _ => false,
        }
    }

    /// The class of failure, safe for public responses: it names no URL,
    /// path, address or connect error.
    pub fn public_reason(&self) -> &'static str {
        match self {
            FetchError::NoBaseUrl(_) => "no image base URL configured",
            FetchError::InvalidUrl { .. } => "invalid image URL",
            FetchError::Refused { .. } => "image URL refused",
            FetchError::NotFound(_) => "image not found",
            FetchError::Status { .. } => "image host answered an error",
            FetchError::TooLarge { .. } => "image too large",
            FetchError::Timeout(_) => "image fetch timed out",
            FetchError::Network { .. } => "image host unreachable",
            FetchError::Local { .. } => "image could not be read",
            FetchError::Config(_) => "image fetching is misconfigured",
        }
    }

    /// The whole story, for logs and the admin event API: the URL (with any
    /// credentials redacted) or file path, and the cause.
    pub fn detail(&self) -> String {
        match self {
            FetchError::NoBaseUrl(k) => format!(
                "no image base URL configured to resolve image_key `{k}` (set IMAGE_BASE_URL)"
            ),
            FetchError::InvalidUrl { url, reason } => {
                format!("invalid image URL `{url}`: {reason}")
            }
            FetchError::Refused { url, reason } => {
                format!("refused to fetch {url}: {reason} (allow it with VITRINE_FETCH_ALLOW)")
            }
            FetchError::NotFound(url) => format!("image not found: {url}"),
            FetchError::Status { url, status } => {
                format!("image server answered {status} for {url}")
            }
            FetchError::TooLarge { url, cap } => {
                format!("image is larger than the {cap}-byte cap: {url}")
            }
            FetchError::Timeout(url) => format!("timed out fetching {url}"),
            FetchError::Network { url, reason } => format!("could not fetch {url}: {reason}"),
            FetchError::Local { url, reason, .. } => format!("could not read {url}: {reason}"),
            FetchError::Config(reason) => format!("fetch settings: {reason}"),
        }
    }
}

/// A URL for error details: password and user name redacted.
fn shown(url: &Url) -> String {
    let mut u = url.clone();
    if !u.username().is_empty() {
        let _ = u.set_username("***");
    }
    crate::config::redact_url(u.as_str())
}

/// Most redirects followed for one image.
const MAX_REDIRECTS: usize = 5;

#[derive(Debug, Clone)]
pub struct FetchConfig {
    pub base_url: Option<Url>,
    pub allow: AllowList,
    /// An explicitly configured proxy for http(s) fetches; none means direct
    /// connections, whatever the environment says.
    pub proxy: Option<Url>,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub max_bytes: usize,
}

#[derive(Clone)]
pub struct ImageFetcher {
    cfg: Arc<FetchConfig>,
    guard: Arc<guard::Guard>,
    http: reqwest::Client,
    /// When set, `image_key`s are object keys in this bucket.
    s3: Option<s3::S3Images>,
}

impl ImageFetcher {
    /// The fetcher the settings describe: HTTP/file under
    /// `fetch.image_base_url`, plus S3 when an `[s3]` section is present.
    pub async fn from_settings(
        fetch: &FetchSettings,
        s3: Option<&S3Settings>,
    ) -> Result<Self, FetchError> {
        let proxy = match &fetch.proxy {
            Some(p) if !p.is_empty() => Some(
                Url::parse(p.expose().trim())
                    .map_err(|e| FetchError::Config(format!("fetch.proxy is not a URL: {e}")))?,
            ),
            _ => None,
        };
        let fetcher = Self::new(FetchConfig {
            base_url: fetch.image_base_url.clone(),
            allow: AllowList::parse(fetch.allow.iter().map(String::as_str))
                .map_err(FetchError::Config)?,
            proxy,
            connect_timeout: fetch.connect_timeout(),
            timeout: fetch.timeout(),
            max_bytes: fetch.max_bytes,
        })?;
        Ok(match s3 {
            None => fetcher,
            Some(s3) => fetcher.with_s3(
                s3::S3Images::connect(s3::S3Config {
                    bucket: s3.bucket.clone(),
                    endpoint: s3.endpoint.clone(),
                    region: s3.region.clone(),
                    connect_timeout: fetch.connect_timeout(),
                    timeout: fetch.timeout(),
                    max_bytes: fetch.max_bytes,
                })
                .await,
            ),
        })
    }

    pub fn new(mut cfg: FetchConfig) -> Result<Self, FetchError> {
        // rustls needs one process-wide crypto provider; ring is the one
        // compiled in (aws-lc would need cmake and clang). Installing it
        // again is a harmless no-op.
        let _ = rustls::crypto::ring::default_provider().install_default();
        if let Some(base) = &mut cfg.base_url {
            if base.cannot_be_a_base() {
                return Err(FetchError::Config(
                    "fetch.image_base_url must be a base URL".into(),
                ));
            }
            // `join` would replace the last segment of a base without '/'.
            if !base.path().ends_with('/') {
                let path = format!("{}/", base.path());
                base.set_path(&path);
            }
        }
        // The configured image host is trusted, on its own port only.
        let mut allow = cfg.allow.clone();
        if let Some(base) = &cfg.base_url
            && matches!(base.scheme(), "http" | "https")
            && let Some(host) = base.host_str()
        {
            allow.add_host(host, base.port_or_known_default());
        }
        let mut infrastructure = Vec::new();
        let mut http = reqwest::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            .timeout(cfg.timeout)
            // Redirects are followed by `fetch_http`, which checks each hop
            // like the first request (asynchronously, so it can resolve).
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("vitrine/", env!("CARGO_PKG_VERSION")));
        http = match &cfg.proxy {
            // Without this, reqwest reads HTTP_PROXY/HTTPS_PROXY/ALL_PROXY,
            // and the resolver would only ever see the proxy's name.
            None => http.no_proxy(),
            Some(p) => {
                if let Some(h) = p.host_str() {
                    infrastructure.push(h.trim_matches(['[', ']']).to_ascii_lowercase());
                }
                let proxy = reqwest::Proxy::all(p.as_str())
                    .map_err(|e| FetchError::Config(format!("fetch.proxy: {e}")))?;
                http.proxy(proxy)
            }
        };
        let guard = Arc::new(guard::Guard {
            allow,
            infrastructure,
            proxied: cfg.proxy.is_some(),
        });
        let http = http
            .dns_resolver(Arc::new(guard::GuardedResolver(guard.clone())))
            .build()
            .map_err(|e| FetchError::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            cfg: Arc::new(cfg),
            guard,
            http,
            s3: None,
        })
    }

    /// Reads `image_key`s from S3 instead of `IMAGE_BASE_URL`.
    pub fn with_s3(mut self, s3: s3::S3Images) -> Self {
        self.s3 = Some(s3);
        self
    }

    /// Where an image reference points: an event's URL must be http(s); a
    /// key must resolve under the base (see [`resolve`]).
    pub fn resolve(&self, image: &ImageRef) -> Result<Url, FetchError> {
        match image {
            ImageRef::Url(u) => {
                let url = Url::parse(u).map_err(|e| FetchError::InvalidUrl {
                    url: crate::config::redact_url(u),
                    reason: e.to_string(),
                })?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(FetchError::InvalidUrl {
                        url: shown(&url),
                        reason: "only http(s) URLs may come from events".into(),
                    });
                }
                Ok(url)
            }
            ImageRef::Key(k) => {
                let base = self
                    .cfg
                    .base_url
                    .as_ref()
                    .ok_or_else(|| FetchError::NoBaseUrl(k.clone()))?;
                resolve::resolve_key(base, k).map_err(|reason| FetchError::Refused {
                    url: format!("image_key `{}`", k.escape_debug()),
                    reason: reason.into(),
                })
            }
        }
    }

    pub async fn fetch(&self, image: &ImageRef) -> Result<Bytes, FetchError> {
        if let (ImageRef::Key(key), Some(s3)) = (image, &self.s3) {
            resolve::check_key_text(key).map_err(|reason| FetchError::Refused {
                url: format!("image_key `{}`", key.escape_debug()),
                reason: reason.into(),
            })?;
            return s3.fetch(key).await;
        }
        let url = self.resolve(image)?;
        match (url.scheme(), image) {
            ("file", ImageRef::Key(_)) => self.fetch_file(&url).await,
            ("http" | "https", _) => self.fetch_http(url).await,
            (other, _) => Err(FetchError::InvalidUrl {
                url: shown(&url),
                reason: format!("unsupported scheme `{other}`"),
            }),
        }
    }

    /// Which image source `image_key`s are read from: `"s3"`, `"http"` or
    /// `"file"`; `None` when no base is configured (events must carry URLs).
    pub fn source_kind(&self) -> Option<&'static str> {
        if self.s3.is_some() {
            return Some("s3");
        }
        match self.cfg.base_url.as_ref()?.scheme() {
            "file" => Some("file"),
            _ => Some("http"),
        }
    }

    /// Whether the image source answers, for `/api/v1/health`: the bucket
    /// (`HeadBucket`), the base URL's host (a `HEAD` of the base: any HTTP
    /// answer counts, a 404 too; only no answer is a failure), or the local
    /// folder. Bounded by the connect timeout.
    pub async fn probe(&self) -> Result<(), FetchError> {
        let work = async {
            if let Some(s3) = &self.s3 {
                return s3.probe().await;
            }
            let Some(base) = self.cfg.base_url.clone() else {
                return Ok(());
            };
            if base.scheme() == "file" {
                let shown = shown(&base);
                let path = base.to_file_path().map_err(|_| FetchError::InvalidUrl {
                    url: shown.clone(),
                    reason: "not a local file path".into(),
                })?;
                return match tokio::fs::metadata(&path).await {
                    Ok(m) if m.is_dir() => Ok(()),
                    Ok(_) => Err(FetchError::Local {
                        url: shown,
                        reason: "the image base is not a folder".into(),
                        transient: false,
                    }),
                    Err(e) => Err(FetchError::Local {
                        url: shown,
                        reason: e.to_string(),
                        transient: true,
                    }),
                };
            }
            self.guard
                .check_target(&base)
                .await
                .map_err(|guard::Refusal(reason)| FetchError::Refused {
                    url: shown(&base),
                    reason,
                })?;
            self.http
                .head(base.clone())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify(&base, e))
        };
        match tokio::time::timeout(self.cfg.connect_timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout("the image source".into())),
        }
    }

    async fn fetch_file(&self, url: &Url) -> Result<Bytes, FetchError> {
        let not_local = || FetchError::InvalidUrl {
            url: shown(url),
            reason: "not a local file path".into(),
        };
        let base: PathBuf = self
            .cfg
            .base_url
            .as_ref()
            .and_then(|b| b.to_file_path().ok())
            .ok_or_else(not_local)?;
        let path: PathBuf = url.to_file_path().map_err(|_| not_local())?;
        local::read_under(&base, &path, self.cfg.max_bytes, self.cfg.timeout).await
    }

    async fn fetch_http(&self, url: Url) -> Result<Bytes, FetchError> {
        let first = shown(&url);
        match tokio::time::timeout(self.cfg.timeout, self.fetch_http_inner(url)).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout(first)),
        }
    }

    async fn fetch_http_inner(&self, mut url: Url) -> Result<Bytes, FetchError> {
        let mut hops = 0;
        let resp = loop {
            self.guard
                .check_target(&url)
                .await
                .map_err(|guard::Refusal(reason)| FetchError::Refused {
                    url: shown(&url),
                    reason,
                })?;
            let resp = self
                .http
                .get(url.clone())
                .send()
                .await
                .map_err(|e| classify(&url, e))?;
            if !resp.status().is_redirection() {
                break resp;
            }
            let Some(next) = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| url.join(l).ok())
            else {
                break resp;
            };
            hops += 1;
            if hops > MAX_REDIRECTS {
                return Err(FetchError::Refused {
                    url: shown(&url),
                    reason: "too many redirects".into(),
                });
            }
            url = next;
        };
        let shown = shown(&url);
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
            return Err(FetchError::NotFound(shown));
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                url: shown,
                status: status.as_u16(),
            });
        }
        let cap = self.cfg.max_bytes;
        if resp.content_length().is_some_and(|n| n > cap as u64) {
            return Err(FetchError::TooLarge { url: shown, cap });
        }
        let hint = resp.content_length().unwrap_or(0).min(cap as u64) as usize;
        let mut body = Vec::with_capacity(hint);
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| classify(&url, e))?;
            if body.len() + chunk.len() > cap {
                return Err(FetchError::TooLarge { url: shown, cap });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(body))
    }
}

fn classify(url: &Url, e: reqwest::Error) -> FetchError {
    let url = shown(url);
    let e = e.without_url();
    // A connect timeout is "unreachable" like a refused connection: telling
    // the two apart publicly would map filtered and closed ports.
    if e.is_timeout() && !e.is_connect() {
        return FetchError::Timeout(url);
    }
    // Walk the source chain: the resolver's refusal arrives wrapped.
    let mut reason = e.to_string();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
    while let Some(s) = src {
        let text = s.to_string();
        if text.contains(guard::RESOLVER_REFUSAL) {
            return FetchError::Refused { url, reason: text };
        }
        reason = format!("{reason}: {text}");
        src = s.source();
    }
    FetchError::Network { url, reason }
}

#[cfg(test)]
mod tests;
