//! Health and Prometheus metrics.

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde_json::{Value, json};

use super::state::AppState;
use crate::db;

/// `GET /api/v1/health`: database, index and model. 503 when a dependency
/// is down, so a load balancer stops sending traffic.
pub async fn health(State(st): State<AppState>) -> (StatusCode, Json<Value>) {
    let database = match db::ping(&st.db).await {
        Ok(()) => json!({ "status": "ok", "engine": st.db.backend().name() }),
        Err(e) => json!({ "status": "error", "error": e.to_string() }),
    };
    let info = st.index.info();
    let index = match st.index.count().await {
        Ok(n) => json!({ "status": "ok", "backend": info.backend, "points": n, "dim": info.dim }),
        Err(e) => json!({ "status": "error", "backend": info.backend, "error": e.to_string() }),
    };
    let m = st.embed.info();
    let model = json!({
        "status": "ok",
        "name": m.manifest.name,
        "version": m.version,
        "dim": m.dim(),
        "threads": st.embed.embedder().threads(),
        "supports_text": m.manifest.supports_text,
    });
    let healthy = database["status"] == "ok" && index["status"] == "ok";
    let code = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(json!({
            "status": if healthy { "healthy" } else { "unhealthy" },
            "service": "vitrine",
            "version": env!("CARGO_PKG_VERSION"),
            "database": database,
            "index": index,
            "model": model,
        })),
    )
}

/// `GET /api/v1/webhooks/health`: which providers are mounted, and their
/// state (never a secret).
pub async fn webhooks(State(st): State<AppState>) -> Json<Value> {
    let names: Vec<&str> = st.providers.iter().map(|(n, _)| *n).collect();
    let mut body = json!({
        "status": "healthy",
        "service": "webhooks",
        "providers": names,
        "timestamp": chrono::Utc::now().to_rfc3339(),
    });
    for (name, status) in st.providers.iter() {
        body[*name] = status.clone();
    }
    // Kept from when BakaiMarket was the only provider.
    if let Some(b) = st.providers.iter().find(|(n, _)| *n == "bakai") {
        body["secret_configured"] = b.1["secret_configured"].clone();
    }
    Json(body)
}

/// `GET /api/v1/metrics`: Prometheus text. Gauges that describe stored state
/// (queue depth, index size) are read at scrape time.
pub async fn metrics(State(st): State<AppState>) -> impl IntoResponse {
    if let Ok(counts) = st.inbox.counts().await {
        for status in crate::inbox::EventStatus::ALL {
            let n = counts
                .iter()
                .find(|(s, _)| *s == status)
                .map_or(0, |(_, n)| *n);
            metrics::gauge!("visual_search_inbox_events", "status" => status.as_str())
                .set(n as f64);
        }
    }
    if let Ok(n) = st.index.count().await {
        metrics::gauge!("visual_search_index_points").set(n as f64);
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        st.metrics.render(),
    )
}
