//! `vitrine reindex`: re-embed every live product with the model in
//! `model_dir` into that model version's own index, then make it the live
//! one.
//!
//! - Search keeps answering from the old index throughout: the embedded
//!   index is always built into a fresh folder (`<model>-<version>.<time>`),
//!   even when the model is unchanged, so a reindex never writes a folder
//!   a running server has open; Qdrant builds the new version's own
//!   collection. A server keeps serving the folder it opened; restarted,
//!   it opens the one `LIVE` names.
//! - Resumable: an interrupted run's folder (still marked `BUILDING`) is
//!   reused by the next run, and a product already in it is skipped.
//! - Changes that arrive while it runs are caught by a second pass over
//!   products updated since the start.
//! - The switch is atomic: the embedded index's `LIVE` file is replaced by a
//!   rename; Qdrant's alias is moved in one alias operation.

use std::sync::Arc;

use futures::StreamExt;

use crate::{
    app::{self, open_inbox},
    catalog::{ProductRow, ProductStore, sync::labels_json},
    config::Settings,
    db::now_ms,
    embed::{EmbedService, Embedder, ImageFetcher, ImageRef},
    index::{Payload, Point, VectorIndex},
};

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ReindexReport {
    pub model_version: String,
    pub target: String,
    pub total: usize,
    pub embedded: usize,
    pub skipped: usize,
    pub failed: Vec<(String, String)>,
}

/// Runs a reindex; `progress(done, total)` is called as products finish.
pub async fn run(
    settings: &Settings,
    progress: impl Fn(usize, usize) + Send + Sync,
) -> anyhow::Result<ReindexReport> {
    let (db, _) = open_inbox(settings).await?;
    let products = ProductStore::new(db.clone());
    let s = settings.embed.clone();
    let embedder = tokio::task::spawn_blocking(move || Embedder::from_settings(&s)).await??;
    let info = embedder.info().clone();
    let embed = EmbedService::start(embedder, settings.embed.batch);
    let fetcher = ImageFetcher::from_settings(&settings.fetch, settings.s3.as_ref()).await?;
    let target = app::open_build_index(settings, &info).await?;

    let started = now_ms();
    let mut report = ReindexReport {
        model_version: info.version.clone(),
        target: target.describe(),
        ..Default::default()
    };
    // Pass 1: everything live. Pass 2: whatever changed meanwhile.
    for (pass, since) in [(1, None), (2, Some(started))] {
        let rows = products.indexed_since(since).await?;
        if pass == 1 {
            report.total = rows.len();
        }
        let index: &Arc<dyn VectorIndex> = &target.index;
        let done = std::sync::atomic::AtomicUsize::new(0);
        let results: Vec<Result<bool, (String, String)>> = futures::stream::iter(rows)
            .map(|p| {
                let (embed, fetcher, index, done) = (&embed, &fetcher, index, &done);
                let products = &products;
                let progress = &progress;
                let total = report.total;
                async move {
                    let r =
                        reindex_one(p, pass == 2, embed, fetcher, index.as_ref(), products).await;
                    let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    if pass == 1 {
                        progress(n, total);
                    }
                    r
                }
            })
            .buffer_unordered(settings.worker.concurrency)
            .collect()
            .await;
        for r in results {
            match r {
                Ok(true) => report.embedded += 1,
                Ok(false) => report.skipped += usize::from(pass == 1),
                Err(e) => report.failed.push(e),
            }
        }
    }
    target.make_live().await?;
    products.set_indexed_model_version(&info.version).await?;
    db.close().await;
    Ok(report)
}

async fn reindex_one(
    p: ProductRow,
    force: bool,
    embed: &EmbedService,
    fetcher: &ImageFetcher,
    index: &dyn VectorIndex,
    products: &ProductStore,
) -> Result<bool, (String, String)> {
    let fail = |e: String| (p.product_id.clone(), e);
    // A product indexed before labels existed is embedded again for its
    // labels (the backfill), though its vector is there.
    let lacks_labels = p.labels.is_none() && !embed.info().label_names.is_empty();
    if !force
        && !lacks_labels
        && index
            .get_vector(&p.product_id)
            .await
            .map_err(|e| fail(e.to_string()))?
            .is_some()
    {
        return Ok(false);
    }
    let Some(image) = p.image_ref.as_deref() else {
        return Err(fail("no image reference stored".into()));
    };
    let bytes = fetcher
        .fetch(&ImageRef::from_stored(image))
        .await
        .map_err(|e| fail(e.to_string()))?;
    let embedded = embed
        .embed_labelled(bytes)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let vector = embedded.vector;
    let payload = Payload {
        product_id: p.product_id.clone(),
        title: p.title.clone(),
        category: p.category.clone(),
        price: p.price,
        currency: p.currency.clone(),
    };
    index
        .upsert(vec![Point { vector, payload }])
        .await
        .map_err(|e| fail(e.to_string()))?;
    products
        .set_labels(&p.product_id, labels_json(&embedded.labels).as_deref())
        .await
        .map_err(|e| fail(e.to_string()))?;
    Ok(true)
}
