//! The security headers of every HTML page Vitrine serves (the shopper
//! page, the admin console, Swagger UI): a Content-Security-Policy that
//! allows only Vitrine's own origin, `X-Content-Type-Options: nosniff`,
//! frame denial (both `X-Frame-Options` and `frame-ancestors`) and no
//! referrer leaving the site.

use axum::{
    Router,
    http::{HeaderValue, header},
    middleware::map_response,
    response::Response,
};

/// Own origin only, no inline script, no plugins, no framing.
pub const STRICT_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Swagger UI sets inline styles on its elements; scripts stay own-origin.
pub const SWAGGER_CSP: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// `router` with the page headers on every response.
pub fn with_page_headers<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    csp: &'static str,
) -> Router<S> {
    router.layer(map_response(move |mut resp: Response| async move {
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(csp),
        );
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
        resp
    }))
}
