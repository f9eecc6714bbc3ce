//! `vitrine bench …`: measurements that need the service's own code paths,
//! with their baselines measured in the same run (machines here are shared
//! and noisy, so a ratio means more than a lone absolute figure).
//!
//! - `ingest`: N real images as JPEG bytes through [`EmbedService`] (its
//!   batcher and rayon pool) and an [`EmbeddedIndex`] upsert, against the
//!   model's inference-only throughput on pre-made tensors with the same
//!   embedder, threads and batch size: the ceiling.
//! - `resize`: `fast_image_resize` against `image::imageops::resize` (same
//!   filter, same 224×224 output); `scripts/bench_python_baseline.py
//!   --mode resize` times Pillow on the same files.
//! - `intake`: a loopback load client for the webhook endpoint: signed
//!   events at a fixed number of connections, against the trivial
//!   `GET /api/v1/webhooks/health` of the same server: the ceiling.
//!
//! Each prints a human summary and, as its last line, one JSON object.

use std::{
    io::Cursor,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Subcommand;
use fast_image_resize::{
    FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer,
    images::{Image, ImageRef},
};
use image::{RgbImage, codecs::jpeg::JpegEncoder, imageops};
use serde_json::{Value, json};
use tokio::{sync::Semaphore, task::JoinSet};

use crate::{
    Settings,
    embed::{EmbedService, Embedder, preprocess},
    http::signature,
    index::{EmbeddedIndex, Payload, Point, VectorIndex},
};

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
        /// Most images per model call (default: the `embed_batch` setting).
        #[arg(long)]
        batch: Option<usize>,
        /// Pool threads (default: the `embed_threads` setting, 0 = cores).
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
}

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
                settings.embed_batch = b.max(1);
            }
            if let Some(t) = threads {
                settings.embed_threads = t;
            }
            ingest(
                &settings,
                &IngestOptions {
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
            let max_pixels = Settings::load()?.max_pixels;
            tokio::task::spawn_blocking(move || resize(&images, reps, max_pixels)).await??
        }
        BenchCommand::Intake {
            url,
            secret,
            connections,
            seconds,
            reps,
            server_pid,
        } => {
            intake(&IntakeOptions {
                url,
                secret,
                connections,
                seconds,
                reps,
                server_pid,
            })
            .await?
        }
    };
    println!("{report}");
    Ok(())
}

// ---------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------

/// Median and spread of repeated measurements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    pub fn of(values: &[f64]) -> Self {
        assert!(!values.is_empty(), "no measurements");
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let mid = v.len() / 2;
        let median = if v.len() % 2 == 1 {
            v[mid]
        } else {
            (v[mid - 1] + v[mid]) / 2.0
        };
        Self {
            median,
            min: v[0],
            max: v[v.len() - 1],
        }
    }

    /// Half the min–max range relative to the median, in percent.
    pub fn spread_pct(&self) -> f64 {
        if self.median == 0.0 {
            0.0
        } else {
            (self.max - self.min) / 2.0 / self.median * 100.0
        }
    }

    fn json(&self, runs: &[f64]) -> Value {
        json!({
            "median": round3(self.median),
            "min": round3(self.min),
            "max": round3(self.max),
            "spread_pct": round3(self.spread_pct()),
            "runs": runs.iter().map(|x| round3(*x)).collect::<Vec<_>>(),
        })
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.3} (min {:.3}, max {:.3}, ±{:.1}%)",
            self.median,
            self.min,
            self.max,
            self.spread_pct()
        )
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The `q`-quantile (0–1) of sorted values, nearest rank.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The 1-minute load average, recorded with each report: on a shared
/// machine it tells which runs had company.
fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

// ---------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------

/// The images in `dir` (sorted by name), decoded with the service's checked
/// decoder. Files that are not images are skipped.
pub fn load_images(dir: &Path, max_pixels: u64) -> anyhow::Result<Vec<(String, RgbImage)>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| {
            format!(
                "cannot read {} (scripts/fetch-assets.sh provides tests/data/photos)",
                dir.display()
            )
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let bytes = std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
        match preprocess::decode(&bytes, max_pixels) {
            Ok(img) => out.push((p.file_name().unwrap().to_string_lossy().into_owned(), img)),
            Err(preprocess::PreprocessError::NotAnImage) => continue,
            Err(e) => bail!("{}: {e}", p.display()),
        }
    }
    if out.is_empty() {
        bail!("no images in {}", dir.display());
    }
    Ok(out)
}

/// JPEG quality 90, the form product photos usually arrive in.
pub fn encode_jpeg(img: &RgbImage) -> anyhow::Result<Vec<u8>> {
    let mut out = Cursor::new(Vec::new());
    img.write_with_encoder(JpegEncoder::new_with_quality(&mut out, 90))?;
    Ok(out.into_inner())
}

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> anyhow::Result<Self> {
        let p = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&p).with_context(|| format!("cannot create {}", p.display()))?;
        Ok(Self(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------
// Ingest
// ---------------------------------------------------------------------------

pub struct IngestOptions {
    pub images: PathBuf,
    pub count: usize,
    /// Images in flight at once; 0 = all.
    pub concurrency: usize,
    pub reps: usize,
    pub dump_jpeg: Option<PathBuf>,
}

/// Runs the ingest bench; returns the JSON report (printed last).
pub async fn ingest(settings: &Settings, opts: &IngestOptions) -> anyhow::Result<Value> {
    if opts.count == 0 || opts.reps == 0 {
        bail!("--count and --reps must be at least 1");
    }
    let max_pixels = settings.max_pixels;
    let images = {
        let dir = opts.images.clone();
        tokio::task::spawn_blocking(move || load_images(&dir, max_pixels)).await??
    };
    let mut jpegs = Vec::with_capacity(images.len());
    for (name, img) in &images {
        jpegs.push(Bytes::from(
            encode_jpeg(img).with_context(|| format!("cannot re-encode {name}"))?,
        ));
    }
    if let Some(dir) = &opts.dump_jpeg {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for (i, ((name, _), bytes)) in images.iter().zip(&jpegs).enumerate() {
            let stem = Path::new(name).file_stem().unwrap().to_string_lossy();
            let path = dir.join(format!("{i:03}-{stem}.jpg"));
            std::fs::write(&path, bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    let inputs: Vec<Bytes> = (0..opts.count)
        .map(|i| jpegs[i % jpegs.len()].clone())
        .collect();
    let concurrency = if opts.concurrency == 0 {
        opts.count
    } else {
        opts.concurrency
    };
    let batch = settings.embed_batch.max(1);

    let embedder = {
        let s = settings.clone();
        tokio::task::spawn_blocking(move || crate::app::load_embedder(&s)).await??
    };
    let threads = embedder.threads();
    let info = embedder.info().clone();
    let embed = EmbedService::start(embedder, batch);
    let embedder = embed.embedder().clone();
    eprintln!(
        "ingest bench: {} images ({} distinct, JPEG q90, {:.1} MB in all), batch {batch}, \
         {threads} pool threads, {concurrency} in flight, {} reps, model {}, {} cores",
        opts.count,
        jpegs.len(),
        inputs.iter().map(Bytes::len).sum::<usize>() as f64 / 1e6,
        opts.reps,
        info.short_version(),
        cores(),
    );

    // The ceiling's input: the same images, preprocessed beforehand.
    let tensor = {
        let (embedder, inputs) = (embedder.clone(), inputs.clone());
        tokio::task::spawn_blocking(move || pretensor(&embedder, &inputs, max_pixels)).await??
    };
    let tensor = Arc::new(tensor);

    let load_before = loadavg();
    let tmp = TempDir::new("vitrine-bench-ingest")?;
    let warm = inputs.len().min(2 * batch * threads).max(1);
    // Warm-up (not counted): first ORT runs allocate, the page cache fills.
    ingest_pass(
        &embed,
        &tmp.0.join("warm"),
        &info,
        &inputs[..warm],
        concurrency,
    )
    .await?;
    ceiling_pass(&embedder, &tensor, warm, batch).await?;

    let (mut ingest_ips, mut ceiling_ips, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for rep in 0..opts.reps {
        let dir = tmp.0.join(format!("rep{rep}"));
        let t_ingest = ingest_pass(&embed, &dir, &info, &inputs, concurrency).await?;
        let t_ceiling = ceiling_pass(&embedder, &tensor, inputs.len(), batch).await?;
        let (a, b) = (
            inputs.len() as f64 / t_ingest,
            inputs.len() as f64 / t_ceiling,
        );
        eprintln!(
            "  rep {}: ingest {a:.2} images/s, inference-only ceiling {b:.2} images/s, ratio {:.3}",
            rep + 1,
            a / b
        );
        ingest_ips.push(a);
        ceiling_ips.push(b);
        ratios.push(a / b);
    }
    let (si, sc, sr) = (
        Summary::of(&ingest_ips),
        Summary::of(&ceiling_ips),
        Summary::of(&ratios),
    );
    println!("ingest end to end (images/s):      {si}");
    println!("inference-only ceiling (images/s): {sc}");
    println!("ingest / ceiling (per rep):        {sr}");
    Ok(json!({
        "bench": "ingest",
        "images": opts.count,
        "distinct_images": jpegs.len(),
        "batch": batch,
        "threads": threads,
        "concurrency": concurrency,
        "reps": opts.reps,
        "cores": cores(),
        "model": info.short_version(),
        "ingest_images_per_s": si.json(&ingest_ips),
        "ceiling_images_per_s": sc.json(&ceiling_ips),
        "ratio_ingest_to_ceiling": sr.json(&ratios),
        "loadavg_1m": [load_before, loadavg()],
    }))
}

/// Preprocesses every input into one back-to-back tensor.
fn pretensor(embedder: &Embedder, inputs: &[Bytes], max_pixels: u64) -> anyhow::Result<Vec<f32>> {
    let sample = embedder.sample_len();
    let manifest = &embedder.info().manifest;
    let mut tensor = vec![0f32; inputs.len() * sample];
    for (bytes, out) in inputs.iter().zip(tensor.chunks_exact_mut(sample)) {
        preprocess::preprocess(bytes, manifest, max_pixels, out)?;
    }
    Ok(tensor)
}

/// One pass of the service path: every image submitted to the
/// [`EmbedService`] (at most `concurrency` at once, as the worker loop
/// bounds its events), each vector upserted into a fresh embedded index.
/// Returns the seconds from the first submission to the last upsert.
async fn ingest_pass(
    embed: &EmbedService,
    dir: &Path,
    info: &crate::embed::ModelInfo,
    inputs: &[Bytes],
    concurrency: usize,
) -> anyhow::Result<f64> {
    let (dir_owned, dim, version) = (dir.to_path_buf(), info.dim(), info.version.clone());
    let opened =
        tokio::task::spawn_blocking(move || EmbeddedIndex::open(&dir_owned, dim, &version))
            .await??;
    let index: Arc<dyn VectorIndex> = Arc::new(opened);
    let slots = Arc::new(Semaphore::new(concurrency.max(1)));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for (i, bytes) in inputs.iter().enumerate() {
        let permit = slots.clone().acquire_owned().await?;
        let (embed, index, bytes) = (embed.clone(), index.clone(), bytes.clone());
        tasks.spawn(async move {
            let vector = embed.embed(bytes).await?;
            let payload = Payload {
                product_id: format!("bench-{i}"),
                title: None,
                category: Some("bench".into()),
                price: Some(i as f64),
                currency: None,
            };
            index.upsert(vec![Point { vector, payload }]).await?;
            drop(permit);
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let secs = started.elapsed().as_secs_f64();
    let stored = index.count().await?;
    if stored != inputs.len() {
        bail!("ingest stored {stored} vectors for {} images", inputs.len());
    }
    Ok(secs)
}

/// Inference only, on the pre-made tensor: batches of `batch`, two in
/// flight as the [`EmbedService`] batcher keeps them, so that this is what
/// the service would reach if decoding, resizing and upserting were free.
async fn ceiling_pass(
    embedder: &Arc<Embedder>,
    tensor: &Arc<Vec<f32>>,
    count: usize,
    batch: usize,
) -> anyhow::Result<f64> {
    let (embedder, tensor) = (embedder.clone(), tensor.clone());
    tokio::task::spawn_blocking(move || {
        let sample = embedder.sample_len();
        let chunks: Vec<&[f32]> = tensor[..count * sample].chunks(batch * sample).collect();
        let started = Instant::now();
        std::thread::scope(|s| {
            let streams: Vec<_> = (0..2)
                .map(|k| {
                    let (embedder, chunks) = (&embedder, &chunks);
                    s.spawn(move || -> anyhow::Result<()> {
                        for chunk in chunks.iter().skip(k).step_by(2) {
                            let v = embedder.infer(chunk, chunk.len() / sample)?;
                            std::hint::black_box(v);
                        }
                        Ok(())
                    })
                })
                .collect();
            for stream in streams {
                stream.join().expect("ceiling stream panicked")?;
            }
            anyhow::Ok(())
        })?;
        Ok(started.elapsed().as_secs_f64())
    })
    .await?
}

// ---------------------------------------------------------------------------
// Resize
// ---------------------------------------------------------------------------

/// The side of the resize comparison's output, the model's input size.
pub const RESIZE_SIDE: u32 = 224;

pub fn resize_fir(resizer: &mut Resizer, img: &RgbImage) -> anyhow::Result<Vec<u8>> {
    let (w, h) = img.dimensions();
    let src = ImageRef::new(w, h, img.as_raw(), PixelType::U8x3)?;
    let mut dst = Image::new(RESIZE_SIDE, RESIZE_SIDE, PixelType::U8x3);
    let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    resizer.resize(&src, &mut dst, &opts)?;
    Ok(dst.into_vec())
}

pub fn resize_imageops(img: &RgbImage) -> Vec<u8> {
    imageops::resize(
        img,
        RESIZE_SIDE,
        RESIZE_SIDE,
        imageops::FilterType::Triangle,
    )
    .into_raw()
}

/// Times both resizers over all images, alternating, `reps` times each.
fn resize(dir: &Path, reps: usize, max_pixels: u64) -> anyhow::Result<Value> {
    let images = load_images(dir, max_pixels)?;
    let n = images.len() as f64;
    let mut resizer = Resizer::new();
    // Same output, checked: mean absolute difference per channel value.
    let mut diff = 0.0;
    for (_, img) in &images {
        let (a, b) = (resize_fir(&mut resizer, img)?, resize_imageops(img));
        let sum: u64 = a
            .iter()
            .zip(&b)
            .map(|(x, y)| u64::from(x.abs_diff(*y)))
            .sum();
        diff += sum as f64 / b.len() as f64 / n;
    }
    let (mut fir, mut ops) = (Vec::new(), Vec::new());
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        for (_, img) in &images {
            std::hint::black_box(resize_fir(&mut resizer, img)?);
        }
        fir.push(n / t.elapsed().as_secs_f64());
        let t = Instant::now();
        for (_, img) in &images {
            std::hint::black_box(resize_imageops(img));
        }
        ops.push(n / t.elapsed().as_secs_f64());
    }
    let ratios: Vec<f64> = fir.iter().zip(&ops).map(|(a, b)| a / b).collect();
    let (sf, so, sr) = (Summary::of(&fir), Summary::of(&ops), Summary::of(&ratios));
    println!(
        "resize to {RESIZE_SIDE}x{RESIZE_SIDE} bilinear, {} images from {}, one thread; mean |diff| {diff:.3}/255",
        images.len(),
        dir.display()
    );
    println!("fast_image_resize (images/s):  {sf}");
    println!("image::imageops (images/s):    {so}");
    println!("fast_image_resize / imageops:  {sr}");
    Ok(json!({
        "bench": "resize",
        "images": images.len(),
        "side": RESIZE_SIDE,
        "filter": "bilinear",
        "reps": reps.max(1),
        "mean_abs_diff": round3(diff),
        "fast_image_resize_images_per_s": sf.json(&fir),
        "imageops_images_per_s": so.json(&ops),
        "ratio_fir_to_imageops": sr.json(&ratios),
    }))
}

// ---------------------------------------------------------------------------
// Intake
// ---------------------------------------------------------------------------

pub struct IntakeOptions {
    pub url: String,
    pub secret: String,
    pub connections: usize,
    pub seconds: f64,
    pub reps: usize,
    /// The server's process id, to report the CPU it used in each phase.
    pub server_pid: Option<u32>,
}

/// CPU seconds (user + system) a process has used so far, from
/// `/proc/<pid>/stat` (ticks of 1/100 s, Linux's USER_HZ).
fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the line, the 12th and 13th after the name.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// What one phase measured.
#[derive(Debug, Default)]
struct Phase {
    ok: u64,
    failed: u64,
    /// Latencies of the successful requests, in milliseconds.
    latencies_ms: Vec<f64>,
    secs: f64,
    first_error: Option<String>,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.secs
    }
    fn sorted(&mut self) -> &[f64] {
        self.latencies_ms.sort_by(f64::total_cmp);
        &self.latencies_ms
    }
}

#[derive(Clone, Copy)]
enum Target {
    Webhook,
    Health,
}

/// A signed `product.updated` event without an image (metadata only, so
/// the workers that drain the inbox meanwhile do not fetch anything).
fn event_body(run: &str, conn: usize, seq: u64) -> String {
    json!({
        "event_type": "product.updated",
        "event_id": format!("load-{run}-{conn}-{seq}"),
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "data": {
            "product_id": format!("load-{conn}-{}", seq % 100),
            "title": "Load test product",
            "category": "loadtest",
            "price": (seq % 1000) as f64 + 0.5,
            "currency": "KGS",
        }
    })
    .to_string()
}

async fn phase(opts: &IntakeOptions, target: Target, secs: f64) -> anyhow::Result<Phase> {
    let base = opts.url.trim_end_matches('/').to_string();
    let run = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for conn in 0..opts.connections.max(1) {
        // One client, hence one keep-alive connection, per simulated sender.
        let client = reqwest::Client::builder()
            .http1_only()
            .pool_max_idle_per_host(1)
            .timeout(Duration::from_secs(30))
            .build()?;
        let (base, secret, run) = (base.clone(), opts.secret.clone(), run.clone());
        tasks.spawn(async move {
            let mut p = Phase::default();
            let mut seq = 0u64;
            while Instant::now() < deadline {
                let t = Instant::now();
                let result = match target {
                    Target::Webhook => {
                        let body = event_body(&run, conn, seq);
                        let sig = signature::sign(&secret, body.as_bytes());
                        client
                            .post(format!("{base}/api/v1/webhooks/bakai"))
                            .header("content-type", "application/json")
                            .header("x-webhook-signature", sig)
                            .body(body)
                            .send()
                            .await
                    }
                    Target::Health => {
                        client
                            .get(format!("{base}/api/v1/webhooks/health"))
                            .send()
                            .await
                    }
                };
                seq += 1;
                let outcome = match result {
                    Ok(resp) => {
                        let status = resp.status();
                        match resp.bytes().await {
                            Ok(body) if status.is_success() => {
                                // A duplicate would not be a new event.
                                if matches!(target, Target::Webhook)
                                    && body.windows(11).any(|w| w == b"\"duplicate\"")
                                {
                                    Err("answered as a duplicate".to_string())
                                } else {
                                    Ok(())
                                }
                            }
                            Ok(body) => Err(format!(
                                "HTTP {status}: {}",
                                String::from_utf8_lossy(&body[..body.len().min(200)])
                            )),
                            Err(e) => Err(e.to_string()),
                        }
                    }
                    Err(e) => Err(e.to_string()),
                };
                match outcome {
                    Ok(()) => {
                        p.ok += 1;
                        p.latencies_ms.push(t.elapsed().as_secs_f64() * 1e3);
                    }
                    Err(e) => {
                        p.failed += 1;
                        p.first_error.get_or_insert(e);
                    }
                }
            }
            p
        });
    }
    let mut all = Phase::default();
    while let Some(p) = tasks.join_next().await {
        let p = p?;
        all.ok += p.ok;
        all.failed += p.failed;
        all.latencies_ms.extend(p.latencies_ms);
        if all.first_error.is_none() {
            all.first_error = p.first_error;
        }
    }
    all.secs = started.elapsed().as_secs_f64();
    Ok(all)
}

/// Runs the ceiling (health endpoint) phases first, while the server's inbox
/// is still empty, then the webhook phases; returns the JSON report.
pub async fn intake(opts: &IntakeOptions) -> anyhow::Result<Value> {
    let url = url::Url::parse(&opts.url).context("--url")?;
    match url.host() {
        Some(url::Host::Ipv4(ip)) if ip.is_loopback() => {}
        Some(url::Host::Ipv6(ip)) if ip.is_loopback() => {}
        Some(url::Host::Domain("localhost")) => {}
        _ => bail!("the load test only targets loopback addresses, not {url}"),
    }
    if opts.reps == 0 || opts.seconds <= 0.0 {
        bail!("--reps and --seconds must be positive");
    }
    // reqwest is built with rustls and no default provider; plain http never
    // uses it, but a client cannot be built without one. A no-op if set.
    let _ = rustls::crypto::ring::default_provider().install_default();
    eprintln!(
        "intake bench: {} connections, {} × {}s per phase, against {}",
        opts.connections, opts.reps, opts.seconds, opts.url
    );
    // Warm-up: connections opened, the server's first requests served.
    let warm = phase(opts, Target::Health, 1.0).await?;
    if warm.ok == 0 {
        bail!(
            "the server does not answer: {}",
            warm.first_error.unwrap_or_default()
        );
    }
    let load_before = loadavg();
    let mut report = json!({
        "bench": "intake",
        "connections": opts.connections,
        "seconds": opts.seconds,
        "reps": opts.reps,
        "cores": cores(),
    });
    let mut medians = Vec::new();
    for (name, target) in [
        ("ceiling_health", Target::Health),
        ("webhook", Target::Webhook),
    ] {
        let (mut runs, mut rates, mut p50s, mut p99s) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for rep in 0..opts.reps {
            let server = opts.server_pid.map(|p| p.to_string());
            let cpu_before = (server.as_deref().and_then(cpu_secs), cpu_secs("self"));
            let mut p = phase(opts, target, opts.seconds).await?;
            // CPU used during the phase, in cores (1.0 = one core busy).
            let busy = |before: Option<f64>, now: Option<f64>| {
                before.zip(now).map(|(b, n)| round3((n - b) / p.secs))
            };
            let server_cores = busy(cpu_before.0, server.as_deref().and_then(cpu_secs));
            let client_cores = busy(cpu_before.1, cpu_secs("self"));
            let rate = p.rate();
            let (ok, failed, first_error) = (p.ok, p.failed, p.first_error.clone());
            let l = p.sorted();
            let (p50, p90, p99, max) = (
                quantile(l, 0.50),
                quantile(l, 0.90),
                quantile(l, 0.99),
                l.last().copied().unwrap_or(f64::NAN),
            );
            eprintln!(
                "  {name} rep {}: {ok} ok, {failed} failed, {rate:.0}/s, p50 {p50:.2} ms, \
                 p90 {p90:.2} ms, p99 {p99:.2} ms, max {max:.1} ms; CPU cores busy: \
                 server {}, load client {}{}",
                rep + 1,
                server_cores.map_or("?".into(), |c| format!("{c:.2}")),
                client_cores.map_or("?".into(), |c| format!("{c:.2}")),
                first_error
                    .as_deref()
                    .map(|e| format!(" (first error: {e})"))
                    .unwrap_or_default()
            );
            rates.push(rate);
            p50s.push(p50);
            p99s.push(p99);
            runs.push(json!({
                "ok": ok, "failed": failed, "per_s": round3(rate),
                "p50_ms": round3(p50), "p90_ms": round3(p90), "p99_ms": round3(p99),
                "max_ms": round3(max), "first_error": first_error,
                "server_cpu_cores": server_cores, "client_cpu_cores": client_cores,
            }));
        }
        let (r, a, b) = (Summary::of(&rates), Summary::of(&p50s), Summary::of(&p99s));
        println!("{name:<15} per second: {r}");
        println!("{name:<15} p50 ms:     {a}");
        println!("{name:<15} p99 ms:     {b}");
        medians.push(r.median);
        report[name] = json!({
            "per_s": r.json(&rates),
            "p50_ms": a.json(&p50s),
            "p99_ms": b.json(&p99s),
            "runs": runs,
        });
    }
    let ratio = medians[1] / medians[0];
    println!("accepted events/s ÷ health requests/s (medians): {ratio:.3}");
    report["ratio_webhook_to_health"] = json!(round3(ratio));
    report["loadavg_1m"] = json!([load_before, loadavg()]);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn load_events_are_valid_signed_bodies() {
        let body = event_body("r", 3, 42);
        let raw: crate::catalog::RawEvent = serde_json::from_str(&body).unwrap();
        let ev = crate::catalog::validate(raw).unwrap();
        assert_eq!(ev.event_id, "load-r-3-42");
        let sig = signature::sign("k", body.as_bytes());
        let secrets = [crate::config::Secret::new("k")];
        assert!(signature::verify(Some(&sig), body.as_bytes(), &secrets).is_ok());
    }
}
