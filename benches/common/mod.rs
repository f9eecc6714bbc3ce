//! What the bench targets share: the vector size, a small deterministic
//! generator and the clustered synthetic vectors `benches/index.rs` and
//! `benches/search.rs` time their searches on; and, in files of their own
//! that `vitrine bench` includes too, the photos and resizers ([`photos`])
//! and the statistics and load average ([`stats`]). (A folder with
//! `mod.rs`, so cargo does not take it for a bench target of its own.)

// Each bench uses its own subset of these.
#![allow(dead_code)]

use std::path::PathBuf;

use vitrine::{Settings, embed::Embedder};

pub mod photos;
pub mod stats;

// `benches/index.rs` and `benches/search.rs` use it by this name; `pipeline` does not.
#[allow(unused_imports)]
pub use stats::load_average;

pub const DIM: usize = 1280;

/// xorshift64: fast, deterministic, and good enough for test vectors.
pub struct Rng(pub u64);
impl Rng {
    /// Uniform in [0, 1).
    pub fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }
}

pub fn normalise(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

/// 200 non-negative cluster centres.
pub fn centres(rng: &mut Rng) -> Vec<Vec<f32>> {
    (0..200)
        .map(|_| (0..DIM).map(|_| rng.next().powi(3)).collect())
        .collect()
}

/// A unit vector near `centre` (non-negative, like the model's output).
pub fn around(centre: &[f32], rng: &mut Rng) -> Vec<f32> {
    normalise(
        centre
            .iter()
            .map(|x| (x + 0.15 * rng.next()).max(0.0))
            .collect(),
    )
}

/// The repository root, where `scripts/fetch-assets.sh` puts the model and
/// the photos.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn model_dir() -> PathBuf {
    root().join("models/effnet-lite0")
}

/// The default settings with the real model and `threads` pool threads (0 =
/// one per core, the service's default).
pub fn settings(threads: usize) -> Settings {
    let mut s = Settings::for_data_dir(std::env::temp_dir());
    s.embed.model_dir = model_dir();
    s.embed.threads = threads;
    s
}

pub fn load_embedder(threads: usize) -> Embedder {
    Embedder::from_settings(&settings(threads).embed)
        .expect("model and ONNX Runtime; run scripts/fetch-assets.sh")
}
