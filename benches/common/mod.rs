//! What `benches/index.rs` and `benches/search.rs` share: the vector size,
//! a small deterministic generator, the clustered synthetic vectors both
//! time their searches on, and the load average they report. (A folder with
//! `mod.rs`, so cargo does not take it for a bench target of its own.)

// Each bench uses its own subset of these.
#![allow(dead_code)]

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

/// The 1, 5 and 15-minute load averages, as `/proc/loadavg` gives them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}
