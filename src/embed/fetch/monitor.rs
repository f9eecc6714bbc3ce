//! The image source's part of `/api/v1/health`: a task that probes the
//! source `image_key`s are read from ([`ImageFetcher::probe`]: the S3
//! bucket, the base URL's host, or the local folder) every few seconds and
//! writes what it found to the health board as `image_source`. While the
//! source does not answer, health says `degraded` (and still 200: search
//! works, and events wait in the inbox, retried, until it is back).

use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::ImageFetcher;
use crate::telemetry::HealthBoard;

/// The health board's name for this part.
pub const PART: &str = "image_source";

/// Probes every `every` until `stop`; a fetcher with no image source
/// (events carry full URLs) has no part.
pub async fn run(
    fetcher: ImageFetcher,
    board: HealthBoard,
    every: Duration,
    stop: CancellationToken,
) {
    let Some(kind) = fetcher.source_kind() else {
        return;
    };
    let mut failing_since: Option<chrono::DateTime<chrono::Utc>> = None;
    loop {
        let part = match fetcher.probe().await {
            Ok(()) => {
                if failing_since.take().is_some() {
                    tracing::info!(source = kind, "the image source answers again");
                }
                json!({ "status": "ok", "source": kind })
            }
            Err(e) => {
                let since = *failing_since.get_or_insert_with(|| {
                    tracing::warn!(source = kind, error = %e.detail(), "the image source does not answer");
                    chrono::Utc::now()
                });
                metrics::counter!("visual_search_image_source_probe_failures_total").increment(1);
                json!({
                    "status": "error",
                    "source": kind,
                    "error": e.public_reason(),
                    "since": since.to_rfc3339(),
                })
            }
        };
        board.set(PART, part);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
