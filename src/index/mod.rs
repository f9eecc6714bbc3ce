//! Vector storage and similarity search behind one trait, [`VectorIndex`].
//!
//! The embedded default ([`embedded`]) keeps everything in the data
//! directory; a Qdrant backend implements the same trait. Callers never see
//! which one is in use: they upsert points (a vector plus the product fields
//! that search results show and filters use), delete them, and search with
//! [`Filter`]s.

pub mod embedded;
mod mapped;
pub mod qdrant;

use serde::{Deserialize, Serialize};

pub use embedded::EmbeddedIndex;

/// What a search result shows and what filters look at. Stored beside the
/// vector so that a search needs no second lookup.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Payload {
    pub product_id: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub price: Option<f64>,
    #[serde(default)]
    pub currency: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Point {
    pub vector: Vec<f32>,
    pub payload: Payload,
}

/// Search restrictions. All set conditions must hold; a list condition
/// holds when the payload's value is any of the list's (an empty list is no
/// condition). Values compare exactly, on every backend.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub category: Vec<String>,
    pub currency: Vec<String>,
    pub min_price: Option<f64>,
    pub max_price: Option<f64>,
    /// Never return this product (similar-to-itself).
    pub exclude_id: Option<String>,
}

impl Filter {
    /// Whether any condition looks at the payload (category or price).
    /// `exclude_id` alone does not: a backend can resolve it to one point
    /// up front instead of comparing ids on every candidate.
    pub fn has_payload_conditions(&self) -> bool {
        !self.category.is_empty()
            || !self.currency.is_empty()
            || self.min_price.is_some()
            || self.max_price.is_some()
    }

    pub fn matches(&self, p: &Payload) -> bool {
        if !any_of(&self.category, p.category.as_deref())
            || !any_of(&self.currency, p.currency.as_deref())
        {
            return false;
        }
        if self.min_price.is_some() || self.max_price.is_some() {
            let Some(price) = p.price else { return false };
            if self.min_price.is_some_and(|m| price < m)
                || self.max_price.is_some_and(|m| price > m)
            {
                return false;
            }
        }
        self.exclude_id.as_deref() != Some(p.product_id.as_str())
    }
}

/// Whether `value` passes a list condition: any value when the list is
/// empty, else one of the list's.
fn any_of(list: &[String], value: Option<&str>) -> bool {
    list.is_empty() || value.is_some_and(|v| list.iter().any(|l| l == v))
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    pub score: f32,
    pub payload: Payload,
}

#[derive(Debug, Clone, Serialize)]
pub struct IndexInfo {
    pub backend: &'static str,
    pub dim: usize,
    pub model_version: String,
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("index I/O at {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("index data at {path} is corrupt: {reason}")]
    Corrupt { path: String, reason: String },
    #[error(
        "the index at {path} holds vectors of model {found}, but the loaded model is {expected}; \
         vectors of two models cannot be mixed (re-embed the catalog into a new index)"
    )]
    ModelMismatch {
        path: String,
        found: String,
        expected: String,
    },
    #[error(
        "the index at {path} is already open for writing by another process (or another handle \
         in this one), which holds the lock on {path}/LOCK; only one process may write an index: stop the other `vitrine serve` or \
         `vitrine reindex`, or give this one its own data directory"
    )]
    Locked { path: String },
    #[error("vector has dimension {got}, the index expects {expected}")]
    Dimension { got: usize, expected: usize },
    #[error("index backend: {0}")]
    Backend(String),
}

/// Refuses a batch with any vector of the wrong dimension, before anything
/// is written.
pub fn check_dimensions(points: &[Point], dim: usize) -> Result<(), IndexError> {
    match points.iter().find(|p| p.vector.len() != dim) {
        Some(p) => Err(IndexError::Dimension {
            got: p.vector.len(),
            expected: dim,
        }),
        None => Ok(()),
    }
}

/// The storage seam for vectors. Implementations must be safe to share
/// across tasks; writes of one point are atomic (a reader sees the old or
/// the new vector, never half of each) and durable when the call returns.
#[async_trait::async_trait]
pub trait VectorIndex: Send + Sync {
    fn info(&self) -> IndexInfo;
    /// Inserts or replaces points, keyed by `payload.product_id`.
    async fn upsert(&self, points: Vec<Point>) -> Result<(), IndexError>;
    /// Replaces a point's payload, keeping its vector. False if absent.
    async fn set_payload(&self, payload: Payload) -> Result<bool, IndexError>;
    /// Removes points; returns how many existed.
    async fn delete(&self, ids: &[String]) -> Result<usize, IndexError>;
    /// The `limit` nearest points by cosine similarity that pass `filter`,
    /// best first.
    async fn search(
        &self,
        vector: &[f32],
        filter: &Filter,
        limit: usize,
    ) -> Result<Vec<Hit>, IndexError>;
    async fn get_vector(&self, id: &str) -> Result<Option<Vec<f32>>, IndexError>;
    async fn count(&self) -> Result<usize, IndexError>;
}
