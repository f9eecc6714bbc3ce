//! Health and Prometheus metrics.

use std::time::Duration;

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde_json::{Value, json};

use super::{
    schemas::{Health, WebhooksHealth},
    state::AppState,
};
use crate::{
    db::{self, Db},
    index::VectorIndex,
};

/// The public reasons of an unhealthy part: a class, never the error
/// itself, which may name hosts, paths or credentials-bearing URLs. The
/// detail goes to the log.
pub const DATABASE_UNREACHABLE: &str = "database unreachable";
pub const INDEX_UNAVAILABLE: &str = "index unavailable";

/// How long the health check waits for the database and for the index.
/// Load balancers ask with timeouts of a few seconds, so a part that does
/// not answer must read as unhealthy (503) within them, not as a hung
/// request: with PostgreSQL stopped, `/api/v1/health` took 10 s (the pool's
/// acquire timeout) to answer (`scripts/chaos.py --outage-postgres`).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /api/v1/health`: database, index and model, plus the parts measured
/// in the background (the image source; a messenger's webhook queue).
///
/// - `healthy` (200): every part is `ok`.
/// - `degraded` (200): the database and the index answer, but another part
///   does not (the image host or S3 is unreachable, a webhook queue backs
///   up). Search still works; new events wait in the inbox and are retried.
/// - `degraded` (503): the database or the index does not answer, so a load
///   balancer stops sending traffic. The process stays up and recovers by
///   itself when the dependency is back.
///
/// Names the database engine and the index backend either way.
#[utoipa::path(get, path = "/api/v1/health", tag = "ops", responses(
    (status = 200, description = "The database and the index answer (`healthy`, or `degraded` when another part does not)", body = Health),
    (status = 503, description = "The database or the index does not answer (`degraded`)", body = Health),
))]
pub async fn health(State(st): State<AppState>) -> (StatusCode, Json<Value>) {
    let database = database_part(&st.db).await;
    let index = index_part(st.index.as_ref()).await;
    let m = st.embed.info();
    let model = json!({
        "status": "ok",
        "name": m.manifest.name,
        "version": m.version,
        "dim": m.dim(),
        "threads": st.embed.embedder().threads(),
        "supports_text": m.manifest.supports_text,
    });
    let serving = database["status"] == "ok" && index["status"] == "ok";
    let mut body = json!({
        "status": "healthy",
        "service": "vitrine",
        "version": env!("CARGO_PKG_VERSION"),
        "database": database,
        "index": index,
        "model": model,
    });
    let mut all_ok = serving;
    for (name, part) in st.health.snapshot() {
        all_ok &= part["status"] == "ok";
        body[name] = part;
    }
    if !all_ok {
        body["status"] = json!("degraded");
    }
    let code = if serving {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body))
}

/// The database's part of the health report: its engine either way, and
/// when it does not answer, a reason class (the error goes to the log).
async fn database_part(db: &Db) -> Value {
    let engine = db.backend().name();
    let error = match tokio::time::timeout(PROBE_TIMEOUT, db::ping(db)).await {
        Ok(Ok(())) => return json!({ "status": "ok", "engine": engine }),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {PROBE_TIMEOUT:?}"),
    };
    tracing::warn!(error, engine, "health: the database does not answer");
    json!({ "status": "error", "engine": engine, "error": DATABASE_UNREACHABLE })
}

/// The index's part: its backend either way, a reason class on failure.
async fn index_part(index: &dyn VectorIndex) -> Value {
    let info = index.info();
    let error = match tokio::time::timeout(PROBE_TIMEOUT, index.count()).await {
        Ok(Ok(n)) => {
            return json!({ "status": "ok", "backend": info.backend, "points": n, "dim": info.dim });
        }
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {PROBE_TIMEOUT:?}"),
    };
    tracing::warn!(error, backend = %info.backend, "health: the index does not answer");
    json!({ "status": "error", "backend": info.backend, "error": INDEX_UNAVAILABLE })
}

/// `GET /api/v1/webhooks/health`: which providers are mounted, and their
/// state (never a secret).
#[utoipa::path(get, path = "/api/v1/webhooks/health", tag = "webhooks", responses(
    (status = 200, description = "The mounted providers", body = WebhooksHealth),
))]
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
#[utoipa::path(get, path = "/api/v1/metrics", tag = "ops", responses(
    (status = 200, description = "Prometheus text exposition", body = String,
        content_type = "text/plain; version=0.0.4",
        example = "visual_search_index_points 24\n"),
))]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failing_database_shows_a_reason_class_not_its_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("health-secret-path.db");
        let db = db::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        assert_eq!(database_part(&db).await["status"], "ok");
        db.close().await;
        let part = database_part(&db).await;
        assert_eq!(part["status"], "error");
        assert_eq!(part["engine"], "sqlite");
        assert_eq!(part["error"], DATABASE_UNREACHABLE);
        assert!(!part.to_string().contains("health-secret-path"), "{part}");
    }

    /// A database that takes connections but never hands one out (all of
    /// them busy) is unhealthy within the probe timeout, not after the
    /// pool's 30 s acquire timeout.
    #[tokio::test]
    async fn a_database_that_does_not_answer_is_unhealthy_within_the_probe_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let db = db::connect(&format!("sqlite://{}", dir.path().join("t.db").display()))
            .await
            .unwrap();
        let mut held = Vec::new();
        while let Ok(Ok(c)) =
            tokio::time::timeout(Duration::from_millis(200), db.reader().acquire()).await
        {
            held.push(c);
        }
        assert!(!held.is_empty());
        let part = tokio::time::timeout(PROBE_TIMEOUT * 3, database_part(&db))
            .await
            .expect("the health check waited for the pool's own timeout");
        assert_eq!(part["status"], "error");
        assert_eq!(part["error"], DATABASE_UNREACHABLE);
    }
}
