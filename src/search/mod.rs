//! Shopper-facing search: by image (embed the query, then search), by
//! product (reuse the stored vector: no re-embedding) and by text (the
//! metadata database's full-text index: [`text`]), and the hybrid of a
//! vector ranking with a text ranking ([`fuse`], reciprocal-rank fusion).
//! Owns filters and paging as the API takes them and the shape of results:
//! every search answers a [`SearchPage`] whose results say which signals
//! matched them.

pub mod fuse;
pub mod text;
pub mod typos;

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::{
    db::Db,
    embed::{EmbedError, EmbedService, FetchError, ImageFetcher, ImageRef},
    index::{Filter, Hit, IndexError, VectorIndex},
};

pub const DEFAULT_LIMIT: usize = 10;
pub const MAX_LIMIT: usize = 100;
/// Deepest page start: past it a search is a crawl, not a shopper.
pub const MAX_OFFSET: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("product {0} is not in the index (unknown, deleted, or not yet indexed)")]
    NotIndexed(String),
    #[error("query image: {0}")]
    Image(EmbedError),
    /// The query image's URL could not be fetched; shown by its public
    /// reason only (never the URL or the connect error).
    #[error("query image URL: {}", .0.public_reason())]
    Fetch(FetchError),
    #[error("embedding the query failed: {0}")]
    Embed(EmbedError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("{0}")]
    InvalidFilter(String),
    #[error("{0}")]
    InvalidQuery(String),
    #[error("text search: {0}")]
    Db(#[from] sqlx::Error),
}

/// Query-string filters and paging shared by every search endpoint.
///
/// `category` and `currency` each take several values: comma-separated
/// (`category=a,b`), or repeated when the request goes through
/// `http::search` (which joins repeats with commas first). A result passes
/// when its value is any of them.
#[derive(Debug, Default, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Results per page, 1 to 100 (larger is clamped); default 10.
    #[param(example = 10)]
    pub limit: Option<usize>,
    /// Results to skip, 0 to 1000 (more is 422); `next_offset` of the
    /// previous page.
    #[param(example = 0)]
    pub offset: Option<usize>,
    /// Only these categories (exact match; comma-separated or repeated).
    #[serde(default, deserialize_with = "comma_list")]
    #[param(value_type = Option<String>, example = "bags")]
    pub category: Vec<String>,
    /// Only these currencies (exact match; comma-separated or repeated).
    #[serde(default, deserialize_with = "comma_list")]
    #[param(value_type = Option<String>, example = "KGS")]
    pub currency: Vec<String>,
    /// Only products at this price or above (a finite number).
    #[serde(default, deserialize_with = "finite")]
    #[param(example = 10.0)]
    pub min_price: Option<f64>,
    /// Only products at this price or below (a finite number).
    #[serde(default, deserialize_with = "finite")]
    #[param(example = 100.0)]
    pub max_price: Option<f64>,
}

/// `a,b` → `["a", "b"]`, without empty or surrounding-blank items.
fn comma_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let s = Option::<String>::deserialize(d)?.unwrap_or_default();
    Ok(s.split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect())
}

/// One page of results, in the same shape for every search: `next_offset`
/// is where the next page starts, or `None` after the last one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SearchPage {
    pub results: Vec<SearchResult>,
    pub next_offset: Option<usize>,
}

impl SearchPage {
    /// A page from up to `limit + 1` results that start at `offset`: the
    /// extra one only says that there is a next page.
    fn from_window(mut results: Vec<SearchResult>, offset: usize, limit: usize) -> Self {
        let more = results.len() > limit;
        results.truncate(limit);
        let next_offset = (more && offset + limit <= MAX_OFFSET).then_some(offset + limit);
        Self {
            results,
            next_offset,
        }
    }
}

/// A price bound must be a finite number: `NaN` compares false with every
/// price (and `inf` is no bound), so either would silently change what a
/// filter means. Refused while the query string is parsed, so it is a 400
/// like any other malformed parameter.
fn finite<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    match Option::<f64>::deserialize(d)? {
        Some(v) if !v.is_finite() => Err(serde::de::Error::custom(format!(
            "a price must be a finite number, not {v}"
        ))),
        v => Ok(v),
    }
}

impl SearchParams {
    pub fn limit(&self) -> usize {
        self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
    }

    /// Where the page starts; refuses one past [`MAX_OFFSET`].
    pub fn offset(&self) -> Result<usize, SearchError> {
        match self.offset.unwrap_or(0) {
            o if o > MAX_OFFSET => Err(SearchError::InvalidFilter(format!(
                "offset ({o}) is past the deepest page start ({MAX_OFFSET})"
            ))),
            o => Ok(o),
        }
    }

    pub fn filter(&self) -> Result<Filter, SearchError> {
        if let (Some(lo), Some(hi)) = (self.min_price, self.max_price)
            && lo > hi
        {
            return Err(SearchError::InvalidFilter(format!(
                "min_price ({lo}) is greater than max_price ({hi})"
            )));
        }
        Ok(Filter {
            category: self.category.clone(),
            currency: self.currency.clone(),
            min_price: self.min_price,
            max_price: self.max_price,
            exclude_id: None,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct SearchResult {
    pub product_id: String,
    /// What the results are ordered by: cosine similarity (vector search),
    /// text relevance (text search), or the fused reciprocal-rank score
    /// (hybrid search).
    pub score: f32,
    pub title: Option<String>,
    pub category: Option<String>,
    pub price: Option<f64>,
    pub currency: Option<String>,
    /// Which signals matched this result.
    pub signals: Signals,
}

/// Which rankings a result came from: its cosine similarity when the vector
/// ranking holds it, whether its own words (title, description, category)
/// matched the query's, and whether its labels (what the classifier sees in
/// its photo) did. `typo` says the words matched only approximately: no
/// product matched every word as typed, so the typo-tolerant search
/// ([`typos`]) found it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Signals {
    pub vector: Option<f32>,
    pub text: bool,
    pub label: bool,
    #[serde(default)]
    pub typo: bool,
}

impl From<Hit> for SearchResult {
    fn from(h: Hit) -> Self {
        Self {
            product_id: h.payload.product_id,
            score: h.score,
            title: h.payload.title,
            category: h.payload.category,
            price: h.payload.price,
            currency: h.payload.currency,
            signals: Signals {
                vector: Some(h.score),
                ..Signals::default()
            },
        }
    }
}

#[derive(Clone)]
pub struct SearchService {
    index: Arc<dyn VectorIndex>,
    embed: EmbedService,
    db: Db,
    fetcher: ImageFetcher,
}

/// Where a query's vector comes from.
pub enum VectorQuery {
    /// An uploaded image.
    Image(Bytes),
    /// An image URL, fetched through the guarded [`ImageFetcher`] with its
    /// SSRF rules and caps.
    Url(String),
    /// A stored product's vector (the product itself is left out).
    Product(String),
}

impl SearchService {
    pub fn new(
        index: Arc<dyn VectorIndex>,
        embed: EmbedService,
        db: Db,
        fetcher: ImageFetcher,
    ) -> Self {
        Self {
            index,
            embed,
            db,
            fetcher,
        }
    }

    /// Products that look like `product_id`, never including itself.
    pub async fn similar_to(
        &self,
        product_id: &str,
        params: &SearchParams,
    ) -> Result<SearchPage, SearchError> {
        self.by_vector(VectorQuery::Product(product_id.to_string()), None, params)
            .await
    }

    /// Products that look like the image in `bytes`.
    pub async fn by_image(
        &self,
        bytes: Bytes,
        params: &SearchParams,
    ) -> Result<SearchPage, SearchError> {
        self.by_vector(VectorQuery::Image(bytes), None, params)
            .await
    }

    /// A vector search, or with `q` a hybrid one: the vector ranking and the
    /// text ranking of `q` fused by reciprocal rank ([`fuse`]), under the
    /// same filters.
    pub async fn by_vector(
        &self,
        query: VectorQuery,
        q: Option<&str>,
        params: &SearchParams,
    ) -> Result<SearchPage, SearchError> {
        let mut filter = params.filter()?;
        let offset = params.offset()?;
        let terms = q.map(text::terms).transpose()?;
        let vector = match query {
            VectorQuery::Image(bytes) => self.embed_query(bytes).await?,
            VectorQuery::Url(url) => {
                let bytes = self.fetcher.fetch(&ImageRef::Url(url)).await.map_err(|e| {
                    tracing::info!(error = %e.detail(), "search by image URL: fetch failed");
                    SearchError::Fetch(e)
                })?;
                self.embed_query(bytes).await?
            }
            VectorQuery::Product(id) => {
                let v = self
                    .index
                    .get_vector(&id)
                    .await?
                    .ok_or_else(|| SearchError::NotIndexed(id.clone()))?;
                filter.exclude_id = Some(id);
                v
            }
        };
        let limit = params.limit();
        let Some(terms) = terms else {
            return self.vector_page(&vector, &filter, offset, limit).await;
        };
        // Both rankings to a fixed depth, whatever the page, so that every
        // page is a slice of the same fused ranking.
        let hits = self.index.search(&vector, &filter, fuse::DEPTH).await?;
        let vector_ranking: Vec<SearchResult> = hits.into_iter().map(SearchResult::from).collect();
        let text_ranking = self.text_ranking(&terms, &filter, 0, fuse::DEPTH).await?;
        let fused = fuse::reciprocal_rank(vector_ranking, text_ranking);
        let window = fused.into_iter().skip(offset).take(limit + 1).collect();
        Ok(SearchPage::from_window(window, offset, limit))
    }

    async fn embed_query(&self, bytes: Bytes) -> Result<Vec<f32>, SearchError> {
        self.embed.embed(bytes).await.map_err(|e| match e {
            EmbedError::Image(_) => SearchError::Image(e),
            other => SearchError::Embed(other),
        })
    }

    /// Products whose title, description or category match the words of
    /// `q` (see [`text`]), best match first. For the hybrid with a
    /// product's look (`like`), see [`SearchService::by_vector`] with
    /// [`VectorQuery::Product`].
    pub async fn text(&self, q: &str, params: &SearchParams) -> Result<SearchPage, SearchError> {
        let filter = params.filter()?;
        let offset = params.offset()?;
        let terms = text::terms(q)?;
        let limit = params.limit();
        let results = self
            .text_ranking(&terms, &filter, offset, limit + 1)
            .await?;
        Ok(SearchPage::from_window(results, offset, limit))
    }

    async fn text_ranking(
        &self,
        terms: &[String],
        filter: &Filter,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<SearchResult>, SearchError> {
        Ok(text_ranking(&self.db, terms, filter, offset, limit).await?)
    }

    /// A page of the vector ranking: the index returns the best
    /// `offset + limit + 1` and the page is cut from them, so that pages
    /// are slices of one ranking (best first, as the index orders it).
    async fn vector_page(
        &self,
        vector: &[f32],
        filter: &Filter,
        offset: usize,
        limit: usize,
    ) -> Result<SearchPage, SearchError> {
        let hits = self
            .index
            .search(vector, filter, offset + limit + 1)
            .await?;
        let results = hits
            .into_iter()
            .skip(offset)
            .map(SearchResult::from)
            .collect();
        Ok(SearchPage::from_window(results, offset, limit))
    }
}

/// `limit` results of the text ranking of `terms` from `offset`: the exact
/// one ([`text`]) when any product matches every word, else the
/// typo-tolerant one ([`typos`]). Which of the two does not depend on the
/// page, so pages are slices of one ranking.
pub async fn text_ranking(
    db: &Db,
    terms: &[String],
    filter: &Filter,
    offset: usize,
    limit: usize,
) -> Result<Vec<SearchResult>, sqlx::Error> {
    let exact = text::search(db, terms, filter, offset, limit).await?;
    if !exact.is_empty() || (offset > 0 && !text::search(db, terms, filter, 0, 1).await?.is_empty())
    {
        return Ok(exact);
    }
    let fuzzy = typos::search(db, terms, filter, offset, limit).await?;
    if offset == 0 && !fuzzy.is_empty() {
        metrics::counter!("visual_search_text_typo_searches_total").increment(1);
    }
    Ok(fuzzy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Result<SearchParams, String> {
        let uri: axum::http::Uri = format!("/s?{q}").parse().unwrap();
        axum::extract::Query::<SearchParams>::try_from_uri(&uri)
            .map(|q| q.0)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn non_finite_prices_are_refused() {
        for q in [
            "min_price=NaN",
            "max_price=nan",
            "min_price=inf",
            "max_price=-inf",
            "min_price=infinity",
        ] {
            assert!(parse(q).is_err(), "{q} was accepted");
        }
        let p = parse("min_price=1.5&max_price=10").unwrap();
        assert_eq!((p.min_price, p.max_price), (Some(1.5), Some(10.0)));
        assert!(parse("").unwrap().min_price.is_none());
    }

    #[test]
    fn lists_are_comma_separated_and_offsets_bounded() {
        let p = parse("category=a,%20b,,c&currency=KGS").unwrap();
        assert_eq!(p.category, ["a", "b", "c"]);
        assert_eq!(p.currency, ["KGS"]);
        assert!(parse("").unwrap().category.is_empty());
        assert_eq!(parse("offset=1000").unwrap().offset().unwrap(), 1000);
        assert!(parse("offset=1001").unwrap().offset().is_err());
        assert!(parse("offset=-1").is_err());
    }

    fn result(id: usize) -> SearchResult {
        SearchResult {
            product_id: format!("p{id}"),
            score: 0.0,
            title: None,
            category: None,
            price: None,
            currency: None,
            signals: Signals::default(),
        }
    }

    #[test]
    fn a_page_says_where_the_next_one_starts() {
        let page = SearchPage::from_window((0..11).map(result).collect(), 20, 10);
        assert_eq!((page.results.len(), page.next_offset), (10, Some(30)));
        let last = SearchPage::from_window((0..10).map(result).collect(), 20, 10);
        assert_eq!(last.next_offset, None);
        // No next page past the deepest page start.
        let deep = SearchPage::from_window((0..11).map(result).collect(), 995, 10);
        assert_eq!(deep.next_offset, None);
    }
}
