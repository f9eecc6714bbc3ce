//! The HTTP edge: the core routes (search, admin event API, health,
//! metrics), the extractors and body readers every route shares
//! ([`extract`]), HMAC signatures ([`signature`]), and request metrics
//! labelled by matched route (never the raw path, which would explode label
//! cardinality).
//!
//! Providers bring their own routes (see [`crate::provider`]); [`router`]
//! merges them under the same layers.

pub(crate) mod events;
pub(crate) mod extract;
pub(crate) mod health;
pub(crate) mod search;
pub mod signature;
pub(crate) mod state;

use std::time::{Duration, Instant};

use axum::{
    Router,
    extract::{DefaultBodyLimit, MatchedPath, Request},
    http::StatusCode,
    middleware::{self, Next},
    response::Response,
    routing::{get, post},
};
use tower_http::{timeout::TimeoutLayer, trace::TraceLayer};

pub(crate) use state::AppState;

/// The whole application's routes: the core ones plus each provider's,
/// with metrics, tracing and the request timeout around all of them.
pub fn router(state: AppState, providers: Vec<Router>, request_timeout: Duration) -> Router {
    let admin = Router::new()
        .route("/api/v1/events", get(events::list))
        .route("/api/v1/events/{id}", get(events::get))
        .route("/api/v1/events/{id}/retry", post(events::retry))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            events::require_admin,
        ));
    let upload_limit = state.max_upload_bytes + 64 * 1024;
    let mut app = Router::new()
        .route("/api/v1/webhooks/health", get(health::webhooks))
        .route("/api/v1/products/{id}/similar", get(search::similar))
        .route(
            "/api/v1/search/image",
            post(search::by_image).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/api/v1/health", get(health::health))
        .route("/api/v1/metrics", get(health::metrics))
        .merge(admin)
        .with_state(state);
    for p in providers {
        app = app.merge(p);
    }
    app.layer(TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        request_timeout,
    ))
    .layer(middleware::from_fn(track_metrics))
    .layer(TraceLayer::new_for_http())
}

async fn track_metrics(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().to_string();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("visual_search_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("visual_search_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    resp
}
