//! Shopper-facing search: by image (embed the query, then search) and by
//! product (reuse the stored vector: no re-embedding). Owns filters as the
//! API takes them and the shape of results.

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::{
    embed::{EmbedError, EmbedService},
    index::{Filter, Hit, IndexError, VectorIndex},
};

pub const DEFAULT_LIMIT: usize = 10;
pub const MAX_LIMIT: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("product {0} is not in the index (unknown, deleted, or not yet indexed)")]
    NotIndexed(String),
    #[error("query image: {0}")]
    Image(EmbedError),
    #[error("embedding the query failed: {0}")]
    Embed(EmbedError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("{0}")]
    InvalidFilter(String),
}

/// Query-string filters shared by every search endpoint.
#[derive(Debug, Default, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// How many results, 1 to 100 (default 10; larger is clamped).
    #[param(example = 10)]
    pub limit: Option<usize>,
    /// Only this category (exact match).
    #[param(example = "bags")]
    pub category: Option<String>,
    /// Only products at this price or above (a finite number).
    #[serde(default, deserialize_with = "finite")]
    #[param(example = 10.0)]
    pub min_price: Option<f64>,
    /// Only products at this price or below (a finite number).
    #[serde(default, deserialize_with = "finite")]
    #[param(example = 100.0)]
    pub max_price: Option<f64>,
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

    pub fn filter(&self) -> Result<Filter, SearchError> {
        if let (Some(lo), Some(hi)) = (self.min_price, self.max_price)
            && lo > hi
        {
            return Err(SearchError::InvalidFilter(format!(
                "min_price ({lo}) is greater than max_price ({hi})"
            )));
        }
        Ok(Filter {
            category: self.category.clone().filter(|c| !c.is_empty()),
            min_price: self.min_price,
            max_price: self.max_price,
            exclude_id: None,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct SearchResult {
    pub product_id: String,
    pub score: f32,
    pub title: Option<String>,
    pub category: Option<String>,
    pub price: Option<f64>,
    pub currency: Option<String>,
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
        }
    }
}

#[derive(Clone)]
pub struct SearchService {
    index: Arc<dyn VectorIndex>,
    embed: EmbedService,
}

impl SearchService {
    pub fn new(index: Arc<dyn VectorIndex>, embed: EmbedService) -> Self {
        Self { index, embed }
    }

    /// Products that look like `product_id`, never including itself.
    pub async fn similar_to(
        &self,
        product_id: &str,
        params: &SearchParams,
    ) -> Result<Vec<SearchResult>, SearchError> {
        let vector = self
            .index
            .get_vector(product_id)
            .await?
            .ok_or_else(|| SearchError::NotIndexed(product_id.to_string()))?;
        let filter = Filter {
            exclude_id: Some(product_id.to_string()),
            ..params.filter()?
        };
        let hits = self.index.search(&vector, &filter, params.limit()).await?;
        Ok(hits.into_iter().map(SearchResult::from).collect())
    }

    /// Products that look like the image in `bytes`.
    pub async fn by_image(
        &self,
        bytes: Bytes,
        params: &SearchParams,
    ) -> Result<Vec<SearchResult>, SearchError> {
        let filter = params.filter()?;
        let vector = self.embed.embed(bytes).await.map_err(|e| match e {
            EmbedError::Image(_) => SearchError::Image(e),
            other => SearchError::Embed(other),
        })?;
        let hits = self.index.search(&vector, &filter, params.limit()).await?;
        Ok(hits.into_iter().map(SearchResult::from).collect())
    }
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
}
