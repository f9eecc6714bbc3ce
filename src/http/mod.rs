//! HTTP routes per capability, plus request metrics labelled by matched
//! route (never the raw path, which would explode label cardinality).

pub mod events;
pub mod health;
pub mod products;
pub mod signature;
pub mod webhook;

use std::time::Instant;

use axum::{
    Router,
    extract::{DefaultBodyLimit, MatchedPath, Request},
    middleware::{self, Next},
    response::Response,
    routing::{get, post},
};
use tower_http::trace::TraceLayer;

use crate::app::AppState;

pub fn router(state: AppState) -> Router {
    let admin = Router::new()
        .route("/api/v1/events", get(events::list))
        .route("/api/v1/events/{id}", get(events::get))
        .route("/api/v1/events/{id}/retry", post(events::retry))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            events::require_admin,
        ));
    let image_limit = state.settings.fetch_max_bytes + 64 * 1024;
    Router::new()
        .route("/api/v1/webhooks/bakai", post(webhook::bakai))
        .route("/api/v1/webhooks/health", get(webhook::health))
        .route("/api/v1/products/{id}", get(products::get))
        .route("/api/v1/products/{id}/similar", get(products::similar))
        .route(
            "/api/v1/search/image",
            post(products::by_image).layer(DefaultBodyLimit::max(image_limit)),
        )
        .route("/api/v1/health", get(health::health))
        .route("/api/v1/metrics", get(health::metrics))
        .merge(admin)
        .layer(middleware::from_fn(track_metrics))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
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
