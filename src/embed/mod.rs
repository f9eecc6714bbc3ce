//! Image → vector. Owns fetching ([`fetch`]: where an image is
//! ([`ImageRef`]), http/file/S3 with limits and an SSRF guard),
//! preprocessing ([`preprocess`]: checked decode, SIMD resize, tensor), the
//! model ([`manifest`], [`model`]: ORT sessions in a sized rayon pool) and
//! [`EmbedService`], the async front that batches concurrent requests.

pub mod fetch;
pub mod manifest;
pub mod model;
pub mod preprocess;

pub use fetch::s3;

use std::{sync::Arc, time::Instant};

use bytes::Bytes;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::task::TaskTracker;

pub use fetch::{FetchError, ImageFetcher, ImageRef};
pub use manifest::ModelInfo;
pub use model::{Embedded, Embedder, Label};
pub use preprocess::PreprocessError;

/// A unit-length embedding vector.
pub type Embedding = Vec<f32>;

#[derive(Debug, thiserror::Error, Clone)]
pub enum EmbedError {
    #[error(transparent)]
    Image(#[from] PreprocessError),
    #[error("model: {0}")]
    Model(String),
    #[error("ONNX Runtime: {0}")]
    Runtime(String),
    #[error("inference failed: {0}")]
    Inference(String),
    #[error("the embedding service has stopped")]
    Stopped,
}

struct Job {
    bytes: Bytes,
    reply: oneshot::Sender<Result<Embedded, EmbedError>>,
}

/// Async handle to the embedder. Requests from concurrent workers and
/// searches queue up and are run together, up to `batch` images per model
/// call: a batch forms naturally from whatever arrived while the previous one
/// was running, so a lone search is never held back waiting for company.
#[derive(Clone)]
pub struct EmbedService {
    embedder: Arc<Embedder>,
    tx: mpsc::Sender<Job>,
}

impl EmbedService {
    /// Starts the batcher on the current runtime. It ends, after answering
    /// every queued request, when the last clone of the service is dropped.
    pub fn start(embedder: Embedder, batch: usize) -> Self {
        Self::start_tracked(embedder, batch, &TaskTracker::new())
    }

    /// [`EmbedService::start`], with the batcher (and each batch it runs)
    /// tracked by `tasks`, so that shutdown can wait for them.
    pub fn start_tracked(embedder: Embedder, batch: usize, tasks: &TaskTracker) -> Self {
        let embedder = Arc::new(embedder);
        // Bounded: when embedding falls behind, callers wait here (and the
        // inbox keeps the rest) instead of buffering images without limit.
        let (tx, rx) = mpsc::channel(batch * 4);
        tasks.spawn(batcher(embedder.clone(), rx, batch.max(1), tasks.clone()));
        Self { embedder, tx }
    }

    pub fn info(&self) -> &ModelInfo {
        self.embedder.info()
    }

    pub fn embedder(&self) -> &Arc<Embedder> {
        &self.embedder
    }

    pub async fn embed(&self, bytes: Bytes) -> Result<Embedding, EmbedError> {
        Ok(self.embed_labelled(bytes).await?.vector)
    }

    /// [`EmbedService::embed`], with the image's labels (none when the
    /// model has no classifier head).
    pub async fn embed_labelled(&self, bytes: Bytes) -> Result<Embedded, EmbedError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job { bytes, reply })
            .await
            .map_err(|_| EmbedError::Stopped)?;
        rx.await.map_err(|_| EmbedError::Stopped)?
    }
}

async fn batcher(
    embedder: Arc<Embedder>,
    mut rx: mpsc::Receiver<Job>,
    batch: usize,
    tasks: TaskTracker,
) {
    // Two batches in flight: while one is in the model, the next one's images
    // are decoded and resized, keeping the pool busy.
    let in_flight = Arc::new(Semaphore::new(2));
    while let Some(first) = rx.recv().await {
        let permit = in_flight
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore is never closed");
        let mut jobs = vec![first];
        while jobs.len() < batch {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let embedder = embedder.clone();
        tasks.spawn_blocking(move || {
            let started = Instant::now();
            let (bytes, replies): (Vec<Bytes>, Vec<_>) =
                jobs.into_iter().map(|j| (j.bytes, j.reply)).unzip();
            let results = embedder.embed_images_labelled(&bytes);
            let elapsed = started.elapsed().as_secs_f64();
            let ok = results.iter().filter(|r| r.is_ok()).count();
            metrics::histogram!("visual_search_embedding_duration_seconds").record(elapsed);
            metrics::histogram!("visual_search_embedding_batch_size").record(bytes.len() as f64);
            metrics::counter!("visual_search_images_embedded_total").increment(ok as u64);
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(result);
            }
            drop(permit);
        });
    }
}
