//! One typed `Settings` for the whole service.
//!
//! Layers, lowest first: compiled-in defaults < `vitrine.toml` (or the file
//! named by `VITRINE_CONFIG`) < `.env` < the process environment < CLI flags.
//! Environment names are `VITRINE_<FIELD>` (for example `VITRINE_BIND`), plus
//! the conventional unprefixed names `WEBHOOK_SECRET`, `IMAGE_BASE_URL`,
//! `DATABASE_URL` and `ORT_DYLIB_PATH`.
//!
//! Secrets live in [`Secret`], whose `Debug` never prints the value, so a
//! `tracing::debug!(?settings)` cannot leak them into logs.

use std::{fmt, path::PathBuf, time::Duration};

use figment::{
    Figment,
    providers::{Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};

/// A string that must never reach a log line.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            f.write_str("Secret(<unset>)")
        } else {
            f.write_str("Secret(<redacted>)")
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Address the HTTP server listens on. Port 0 picks a free port (tests).
    pub bind: String,
    /// Where the SQLite database and the embedded vector index live.
    pub data_dir: PathBuf,
    /// `sqlite://…`; empty means `sqlite://<data_dir>/vitrine.db`.
    pub database_url: String,
    /// HMAC keys for BakaiMarket webhooks, comma-separated to allow rotation.
    /// Empty means webhooks are refused with 503 (fail closed).
    pub webhook_secret: Secret,
    /// Bearer token for the admin event API; empty disables that API.
    pub admin_token: Secret,
    /// Largest accepted webhook body, in bytes.
    pub max_body_bytes: usize,

    /// Base that `image_key` resolves against: `http(s)://…/` or `file:///…/`.
    pub image_base_url: String,
    /// When set, `image_key` is an object key in this S3 bucket.
    pub s3_bucket: String,
    /// S3-compatible endpoint (MinIO, …); empty means AWS itself.
    pub s3_endpoint: String,
    pub s3_region: String,
    /// Qdrant gRPC URL (`http://host:6334`); empty keeps the embedded index.
    pub qdrant_url: String,
    /// Qdrant REST URL; empty means the gRPC port minus one (6333).
    pub qdrant_rest_url: String,
    pub qdrant_api_key: Secret,
    /// Alias naming the live collection, also the collections' name prefix.
    pub qdrant_alias: String,
    /// Shards of a new collection (spread over a Qdrant cluster's nodes).
    pub qdrant_shards: u32,
    /// Copies of each shard in a Qdrant cluster.
    pub qdrant_replication: u32,
    /// Hosts, IPs or CIDRs that the SSRF guard lets through even though they
    /// are loopback/private/link-local, comma-separated.
    pub fetch_allow: String,
    pub fetch_connect_timeout_ms: u64,
    pub fetch_timeout_ms: u64,
    /// Byte cap on a downloaded image.
    pub fetch_max_bytes: usize,
    /// Pixel cap (width × height) checked before decoding: decompression bombs.
    pub max_pixels: u64,

    /// Folder holding `manifest.json` and the model file it names.
    pub model_dir: PathBuf,
    /// Path of `libonnxruntime.so`; empty means "look where
    /// `scripts/fetch-assets.sh` puts it".
    pub ort_dylib_path: String,
    /// Size of the rayon pool that decodes, resizes and runs the model.
    /// 0 means one thread per CPU core.
    pub embed_threads: usize,
    /// Most images embedded in one model call.
    pub embed_batch: usize,

    /// How many events one instance processes at once (I/O bound: fetches).
    pub worker_concurrency: usize,
    /// How long a claimed event stays with its worker before another may take
    /// it over (the worker is presumed dead).
    pub lease_secs: u64,
    /// Idle poll period of the workers; new webhooks wake them immediately.
    pub poll_interval_ms: u64,
    /// Backoff schedule between tries, e.g. `5m,10m,20m,40m,60m`. The last
    /// entry repeats if `max_retries` is longer than the schedule.
    pub retry_schedule: String,
    /// Retries after the first try; the event is `failed` after that.
    pub max_retries: u32,
    /// Log format: `pretty` or `json`.
    pub log_format: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            bind: "0.0.0.0:8008".into(),
            data_dir: "./data".into(),
            database_url: String::new(),
            webhook_secret: Secret::default(),
            admin_token: Secret::default(),
            max_body_bytes: 1024 * 1024,
            image_base_url: String::new(),
            s3_bucket: String::new(),
            s3_endpoint: String::new(),
            s3_region: "us-east-1".into(),
            qdrant_url: String::new(),
            qdrant_rest_url: String::new(),
            qdrant_api_key: Secret::default(),
            qdrant_alias: "vitrine".into(),
            qdrant_shards: 1,
            qdrant_replication: 1,
            fetch_allow: String::new(),
            fetch_connect_timeout_ms: 5_000,
            fetch_timeout_ms: 30_000,
            fetch_max_bytes: 20 * 1024 * 1024,
            max_pixels: 40_000_000,
            model_dir: "./models/effnet-lite0".into(),
            ort_dylib_path: String::new(),
            embed_threads: 0,
            embed_batch: 16,
            worker_concurrency: 16,
            lease_secs: 120,
            poll_interval_ms: 500,
            retry_schedule: "5m,10m,20m,40m,60m".into(),
            max_retries: 3,
            log_format: "pretty".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(Box<figment::Error>),
    #[error("configuration: {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

/// Unprefixed variable names that deployments conventionally use.
const RAW_ENV: &[&str] = &[
    "webhook_secret",
    "image_base_url",
    "database_url",
    "ort_dylib_path",
    "s3_bucket",
    "s3_endpoint",
    "s3_region",
    "qdrant_url",
    "qdrant_api_key",
];

/// Environment variables as raw strings keyed by field name. figment's
/// `Env` provider would parse `12345` into a number and then refuse it for a
/// string field, so values are passed through untouched instead.
fn env_overrides() -> std::collections::BTreeMap<String, String> {
    let fields: Vec<String> = match figment::value::Value::serialize(Settings::default()) {
        Ok(figment::value::Value::Dict(_, d)) => d.keys().cloned().collect(),
        _ => Vec::new(),
    };
    let mut out = std::collections::BTreeMap::new();
    for field in fields {
        let prefixed = format!("VITRINE_{}", field.to_ascii_uppercase());
        let raw = RAW_ENV
            .contains(&field.as_str())
            .then(|| std::env::var(field.to_ascii_uppercase()).ok())
            .flatten();
        // The prefixed name wins over the conventional one.
        if let Some(v) = std::env::var(&prefixed).ok().or(raw) {
            out.insert(field, v.trim().to_string());
        }
    }
    out
}

impl Settings {
    /// Loads defaults < config file < `.env` < environment.
    pub fn load() -> Result<Self, ConfigError> {
        // `.env` only fills variables that the real environment lacks.
        let _ = dotenvy::dotenv();
        let file = std::env::var("VITRINE_CONFIG").unwrap_or_else(|_| "vitrine.toml".into());
        let settings: Settings = Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::file(file))
            .merge(Serialized::defaults(env_overrides()))
            // Lossy: "5" becomes 5 for numeric fields, while string fields
            // keep their text even when it looks like a number
            // (`WEBHOOK_SECRET=12345`, `VITRINE_RETRY_SCHEDULE=60`).
            .extract_lossy()
            .map_err(|e| ConfigError::Load(Box::new(e)))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Settings for tests and embedding: defaults with nothing read from the
    /// environment.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            ..Self::default()
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.retry_delays()?;
        if self.embed_batch == 0 {
            return Err(invalid("embed_batch", "must be at least 1"));
        }
        if self.worker_concurrency == 0 {
            return Err(invalid("worker_concurrency", "must be at least 1"));
        }
        Ok(())
    }

    pub fn database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("vitrine.db").display())
        } else {
            self.database_url.clone()
        }
    }

    /// The configured webhook keys; several allow rotation without downtime.
    pub fn webhook_secrets(&self) -> Vec<Secret> {
        split_list(self.webhook_secret.expose())
            .map(Secret::new)
            .collect()
    }

    pub fn retry_delays(&self) -> Result<Vec<Duration>, ConfigError> {
        let delays = split_list(&self.retry_schedule)
            .map(parse_duration)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|reason| invalid("retry_schedule", reason))?;
        if delays.is_empty() {
            return Err(invalid("retry_schedule", "needs at least one delay"));
        }
        Ok(delays)
    }

    pub fn embed_threads(&self) -> usize {
        if self.embed_threads == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            self.embed_threads
        }
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// Splits a comma-separated setting, dropping blanks.
pub fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|p| !p.is_empty())
}

/// Parses `250ms`, `5s`, `10m`, `1h`; a bare number means seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 250ms, 5s, 10m or 1h"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("`{s}`: unknown unit `{unit}` (use ms, s, m or h)")),
    };
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("m").is_err());
    }

    #[test]
    fn default_retry_schedule_is_the_documented_one() {
        let mins: Vec<u64> = Settings::default()
            .retry_delays()
            .unwrap()
            .iter()
            .map(|d| d.as_secs() / 60)
            .collect();
        assert_eq!(mins, [5, 10, 20, 40, 60]);
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Settings {
            webhook_secret: Secret::new("hunter2,old"),
            ..Settings::default()
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(s.webhook_secrets().len(), 2);
    }

    #[test]
    // `Jail`'s closure signature is figment's, not ours.
    #[allow(clippy::result_large_err)]
    fn environment_overrides_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("VITRINE_BIND", "127.0.0.1:9999");
            jail.set_env("WEBHOOK_SECRET", "k1");
            jail.set_env("VITRINE_MAX_RETRIES", "5");
            jail.set_env("VITRINE_ADMIN_TOKEN", "0070");
            jail.set_env("VITRINE_RETRY_SCHEDULE", "60");
            jail.set_env("VITRINE_EMBED_THREADS", "3");
            let s = Settings::load().expect("loads");
            // Numeric-looking text stays text.
            assert_eq!(s.admin_token.expose(), "0070");
            assert_eq!(s.retry_delays().unwrap(), vec![Duration::from_secs(60)]);
            assert_eq!(s.embed_threads, 3);
            assert_eq!(s.bind, "127.0.0.1:9999");
            assert_eq!(s.webhook_secret.expose(), "k1");
            assert_eq!(s.max_retries, 5);
            Ok(())
        });
    }
}
