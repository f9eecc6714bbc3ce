//! Shopper search routes: similar-by-product, search-by-image and text
//! search. Every one answers the same page shape: `results`, `next_offset`
//! (or null) and `model_version`.

use axum::{
    extract::{FromRequestParts, Path, Query, Request, State},
    http::request::Parts,
};
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::{Value, json};

use super::{
    extract::{ApiJson, drain, read_upload},
    state::SearchState,
};
use crate::{
    error::ApiError,
    search::{SearchPage, SearchParams},
};

/// A search's query string, where a repeated key (`category=a&category=b`)
/// means the same as its values joined by commas (`category=a,b`): the
/// list parameters take both forms. serde's URL-encoded reader refuses a
/// repeated key, so repeats are joined before it reads them. A rejection
/// is a 400, as with `ApiQuery`.
pub struct SearchQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for SearchQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match pairs.iter_mut().find(|(key, _)| *key == k) {
                Some((_, joined)) => {
                    joined.push(',');
                    joined.push_str(&v);
                }
                None => pairs.push((k.into_owned(), v.into_owned())),
            }
        }
        let merged = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        let uri = format!("/?{merged}")
            .parse()
            .map_err(|_| ApiError::BadRequest("invalid query string".into()))?;
        Query::<T>::try_from_uri(&uri)
            .map(|Query(v)| SearchQuery(v))
            .map_err(|e| {
                ApiError::BadRequest(format!("invalid query parameters: {}", e.body_text()))
            })
    }
}

fn page_json(page: SearchPage, model_version: &str) -> ApiJson<Value> {
    ApiJson(json!({
        "results": page.results,
        "next_offset": page.next_offset,
        "model_version": model_version,
    }))
}

/// `GET /api/v1/products/{id}/similar`
pub async fn similar(
    State(st): State<SearchState>,
    Path(id): Path<String>,
    SearchQuery(p): SearchQuery<SearchParams>,
) -> Result<ApiJson<Value>, ApiError> {
    let started = std::time::Instant::now();
    let page = st.search.similar_to(&id, &p).await?;
    metrics::histogram!("visual_search_search_duration_seconds", "kind" => "product")
        .record(started.elapsed().as_secs_f64());
    Ok(page_json(page, &st.embed.info().version))
}

/// The text search's own parameters, beside [`SearchParams`].
#[derive(Debug, Deserialize)]
pub struct TextParams {
    #[serde(default)]
    pub q: String,
}

/// `GET /api/v1/search/text?q=…`
pub async fn text(
    State(st): State<SearchState>,
    SearchQuery(p): SearchQuery<SearchParams>,
    SearchQuery(t): SearchQuery<TextParams>,
) -> Result<ApiJson<Value>, ApiError> {
    let started = std::time::Instant::now();
    let page = st.search.text(&t.q, &p).await?;
    metrics::histogram!("visual_search_search_duration_seconds", "kind" => "text")
        .record(started.elapsed().as_secs_f64());
    Ok(page_json(page, &st.embed.info().version))
}

/// `POST /api/v1/search/image`: multipart field `image`, or the raw image as
/// the body.
pub async fn by_image(
    State(st): State<SearchState>,
    SearchQuery(p): SearchQuery<SearchParams>,
    req: Request,
) -> Result<ApiJson<Value>, ApiError> {
    // Taken before the body is read, and held until the search is done: the
    // body and its decoded image are what it bounds.
    // Refused uploads are drained like a 413 (see `extract::drain`), so the
    // client reads the 429; draining discards, it holds nothing.
    let _permit = match st.upload_permits.try_acquire() {
        Ok(p) => p,
        Err(e) => {
            let (parts, body) = req.into_parts();
            drain(&parts.headers, body, st.max_upload_bytes, 0).await;
            return Err(e);
        }
    };
    let bytes = read_upload(req, "image", st.max_upload_bytes).await?;
    if bytes.is_empty() {
        return Err(ApiError::Unprocessable("no image in the request".into()));
    }
    let started = std::time::Instant::now();
    let page = st.search.by_image(bytes, &p).await?;
    metrics::histogram!("visual_search_search_duration_seconds", "kind" => "image")
        .record(started.elapsed().as_secs_f64());
    Ok(page_json(page, &st.embed.info().version))
}
