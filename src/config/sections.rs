//! The sections of [`super::Settings`], one per capability. Each is plain
//! data with its defaults; the capability that uses a section builds its
//! client from it (`ImageFetcher::from_settings`, `QdrantIndex::open`,
//! `db::connect`, …), so this module depends on nothing else in the crate.

use std::{path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

use super::{
    Secret,
    values::{RetrySchedule, list},
};

/// `[server]`: the HTTP edge.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address the HTTP server listens on. Port 0 picks a free port (tests).
    pub bind: String,
    /// Largest accepted webhook body, in bytes (413 above).
    pub max_body_bytes: usize,
    /// Bearer token of the admin event API; unset disables that API (503).
    pub admin_token: Option<Secret>,
    /// A request that takes longer than this is answered 408.
    pub request_timeout_secs: u64,
    /// On shutdown, how long open requests may take to finish.
    pub shutdown_grace_secs: u64,
    /// How long a client may take to send a request's head (and a kept-alive
    /// connection may stay idle); the connection is closed after it.
    pub header_read_timeout_secs: u64,
    /// Longest pause while a request body is read; 408 after it.
    pub body_read_timeout_secs: u64,
    /// Most connections open at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Search uploads (search by image) in flight at once; more are
    /// answered 429. 0 = no bound.
    pub max_search_uploads: usize,
    /// Per-IP rate of webhook requests, per second; 0 = no limit.
    pub webhook_rate_per_sec: u32,
    /// Per-IP burst of webhook requests; 0 = the rate.
    pub webhook_rate_burst: u32,
    /// Per-IP rate of searches (by image and by product), per second;
    /// 0 = no limit.
    pub search_rate_per_sec: u32,
    /// Per-IP burst of searches; 0 = the rate.
    pub search_rate_burst: u32,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: "0.0.0.0:8008".into(),
            max_body_bytes: 1024 * 1024,
            admin_token: None,
            request_timeout_secs: 60,
            shutdown_grace_secs: 10,
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 15,
            max_connections: 1024,
            max_search_uploads: 8,
            webhook_rate_per_sec: 0,
            webhook_rate_burst: 0,
            search_rate_per_sec: 0,
            search_rate_burst: 0,
        }
    }
}

impl ServerSettings {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs)
    }
    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_secs(self.body_read_timeout_secs)
    }
}

/// `[database]`: the metadata database (inbox and products).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://…` or `postgres://…`; unset means `sqlite://<data_dir>/vitrine.db`.
    /// A secret: a PostgreSQL URL usually carries a password.
    pub url: Option<Secret>,
}

/// `[bakai]`: the BakaiMarket provider (signed product events).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BakaiSettings {
    /// Whether its routes and handler are mounted.
    pub enabled: bool,
    /// HMAC keys, several to allow rotation; none means its webhook
    /// answers 503 (fail closed). A comma-separated string or a list.
    #[serde(deserialize_with = "list::secrets")]
    pub webhook_secret: Vec<Secret>,
    /// How far into the future an event's timestamp may be; later ones are
    /// refused with 422. An event's timestamp becomes its product's clock,
    /// and older events are skipped as stale, so a far-future date would
    /// freeze the product for good.
    ///
    /// 300 s: servers kept by NTP agree within milliseconds, so five minutes
    /// covers a sender whose clock has drifted or not synced yet (the same
    /// tolerance as Kerberos and common webhook replay windows), while a
    /// wrong date can hide the product's later changes for five minutes at
    /// most.
    pub max_clock_skew_secs: u64,
}

impl Default for BakaiSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            webhook_secret: Vec::new(),
            max_clock_skew_secs: 300,
        }
    }
}

impl BakaiSettings {
    pub fn max_clock_skew(&self) -> Duration {
        Duration::from_secs(self.max_clock_skew_secs)
    }
}

/// `[fetch]`: downloading product images.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FetchSettings {
    /// Base that `image_key` resolves against: `http(s)://…/` or `file:///…/`.
    pub image_base_url: Option<url::Url>,
    /// Destinations that the SSRF guard lets through although they are
    /// internal: `host`, `host:port`, an IP, `ip:port`, `[v6]:port` or a
    /// CIDR; an entry with a port allows that port only. A comma-separated
    /// string or a list.
    #[serde(deserialize_with = "list::strings")]
    pub allow: Vec<String>,
    /// HTTP proxy for image downloads (`http://host:port`), used only
    /// when set here: `HTTP_PROXY` and the like are ignored. The SSRF rules
    /// still apply to the target. A secret: it may carry a password.
    pub proxy: Option<Secret>,
    pub connect_timeout_ms: u64,
    pub timeout_ms: u64,
    /// Byte cap on a downloaded image and on a search upload.
    pub max_bytes: usize,
    /// How often the image source (the base URL's host, the S3 bucket, the
    /// local folder) is probed for `/api/v1/health`; 0 = never.
    pub probe_secs: u64,
}

impl Default for FetchSettings {
    fn default() -> Self {
        Self {
            image_base_url: None,
            allow: Vec::new(),
            proxy: None,
            connect_timeout_ms: 5_000,
            timeout_ms: 30_000,
            max_bytes: 20 * 1024 * 1024,
            probe_secs: 10,
        }
    }
}

impl FetchSettings {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// `[s3]`: present when images are objects in an S3 bucket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Settings {
    /// `image_key` is an object key in this bucket.
    pub bucket: String,
    /// S3-compatible endpoint (MinIO, …); unset means AWS itself.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default = "default_region")]
    pub region: String,
}

fn default_region() -> String {
    "us-east-1".into()
}

/// `[qdrant]`: present when vectors live in Qdrant instead of the embedded
/// index.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QdrantSettings {
    /// gRPC URL, e.g. `http://qdrant:6334`.
    pub url: String,
    /// REST URL; unset means the gRPC port minus one (6333).
    #[serde(default)]
    pub rest_url: Option<String>,
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// Alias naming the live collection, also the collections' name prefix.
    #[serde(default = "default_alias")]
    pub alias: String,
    /// Shards of a new collection (spread over a Qdrant cluster's nodes).
    #[serde(default = "one")]
    pub shards: u32,
    /// Copies of each shard in a Qdrant cluster.
    #[serde(default = "one")]
    pub replication: u32,
}

fn default_alias() -> String {
    "vitrine".into()
}

fn one() -> u32 {
    1
}

/// `[embed]`: the model and the pool it runs in.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbedSettings {
    /// Folder holding `manifest.json` and the model file it names.
    pub model_dir: PathBuf,
    /// Path of `libonnxruntime.so`; unset means "look where
    /// `scripts/fetch-assets.sh` puts it".
    pub ort_dylib_path: Option<PathBuf>,
    /// Size of the rayon pool that decodes, resizes and runs the model.
    /// 0 means one thread per CPU core.
    pub threads: usize,
    /// Most images embedded in one model call.
    pub batch: usize,
    /// Pixel cap (width × height) checked before decoding: decompression bombs.
    pub max_pixels: u64,
    /// Bytes that all image decodes in flight may hold together (decoder
    /// buffers and 8-bit copies, computed per image from its bit depth,
    /// channels and canvas). A decode waits until its share is free; an
    /// image needing more than all of it is refused.
    pub decode_budget_bytes: u64,
}

impl Default for EmbedSettings {
    fn default() -> Self {
        Self {
            model_dir: "./models/effnet-lite0".into(),
            ort_dylib_path: None,
            threads: 0,
            batch: 16,
            max_pixels: 40_000_000,
            // The largest image `max_pixels` lets through, a 40 MP RGBA16
            // PNG, needs 12 bytes a pixel (480 MB) at its peak: it fits
            // alone, and a dozen 12 MP photos fit together.
            decode_budget_bytes: 512 << 20,
        }
    }
}

impl EmbedSettings {
    /// The pool size, with 0 resolved to the number of cores.
    pub fn threads(&self) -> usize {
        resolve_threads(self.threads)
    }
}

/// `[index]`: the embedded vector index.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndexSettings {
    /// Threads that run index scans. 0 means one per CPU core (resolved by
    /// the index itself).
    pub search_threads: usize,
}

fn resolve_threads(n: usize) -> usize {
    if n == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        n
    }
}

/// `[inbox]`: keeping stored events.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InboxSettings {
    /// Completed events older than this many days are deleted in the
    /// background; failed and unfinished ones are kept. 0 = keep forever.
    pub retention_days: u64,
    /// How often the purge runs.
    pub purge_interval_secs: u64,
}

impl Default for InboxSettings {
    fn default() -> Self {
        Self {
            retention_days: 30,
            purge_interval_secs: 3600,
        }
    }
}

impl InboxSettings {
    /// `None` when retention is off.
    pub fn retention(&self) -> Option<Duration> {
        (self.retention_days > 0).then(|| Duration::from_secs(self.retention_days * 86_400))
    }
    pub fn purge_interval(&self) -> Duration {
        Duration::from_secs(self.purge_interval_secs.max(1))
    }
}

/// `[worker]`: processing stored events.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerSettings {
    /// How many events one instance processes at once (I/O bound: fetches).
    pub concurrency: usize,
    /// How long a claimed event stays with its worker before another may
    /// take it over (the worker is presumed dead). A heartbeat renews it
    /// every third of this while the event is handled, so it need not
    /// outlast a slow download, only a missed renewal or two; at least 3.
    pub lease_secs: u64,
    /// Idle poll period; new webhooks wake the workers immediately.
    pub poll_interval_ms: u64,
    /// Backoff between tries, e.g. `5m,10m,20m,40m,60m`; the last entry
    /// repeats if `max_retries` is longer than the schedule.
    pub retry_schedule: RetrySchedule,
    /// Retries after the first try; the event is `failed` after that.
    pub max_retries: u32,
    /// On shutdown, how long in-flight events may take to finish before the
    /// rest are handed back to the inbox.
    pub shutdown_grace_secs: u64,
    /// Once that grace is over, how long one attempt still gets before it is
    /// aborted and released.
    pub abort_grace_secs: u64,
    /// The longest one try of an event may take before it is stopped and
    /// fails as transient (then retried on the schedule). 0 means the fetch
    /// timeout plus [`HANDLER_SLACK`]: a try is one download plus embedding
    /// and writes, and the download is the part that can stall.
    pub handler_timeout_secs: u64,
}

/// What a derived handler deadline adds to the fetch timeout: time to
/// queue for the embedding pool under load, embed, and write the index and
/// the product row.
pub const HANDLER_SLACK: Duration = Duration::from_secs(60);

/// The shortest lease: one heartbeat per second at the most, and two of
/// them inside each lease.
pub const MIN_LEASE_SECS: u64 = 3;

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            concurrency: 16,
            lease_secs: 120,
            poll_interval_ms: 500,
            retry_schedule: RetrySchedule::default(),
            max_retries: 3,
            shutdown_grace_secs: 10,
            abort_grace_secs: 5,
            handler_timeout_secs: 0,
        }
    }
}

impl WorkerSettings {
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs)
    }
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
    pub fn abort_grace(&self) -> Duration {
        Duration::from_secs(self.abort_grace_secs)
    }
    /// The handler deadline, with 0 resolved against the fetch timeout.
    pub fn handler_timeout(&self, fetch: &FetchSettings) -> Duration {
        match self.handler_timeout_secs {
            0 => fetch.timeout() + HANDLER_SLACK,
            n => Duration::from_secs(n),
        }
    }
}
