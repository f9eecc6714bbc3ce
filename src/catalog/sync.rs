//! How each BakaiMarket event changes a product: the inbox handler for the
//! `bakai` provider.
//!
//! - `created`, `updated` (with an image) and `image.updated`: fetch the
//!   image, and embed + upsert it, unless its bytes (sha256) and the model are
//!   unchanged, in which case only the metadata is updated.
//! - `updated` without an image: metadata only.
//! - `deleted`: remove from the index, keep a tombstone row.
//! - An event older than the last one applied to its product is skipped and
//!   recorded as stale, so an update that arrives after a delete does not
//!   resurrect the product. Only applied events move that clock: an event
//!   that fails for good marks the product `failed` but leaves its clock
//!   alone ([`ProductStore::write_failure`]).
//!
//! Events for one product are applied one at a time: across instances the
//! inbox never claims an event while another event of its product is being
//! applied (`Inbox::claim`), and within one instance, where one claim may
//! take two events of a product, a per-product lock orders them. So the
//! stale check and the writes that follow it do not interleave with
//! another event for the same product. As a second line (a worker that lost
//! its lease may still be finishing), the product's clock is read again
//! just before each index write, and an event overtaken meanwhile stops
//! there as stale: the index follows the product row's version, so a
//! deleted product's vector cannot come back.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::{
    event::{EventKind, ProductEvent, parse_event},
    outcome::SyncOutcome,
    store::{ProductRow, ProductStatus, ProductStore, ProductWrite},
};
use crate::{
    embed::{EmbedError, EmbedService, FetchError, ImageFetcher},
    inbox::{ErrorKind, EventHandler, EventRecord, HandlerError, Outcome},
    index::{Payload, Point, VectorIndex},
    thumbs::ThumbStore,
};

// Defined in the module root (so that `event` can use them without
// importing this file); still reachable here, where callers find them.
pub use super::{ENTITY, PROVIDER};

/// One async mutex per product id, created on demand and dropped when no
/// one holds or waits for it.
#[derive(Default)]
pub struct KeyedLocks {
    // A std mutex: it guards only the map and is never held across `.await`.
    map: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

pub struct KeyGuard<'a> {
    parent: &'a KeyedLocks,
    key: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl KeyedLocks {
    pub async fn lock(&self, key: &str) -> KeyGuard<'_> {
        let m = {
            let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(key.to_string()).or_default().clone()
        };
        KeyGuard {
            parent: self,
            key: key.to_string(),
            guard: Some(m.lock_owned().await),
        }
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        let mut map = self.parent.map.lock().unwrap_or_else(|p| p.into_inner());
        self.guard.take();
        // Only the map's own reference left: nobody holds or waits.
        if map
            .get(&self.key)
            .is_some_and(|m| Arc::strong_count(m) == 1)
        {
            map.remove(&self.key);
        }
    }
}

/// A new image's nearest indexed neighbours (product id, cosine
/// similarity), or why the index could not say.
type NearResult = Result<Vec<(String, f32)>, String>;

pub struct CatalogSync {
    pub products: ProductStore,
    pub index: Arc<dyn VectorIndex>,
    pub embed: EmbedService,
    pub fetcher: ImageFetcher,
    locks: KeyedLocks,
    /// Thumbnails made from the fetched images, and the pixel cap they are
    /// decoded under (`embed.max_pixels`).
    thumbs: Option<ThumbStore>,
    duplicates: Option<(
        super::duplicates::DuplicateStore,
        crate::config::DuplicatesSettings,
    )>,
}

impl From<FetchError> for HandlerError {
    fn from(e: FetchError) -> Self {
        let kind = if e.is_transient() {
            ErrorKind::Transient
        } else {
            ErrorKind::Permanent
        };
        HandlerError::new(kind, e.to_string()).with_detail(e.detail())
    }
}

impl From<EmbedError> for HandlerError {
    fn from(e: EmbedError) -> Self {
        // A bad image will be just as bad next time; a runtime hiccup may not.
        let kind = if matches!(e, EmbedError::Image(_)) {
            ErrorKind::Permanent
        } else {
            ErrorKind::Transient
        };
        HandlerError::new(kind, e.to_string())
    }
}

// Index and database errors name files, hosts and internals: the public
// text is a class, the detail goes to the admin API and the logs.
impl From<crate::index::IndexError> for HandlerError {
    fn from(e: crate::index::IndexError) -> Self {
        HandlerError::transient("vector index unavailable").with_detail(e.to_string())
    }
}

impl From<sqlx::Error> for HandlerError {
    fn from(e: sqlx::Error) -> Self {
        HandlerError::transient("database unavailable").with_detail(format!("database: {e}"))
    }
}

/// The stored body, read with the very parse the webhook accepted it with.
/// (The clock-skew check is the webhook's alone: a stored event only gets
/// older.)
fn parse(record: &EventRecord) -> Result<ProductEvent, HandlerError> {
    parse_event(record.payload.as_bytes())
        .map_err(|e| HandlerError::permanent(format!("stored payload: {e}")))
}

/// The payload the index shows: event fields, falling back to stored ones.
fn merged_payload(ev: &ProductEvent, current: Option<&ProductRow>) -> Payload {
    let d = &ev.data;
    Payload {
        product_id: d.product_id.clone(),
        title: d
            .title
            .clone()
            .or_else(|| current.and_then(|c| c.title.clone())),
        category: d
            .category
            .clone()
            .or_else(|| current.and_then(|c| c.category.clone())),
        price: d.price.or_else(|| current.and_then(|c| c.price)),
        currency: d
            .currency
            .clone()
            .or_else(|| current.and_then(|c| c.currency.clone())),
    }
}

impl CatalogSync {
    pub fn new(
        products: ProductStore,
        index: Arc<dyn VectorIndex>,
        embed: EmbedService,
        fetcher: ImageFetcher,
    ) -> Self {
        Self {
            products,
            index,
            embed,
            fetcher,
            locks: KeyedLocks::default(),
            thumbs: None,
            duplicates: None,
        }
    }

    /// Also looks for near-duplicates of each newly embedded image.
    pub fn with_duplicates(
        mut self,
        store: super::duplicates::DuplicateStore,
        settings: crate::config::DuplicatesSettings,
    ) -> Self {
        self.duplicates = settings.enabled.then_some((store, settings));
        self
    }

    /// The nearest indexed neighbours of a new vector (the product itself
    /// among them), for its near-duplicates: product id and cosine
    /// similarity. `None` when the
    /// check is off; an error (logged by the caller) when the index could
    /// not answer.
    async fn neighbours(&self, vector: Option<Vec<f32>>) -> Option<NearResult> {
        let ((_, cfg), vector) = self.duplicates.as_ref().zip(vector)?;
        let hits = self
            .index
            .search(
                &vector,
                &crate::index::Filter::default(),
                cfg.neighbours + 1,
            )
            .await;
        Some(
            hits.map(|hits| {
                hits.into_iter()
                    .map(|h| (h.payload.product_id, h.score))
                    .collect()
            })
            .map_err(|e| e.to_string()),
        )
    }

    /// The near-duplicate pairs to write with `id`'s new image, read
    /// before its write transaction: `None` when the check is off, when
    /// there is nothing to store or to clear (a product with no duplicates
    /// that had none, most of a catalog), or when they could not be read
    /// (logged; the event does not fail for it).
    async fn pairs_to_write(
        &self,
        id: &str,
        sha: &str,
        near: Option<NearResult>,
    ) -> Option<Vec<super::duplicates::Found>> {
        let ((store, cfg), near) = self.duplicates.as_ref().zip(near)?;
        let pairs = async {
            let near = near?;
            let same = self
                .products
                .with_image(sha, id)
                .await
                .map_err(|e| e.to_string())?;
            let found = super::duplicates::found(id, &near, &same, cfg.threshold);
            let write =
                !found.is_empty() || store.has_pairs(id).await.map_err(|e| e.to_string())?;
            Ok::<_, String>(write.then_some(found))
        }
        .await;
        pairs.unwrap_or_else(|e| {
            tracing::warn!(error = %e, product = %id, "near-duplicates not checked");
            None
        })
    }

    /// Marks a newly embedded product indexed and, with the check on,
    /// stores its near-duplicates (`near`, and every indexed product with
    /// the same image, `sha`) in the same transaction: one commit, and so
    /// one `fsync` on SQLite, per embedded image, not two. What they are is
    /// read first, outside the transaction ([`Self::pairs_to_write`]), so
    /// that the single writer is held no longer than the writes take. The pairs are
    /// written under a savepoint: a failure to store them is logged and
    /// never fails the event (the product is indexed either way, and its
    /// next image event looks again).
    ///
    /// Two identical images indexed at the same moment may each read
    /// before the other is marked indexed: their pair is then stored from
    /// the vector index (each was upserted before either read it), with
    /// their cosine similarity, not flagged identical.
    async fn write_indexed(
        &self,
        w: ProductWrite<'_>,
        sha: &str,
        near: Option<NearResult>,
    ) -> Result<(), HandlerError> {
        let id = w.data.product_id.as_str();
        let Some(found) = self.pairs_to_write(id, sha, near).await else {
            self.products.write(w).await?;
            return Ok(());
        };
        let db = self.products.db();
        let turn = db.background_turn().await;
        let mut tx = db.writer().begin().await?;
        let mut new = 0;
        if ProductStore::write_on(&mut *tx, &w).await? {
            let mut savepoint = sqlx::Connection::begin(&mut *tx).await?;
            match super::duplicates::DuplicateStore::replace_on(&mut savepoint, id, &found).await {
                Ok(n) => {
                    savepoint.commit().await?;
                    new = n;
                }
                Err(e) => {
                    savepoint.rollback().await?;
                    tracing::warn!(error = %e, product = %id, "near-duplicates not checked");
                }
            }
        }
        tx.commit().await?;
        drop(turn);
        if new > 0 {
            metrics::counter!("visual_search_duplicates_found_total").increment(new as u64);
            tracing::info!(product = %id, new, "near-duplicates found");
        }
        Ok(())
    }

    /// Also makes each product's thumbnail at ingest.
    pub fn with_thumbnails(mut self, store: ThumbStore) -> Self {
        self.thumbs = Some(store);
        self
    }

    /// Makes the product's thumbnail from the fetched bytes, unless the
    /// stored one was made from the same image. A failure is logged and
    /// never fails the event: the product is searchable without one (the
    /// pages show a placeholder), and the next image event tries again.
    async fn thumbnail(&self, id: &str, bytes: &Bytes, sha: &str) {
        let Some(store) = &self.thumbs else {
            return;
        };
        match store.source_of(id).await {
            Ok(Some(s)) if s == sha => return,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, product = %id, "thumbnail: cannot read the stored one");
                return;
            }
        }
        // The decode goes through the embedder's limits: its pixel cap, and
        // its decode memory budget, shared with the embedding decodes.
        let (b, limits) = (bytes.clone(), self.embed.embedder().decode_limits().clone());
        let made = tokio::task::spawn_blocking(move || crate::thumbs::make(&b, &limits)).await;
        let stored = match made {
            Ok(Ok(jpeg)) => store.put(id, sha, jpeg).await.map_err(|e| e.to_string()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = stored {
            tracing::warn!(error = %e, product = %id, "thumbnail not made");
        }
    }

    /// `Some(stale)` if an event newer than `ev` has been applied to its
    /// product since [`CatalogSync::apply`] first looked: checked right
    /// before each index write, so the index never goes back a version.
    async fn overtaken(&self, ev: &ProductEvent) -> Result<Option<SyncOutcome>, HandlerError> {
        let at = ev.timestamp.timestamp_millis();
        let last = self
            .products
            .get(&ev.data.product_id)
            .await?
            .and_then(|c| c.last_event_at);
        Ok(match last {
            Some(last) if at < last => Some(SyncOutcome::Stale {
                product_id: ev.data.product_id.clone(),
                event_at: ev.timestamp,
                last_changed: chrono::DateTime::from_timestamp_millis(last).unwrap_or_default(),
            }),
            _ => None,
        })
    }

    async fn apply(&self, ev: &ProductEvent) -> Result<SyncOutcome, HandlerError> {
        let id = &ev.data.product_id;
        let _guard = self.locks.lock(id).await;
        let at = ev.timestamp.timestamp_millis();
        let current = self.products.get(id).await?;
        if let Some(last) = current.as_ref().and_then(|c| c.last_event_at)
            && at < last
        {
            return Ok(SyncOutcome::Stale {
                product_id: id.clone(),
                event_at: ev.timestamp,
                last_changed: chrono::DateTime::from_timestamp_millis(last).unwrap_or_default(),
            });
        }
        let write = |status, error: Option<String>| ProductWrite {
            data: &ev.data,
            status,
            image_ref: None,
            image_sha256: None,
            model_version: None,
            error,
            embedded: false,
            labels: None,
            event_id: &ev.event_id,
            event_at: at,
        };

        if ev.kind == EventKind::Deleted {
            if let Some(stale) = self.overtaken(ev).await? {
                return Ok(stale);
            }
            let removed = self.index.delete(std::slice::from_ref(id)).await?;
            self.products
                .write(write(ProductStatus::Deleted, None))
                .await?;
            if let Some(store) = &self.thumbs
                && let Err(e) = store.delete(id).await
            {
                tracing::warn!(error = %e, product = %id, "thumbnail of a deleted product kept");
            }
            if let Some((store, _)) = &self.duplicates
                && let Err(e) = store.remove(id).await
            {
                tracing::warn!(error = %e, product = %id, "near-duplicates of a deleted product kept");
            }
            return Ok(SyncOutcome::Deleted {
                removed: removed > 0,
            });
        }

        let indexed = current
            .as_ref()
            .is_some_and(|c| c.status == ProductStatus::Indexed);
        let payload = merged_payload(ev, current.as_ref());
        let Some(image) = ev.data.image() else {
            // `updated` without an image: metadata only.
            if indexed {
                if let Some(stale) = self.overtaken(ev).await? {
                    return Ok(stale);
                }
                self.index.set_payload(payload).await?;
            }
            let status = match current.as_ref().map(|c| c.status) {
                None | Some(ProductStatus::Deleted) => ProductStatus::Pending,
                Some(status) => status,
            };
            let error = current.as_ref().and_then(|c| c.error.clone());
            self.products.write(write(status, error)).await?;
            return Ok(SyncOutcome::MetadataOnly);
        };

        let bytes: Bytes = self.fetcher.fetch(&image).await?;
        let sha = hex::encode(Sha256::digest(&bytes));
        let version = self.embed.info().version.clone();
        let unchanged = indexed
            && current.as_ref().is_some_and(|c| {
                c.image_sha256.as_deref() == Some(sha.as_str())
                    && c.model_version.as_deref() == Some(version.as_str())
            });
        // The fetch and the embedding took a while: has a newer event been
        // applied meanwhile?
        if let Some(stale) = self.overtaken(ev).await? {
            return Ok(stale);
        }
        if unchanged && self.index.set_payload(payload.clone()).await? {
            self.products
                .write(ProductWrite {
                    image_ref: Some(image.as_str().to_string()),
                    ..write(ProductStatus::Indexed, None)
                })
                .await?;
            self.thumbnail(id, &bytes, &sha).await;
            return Ok(SyncOutcome::ImageUnchanged);
        }

        let embedded = self.embed.embed_labelled(bytes.clone()).await?;
        if let Some(stale) = self.overtaken(ev).await? {
            return Ok(stale);
        }
        let labels = labels_json(&embedded.labels);
        let vector = self.duplicates.is_some().then(|| embedded.vector.clone());
        self.index
            .upsert(vec![Point {
                vector: embedded.vector,
                payload,
            }])
            .await?;
        let near = self.neighbours(vector).await;
        self.write_indexed(
            ProductWrite {
                image_ref: Some(image.as_str().to_string()),
                image_sha256: Some(sha.clone()),
                model_version: Some(version),
                embedded: true,
                labels,
                ..write(ProductStatus::Indexed, None)
            },
            &sha,
            near,
        )
        .await?;
        self.thumbnail(id, &bytes, &sha).await;
        Ok(SyncOutcome::Indexed)
    }
}

/// Labels as the `products.labels` column stores them; `None` when the
/// model gave none.
pub fn labels_json(labels: &[crate::embed::Label]) -> Option<String> {
    (!labels.is_empty()).then(|| serde_json::to_string(labels).expect("labels serialise"))
}

#[async_trait::async_trait]
impl EventHandler for CatalogSync {
    async fn handle(&self, record: &EventRecord) -> Result<Outcome, HandlerError> {
        let ev = parse(record)?;
        Ok(self.apply(&ev).await?.into())
    }

    async fn on_final_failure(&self, record: &EventRecord, error: &str) {
        let Ok(ev) = parse(record) else { return };
        let _guard = self.locks.lock(&ev.data.product_id).await;
        // Not `write`: only applied events move the product's clock.
        let written = self
            .products
            .write_failure(
                &ev.data,
                ev.data.image().map(|i| i.as_str().to_string()),
                error,
                ev.timestamp.timestamp_millis(),
            )
            .await;
        if let Err(e) = written {
            tracing::error!(error = %e, product = %ev.data.product_id, "could not record product failure");
        }
    }
}
