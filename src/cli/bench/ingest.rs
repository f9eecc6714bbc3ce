//! `vitrine bench ingest`: the service path (decode → resize → tensor →
//! embed → index upsert, through `EmbedService`'s batcher and pool) against
//! inference alone on pre-made tensors with the same embedder, threads and
//! batch size: the ceiling. Each repetition runs one pass of each, so that
//! the ratio compares runs that shared the machine's state.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Instant,
};

use anyhow::{Context, bail};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::{sync::Semaphore, task::JoinSet};
use vitrine::{
    Settings,
    embed::{EmbedService, Embedder, ModelInfo, preprocess},
    index::{EmbeddedIndex, Payload, Point, VectorIndex},
};

use super::{
    photos::{encode_jpeg, load_photos},
    stats::{Summary, cores, load_1m},
};

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
    let max_pixels = settings.embed.max_pixels;
    let photos = {
        let dir = opts.images.clone();
        tokio::task::spawn_blocking(move || load_photos(&dir, max_pixels, usize::MAX)).await??
    };
    let mut jpegs = Vec::with_capacity(photos.len());
    for p in &photos {
        jpegs.push(Bytes::from(
            encode_jpeg(&p.image).with_context(|| format!("cannot re-encode {}", p.name))?,
        ));
    }
    if let Some(dir) = &opts.dump_jpeg {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for (i, (p, bytes)) in photos.iter().zip(&jpegs).enumerate() {
            let stem = Path::new(&p.name).file_stem().unwrap().to_string_lossy();
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
    let batch = settings.embed.batch.max(1);

    let embedder = {
        let s = settings.embed.clone();
        tokio::task::spawn_blocking(move || vitrine::embed::Embedder::from_settings(&s)).await??
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
        tokio::task::spawn_blocking(move || pretensor(&embedder, &inputs)).await??
    };
    let tensor = Arc::new(tensor);

    let load_before = load_1m();
    let tmp = tempfile::Builder::new()
        .prefix("vitrine-bench-ingest-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let warm = inputs.len().min(2 * batch * threads).max(1);
    // Warm-up (not counted): first ORT runs allocate, the page cache fills.
    ingest_pass(
        &embed,
        &tmp.path().join("warm"),
        &info,
        &inputs[..warm],
        concurrency,
    )
    .await?;
    ceiling_pass(&embedder, &tensor, warm, batch).await?;

    let (mut ingest_ips, mut ceiling_ips, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for rep in 0..opts.reps {
        let dir = tmp.path().join(format!("rep{rep}"));
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
        "loadavg_1m": [load_before, load_1m()],
    }))
}

/// Preprocesses every input into one back-to-back tensor.
fn pretensor(embedder: &Embedder, inputs: &[Bytes]) -> anyhow::Result<Vec<f32>> {
    let sample = embedder.sample_len();
    let manifest = &embedder.info().manifest;
    let mut tensor = vec![0f32; inputs.len() * sample];
    for (bytes, out) in inputs.iter().zip(tensor.chunks_exact_mut(sample)) {
        preprocess::preprocess(bytes, manifest, embedder.decode_limits(), out)?;
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
    info: &ModelInfo,
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
