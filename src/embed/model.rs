//! ONNX inference with `ort`, in one explicitly sized `rayon` pool.
//!
//! Threading scheme: **rayon only**. The pool has `embed_threads` threads and
//! each thread owns one ORT session whose intra-op and inter-op pools are
//! pinned to a single thread. A batch is split into one chunk per pool thread.
//! The alternative, one session with an intra-op pool of N threads, would
//! stack ORT's threads on top of the rayon threads that decode and resize, so
//! 2 cores would run 4 busy threads that preempt each other; and per-op
//! parallelism scales worse than whole-image parallelism for a small CNN
//! (EfficientNet-Lite0 has many cheap depthwise layers, each too small to
//! split well). One session per thread costs one copy of the weights each
//! (about 18 MB here), which is cheap.
//!
//! The ONNX Runtime shared library is loaded at run time (`load-dynamic`):
//! from `ORT_DYLIB_PATH` / the `ort_dylib_path` setting, or from where
//! `scripts/fetch-assets.sh` puts it. If it is missing the caller gets one
//! readable error naming that script, never a panic.

use std::{
    path::{Path, PathBuf},
    sync::{Mutex, OnceLock},
};

use ort::{
    environment::Environment,
    session::{Session, builder::GraphOptimizationLevel},
    value::TensorRef,
};
use rayon::prelude::*;

use super::{EmbedError, manifest::ModelInfo, preprocess};

/// Where `scripts/fetch-assets.sh` installs the library, relative to the
/// repository root (the working directory of `scripts/quickstart.sh`).
pub const DEFAULT_ORT_RELATIVE: &str = "models/onnxruntime/libonnxruntime.so.1.31.1";

/// ONNX Runtime can be initialised once per process; the outcome (or the
/// error text) is shared by every embedder the process creates (tests start
/// several apps in one process).
static ORT_ENV: OnceLock<Result<Environment, String>> = OnceLock::new();

/// Finds the ONNX Runtime library: explicit setting first, then the
/// locations the provisioning script uses.
pub fn resolve_ort_library(
    explicit: Option<&Path>,
    model_dir: &Path,
) -> Result<PathBuf, EmbedError> {
    if let Some(p) = explicit {
        let p = p.to_path_buf();
        return if p.is_file() {
            Ok(p)
        } else {
            Err(EmbedError::Runtime(format!(
                "ONNX Runtime library {} (ORT_DYLIB_PATH) does not exist; run scripts/fetch-assets.sh",
                p.display()
            )))
        };
    }
    let mut candidates = vec![
        model_dir.join("../onnxruntime/libonnxruntime.so.1.31.1"),
        PathBuf::from(DEFAULT_ORT_RELATIVE),
    ];
    if let Ok(exe) = std::env::current_exe() {
        // target/{debug,release}/vitrine → repository root.
        if let Some(root) = exe.ancestors().nth(3) {
            candidates.push(root.join(DEFAULT_ORT_RELATIVE));
        }
    }
    candidates.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_ORT_RELATIVE));
    candidates.into_iter().find(|p| p.is_file()).ok_or_else(|| {
        EmbedError::Runtime(
            "ONNX Runtime library not found (set ORT_DYLIB_PATH, or run scripts/fetch-assets.sh \
             to install it under models/onnxruntime/)"
                .into(),
        )
    })
}

fn environment(dylib: &Path) -> Result<&'static Environment, EmbedError> {
    let env = ORT_ENV.get_or_init(|| {
        let builder = ort::init_from(dylib).map_err(|e| {
            format!(
                "cannot load ONNX Runtime from {}: {e}; run scripts/fetch-assets.sh",
                dylib.display()
            )
        })?;
        builder
            .with_name("vitrine")
            // The Microsoft build phones home unless told not to; a server
            // that ingests a marketplace's catalog must not.
            .with_telemetry(false)
            .build()
            .map_err(|e| format!("cannot start ONNX Runtime: {e}"))
    });
    env.as_ref().map_err(|e| EmbedError::Runtime(e.clone()))
}

/// Most images one session runs at once. ONNX Runtime's CPU arena grows to
/// the largest run it has seen and never gives memory back, and this model's
/// activations are ~5 MB per image at their widest: a session fed 8 images a
/// run (batch 16 over 2 threads) kept ~100 MB more than one fed 2. On CPU,
/// images per run barely matter for speed (batch 1 and batch 64 are within
/// 3 % in `benches/pipeline.rs`), so a batch is run in slices of this size.
/// Measured 2026-11-22 (`scripts/memtest.sh`, 300 products indexed): server
/// RssAnon 291 MB with whole sub-batches, 182 MB with slices of 2; `vitrine
/// bench ingest` in the same session: 129–131 images/s whole, 133–134 sliced.
const MAX_RUN: usize = 2;

/// A loaded model and the pool that runs it. Synchronous: call it from a
/// blocking context (the [`super::EmbedService`] batcher does).
pub struct Embedder {
    info: ModelInfo,
    pool: rayon::ThreadPool,
    /// One session per pool thread, indexed by `rayon::current_thread_index`.
    /// `Session::run` needs `&mut self`; each mutex is only ever taken by its
    /// own thread, so it is never contended. A std mutex suffices: the lock
    /// is held across blocking native code, never across an `.await`.
    sessions: Vec<Mutex<Session>>,
    /// Pixel cap and the process-wide decode budget.
    limits: preprocess::DecodeLimits,
}

impl Embedder {
    /// Loads the model that `[embed]` describes, resolving the ONNX Runtime
    /// library. Blocking (it reads and optimises the model).
    pub fn from_settings(s: &crate::config::EmbedSettings) -> Result<Self, EmbedError> {
        let info = ModelInfo::load(&s.model_dir)?;
        let dylib = resolve_ort_library(s.ort_dylib_path.as_deref(), &s.model_dir)?;
        let limits = preprocess::DecodeLimits::new(s.max_pixels, s.decode_budget_bytes);
        Self::load(info, &dylib, s.threads(), limits)
    }

    pub fn load(
        info: ModelInfo,
        ort_dylib: &Path,
        threads: usize,
        limits: preprocess::DecodeLimits,
    ) -> Result<Self, EmbedError> {
        let env = environment(ort_dylib)?;
        let threads = threads.max(1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("vitrine-embed-{i}"))
            .build()
            .map_err(|e| EmbedError::Runtime(format!("cannot start the embedding pool: {e}")))?;
        let mut sessions = Vec::with_capacity(threads);
        for _ in 0..threads {
            let session = Session::builder(env)
                .and_then(|b| Ok(b.with_intra_threads(1)?))
                .and_then(|b| Ok(b.with_inter_threads(1)?))
                .and_then(|b| Ok(b.with_optimization_level(GraphOptimizationLevel::Level3)?))
                .and_then(|mut b| b.commit_from_file(&info.model_path))
                .map_err(|e| {
                    EmbedError::Model(format!(
                        "cannot load model {}: {e}",
                        info.model_path.display()
                    ))
                })?;
            sessions.push(Mutex::new(session));
        }
        let embedder = Self {
            info,
            pool,
            sessions,
            limits,
        };
        embedder.check_output()?;
        Ok(embedder)
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The limits every decode of this embedder runs under.
    pub fn decode_limits(&self) -> &preprocess::DecodeLimits {
        &self.limits
    }

    pub fn threads(&self) -> usize {
        self.sessions.len()
    }

    pub fn sample_len(&self) -> usize {
        let i = &self.info.manifest.input;
        3 * i.width as usize * i.height as usize
    }

    /// Catches a manifest that disagrees with the model at start-up rather
    /// than on the first event.
    fn check_output(&self) -> Result<(), EmbedError> {
        let v = self.infer(&vec![0.0; self.sample_len()], 1)?;
        let dim = self.info.dim();
        if v.len() != 1 || v[0].len() != dim {
            return Err(EmbedError::Model(format!(
                "model output `{}` does not have the manifest's dimension {dim}",
                self.info.manifest.output.name
            )));
        }
        Ok(())
    }

    /// Runs the model on `n` pre-made samples laid out back to back in
    /// `tensor`, splitting them across the pool. Returns L2-normalised rows.
    pub fn infer(&self, tensor: &[f32], n: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(self
            .infer_labelled(tensor, n)?
            .into_iter()
            .map(|e| e.vector)
            .collect())
    }

    /// [`Embedder::infer`], with each sample's labels (none when the
    /// manifest names no classifier output).
    pub fn infer_labelled(&self, tensor: &[f32], n: usize) -> Result<Vec<Embedded>, EmbedError> {
        let sample = self.sample_len();
        assert_eq!(tensor.len(), n * sample, "tensor length must be n × sample");
        if n == 0 {
            return Ok(Vec::new());
        }
        let per_thread = n.div_ceil(self.threads());
        let chunks: Result<Vec<Vec<Embedded>>, EmbedError> = self.pool.install(|| {
            tensor
                .par_chunks(per_thread * sample)
                .map(|chunk| self.run_session(chunk, chunk.len() / sample))
                .collect()
        });
        Ok(chunks?.into_iter().flatten().collect())
    }

    fn run_session(&self, chunk: &[f32], n: usize) -> Result<Vec<Embedded>, EmbedError> {
        if n > MAX_RUN {
            let sample = self.sample_len();
            let mut out = Vec::with_capacity(n);
            for part in chunk.chunks(MAX_RUN * sample) {
                out.extend(self.run_session(part, part.len() / sample)?);
            }
            return Ok(out);
        }
        let m = &self.info.manifest;
        let idx = rayon::current_thread_index().unwrap_or(0) % self.sessions.len();
        let mut session = self.sessions[idx]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (h, w) = (m.input.height as usize, m.input.width as usize);
        let shape = match m.input.layout {
            super::manifest::Layout::Nchw => [n, 3, h, w],
            super::manifest::Layout::Nhwc => [n, h, w, 3],
        };
        let input = TensorRef::from_array_view((shape, chunk))
            .map_err(|e| EmbedError::Inference(e.to_string()))?;
        let outputs = session
            .run(ort::inputs![m.input.name.as_str() => input])
            .map_err(|e| EmbedError::Inference(e.to_string()))?;
        let out = outputs.get(&m.output.name).ok_or_else(|| {
            EmbedError::Model(format!("model has no output named `{}`", m.output.name))
        })?;
        let (_, data) = out
            .try_extract_tensor::<f32>()
            .map_err(|e| EmbedError::Inference(e.to_string()))?;
        let dim = m.output.dim;
        if data.len() != n * dim {
            return Err(EmbedError::Model(format!(
                "output `{}` has {} values for {n} images; expected dimension {dim}",
                m.output.name,
                data.len()
            )));
        }
        let vectors = data.chunks_exact(dim).map(l2_normalised);
        let labels: Vec<Vec<Label>> = match &m.labels {
            None => vec![Vec::new(); n],
            Some(spec) => {
                let out = outputs.get(&spec.output).ok_or_else(|| {
                    EmbedError::Model(format!("model has no output named `{}`", spec.output))
                })?;
                let (_, logits) = out
                    .try_extract_tensor::<f32>()
                    .map_err(|e| EmbedError::Inference(e.to_string()))?;
                let classes = self.info.label_names.len();
                if logits.len() != n * classes {
                    return Err(EmbedError::Model(format!(
                        "output `{}` has {} values for {n} images; the label names file has \
                         {classes} classes",
                        spec.output,
                        logits.len()
                    )));
                }
                logits
                    .chunks_exact(classes)
                    .map(|row| top_labels(row, &self.info.label_names, spec.top_k, spec.min_score))
                    .collect()
            }
        };
        Ok(vectors
            .zip(labels)
            .map(|(vector, labels)| Embedded { vector, labels })
            .collect())
    }

    /// Decodes, preprocesses and embeds a batch of encoded images. A bad
    /// image fails only its own slot.
    pub fn embed_images<B: AsRef<[u8]> + Sync>(
        &self,
        images: &[B],
    ) -> Vec<Result<Vec<f32>, EmbedError>> {
        self.embed_images_labelled(images)
            .into_iter()
            .map(|r| r.map(|e| e.vector))
            .collect()
    }

    /// [`Embedder::embed_images`], with each image's labels.
    pub fn embed_images_labelled<B: AsRef<[u8]> + Sync>(
        &self,
        images: &[B],
    ) -> Vec<Result<Embedded, EmbedError>> {
        let sample = self.sample_len();
        let manifest = &self.info.manifest;
        let limits = &self.limits;
        self.pool.install(|| {
            let mut tensor = vec![0f32; images.len() * sample];
            let prepared: Vec<Result<(), EmbedError>> = tensor
                .par_chunks_mut(sample)
                .zip(images.par_iter())
                .map(|(out, bytes)| {
                    preprocess::preprocess(bytes.as_ref(), manifest, limits, out)
                        .map_err(EmbedError::from)
                })
                .collect();
            // Only good images go to the model.
            let good: Vec<usize> = (0..images.len()).filter(|&i| prepared[i].is_ok()).collect();
            let compact: Vec<f32> = if good.len() == images.len() {
                tensor
            } else {
                good.iter()
                    .flat_map(|&i| tensor[i * sample..(i + 1) * sample].iter().copied())
                    .collect()
            };
            let mut vectors = match self.infer_labelled(&compact, good.len()) {
                Ok(v) => v.into_iter().map(Ok).collect::<Vec<_>>(),
                Err(e) => good.iter().map(|_| Err(e.clone())).collect(),
            }
            .into_iter();
            prepared
                .into_iter()
                .map(|p| p.and_then(|()| vectors.next().expect("one vector per good image")))
                .collect()
        })
    }
}

/// A class the classifier head sees in an image, with its probability.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Label {
    pub name: String,
    pub score: f32,
}

/// An image's embedding and its labels (empty without a classifier head).
#[derive(Debug, Clone, PartialEq)]
pub struct Embedded {
    pub vector: Vec<f32>,
    pub labels: Vec<Label>,
}

/// The `k` most probable classes (softmax over `logits`) at or above
/// `min_score`, best first. A class name that repeats (ImageNet has two
/// "missile" classes) is kept once, at its best score.
pub fn top_labels(logits: &[f32], names: &[String], k: usize, min_score: f32) -> Vec<Label> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| exp[b].total_cmp(&exp[a]).then(a.cmp(&b)));
    let mut out: Vec<Label> = Vec::with_capacity(k);
    for i in order {
        let score = exp[i] / sum;
        if out.len() == k || score < min_score {
            break;
        }
        if out.iter().any(|l| l.name == names[i]) {
            continue;
        }
        out.push(Label {
            name: names[i].clone(),
            score,
        });
    }
    out
}

/// Scales a vector to unit length (cosine similarity becomes a dot product).
pub fn l2_normalised(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter().map(|x| x / norm).collect()
    } else {
        v.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_to_unit_length() {
        let v = l2_normalised(&[3.0, 4.0]);
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        assert_eq!(l2_normalised(&[0.0, 0.0]), vec![0.0, 0.0]);
    }

    /// A batch is run in slices of `MAX_RUN` per session: the rows must come
    /// back complete and in order, equal to embedding each image alone.
    #[test]
    fn batches_sliced_into_runs_match_single_images() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let settings = crate::config::EmbedSettings {
            model_dir: root.join("models/effnet-lite0"),
            threads: 2,
            ..Default::default()
        };
        let embedder = Embedder::from_settings(&settings)
            .expect("model and ONNX Runtime; run scripts/fetch-assets.sh");
        // 7 distinct samples: more than threads × MAX_RUN, and uneven.
        let sample = embedder.sample_len();
        let n = 7;
        let tensor: Vec<f32> = (0..n * sample)
            .map(|i| ((i % 251) as f32 / 125.0 - 1.0) * ((i / sample) as f32 + 1.0) / n as f32)
            .collect();
        let batch = embedder.infer(&tensor, n).unwrap();
        assert_eq!(batch.len(), n);
        for (i, row) in batch.iter().enumerate() {
            let alone = embedder
                .infer(&tensor[i * sample..(i + 1) * sample], 1)
                .unwrap()
                .remove(0);
            let cos: f32 = row.iter().zip(&alone).map(|(a, b)| a * b).sum();
            assert!(
                cos > 0.9999,
                "row {i}: cosine {cos} with the image embedded alone"
            );
        }
        // Different inputs, different rows: a misordered slice would show.
        let cos06: f32 = batch[0].iter().zip(&batch[6]).map(|(a, b)| a * b).sum();
        assert!(cos06 < 0.9999, "rows 0 and 6 are identical");
    }

    #[test]
    fn top_labels_are_the_most_probable_named_classes() {
        let names: Vec<String> = ["a", "b", "missile", "missile", "c"]
            .map(String::from)
            .to_vec();
        let labels = top_labels(&[1.0, 0.0, 3.0, 2.9, -5.0], &names, 3, 0.05);
        let got: Vec<&str> = labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(
            got,
            ["missile", "a"],
            "a repeated name once; c is under 0.05"
        );
        assert!(labels[0].score > labels[1].score);
    }

    /// The converted model's classifier head is real: photos get the
    /// ImageNet classes that they show.
    #[test]
    fn the_classifier_head_names_what_real_photos_show() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let settings = crate::config::EmbedSettings {
            model_dir: root.join("models/effnet-lite0"),
            threads: 1,
            ..Default::default()
        };
        let embedder = Embedder::from_settings(&settings)
            .expect("model and ONNX Runtime; run scripts/fetch-assets.sh");
        assert_eq!(embedder.info().label_names.len(), 1000);
        for (photo, class) in [
            ("coffee.png", "espresso"),
            ("baboon.jpg", "baboon"),
            ("football.jpg", "soccer ball"),
            ("squirrel.jpg", "fox squirrel"),
        ] {
            let bytes = std::fs::read(root.join("tests/data/photos").join(photo)).unwrap();
            let e = embedder
                .embed_images_labelled(&[bytes])
                .pop()
                .unwrap()
                .unwrap();
            assert_eq!(e.labels[0].name, class, "{photo}: {:?}", e.labels);
            assert!(e.labels[0].score > 0.5, "{photo}: {:?}", e.labels);
        }
    }

    #[test]
    fn a_missing_runtime_names_the_script() {
        let err = resolve_ort_library(
            Some(Path::new("/nonexistent/libonnxruntime.so")),
            Path::new("."),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("scripts/fetch-assets.sh"), "{err}");
    }
}
