//! Fetching product images: `image_key` against `IMAGE_BASE_URL` (http(s) or
//! `file://`), or an absolute `image_url` from the event.
//!
//! Guards, each with its own readable error:
//! - connect and overall timeouts;
//! - a byte cap, enforced while streaming (a lying `Content-Length` does not
//!   get past it);
//! - an SSRF guard: an event must not make us fetch from our own network.
//!   Hosts resolving to loopback, private, link-local or other internal
//!   addresses are refused unless allow-listed (`VITRINE_FETCH_ALLOW`). The
//!   check sits in the DNS resolver, so it also covers redirects and cannot
//!   be dodged by a name that resolves differently the second time
//!   (DNS rebinding): the address we connect to is the address we checked.
//! - `file://` is only reachable through the configured base URL, never from
//!   an event's own `image_url`.

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use bytes::Bytes;
use futures::StreamExt;
use ipnet::IpNet;
use url::Url;

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

#[derive(Debug, thiserror::Error, Clone)]
pub enum FetchError {
    #[error("no image base URL configured to resolve image_key `{0}` (set IMAGE_BASE_URL)")]
    NoBaseUrl(String),
    #[error("invalid image URL `{url}`: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("refused to fetch {url}: {reason} (allow it with VITRINE_FETCH_ALLOW)")]
    Refused { url: String, reason: String },
    #[error("image not found: {0}")]
    NotFound(String),
    #[error("image server answered {status} for {url}")]
    Status { url: String, status: u16 },
    #[error("image is larger than the {cap}-byte cap: {url}")]
    TooLarge { url: String, cap: usize },
    #[error("timed out fetching {0}")]
    Timeout(String),
    #[error("could not fetch {url}: {reason}")]
    Network { url: String, reason: String },
}

impl FetchError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Status { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            FetchError::Timeout(_) | FetchError::Network { .. } => true,
            _ => false,
        }
    }
}

/// Which internal addresses may be fetched anyway.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    hosts: Vec<String>,
    nets: Vec<IpNet>,
}

impl AllowList {
    /// Entries are host names, IP addresses or CIDR blocks.
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Self {
        let mut list = Self::default();
        for e in entries {
            let e = e.trim();
            if let Ok(net) = e.parse::<IpNet>() {
                list.nets.push(net);
            } else if let Ok(ip) = e.parse::<IpAddr>() {
                list.nets.push(IpNet::from(ip));
            } else if !e.is_empty() {
                list.hosts.push(e.to_ascii_lowercase());
            }
        }
        list
    }

    fn allows_host(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    fn allows_ip(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(&ip))
    }
}

/// True for addresses an outside event must never make us reach.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64/10 carrier-grade NAT
                || (o[0] == 192 && o[1] == 0 && o[2] == 0) // 192.0.0/24 IETF
                || (o[0] == 198 && (o[1] & 0xfe) == 18) // 198.18/15 benchmarking
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        }
    }
}

/// DNS resolution that drops internal addresses unless allowed.
struct GuardedResolver {
    allow: Arc<AllowList>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if allow.allows_host(&host) {
                return Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs);
            }
            let permitted: Vec<SocketAddr> = addrs
                .iter()
                .copied()
                .filter(|a| !is_internal(a.ip()) || allow.allows_ip(a.ip()))
                .collect();
            if permitted.is_empty() {
                return Err(format!("{host} resolves only to internal addresses").into());
            }
            Ok(Box::new(permitted.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[derive(Debug, Clone)]
pub struct FetchConfig {
    pub base_url: Option<Url>,
    pub allow: AllowList,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub max_bytes: usize,
}

#[derive(Clone)]
pub struct ImageFetcher {
    cfg: Arc<FetchConfig>,
    allow: Arc<AllowList>,
    http: reqwest::Client,
    /// When set, `image_key`s are object keys in this bucket.
    s3: Option<super::s3::S3Images>,
}

impl ImageFetcher {
    /// The fetcher the settings describe: HTTP/file under
    /// `fetch.image_base_url`, plus S3 when an `[s3]` section is present.
    pub async fn from_settings(
        fetch: &FetchSettings,
        s3: Option<&S3Settings>,
    ) -> Result<Self, FetchError> {
        let base_url = fetch.image_base_url.clone().map(|mut u| {
            // `join` would replace the last segment of a base without '/'.
            if !u.path().ends_with('/') {
                let path = format!("{}/", u.path());
                u.set_path(&path);
            }
            u
        });
        let fetcher = Self::new(FetchConfig {
            base_url,
            allow: AllowList::parse(fetch.allow.iter().map(String::as_str)),
            connect_timeout: fetch.connect_timeout(),
            timeout: fetch.timeout(),
            max_bytes: fetch.max_bytes,
        })?;
        Ok(match s3 {
            None => fetcher,
            Some(s3) => fetcher.with_s3(
                super::s3::S3Images::connect(super::s3::S3Config {
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
        // The configured image host is trusted by definition.
        if let Some(base) = &cfg.base_url
            && let Some(host) = base.host_str()
        {
            cfg.allow = AllowList {
                hosts: [
                    cfg.allow.hosts.clone(),
                    vec![host.trim_matches(['[', ']']).to_string()],
                ]
                .concat(),
                nets: cfg.allow.nets.clone(),
            };
            if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
                cfg.allow.nets.push(IpNet::from(ip));
            }
        }
        let allow = Arc::new(cfg.allow.clone());
        let redirect_allow = allow.clone();
        let http = reqwest::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            .timeout(cfg.timeout)
            .dns_resolver(Arc::new(GuardedResolver {
                allow: allow.clone(),
            }))
            // Literal IPs never reach the resolver, so redirects to them are
            // checked here.
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= 5 {
                    return attempt.error("too many redirects");
                }
                match literal_ip(attempt.url()) {
                    Some(ip) if is_internal(ip) && !redirect_allow.allows_ip(ip) => {
                        attempt.error("redirect to an internal address")
                    }
                    _ => attempt.follow(),
                }
            }))
            .user_agent(concat!("vitrine/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FetchError::Network {
                url: String::new(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            cfg: Arc::new(cfg),
            allow,
            http,
            s3: None,
        })
    }

    /// Reads `image_key`s from S3 instead of `IMAGE_BASE_URL`.
    pub fn with_s3(mut self, s3: super::s3::S3Images) -> Self {
        self.s3 = Some(s3);
        self
    }

    /// Where an image reference points.
    pub fn resolve(&self, image: &ImageRef) -> Result<Url, FetchError> {
        match image {
            ImageRef::Url(u) => {
                let url = Url::parse(u).map_err(|e| FetchError::InvalidUrl {
                    url: u.clone(),
                    reason: e.to_string(),
                })?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(FetchError::InvalidUrl {
                        url: u.clone(),
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
                // Keys are paths below the base: no absolute URLs, no `..`.
                if k.contains("..") || k.contains("://") || k.starts_with('/') {
                    return Err(FetchError::InvalidUrl {
                        url: k.clone(),
                        reason: "image_key must be a relative path without `..`".into(),
                    });
                }
                base.join(k).map_err(|e| FetchError::InvalidUrl {
                    url: k.clone(),
                    reason: e.to_string(),
                })
            }
        }
    }

    pub async fn fetch(&self, image: &ImageRef) -> Result<Bytes, FetchError> {
        if let (ImageRef::Key(key), Some(s3)) = (image, &self.s3) {
            return s3.fetch(key).await;
        }
        let url = self.resolve(image)?;
        match url.scheme() {
            "file" => self.fetch_file(&url).await,
            "http" | "https" => self.fetch_http(url).await,
            other => Err(FetchError::InvalidUrl {
                url: url.to_string(),
                reason: format!("unsupported scheme `{other}`"),
            }),
        }
    }

    async fn fetch_file(&self, url: &Url) -> Result<Bytes, FetchError> {
        let path: PathBuf = url.to_file_path().map_err(|_| FetchError::InvalidUrl {
            url: url.to_string(),
            reason: "not a local file path".into(),
        })?;
        let meta = tokio::fs::metadata(&path)
            .await
            .map_err(|_| FetchError::NotFound(url.to_string()))?;
        if meta.len() > self.cfg.max_bytes as u64 {
            return Err(FetchError::TooLarge {
                url: url.to_string(),
                cap: self.cfg.max_bytes,
            });
        }
        tokio::fs::read(&path)
            .await
            .map(Bytes::from)
            .map_err(|e| FetchError::Network {
                url: url.to_string(),
                reason: e.to_string(),
            })
    }

    async fn fetch_http(&self, url: Url) -> Result<Bytes, FetchError> {
        let shown = url.to_string();
        if let Some(ip) = literal_ip(&url)
            && is_internal(ip)
            && !self.allow.allows_ip(ip)
        {
            return Err(FetchError::Refused {
                url: shown,
                reason: format!("{ip} is an internal address"),
            });
        }
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| classify(&shown, e))?;
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
        let mut body = Vec::with_capacity(resp.content_length().unwrap_or(0) as usize);
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| classify(&shown, e))?;
            if body.len() + chunk.len() > cap {
                return Err(FetchError::TooLarge { url: shown, cap });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(body))
    }
}

fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

fn classify(url: &str, e: reqwest::Error) -> FetchError {
    if e.is_timeout() {
        return FetchError::Timeout(url.to_string());
    }
    // Walk the source chain: the resolver's refusal arrives wrapped.
    let mut reason = e.to_string();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
    while let Some(s) = src {
        let text = s.to_string();
        if text.contains("internal addresses") {
            return FetchError::Refused {
                url: url.to_string(),
                reason: text,
            };
        }
        reason = format!("{reason}: {text}");
        src = s.source();
    }
    if e.is_redirect() {
        return FetchError::Refused {
            url: url.to_string(),
            reason,
        };
    }
    FetchError::Network {
        url: url.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetcher(base: Option<&str>, allow: &str) -> ImageFetcher {
        ImageFetcher::new(FetchConfig {
            base_url: base.map(|b| Url::parse(b).unwrap()),
            allow: AllowList::parse(allow.split(',')),
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
            max_bytes: 1024,
        })
        .unwrap()
    }

    #[test]
    fn classifies_internal_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "151.101.1.1", "2a00:1450:4001::1"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn keys_resolve_below_the_base_only() {
        let f = fetcher(Some("https://img.example.com/products/"), "");
        assert_eq!(
            f.resolve(&ImageRef::Key("a/b.jpg".into()))
                .unwrap()
                .as_str(),
            "https://img.example.com/products/a/b.jpg"
        );
        assert!(f.resolve(&ImageRef::Key("../secret".into())).is_err());
        assert!(f.resolve(&ImageRef::Key("/etc/passwd".into())).is_err());
        assert!(
            f.resolve(&ImageRef::Url("file:///etc/passwd".into()))
                .is_err()
        );
        assert!(matches!(
            fetcher(None, "").resolve(&ImageRef::Key("x.jpg".into())),
            Err(FetchError::NoBaseUrl(_))
        ));
    }

    #[tokio::test]
    async fn refuses_internal_targets_unless_allowed() {
        let f = fetcher(None, "");
        let err = f
            .fetch(&ImageRef::Url(
                "http://169.254.169.254/latest/meta-data".into(),
            ))
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::Refused { .. }), "{err}");
        let err = f
            .fetch(&ImageRef::Url("http://localhost:9/x.jpg".into()))
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::Refused { .. }), "{err}");
        // Allow-listed: the request is made (and fails to connect instead).
        let f = fetcher(None, "127.0.0.0/8");
        let err = f
            .fetch(&ImageRef::Url("http://127.0.0.1:9/x.jpg".into()))
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::Network { .. }), "{err}");
    }
}
