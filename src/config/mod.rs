//! One typed `Settings` tree for the whole service, in sections.
//!
//! Layers, lowest first: compiled-in defaults < `vitrine.toml` (or the file
//! named by `VITRINE_CONFIG`) < `.env` < the process environment < CLI flags
//! (applied by `main`). `vitrine.example.toml` lists every key with its
//! default. Environment names are listed in [`ENV`]: `VITRINE_<NAME>`, plus
//! the conventional unprefixed names (`WEBHOOK_SECRET`, `IMAGE_BASE_URL`,
//! `DATABASE_URL`, `ORT_DYLIB_PATH`, `S3_*`, `QDRANT_URL`, `QDRANT_API_KEY`).
//! An environment variable that is set but empty counts as unset.
//!
//! Optional parts are `Option`s, not empty strings: `[s3]` exists when a
//! bucket is named, `[qdrant]` when a URL is. Secrets live in [`Secret`],
//! whose `Debug` never prints the value.
//!
//! This module depends on nothing else in the crate: each capability builds
//! its client from its own section.

mod alerts;
mod channels;
mod crm;
mod duplicates;
mod replay;
mod secret;
mod sections;
mod values;

use std::path::PathBuf;

use figment::{
    Figment,
    providers::{Format, Serialized, Toml},
    value::{Dict, Value},
};
use serde::{Deserialize, Serialize};

pub use alerts::AlertsSettings;
pub use channels::{
    ChannelsSettings, LlmSettings, SECRET_KEY_BYTES, TelegramMode, TelegramSettings,
    WhatsappSettings,
};
pub use crm::CrmSettings;
pub use duplicates::DuplicatesSettings;
pub use replay::ReplaySettings;
pub use secret::{Secret, redact_url};
pub use sections::{
    BakaiSettings, DatabaseSettings, EmbedSettings, FetchSettings, HANDLER_SLACK, InboxSettings,
    IndexSettings, MIN_LEASE_SECS, QdrantSettings, S3Settings, ServerSettings, WorkerSettings,
};
pub use values::{LogFormat, RetrySchedule, parse_duration, split_list};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Where the SQLite database and the embedded vector index live.
    pub data_dir: PathBuf,
    /// Log format: `pretty` or `json`.
    pub log_format: LogFormat,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub fetch: FetchSettings,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Settings>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qdrant: Option<QdrantSettings>,
    pub embed: EmbedSettings,
    pub index: IndexSettings,
    pub duplicates: DuplicatesSettings,
    pub worker: WorkerSettings,
    pub inbox: InboxSettings,
    pub replay: ReplaySettings,
    pub alerts: AlertsSettings,
    /// Providers: one section each.
    pub bakai: BakaiSettings,
    pub crm: CrmSettings,
    pub channels: ChannelsSettings,
    pub telegram: TelegramSettings,
    pub whatsapp: WhatsappSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: "./data".into(),
            log_format: LogFormat::Pretty,
            server: ServerSettings::default(),
            database: DatabaseSettings::default(),
            fetch: FetchSettings::default(),
            s3: None,
            qdrant: None,
            embed: EmbedSettings::default(),
            index: IndexSettings::default(),
            duplicates: DuplicatesSettings::default(),
            worker: WorkerSettings::default(),
            inbox: InboxSettings::default(),
            replay: ReplaySettings::default(),
            alerts: AlertsSettings::default(),
            bakai: BakaiSettings::default(),
            crm: CrmSettings::default(),
            channels: ChannelsSettings::default(),
            telegram: TelegramSettings::default(),
            whatsapp: WhatsappSettings::default(),
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

/// Every environment variable Vitrine reads: the key it sets, its
/// `VITRINE_` name and, for some, the conventional unprefixed name
/// (the `VITRINE_` one wins when both are set).
pub const ENV: &[(&str, &str, Option<&str>)] = &[
    ("data_dir", "VITRINE_DATA_DIR", None),
    ("log_format", "VITRINE_LOG_FORMAT", None),
    ("server.bind", "VITRINE_BIND", None),
    ("server.max_body_bytes", "VITRINE_MAX_BODY_BYTES", None),
    ("server.admin_token", "VITRINE_ADMIN_TOKEN", None),
    (
        "server.request_timeout_secs",
        "VITRINE_REQUEST_TIMEOUT_SECS",
        None,
    ),
    (
        "server.shutdown_grace_secs",
        "VITRINE_SHUTDOWN_GRACE_SECS",
        None,
    ),
    (
        "server.header_read_timeout_secs",
        "VITRINE_HEADER_READ_TIMEOUT_SECS",
        None,
    ),
    (
        "server.body_read_timeout_secs",
        "VITRINE_BODY_READ_TIMEOUT_SECS",
        None,
    ),
    ("server.max_connections", "VITRINE_MAX_CONNECTIONS", None),
    (
        "server.max_search_uploads",
        "VITRINE_MAX_SEARCH_UPLOADS",
        None,
    ),
    (
        "server.webhook_rate_per_sec",
        "VITRINE_WEBHOOK_RATE_PER_SEC",
        None,
    ),
    (
        "server.webhook_rate_burst",
        "VITRINE_WEBHOOK_RATE_BURST",
        None,
    ),
    (
        "server.search_rate_per_sec",
        "VITRINE_SEARCH_RATE_PER_SEC",
        None,
    ),
    (
        "server.search_rate_burst",
        "VITRINE_SEARCH_RATE_BURST",
        None,
    ),
    ("database.url", "VITRINE_DATABASE_URL", Some("DATABASE_URL")),
    ("bakai.enabled", "VITRINE_BAKAI_ENABLED", None),
    (
        "bakai.webhook_secret",
        "VITRINE_WEBHOOK_SECRET",
        Some("WEBHOOK_SECRET"),
    ),
    (
        "bakai.max_clock_skew_secs",
        "VITRINE_MAX_CLOCK_SKEW_SECS",
        None,
    ),
    (
        "fetch.image_base_url",
        "VITRINE_IMAGE_BASE_URL",
        Some("IMAGE_BASE_URL"),
    ),
    ("fetch.allow", "VITRINE_FETCH_ALLOW", None),
    ("fetch.proxy", "VITRINE_FETCH_PROXY", None),
    (
        "fetch.connect_timeout_ms",
        "VITRINE_FETCH_CONNECT_TIMEOUT_MS",
        None,
    ),
    ("fetch.timeout_ms", "VITRINE_FETCH_TIMEOUT_MS", None),
    ("fetch.max_bytes", "VITRINE_FETCH_MAX_BYTES", None),
    ("fetch.probe_secs", "VITRINE_FETCH_PROBE_SECS", None),
    ("s3.bucket", "VITRINE_S3_BUCKET", Some("S3_BUCKET")),
    ("s3.endpoint", "VITRINE_S3_ENDPOINT", Some("S3_ENDPOINT")),
    ("s3.region", "VITRINE_S3_REGION", Some("S3_REGION")),
    ("qdrant.url", "VITRINE_QDRANT_URL", Some("QDRANT_URL")),
    ("qdrant.rest_url", "VITRINE_QDRANT_REST_URL", None),
    (
        "qdrant.api_key",
        "VITRINE_QDRANT_API_KEY",
        Some("QDRANT_API_KEY"),
    ),
    ("qdrant.alias", "VITRINE_QDRANT_ALIAS", None),
    ("qdrant.shards", "VITRINE_QDRANT_SHARDS", None),
    ("qdrant.replication", "VITRINE_QDRANT_REPLICATION", None),
    ("embed.model_dir", "VITRINE_MODEL_DIR", None),
    (
        "embed.ort_dylib_path",
        "VITRINE_ORT_DYLIB_PATH",
        Some("ORT_DYLIB_PATH"),
    ),
    ("embed.threads", "VITRINE_EMBED_THREADS", None),
    ("embed.batch", "VITRINE_EMBED_BATCH", None),
    ("embed.max_pixels", "VITRINE_MAX_PIXELS", None),
    (
        "embed.decode_budget_bytes",
        "VITRINE_DECODE_BUDGET_BYTES",
        None,
    ),
    ("index.search_threads", "VITRINE_INDEX_SEARCH_THREADS", None),
    ("worker.concurrency", "VITRINE_WORKER_CONCURRENCY", None),
    ("worker.lease_secs", "VITRINE_LEASE_SECS", None),
    ("worker.poll_interval_ms", "VITRINE_POLL_INTERVAL_MS", None),
    ("worker.retry_schedule", "VITRINE_RETRY_SCHEDULE", None),
    ("worker.max_retries", "VITRINE_MAX_RETRIES", None),
    (
        "worker.shutdown_grace_secs",
        "VITRINE_WORKER_SHUTDOWN_GRACE_SECS",
        None,
    ),
    (
        "worker.abort_grace_secs",
        "VITRINE_WORKER_ABORT_GRACE_SECS",
        None,
    ),
    (
        "worker.handler_timeout_secs",
        "VITRINE_HANDLER_TIMEOUT_SECS",
        None,
    ),
    ("inbox.retention_days", "VITRINE_INBOX_RETENTION_DAYS", None),
    (
        "inbox.purge_interval_secs",
        "VITRINE_INBOX_PURGE_INTERVAL_SECS",
        None,
    ),
    ("crm.enabled", "VITRINE_CRM_ENABLED", None),
    (
        "crm.kommo_webhook_secret",
        "VITRINE_KOMMO_WEBHOOK_SECRET",
        Some("KOMMO_WEBHOOK_SECRET"),
    ),
    (
        "crm.kommo_signature_secret",
        "VITRINE_KOMMO_SIGNATURE_SECRET",
        None,
    ),
    (
        "crm.kommo_api_base_url",
        "VITRINE_KOMMO_API_BASE_URL",
        Some("KOMMO_API_BASE_URL"),
    ),
    (
        "crm.kommo_api_token",
        "VITRINE_KOMMO_API_TOKEN",
        Some("KOMMO_API_TOKEN"),
    ),
    ("crm.kommo_rate_per_sec", "VITRINE_KOMMO_RATE_PER_SEC", None),
    (
        "crm.telegram_api_base_url",
        "VITRINE_TELEGRAM_API_BASE_URL",
        Some("TELEGRAM_API_BASE_URL"),
    ),
    (
        "crm.telegram_bot_token",
        "VITRINE_CRM_TELEGRAM_BOT_TOKEN",
        None,
    ),
    (
        "crm.action_timeout_ms",
        "VITRINE_CRM_ACTION_TIMEOUT_MS",
        None,
    ),
    ("channels.results", "VITRINE_CHANNEL_RESULTS", None),
    ("channels.product_url", "VITRINE_PRODUCT_URL", None),
    ("channels.secret_key", "VITRINE_SECRET_KEY", None),
    ("channels.llm.url", "VITRINE_LLM_URL", None),
    ("channels.llm.key", "VITRINE_LLM_KEY", None),
    ("channels.llm.model", "VITRINE_LLM_MODEL", None),
    ("channels.llm.timeout_ms", "VITRINE_LLM_TIMEOUT_MS", None),
    ("telegram.enabled", "VITRINE_TELEGRAM_ENABLED", None),
    (
        "telegram.bot_token",
        "VITRINE_TELEGRAM_BOT_TOKEN",
        Some("TELEGRAM_BOT_TOKEN"),
    ),
    (
        "telegram.webhook_secret",
        "VITRINE_TELEGRAM_WEBHOOK_SECRET",
        Some("TELEGRAM_WEBHOOK_SECRET"),
    ),
    (
        "telegram.api_base_url",
        "VITRINE_TELEGRAM_API_BASE_URL",
        Some("TELEGRAM_API_BASE_URL"),
    ),
    ("telegram.mode", "VITRINE_TELEGRAM_MODE", None),
    (
        "telegram.poll_timeout_secs",
        "VITRINE_TELEGRAM_POLL_TIMEOUT_SECS",
        None,
    ),
    (
        "telegram.webhook_info_secs",
        "VITRINE_TELEGRAM_WEBHOOK_INFO_SECS",
        None,
    ),
    (
        "telegram.pending_updates_threshold",
        "VITRINE_TELEGRAM_PENDING_UPDATES_THRESHOLD",
        None,
    ),
    (
        "telegram.send_per_chat_per_sec",
        "VITRINE_TELEGRAM_SEND_PER_CHAT_PER_SEC",
        None,
    ),
    (
        "telegram.send_per_bot_per_sec",
        "VITRINE_TELEGRAM_SEND_PER_BOT_PER_SEC",
        None,
    ),
    ("whatsapp.enabled", "VITRINE_WHATSAPP_ENABLED", None),
    (
        "whatsapp.app_secret",
        "VITRINE_WHATSAPP_APP_SECRET",
        Some("WHATSAPP_APP_SECRET"),
    ),
    (
        "whatsapp.verify_token",
        "VITRINE_WHATSAPP_VERIFY_TOKEN",
        Some("WHATSAPP_VERIFY_TOKEN"),
    ),
    (
        "whatsapp.access_token",
        "VITRINE_WHATSAPP_ACCESS_TOKEN",
        Some("WHATSAPP_ACCESS_TOKEN"),
    ),
    (
        "whatsapp.phone_number_id",
        "VITRINE_WHATSAPP_PHONE_NUMBER_ID",
        Some("WHATSAPP_PHONE_NUMBER_ID"),
    ),
    (
        "whatsapp.graph_base_url",
        "VITRINE_WHATSAPP_GRAPH_BASE_URL",
        Some("WHATSAPP_GRAPH_BASE_URL"),
    ),
    (
        "whatsapp.send_per_number_per_sec",
        "VITRINE_WHATSAPP_SEND_PER_NUMBER_PER_SEC",
        None,
    ),
    ("duplicates.enabled", "VITRINE_DUPLICATES_ENABLED", None),
    ("duplicates.threshold", "VITRINE_DUPLICATES_THRESHOLD", None),
    (
        "duplicates.neighbours",
        "VITRINE_DUPLICATES_NEIGHBOURS",
        None,
    ),
    ("replay.max_events", "VITRINE_REPLAY_MAX_EVENTS", None),
    ("replay.batch_size", "VITRINE_REPLAY_BATCH_SIZE", None),
    (
        "replay.batch_pause_ms",
        "VITRINE_REPLAY_BATCH_PAUSE_MS",
        None,
    ),
    (
        "alerts.telegram_bot_token",
        "VITRINE_ALERTS_TELEGRAM_BOT_TOKEN",
        None,
    ),
    (
        "alerts.telegram_chat_id",
        "VITRINE_ALERTS_TELEGRAM_CHAT_ID",
        None,
    ),
    (
        "alerts.telegram_api_base_url",
        "VITRINE_ALERTS_TELEGRAM_API_BASE_URL",
        None,
    ),
    ("alerts.webhook_url", "VITRINE_ALERTS_WEBHOOK_URL", None),
    (
        "alerts.signing_secret",
        "VITRINE_ALERTS_SIGNING_SECRET",
        None,
    ),
    ("alerts.interval_secs", "VITRINE_ALERTS_INTERVAL_SECS", None),
    ("alerts.group_secs", "VITRINE_ALERTS_GROUP_SECS", None),
    ("alerts.timeout_ms", "VITRINE_ALERTS_TIMEOUT_MS", None),
];

/// The environment as a nested dictionary of raw strings. figment's `Env`
/// provider would parse `12345` into a number and then refuse it for a
/// string field, so values pass through untouched and the lossy extraction
/// turns them into numbers only where a number is wanted.
fn env_layer() -> Dict {
    let mut root = Dict::new();
    for (key, prefixed, raw) in ENV {
        let value = std::env::var(prefixed)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .or_else(|| raw.and_then(|r| std::env::var(r).ok()))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty());
        if let Some(v) = value {
            insert_path(&mut root, key, Value::from(v));
        }
    }
    root
}

fn insert_path(root: &mut Dict, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            root.insert(path.to_string(), value);
        }
        Some((section, rest)) => {
            let entry = root
                .entry(section.to_string())
                .or_insert_with(|| Value::from(Dict::new()));
            if let Value::Dict(_, d) = entry {
                insert_path(d, rest, value);
            }
        }
    }
}

impl Settings {
    /// Loads defaults < config file < `.env` < environment.
    pub fn load() -> Result<Self, ConfigError> {
        // `.env` only fills variables that the real environment lacks.
        let _ = dotenvy::dotenv();
        let file = std::env::var("VITRINE_CONFIG").unwrap_or_else(|_| "vitrine.toml".into());
        Self::from_figment(
            Figment::from(Serialized::defaults(Settings::default()))
                .merge(Toml::file(file))
                .merge(Serialized::defaults(env_layer())),
        )
    }

    fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let load = |e| ConfigError::Load(Box::new(e));
        let mut merged: Dict = figment.extract().map_err(load)?;
        // An optional section exists only with its defining key: S3_REGION
        // alone (as `scripts/dev-services.sh` exports it) does not turn S3 on.
        for (section, key) in [("s3", "bucket"), ("qdrant", "url")] {
            let has_key =
                matches!(merged.get(section), Some(Value::Dict(_, d)) if d.contains_key(key));
            if !has_key {
                merged.remove(section);
            }
        }
        let settings: Settings = Figment::from(Serialized::defaults(merged))
            // Lossy: "5" becomes 5 for numeric fields, while string fields
            // keep their text even when it looks like a number
            // (`WEBHOOK_SECRET=12345`, `VITRINE_RETRY_SCHEDULE=60`).
            .extract_lossy()
            .map_err(load)?;
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
        if self.embed.batch == 0 {
            return Err(invalid("embed.batch", "must be at least 1"));
        }
        if !(self.duplicates.threshold > 0.0 && self.duplicates.threshold <= 1.0) {
            return Err(invalid(
                "duplicates.threshold",
                "must be above 0 and at most 1",
            ));
        }
        if self.duplicates.neighbours == 0 || self.duplicates.neighbours > 100 {
            return Err(invalid("duplicates.neighbours", "must be 1 to 100"));
        }
        if self.replay.batch_size == 0 {
            return Err(invalid("replay.batch_size", "must be at least 1"));
        }
        if self.worker.concurrency == 0 {
            return Err(invalid("worker.concurrency", "must be at least 1"));
        }
        if self.server.max_connections == 0 {
            return Err(invalid("server.max_connections", "must be at least 1"));
        }
        // hyper's header timer and the body timeout treat zero as "expire
        // at once", which would refuse every request.
        if self.server.header_read_timeout_secs == 0 {
            return Err(invalid(
                "server.header_read_timeout_secs",
                "must be at least 1",
            ));
        }
        if self.server.body_read_timeout_secs == 0 {
            return Err(invalid(
                "server.body_read_timeout_secs",
                "must be at least 1",
            ));
        }
        // The lease is renewed every lease/3 while an event is handled, so
        // it must leave room for one heartbeat a second and a spare one.
        if self.worker.lease_secs < MIN_LEASE_SECS {
            return Err(invalid(
                "worker.lease_secs",
                format!(
                    "is {} s, but must be at least {MIN_LEASE_SECS} s: the lease is renewed \
                     every third of it, and a heartbeat interval under 1 s cannot be kept",
                    self.worker.lease_secs
                ),
            ));
        }
        // A deadline under the fetch timeout would cut short every download
        // the fetch settings allow.
        let fetch = self.fetch.timeout();
        if self.worker.handler_timeout_secs != 0 && self.worker.handler_timeout(&self.fetch) < fetch
        {
            return Err(invalid(
                "worker.handler_timeout_secs",
                format!(
                    "is {} s, shorter than fetch.timeout_ms ({} ms): every slow download would \
                     time out as a handler; raise it or set 0 (fetch timeout + {} s)",
                    self.worker.handler_timeout_secs,
                    self.fetch.timeout_ms,
                    HANDLER_SLACK.as_secs()
                ),
            ));
        }
        if let Some(u) = &self.fetch.image_base_url
            && u.cannot_be_a_base()
        {
            return Err(invalid("fetch.image_base_url", "must be a base URL"));
        }
        self.alerts
            .check()
            .map_err(|(field, reason)| invalid(field, reason))?;
        self.telegram
            .check()
            .map_err(|(field, reason)| invalid(field, reason))?;
        if self.whatsapp.send_per_number_per_sec == 0 {
            return Err(invalid(
                "whatsapp.send_per_number_per_sec",
                "must be at least 1",
            ));
        }
        // VITRINE_SECRET_KEY: refused at start-up, not at the first bot.
        self.channels
            .secret_key_bytes()
            .map_err(|reason| invalid("channels.secret_key", reason))?;
        Ok(())
    }

    /// The database URL, defaulting to SQLite in the data directory. Holds
    /// a password for PostgreSQL: show it only through [`redact_url`].
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(u) if !u.is_empty() => u.expose().to_string(),
            _ => format!("sqlite://{}", self.data_dir.join("vitrine.db").display()),
        }
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn default_retry_schedule_is_the_documented_one() {
        let mins: Vec<u64> = Settings::default()
            .worker
            .retry_schedule
            .delays()
            .iter()
            .map(|d| d.as_secs() / 60)
            .collect();
        assert_eq!(mins, [5, 10, 20, 40, 60]);
    }

    #[test]
    fn secrets_do_not_print() {
        let mut s = Settings::default();
        s.bakai.webhook_secret = vec![Secret::new("hunter2"), Secret::new("old")];
        s.database.url = Some(Secret::new("postgres://u:pw-123@db/x"));
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("pw-123"), "{shown}");
    }

    /// Blanks every variable Vitrine reads (empty counts as unset), so that
    /// what the test machine exports (`scripts/dev-services.sh` sets
    /// `DATABASE_URL`) does not reach these tests. `Jail` restores them.
    fn clean_env(jail: &mut figment::Jail) {
        for (_, prefixed, raw) in ENV {
            jail.set_env(prefixed, "");
            if let Some(r) = raw {
                jail.set_env(r, "");
            }
        }
        jail.set_env("VITRINE_CONFIG", "vitrine.toml");
    }

    #[test]
    // `Jail`'s closure signature is figment's, not ours.
    #[allow(clippy::result_large_err)]
    fn environment_overrides_file_overrides_defaults() {
        figment::Jail::expect_with(|jail| {
            clean_env(jail);
            jail.create_file(
                "vitrine.toml",
                "[server]\nbind = \"127.0.0.1:7000\"\n[worker]\nmax_retries = 9\nlease_secs = 30\n",
            )?;
            jail.set_env("VITRINE_BIND", "127.0.0.1:9999");
            jail.set_env("WEBHOOK_SECRET", "k1, k2");
            jail.set_env("VITRINE_MAX_RETRIES", "5");
            jail.set_env("VITRINE_ADMIN_TOKEN", "0070");
            jail.set_env("VITRINE_RETRY_SCHEDULE", "60");
            jail.set_env("VITRINE_EMBED_THREADS", "3");
            jail.set_env("IMAGE_BASE_URL", "");
            jail.set_env("S3_REGION", "eu-west-1");
            let s = Settings::load().expect("loads");
            // Numeric-looking text stays text.
            assert_eq!(s.server.admin_token.as_ref().unwrap().expose(), "0070");
            assert_eq!(s.worker.retry_schedule.delays(), [Duration::from_secs(60)]);
            assert_eq!(s.embed.threads, 3);
            assert_eq!(s.server.bind, "127.0.0.1:9999");
            assert_eq!(s.bakai.webhook_secret.len(), 2);
            assert_eq!(s.bakai.webhook_secret[1].expose(), "k2");
            assert_eq!(s.worker.max_retries, 5);
            // From the file, not overridden.
            assert_eq!(s.worker.lease_secs, 30);
            // Empty means unset; a region alone does not switch S3 on.
            assert!(s.fetch.image_base_url.is_none());
            assert!(s.s3.is_none());
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn every_environment_variable_names_a_real_key() {
        figment::Jail::expect_with(|jail| {
            clean_env(jail);
            for (key, name, _) in ENV {
                let value = match *key {
                    "log_format" => "json",
                    "telegram.mode" => "polling",
                    "channels.secret_key" => {
                        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
                    }
                    "telegram.pending_updates_threshold" => "2",
                    "channels.llm.url" => "http://127.0.0.1:1/v1/chat/completions",
                    "telegram.poll_timeout_secs" => "7",
                    k if k.ends_with("enabled") => "true",
                    "duplicates.threshold" => "0.9",
                    k if k.ends_with("base_url") => "http://127.0.0.1:1/",
                    "fetch.image_base_url" | "qdrant.url" | "s3.endpoint" | "qdrant.rest_url" => {
                        "http://127.0.0.1:1/"
                    }
                    "worker.retry_schedule" => "1s",
                    k if k.ends_with("webhook_url") => "http://127.0.0.1:1/hook",
                    k if k.ends_with("signing_secret") => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                    k if k.ends_with("secs") || k.ends_with("_ms") || k.ends_with("bytes") => "7",
                    k if k.ends_with("threads")
                        || k.ends_with("batch")
                        || k.ends_with("pixels")
                        || k.ends_with("concurrency")
                        || k.ends_with("connections")
                        || k.ends_with("uploads")
                        || k.ends_with("per_sec")
                        || k.ends_with("burst")
                        || k.ends_with("retention_days")
                        || k.ends_with("retries")
                        || k.ends_with("shards")
                        || k.ends_with("replication")
                        || k.ends_with("results")
                        || k.ends_with("max_events")
                        || k.ends_with("batch_size")
                        || k.ends_with("neighbours") =>
                    {
                        "2"
                    }
                    _ => "x",
                };
                jail.set_env(name, value);
            }
            let s = Settings::load().expect("every ENV entry is a key of Settings");
            assert!(s.s3.is_some() && s.qdrant.is_some());
            assert_eq!(s.log_format, LogFormat::Json);
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn the_example_file_holds_the_defaults() {
        let text = include_str!("../../vitrine.example.toml");
        figment::Jail::expect_with(|jail| {
            clean_env(jail);
            jail.create_file("vitrine.toml", text)?;
            let loaded = Settings::load().expect("the example loads");
            let as_toml = |s: &Settings| toml_value(s);
            assert_eq!(as_toml(&loaded), as_toml(&Settings::default()));
            Ok(())
        });
    }

    #[test]
    fn the_lease_must_fit_a_heartbeat_and_the_deadline_a_download() {
        let mut s = Settings::default();
        assert_eq!(
            s.worker.handler_timeout(&s.fetch),
            Duration::from_secs(90),
            "fetch timeout + slack"
        );
        s.worker.lease_secs = 2;
        let err = s.validate().unwrap_err().to_string();
        assert!(
            err.contains("worker.lease_secs") && err.contains("at least 3"),
            "{err}"
        );
        s.worker.lease_secs = 3;
        assert!(s.validate().is_ok());
        s.worker.handler_timeout_secs = 10;
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("worker.handler_timeout_secs"), "{err}");
        s.fetch.timeout_ms = 10_000;
        assert!(s.validate().is_ok());
        assert_eq!(s.worker.handler_timeout(&s.fetch), Duration::from_secs(10));
    }

    fn toml_value(s: &Settings) -> String {
        format!("{:?}", figment::value::Value::serialize(s).unwrap())
    }
}
