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
    extract::{ApiJson, drain, read_limited, read_upload},
    schemas::{ErrorBody, ImageBytes, ImageUpload, SearchResponse},
    state::SearchState,
};
use crate::{
    error::ApiError,
    search::{SearchPage, SearchParams, VectorQuery},
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
#[utoipa::path(get, path = "/api/v1/products/{id}/similar", tag = "search",
    params(("id" = String, Path, description = "An indexed product's id"), SearchParams),
    responses(
        (status = 200, description = "Products that look like it, best first, never itself", body = SearchResponse),
        (status = 400, description = "Malformed query", body = ErrorBody),
        (status = 404, description = "Not in the index", body = ErrorBody),
        (status = 422, description = "min_price above max_price", body = ErrorBody),
        (status = 429, description = "Over the per-IP search rate", body = ErrorBody),
    ))]
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

/// The text parameters, beside [`SearchParams`]: the words (`q`) and, on
/// text search, a product whose look joins the ranking (`like`).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TextParams {
    /// The words: every one must match (title, description, category or
    /// labels), each also as a prefix; case and diacritics folded. At most
    /// 256 characters. On an image search, makes it hybrid.
    #[param(example = "leather bag")]
    pub q: Option<String>,
    /// Text search only: a product whose look joins the ranking (hybrid).
    #[param(example = "demo-0009")]
    pub like: Option<String>,
}

/// `GET /api/v1/search/text?q=…[&like=<product_id>]`: with `like`, the
/// hybrid of the text ranking and the vector ranking of that product's
/// look (the product itself left out).
#[utoipa::path(get, path = "/api/v1/search/text", tag = "search", params(TextParams, SearchParams),
    responses(
        (status = 200, description = "Products whose words match, best first", body = SearchResponse),
        (status = 400, description = "Malformed query", body = ErrorBody),
        (status = 404, description = "`like` names a product that is not in the index", body = ErrorBody),
        (status = 422, description = "`q` has no word or is over 256 characters, offset over 1000, or min_price above max_price", body = ErrorBody),
        (status = 429, description = "Over the per-IP search rate", body = ErrorBody),
    ))]
pub async fn text(
    State(st): State<SearchState>,
    SearchQuery(p): SearchQuery<SearchParams>,
    SearchQuery(t): SearchQuery<TextParams>,
) -> Result<ApiJson<Value>, ApiError> {
    let started = std::time::Instant::now();
    let q = t.q.unwrap_or_default();
    let page = match t.like {
        Some(id) => {
            st.search
                .by_vector(VectorQuery::Product(id), Some(&q), &p)
                .await?
        }
        None => st.search.text(&q, &p).await?,
    };
    metrics::histogram!("visual_search_search_duration_seconds", "kind" => "text")
        .record(started.elapsed().as_secs_f64());
    Ok(page_json(page, &st.embed.info().version))
}

/// A search by image URL: `{"url": "…"}`, optionally with `"q"`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://images.example.com/bag.jpg", "q": "red"}))]
pub struct ByUrl {
    /// An http(s) image URL, fetched under the same rules as product images.
    pub url: String,
    #[serde(default)]
    pub q: Option<String>,
}

/// Cap on a `{"url": …}` body: a URL and a few words.
const MAX_URL_BODY: usize = 16 * 1024;

/// `POST /api/v1/search/image`: multipart field `image`, the raw image as
/// the body, or JSON `{"url": "…"}` (fetched through the guarded fetcher).
/// With `q` (query string, or the JSON's `q`) it is the hybrid of the image
/// and text rankings.
#[utoipa::path(post, path = "/api/v1/search/image", tag = "search", params(TextParams, SearchParams),
    request_body(description = "A JPEG, PNG, WebP or GIF: the multipart field `image`, the raw bytes as the body, or JSON `{\"url\": …}` naming one to fetch",
        content(
            (ImageUpload = "multipart/form-data"),
            (ImageBytes = "application/octet-stream"),
            (ImageBytes = "image/jpeg"),
            (ImageBytes = "image/png"),
            (ByUrl = "application/json"),
        )),
    responses(
        (status = 200, description = "Products that look like the image, best first (hybrid with `q`)", body = SearchResponse),
        (status = 400, description = "Malformed query, JSON or multipart body", body = ErrorBody),
        (status = 413, description = "Image larger than fetch.max_bytes", body = ErrorBody),
        (status = 422, description = "No image, not a readable image, or a URL refused or unfetchable", body = ErrorBody),
        (status = 429, description = "Too many uploads in flight, or over the per-IP search rate", body = ErrorBody),
    ))]
pub async fn by_image(
    State(st): State<SearchState>,
    SearchQuery(p): SearchQuery<SearchParams>,
    SearchQuery(t): SearchQuery<TextParams>,
    req: Request,
) -> Result<ApiJson<Value>, ApiError> {
    let is_json = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if is_json {
        let (parts, body) = req.into_parts();
        let bytes = read_limited(&parts.headers, body, MAX_URL_BODY).await?;
        let body: ByUrl = serde_json::from_slice(&bytes).map_err(|e| {
            if e.is_data() {
                ApiError::Unprocessable(format!("invalid body: {e}"))
            } else {
                ApiError::BadRequest(format!("malformed JSON: {e}"))
            }
        })?;
        let q = body.q.or(t.q);
        let started = std::time::Instant::now();
        // The fetched image is bounded like an upload: take a permit.
        let _permit = st.upload_permits.try_acquire()?;
        let page = st
            .search
            .by_vector(VectorQuery::Url(body.url), q.as_deref(), &p)
            .await?;
        metrics::histogram!("visual_search_search_duration_seconds", "kind" => "url")
            .record(started.elapsed().as_secs_f64());
        return Ok(page_json(page, &st.embed.info().version));
    }
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
    let page = st
        .search
        .by_vector(VectorQuery::Image(bytes), t.q.as_deref(), &p)
        .await?;
    metrics::histogram!("visual_search_search_duration_seconds", "kind" => "image")
        .record(started.elapsed().as_secs_f64());
    Ok(page_json(page, &st.embed.info().version))
}
