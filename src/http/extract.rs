//! Request extractors shared by every route, core and provider alike, whose
//! rejections are [`ApiError`]s (axum's `examples/error-handling`): a bad
//! query string or JSON body is answered in the same `{"success":false,
//! "error":…}` shape as every other error.
//!
//! Also the two ways a body is read with a byte cap: [`read_limited`] for a
//! raw body (webhooks verify signatures on exactly these bytes) and
//! [`read_upload`] for an image sent raw or as a multipart field.

use std::time::Duration;

use axum::{
    body::Body,
    extract::{
        FromRequest, FromRequestParts, Json, Multipart, Query, Request, multipart::MultipartError,
        rejection::JsonRejection,
    },
    http::{
        HeaderMap, StatusCode,
        header::{CONTENT_LENGTH, CONTENT_TYPE, EXPECT},
        request::Parts,
    },
    response::{IntoResponse, Response},
};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use serde::{Serialize, de::DeserializeOwned};

use crate::error::ApiError;

/// `Query<T>` whose rejection is a 400 [`ApiError`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e| {
                ApiError::BadRequest(format!("invalid query parameters: {}", e.body_text()))
            })
    }
}

/// `Json<T>` whose rejection is an [`ApiError`]: 400 for malformed JSON or a
/// missing `Content-Type`, 422 for JSON of the wrong shape, 413 past the
/// body limit. As a response it is plain `Json`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Json::<T>::from_request(req, state)
            .await
            .map(|Json(v)| ApiJson(v))
            .map_err(|e| match e {
                JsonRejection::JsonDataError(e) => ApiError::Unprocessable(e.body_text()),
                e if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    ApiError::PayloadTooLarge(e.body_text())
                }
                e => ApiError::BadRequest(e.body_text()),
            })
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "request body is larger than the {limit}-byte limit"
    ))
}

/// After a 413, the body is read on and thrown away until it ends, up to
/// `limit + max(limit, 1 MiB)` bytes in all and for at most [`DRAIN_TIME`]:
/// so any body up to about twice the limit gets its answer. A client that
/// writes its whole body before reading the answer (Python's
/// `http.client`, many webhook senders) otherwise gets a reset instead of
/// the 413: closing a socket with unread data in it makes the kernel send
/// RST, which discards the answer on its way.
const DRAIN_MIN_BYTES: usize = 1024 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(3);

/// Reads and discards what is left of `body`, of which `seen` bytes were
/// read already, within the drain budget. Not when the client asked
/// `Expect: 100-continue` and nothing was read: it then waits for our
/// answer and sends no body at all.
pub(crate) async fn drain(headers: &HeaderMap, mut body: Body, limit: usize, seen: usize) {
    let waits_for_continue = headers
        .get(EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if waits_for_continue && seen == 0 {
        return;
    }
    let budget = limit.saturating_add(limit.max(DRAIN_MIN_BYTES));
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        let mut total = seen;
        while total < budget {
            match body.frame().await {
                Some(Ok(frame)) => total += frame.data_ref().map_or(0, |d| d.len()),
                _ => break,
            }
        }
    })
    .await;
}

/// A body read that failed: 408 when the body stalled past the body-read
/// timeout (the router's `RequestBodyTimeoutLayer`), 400 otherwise.
fn read_error(e: axum::Error) -> ApiError {
    let inner = e.into_inner();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&*inner);
    while let Some(s) = source {
        if s.is::<tower_http::timeout::TimeoutError>() {
            return ApiError::Timeout("the request body stalled; it was not read in time".into());
        }
        source = s.source();
    }
    ApiError::BadRequest(format!("could not read request body: {inner}"))
}

/// `Content-Length`, when the client declared one.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Reads a request body up to `limit` bytes; 413 past it (at once when the
/// declared `Content-Length` already says so). Before a 413 the rest of the
/// body is drained within a bound, so that the client can read the answer.
pub async fn read_limited(
    headers: &HeaderMap,
    mut body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    if declared_length(headers).is_some_and(|n| n > limit as u64) {
        drain(headers, body, limit, 0).await;
        return Err(too_large(limit));
    }
    // `axum::body::to_bytes` drops the body at the limit; this loop keeps
    // it, to drain it.
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(read_error)?.into_data() else {
            continue; // trailers
        };
        if buf.len() + data.len() > limit {
            drain(headers, body, limit, buf.len() + data.len()).await;
            return Err(too_large(limit));
        }
        buf.extend_from_slice(&data);
    }
    Ok(buf.freeze())
}

/// Room for multipart boundaries and part headers around an upload of the
/// largest allowed size.
pub const MULTIPART_OVERHEAD: usize = 64 * 1024;

fn multipart_error(e: MultipartError, limit: usize) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(limit)
    } else {
        ApiError::BadRequest(e.body_text())
    }
}

/// An uploaded file: the multipart field `field`, or, for any other content
/// type, the raw body. At most `limit` bytes (413); an upload without the
/// field is 422.
pub async fn read_upload(req: Request, field: &str, limit: usize) -> Result<Bytes, ApiError> {
    let is_multipart = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("multipart/form-data"));
    if !is_multipart {
        let (parts, body) = req.into_parts();
        return read_limited(&parts.headers, body, limit).await;
    }
    // A declared length already over the cap (plus the multipart framing
    // the route's `DefaultBodyLimit` allows for) is refused before parsing,
    // with the body drained as in `read_limited`.
    if declared_length(req.headers()).is_some_and(|n| n > (limit + MULTIPART_OVERHEAD) as u64) {
        let (parts, body) = req.into_parts();
        drain(&parts.headers, body, limit, 0).await;
        return Err(too_large(limit));
    }
    let mut mp = Multipart::from_request(req, &())
        .await
        .map_err(|e| ApiError::BadRequest(e.body_text()))?;
    while let Some(f) = mp
        .next_field()
        .await
        .map_err(|e| multipart_error(e, limit))?
    {
        if f.name() == Some(field) {
            return f.bytes().await.map_err(|e| multipart_error(e, limit));
        }
    }
    Err(ApiError::Unprocessable(format!(
        "multipart body has no `{field}` field"
    )))
}

#[cfg(test)]
mod tests {
    use axum::{Router, routing::post};
    use serde::Deserialize;
    use tower::ServiceExt;

    use super::*;

    #[derive(Deserialize)]
    struct Q {
        #[allow(dead_code)]
        n: u32,
    }

    async fn status_of(req: axum::http::Request<Body>) -> (StatusCode, serde_json::Value) {
        let app = Router::new().route(
            "/",
            post(|ApiQuery(_q): ApiQuery<Q>, ApiJson(_b): ApiJson<Q>| async { "ok" }),
        );
        let resp = app.oneshot(req).await.unwrap();
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap_or_default())
    }

    fn req(uri: &str, ct: &str, body: &str) -> axum::http::Request<Body> {
        axum::http::Request::post(uri)
            .header(CONTENT_TYPE, ct)
            .body(Body::from(body.to_string()))
            .unwrap()
    }

    #[tokio::test]
    async fn rejections_are_api_errors() {
        let (s, b) = status_of(req("/?n=x", "application/json", r#"{"n":1}"#)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(b["success"], false);
        assert!(
            b["error"].as_str().unwrap().contains("invalid query"),
            "{b}"
        );

        let (s, b) = status_of(req("/?n=1", "application/json", "{")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        let (s, b) = status_of(req("/?n=1", "application/json", r#"{"n":"x"}"#)).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        assert_eq!(b["success"], false);
        let (s, _) = status_of(req("/?n=1", "application/json", r#"{"n":1}"#)).await;
        assert_eq!(s, StatusCode::OK);
    }
}
