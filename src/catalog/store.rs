//! The `products` table: metadata, index status and the timestamp of the
//! last event applied, which is what makes stale events detectable.

use serde::{Deserialize, Serialize};

use super::event::ProductData;
use crate::db::{Db, now_ms, text_vocabulary};

/// A product's index status: the `status` column of `products` (its `CHECK`
/// lists the same words) and the `status` field of the product API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProductStatus {
    /// Known, not (yet) in the index: its image has not been embedded, or it
    /// came back after a delete through an event without an image.
    Pending,
    /// In the vector index with its current image.
    Indexed,
    /// Its last event failed for good; `error` says why.
    Failed,
    /// Deleted: out of the index, kept as a tombstone so that an older event
    /// arriving late cannot bring it back.
    Deleted,
}

impl ProductStatus {
    pub const ALL: [ProductStatus; 4] = [
        ProductStatus::Pending,
        ProductStatus::Indexed,
        ProductStatus::Failed,
        ProductStatus::Deleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProductStatus::Pending => "pending",
            ProductStatus::Indexed => "indexed",
            ProductStatus::Failed => "failed",
            ProductStatus::Deleted => "deleted",
        }
    }
}

text_vocabulary!(ProductStatus, "product status");

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
    pub status: ProductStatus,
    pub error: Option<String>,
    pub model_version: Option<String>,
    /// The classifier's labels of its current image, as JSON
    /// (`[{"name","score"}]`); see `embed::Label`.
    pub labels: Option<String>,
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
    pub status: ProductStatus,
    pub image_ref: Option<String>,
    pub image_sha256: Option<String>,
    pub model_version: Option<String>,
    pub error: Option<String>,
    /// Whether this write produced a new embedding (counted per product).
    /// Only then are `labels` written: they belong to the embedded image.
    pub embedded: bool,
    /// The new embedding's labels as JSON (`None`: the model has none).
    pub labels: Option<String>,
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

    /// The indexed products other than `except` whose image has this
    /// sha256 (identical images: always near-duplicates).
    pub async fn with_image(&self, sha256: &str, except: &str) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT product_id FROM products \
             WHERE image_sha256 = $1 AND product_id <> $2 AND status = $3 ORDER BY product_id",
        )
        .bind(sha256)
        .bind(except)
        .bind(ProductStatus::Indexed)
        .fetch_all(self.db.reader())
        .await
    }

    /// The database this store writes to, for a caller that commits a
    /// product write together with its own rows.
    pub fn db(&self) -> &Db {
        &self.db
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
        // Workers write products; no request waits on it (see `crate::db`).
        let _turn = self.db.background_turn().await;
        Self::write_on(self.db.writer(), &w).await
    }

    /// [`ProductStore::write`] on a connection or transaction the caller
    /// holds (and took [`Db::background_turn`] for).
    pub async fn write_on<'e, E>(conn: E, w: &ProductWrite<'_>) -> Result<bool, sqlx::Error>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        let now = now_ms();
        let r = sqlx::query(
            "INSERT INTO products (product_id, title, description, category, price, currency, \
               image_ref, image_sha256, status, error, model_version, embed_count, \
               last_event_id, last_event_at, created_at, updated_at, labels) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15, $16) \
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
               labels = CASE WHEN excluded.embed_count > 0 THEN excluded.labels \
                 ELSE products.labels END, \
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
        .bind(w.labels.as_deref().filter(|_| w.embedded))
        // A price that may be NULL: see `browse`.
        .persistent(false)
        .execute(conn)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Records that an event failed for good: the product shows `failed`
    /// with the reason (and the event's fields, as an applied event would),
    /// but its clock (`last_event_at`, `last_event_id`) stays where the last
    /// *applied* event left it. A failed event changed nothing in the index,
    /// so it must not make a later, valid event that happens to be older
    /// look stale. Like [`ProductStore::write`], it changes nothing when the
    /// failed event is older than the last one applied. Returns whether it
    /// wrote.
    pub async fn write_failure(
        &self,
        data: &ProductData,
        image_ref: Option<String>,
        error: &str,
        event_at: i64,
    ) -> Result<bool, sqlx::Error> {
        let now = now_ms();
        let _turn = self.db.background_turn().await;
        let r = sqlx::query(
            "INSERT INTO products (product_id, title, description, category, price, currency, \
               image_ref, status, error, embed_count, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $10) \
             ON CONFLICT (product_id) DO UPDATE SET \
               title = COALESCE(excluded.title, products.title), \
               description = COALESCE(excluded.description, products.description), \
               category = COALESCE(excluded.category, products.category), \
               price = COALESCE(excluded.price, products.price), \
               currency = COALESCE(excluded.currency, products.currency), \
               image_ref = COALESCE(excluded.image_ref, products.image_ref), \
               status = excluded.status, \
               error = excluded.error, \
               updated_at = excluded.updated_at \
             WHERE products.last_event_at IS NULL OR products.last_event_at <= $11",
        )
        .bind(&data.product_id)
        .bind(&data.title)
        .bind(&data.description)
        .bind(&data.category)
        .bind(data.price)
        .bind(&data.currency)
        .bind(&image_ref)
        .bind(ProductStatus::Failed)
        .bind(error)
        .bind(now)
        .bind(event_at)
        // A price that may be NULL: see `browse`.
        .persistent(false)
        .execute(self.db.writer())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Indexed products, by id, all of them or (with `since`, Unix ms) those
    /// changed since then: what `vitrine reindex` re-embeds.
    pub async fn indexed_since(&self, since: Option<i64>) -> Result<Vec<ProductRow>, sqlx::Error> {
        sqlx::query_as(
            "SELECT * FROM products WHERE status = $1 AND ($2 IS NULL OR updated_at >= $2) \
             ORDER BY product_id",
        )
        .bind(ProductStatus::Indexed)
        .bind(since)
        .fetch_all(self.db.reader())
        .await
    }

    /// Sets a product's labels (the reindex backfill), leaving everything
    /// else alone. Returns whether the product exists.
    pub async fn set_labels(&self, id: &str, labels: Option<&str>) -> Result<bool, sqlx::Error> {
        let _turn = self.db.background_turn().await;
        let r = sqlx::query("UPDATE products SET labels = $1 WHERE product_id = $2")
            .bind(labels)
            .bind(id)
            .execute(self.db.writer())
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Records that every indexed product's vector now comes from model
    /// `version` (after a reindex went live). Returns how many rows changed.
    pub async fn set_indexed_model_version(&self, version: &str) -> Result<u64, sqlx::Error> {
        let r = sqlx::query("UPDATE products SET model_version = $1 WHERE status = $2")
            .bind(version)
            .bind(ProductStatus::Indexed)
            .execute(self.db.writer())
            .await?;
        Ok(r.rows_affected())
    }

    /// Indexed products for browsing, newest first: one page of `limit`
    /// from `offset`, with the same category and price filters as search
    /// (unset filters are NULL, so the SQL stays static and portable).
    pub async fn browse(
        &self,
        category: Option<&str>,
        min_price: Option<f64>,
        max_price: Option<f64>,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<ProductRow>, sqlx::Error> {
        // Not a cached statement: it binds a price that may be NULL, and
        // sqlx 0.9's Any driver sends a NULL f64 to PostgreSQL as a float4
        // (`AnyValueKind::Null(Double)` becomes `Option<f32>`), so a
        // statement first prepared with a NULL price would then refuse a
        // real one ("incorrect binary data format in bind parameter").
        sqlx::query_as(
            "SELECT * FROM products WHERE status = $1 AND ($2 IS NULL OR category = $2) \
             AND ($3 IS NULL OR price >= $3) AND ($4 IS NULL OR price <= $4) \
             ORDER BY updated_at DESC, product_id LIMIT $5 OFFSET $6",
        )
        .bind(ProductStatus::Indexed)
        .bind(category)
        .bind(min_price)
        .bind(max_price)
        .bind(limit)
        .bind(offset)
        .persistent(false)
        .fetch_all(self.db.reader())
        .await
    }

    /// The categories of indexed products, sorted.
    pub async fn categories(&self) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT DISTINCT category FROM products WHERE status = $1 \
             AND category IS NOT NULL ORDER BY category",
        )
        .bind(ProductStatus::Indexed)
        .fetch_all(self.db.reader())
        .await
    }

    pub async fn count_by_status(&self) -> Result<Vec<(ProductStatus, i64)>, sqlx::Error> {
        sqlx::query_as("SELECT status, COUNT(*) FROM products GROUP BY status")
            .fetch_all(self.db.reader())
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every word round-trips, and the enum and the `CHECK` constraint of
    /// both engines' schemas list the same words, in the same order.
    #[test]
    fn statuses_round_trip_and_match_the_schema() {
        crate::db::check_vocabulary(
            &ProductStatus::ALL,
            &["pending", "indexed", "failed", "deleted"],
            "completed",
            "unknown product status `completed`",
        );
    }
}
