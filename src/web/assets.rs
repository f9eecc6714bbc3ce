//! The pages' CSS and JavaScript, compiled into the binary: nothing to
//! install or fetch, no third-party host. Served with a content type and a
//! short cache life (they change with the binary).

use axum::{
    extract::Path,
    http::header,
    response::{IntoResponse, Response},
};

use crate::error::ApiError;

const FILES: &[(&str, &str, &str)] = &[
    (
        "vitrine.css",
        "text/css; charset=utf-8",
        include_str!("assets/vitrine.css"),
    ),
    (
        "shop.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/shop.js"),
    ),
    (
        "admin.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/admin.js"),
    ),
    // The dashboard's charts: uPlot from npm (MIT, `assets/vendor/uPlot.LICENSE`),
    // committed as built; `scripts/vendor-web.sh` refreshes it.
    (
        "uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/vendor/uPlot.iife.min.js"),
    ),
    (
        "uPlot.min.css",
        "text/css; charset=utf-8",
        include_str!("assets/vendor/uPlot.min.css"),
    ),
];

pub async fn serve(Path(name): Path<String>) -> Result<Response, ApiError> {
    let (_, content_type, body) = FILES
        .iter()
        .find(|(n, _, _)| *n == name)
        .ok_or_else(|| ApiError::NotFound("no such asset".into()))?;
    Ok((
        [
            (header::CONTENT_TYPE, *content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        *body,
    )
        .into_response())
}
