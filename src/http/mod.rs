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
pub mod headers;
pub(crate) mod health;
pub mod limits;
pub mod openapi;
pub mod schemas;
pub(crate) mod search;
pub mod serve;
pub mod signature;
pub(crate) mod state;
pub(crate) mod stats;

use std::time::Instant;

use axum::{
    Router,
    extract::{DefaultBodyLimit, MatchedPath, Request},
    http::{Method, StatusCode},
    middleware::{self, Next},
    response::Response,
    routing::{get, post},
};
use tower_http::{
    timeout::{RequestBodyTimeoutLayer, TimeoutLayer},
    trace::TraceLayer,
};

pub(crate) use state::AppState;

use crate::config::ServerSettings;

/// The whole application's routes: the core ones plus each provider's,
/// with metrics, tracing, the per-IP rate limits, the request timeout and
/// the body-read timeout around all of them.
pub fn router(state: AppState, providers: Vec<Router>, server: &ServerSettings) -> Router {
    let admin = Router::new()
        .route("/api/v1/events", get(events::list))
        .route("/api/v1/events/{id}", get(events::get))
        .route("/api/v1/events/{id}/retry", post(events::retry))
        .route("/api/v1/events/replay", post(events::replay))
        .route("/api/v1/events/replay/{job_id}", get(events::replay_job))
        .route(
            "/api/v1/events/replay/{job_id}/cancel",
            post(events::cancel_replay),
        )
        .route("/api/v1/stats", get(stats::stats))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            events::require_admin,
        ));
    let upload_limit = state.max_upload_bytes + extract::MULTIPART_OVERHEAD;
    let mut app = Router::new()
        .route("/api/v1/webhooks/health", get(health::webhooks))
        .route("/api/v1/products/{id}/similar", get(search::similar))
        .route("/api/v1/search/text", get(search::text))
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
    let rates = limits::RateLimits::new(
        (server.webhook_rate_per_sec, server.webhook_rate_burst),
        (server.search_rate_per_sec, server.search_rate_burst),
    );
    // Innermost first: the body-read timeout wraps the body the handlers
    // read (a pause longer than it fails the read: 408), the request
    // timeout the whole handler, the rate limit goes before both, and the
    // metrics count everything, 429s included.
    app.layer(RequestBodyTimeoutLayer::new(server.body_read_timeout()))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            server.request_timeout(),
        ))
        .layer(middleware::from_fn_with_state(rates, limits::rate_limit))
        .layer(middleware::from_fn(track_metrics))
        .layer(TraceLayer::new_for_http())
}

/// The `method` label: the standard methods by name, anything else
/// `other`. A label per raw method let 3,000 made-up methods grow the
/// metrics page from 17 KB to 16 MB.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

async fn track_metrics(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = method_label(req.method());
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("visual_search_http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("visual_search_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    resp
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn made_up_methods_share_one_metrics_label() {
        let handle = crate::telemetry::metrics_handle();
        let app = Router::new()
            .route("/m", get(|| async { "ok" }))
            .layer(middleware::from_fn(track_metrics));
        for i in 0..20 {
            let method = Method::from_bytes(format!("XMADEUP{i}").as_bytes()).unwrap();
            let req = axum::http::Request::builder()
                .method(method)
                .uri("/m")
                .body(Body::empty())
                .unwrap();
            app.clone().oneshot(req).await.unwrap();
        }
        let text = handle.render();
        assert!(!text.contains("XMADEUP"), "raw methods leak into labels");
        assert!(text.contains(r#"method="other""#), "{text}");
        assert_eq!(method_label(&Method::GET), "GET");
    }
}
