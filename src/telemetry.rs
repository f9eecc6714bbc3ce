//! Structured logs (`tracing`) and the Prometheus recorder.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Installs the log subscriber once; `RUST_LOG` overrides the default level.
pub fn init_logs(format: crate::config::LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,ort=warn,tower_http=info"));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if format == crate::config::LogFormat::Json {
        registry.with(fmt::layer().json()).try_init()
    } else {
        registry.with(fmt::layer()).try_init()
    };
}

static METRICS: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide Prometheus recorder. `metrics` has one global recorder,
/// so apps started in one process (tests) share it.
pub fn metrics_handle() -> PrometheusHandle {
    METRICS
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_seconds".into()),
                    &[
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                        10.0, 30.0,
                    ],
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("visual_search_embedding_batch_size".into()),
                        &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0],
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("visual_search_inbox_group_size".into()),
                        &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
                    )
                })
                .expect("bucket lists are non-empty");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed; keep ours usable.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// The parts of `/api/v1/health` that are measured in the background rather
/// than probed per request: the image source, a messenger's webhook queue.
/// Each part is a JSON object whose `"status"` is `"ok"`, `"degraded"` or
/// `"error"`; anything but `"ok"` makes the report `degraded`. Writers are
/// the core's own monitors and the providers (through `Core::health`);
/// the health route only reads. Never put a secret, a path or a URL with
/// credentials in a part: the report is public.
#[derive(Clone, Default)]
pub struct HealthBoard {
    parts: std::sync::Arc<std::sync::RwLock<std::collections::BTreeMap<String, serde_json::Value>>>,
}

impl HealthBoard {
    /// Sets (replaces) one part.
    pub fn set(&self, part: impl Into<String>, value: serde_json::Value) {
        if let Ok(mut parts) = self.parts.write() {
            parts.insert(part.into(), value);
        }
    }

    /// Removes one part.
    pub fn clear(&self, part: &str) {
        if let Ok(mut parts) = self.parts.write() {
            parts.remove(part);
        }
    }

    /// Every part, by name.
    pub fn snapshot(&self) -> std::collections::BTreeMap<String, serde_json::Value> {
        self.parts.read().map(|p| p.clone()).unwrap_or_default()
    }
}
