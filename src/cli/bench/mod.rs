//! `vitrine bench …`: measurements that need the service's own code paths,
//! with their baselines measured in the same run (machines here are shared
//! and noisy, so a ratio means more than a lone absolute figure).
//!
//! - `ingest` ([`ingest`]): N real images as JPEG bytes through
//!   `EmbedService` (its batcher and rayon pool) and an `EmbeddedIndex`
//!   upsert, against the model's inference-only throughput on pre-made
//!   tensors with the same embedder, threads and batch size: the ceiling.
//! - `resize` ([`resize`]): `fast_image_resize` against
//!   `image::imageops::resize` (same filter, same 224×224 output);
//!   `scripts/bench_python_baseline.py --mode resize` times Pillow on the
//!   same files.
//! - `intake` ([`intake`]): a loopback load client for the webhook
//!   endpoint: signed events at a fixed number of connections, against the
//!   trivial `GET /api/v1/webhooks/health` of the same server: the ceiling.
//! - `text` ([`text`]): text search (exact and typo-tolerant) over a
//!   generated catalog in SQLite or PostgreSQL, against a `LIKE` scan of
//!   the same rows.
//!
//! Each prints a human summary and, as its last line, one JSON object.
//!
//! This is binary code, not library API. The photo loading, JPEG encoding,
//! resizers and statistics it shares with the criterion benches live in
//! `benches/common/{photos,stats}.rs`, compiled into both with `#[path]`
//! (see `photos.rs` for why), so there is one copy and the library stays
//! what the service needs.

use std::path::PathBuf;

use clap::Subcommand;
use vitrine::Settings;

mod ingest;
mod intake;
mod resize;
mod text;

#[path = "../../../benches/common/photos.rs"]
mod photos;
#[path = "../../../benches/common/stats.rs"]
mod stats;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// End-to-end ingest (decode → resize → tensor → embed → index upsert)
    /// against inference-only throughput on pre-made tensors.
    Ingest {
        /// Folder of photos (JPEG, PNG, WebP, GIF), cycled to reach --count
        /// and re-encoded as JPEG quality 90 in memory.
        #[arg(long, default_value = "tests/data/photos")]
        images: PathBuf,
        /// Images per repetition.
        #[arg(long, default_value_t = 256)]
        count: usize,
        /// Most images per model call (default: the `embed.batch` setting).
        #[arg(long)]
        batch: Option<usize>,
        /// Pool threads (default: the `embed.threads` setting, 0 = cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Images in flight at once (0 = all of them, submitted together).
        #[arg(long, default_value_t = 0)]
        concurrency: usize,
        /// Measured repetitions (each: one ingest pass, one ceiling pass).
        #[arg(long, default_value_t = 3)]
        reps: usize,
        /// Also write the distinct re-encoded JPEGs here, so another program
        /// (the Python baseline) reads exactly the same bytes.
        #[arg(long)]
        dump_jpeg: Option<PathBuf>,
    },
    /// `fast_image_resize` against `image::imageops::resize`: bilinear,
    /// 224×224, on the same decoded images.
    Resize {
        #[arg(long, default_value = "tests/data/photos")]
        images: PathBuf,
        #[arg(long, default_value_t = 5)]
        reps: usize,
    },
    /// Webhook intake load test against a running server.
    Intake {
        /// Base URL of the server, e.g. http://127.0.0.1:8008 (loopback only).
        #[arg(long)]
        url: String,
        /// Key to sign events with (one of the server's WEBHOOK_SECRET).
        #[arg(long, env = "VITRINE_SIGN_SECRET")]
        secret: String,
        /// Concurrent connections, each with one request in flight.
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// Length of each measured phase.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Measured repetitions of each phase.
        #[arg(long, default_value_t = 3)]
        reps: usize,
        /// The server's process id (same machine): reports the CPU it used.
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// Text search latency over a generated catalog, against a LIKE scan.
    Text {
        /// Products in the generated catalog.
        #[arg(long, default_value_t = 100_000)]
        products: usize,
        /// Queries of each class.
        #[arg(long, default_value_t = 1000)]
        queries: usize,
        /// An empty throwaway PostgreSQL database (migrated and filled);
        /// without it, a fresh SQLite file.
        #[arg(long)]
        database_url: Option<String>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// Runs one bench and prints its JSON report as the last line.
pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    let report = match cmd {
        BenchCommand::Ingest {
            images,
            count,
            batch,
            threads,
            concurrency,
            reps,
            dump_jpeg,
        } => {
            let mut settings = Settings::load()?;
            if let Some(b) = batch {
                settings.embed.batch = b.max(1);
            }
            if let Some(t) = threads {
                settings.embed.threads = t;
            }
            ingest::ingest(
                &settings,
                &ingest::IngestOptions {
                    images,
                    count,
                    concurrency,
                    reps,
                    dump_jpeg,
                },
            )
            .await?
        }
        BenchCommand::Resize { images, reps } => {
            let max_pixels = Settings::load()?.embed.max_pixels;
            tokio::task::spawn_blocking(move || resize::resize(&images, reps, max_pixels)).await??
        }
        BenchCommand::Intake {
            url,
            secret,
            connections,
            seconds,
            reps,
            server_pid,
        } => {
            intake::intake(&intake::IntakeOptions {
                url,
                secret,
                connections,
                seconds,
                reps,
                server_pid,
            })
            .await?
        }
        BenchCommand::Text {
            products,
            queries,
            database_url,
            seed,
        } => {
            text::text(&text::TextOptions {
                products,
                queries,
                database_url,
                seed,
            })
            .await?
        }
    };
    println!("{report}");
    Ok(())
}

#[cfg(test)]
mod tests {
    // The shared statistics (benches/common/stats.rs), tested here because
    // the bench targets have no test harness.
    use super::stats::{Summary, quantile};

    #[test]
    fn summary_median_and_spread() {
        let s = Summary::of(&[3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert!((s.spread_pct() - 50.0).abs() < 1e-9);
        assert_eq!(Summary::of(&[1.0, 2.0, 3.0, 10.0]).median, 2.5);
    }

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
        assert_eq!(quantile(&[7.0], 0.99), 7.0);
    }
}
