//! The `products` table: metadata, index status and the timestamp of the
//! last event applied, which is what makes stale events detectable.

use serde::Serialize;

use super::event::ProductData;
use crate::db::{Db, now_ms};

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct ProductRow {
    pub product_id: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub price: Option<f64>,
    pub currency: Option<String>,
    pub image_ref: Option<String>,
    pub image_sha256: Option<String>,
    pub status: String,
    pub error: Option<String>,
    pub model_version: Option<String>,
    pub embed_count: i64,
    pub last_event_id: Option<String>,
    pub last_event_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A product change to record, with the event that caused it.
#[derive(Debug, Clone)]
pub struct ProductWrite<'a> {
    pub data: &'a ProductData,
    pub status: &'a str,
    pub image_ref: Option<String>,
    pub image_sha256: Option<String>,
    pub model_version: Option<String>,
    pub error: Option<String>,
    /// Whether this write produced a new embedding (counted per product).
    pub embedded: bool,
    pub event_id: &'a str,
    pub event_at: i64,
}

#[derive(Debug, Clone)]
pub struct ProductStore {
    db: Db,
}

impl ProductStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub async fn get(&self, id: &str) -> Result<Option<ProductRow>, sqlx::Error> {
        sqlx::query_as("SELECT * FROM products WHERE product_id = $1")
            .bind(id)
            .fetch_optional(self.db.reader())
            .await
    }

    /// Inserts or updates a product. Fields the event leaves out keep their
    /// stored values. The `WHERE` on `last_event_at` makes the write a no-op
    /// for an event older than the last one applied; returns whether it
    /// applied.
    pub async fn write(&self, w: ProductWrite<'_>) -> Result<bool, sqlx::Error> {
        let now = now_ms();
        // Workers write products; no request waits on it (see `crate::db`).
        let _turn = self.db.background_turn().await;
        let r = sqlx::query(
            "INSERT INTO products (product_id, title, description, category, price, currency, \
               image_ref, image_sha256, status, error, model_version, embed_count, \
               last_event_id, last_event_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15) \
             ON CONFLICT (product_id) DO UPDATE SET \
               title = COALESCE(excluded.title, products.title), \
               description = COALESCE(excluded.description, products.description), \
               category = COALESCE(excluded.category, products.category), \
               price = COALESCE(excluded.price, products.price), \
               currency = COALESCE(excluded.currency, products.currency), \
               image_ref = COALESCE(excluded.image_ref, products.image_ref), \
               image_sha256 = COALESCE(excluded.image_sha256, products.image_sha256), \
               model_version = COALESCE(excluded.model_version, products.model_version), \
               status = excluded.status, \
               error = excluded.error, \
               embed_count = products.embed_count + excluded.embed_count, \
               last_event_id = excluded.last_event_id, \
               last_event_at = excluded.last_event_at, \
               updated_at = excluded.updated_at \
             WHERE products.last_event_at IS NULL OR products.last_event_at <= excluded.last_event_at",
        )
        .bind(&w.data.product_id)
        .bind(&w.data.title)
        .bind(&w.data.description)
        .bind(&w.data.category)
        .bind(w.data.price)
        .bind(&w.data.currency)
        .bind(&w.image_ref)
        .bind(&w.image_sha256)
        .bind(w.status)
        .bind(&w.error)
        .bind(&w.model_version)
        .bind(i64::from(w.embedded))
        .bind(w.event_id)
        .bind(w.event_at)
        .bind(now)
        .execute(self.db.writer())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn count_by_status(&self) -> Result<Vec<(String, i64)>, sqlx::Error> {
        sqlx::query_as("SELECT status, COUNT(*) FROM products GROUP BY status")
            .fetch_all(self.db.reader())
            .await
    }
}
