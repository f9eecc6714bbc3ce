//! The async adapter: [`VectorIndex`] for [`EmbeddedIndex`], running the
//! blocking work on the index's own sized pools (after Qdrant's named,
//! sized runtimes) rather than on tokio's blocking pool, whose threads grow
//! without bound (512 by default) under a burst of searches.
//!
//! - **search** (`EmbeddedOptions::search_threads`, default one per core):
//!   scans and vector reads. A burst of searches queues here instead of
//!   spawning a thread each; each scan runs on one thread.
//! - **write** (one thread): upserts, payload updates and deletes. Writes
//!   are serialised by the writer mutex anyway, so more threads would only
//!   wait on it; a dedicated one means that a write's `fsync` never holds a
//!   search thread.
//!
//! The caller awaits a oneshot; the current tracing span goes along.

use std::{panic::AssertUnwindSafe, sync::Arc};

use rayon::{ThreadPool, ThreadPoolBuilder};

use super::{Core, EmbeddedIndex, EmbeddedOptions};
use crate::index::{Filter, Hit, IndexError, IndexInfo, Payload, Point, VectorIndex};

pub(super) struct Pools {
    search: ThreadPool,
    write: ThreadPool,
}

impl Pools {
    pub(super) fn new(options: &EmbeddedOptions) -> Result<Self, IndexError> {
        let build = |name: &'static str, threads: usize| {
            ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(move |i| format!("vitrine-index-{name}-{i}"))
                .build()
                .map_err(|e| IndexError::Backend(format!("index {name} pool: {e}")))
        };
        Ok(Self {
            // rayon reads 0 as "one thread per core".
            search: build("search", options.search_threads)?,
            write: build("write", 1)?,
        })
    }

    pub(super) fn search_threads(&self) -> usize {
        self.search.current_num_threads()
    }
}

/// Runs `f` on `pool` with its own handle on the index, and awaits it.
async fn run_on<T: Send + 'static>(
    pool: &ThreadPool,
    core: &Arc<Core>,
    f: impl FnOnce(&Core) -> Result<T, IndexError> + Send + 'static,
) -> Result<T, IndexError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let core = core.clone();
    let span = tracing::Span::current();
    pool.spawn(move || {
        let _entered = span.enter();
        // rayon aborts the process on a panic in a spawned job; turn it
        // into this call's error instead, as `spawn_blocking` did.
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| f(&core)))
            .unwrap_or_else(|_| Err(IndexError::Backend("index task panicked".into())));
        // Let go of the index before answering: once the caller has its
        // answer, no job holds the index (and its directory lock), so a
        // caller that drops the index and reopens it never races this one.
        drop(core);
        let _ = tx.send(result);
    });
    rx.await
        .map_err(|_| IndexError::Backend("index task was dropped".into()))?
}

#[async_trait::async_trait]
impl VectorIndex for EmbeddedIndex {
    fn info(&self) -> IndexInfo {
        IndexInfo {
            backend: "embedded",
            dim: self.core.dim,
            model_version: self.core.model_version.clone(),
        }
    }

    async fn upsert(&self, points: Vec<Point>) -> Result<(), IndexError> {
        run_on(&self.pools.write, &self.core, move |c| {
            c.upsert_sync(points)
        })
        .await
    }

    async fn set_payload(&self, payload: Payload) -> Result<bool, IndexError> {
        run_on(&self.pools.write, &self.core, move |c| {
            c.set_payload_sync(payload)
        })
        .await
    }

    async fn delete(&self, ids: &[String]) -> Result<usize, IndexError> {
        let ids = ids.to_vec();
        run_on(&self.pools.write, &self.core, move |c| c.delete_sync(&ids)).await
    }

    async fn search(
        &self,
        vector: &[f32],
        filter: &Filter,
        limit: usize,
    ) -> Result<Vec<Hit>, IndexError> {
        let (vector, filter) = (vector.to_vec(), filter.clone());
        run_on(&self.pools.search, &self.core, move |c| {
            c.search_sync(&vector, &filter, limit)
        })
        .await
    }

    async fn get_vector(&self, id: &str) -> Result<Option<Vec<f32>>, IndexError> {
        let id = id.to_string();
        run_on(&self.pools.search, &self.core, move |c| {
            c.get_vector_sync(&id)
        })
        .await
    }

    async fn count(&self) -> Result<usize, IndexError> {
        Ok(self.len())
    }
}
