//! Statistics of repeated measurements and the machine's state, shared by
//! `vitrine bench` (which includes this file with `#[path]`, for the reason
//! given in `photos.rs`) and the bench targets: machines here are shared and
//! noisy, so every report carries its spread and the load average.
//!
//! Its unit tests are in `src/cli/bench/mod.rs`, so that they run with the
//! binary's (`cargo test --bin vitrine`): the bench targets have no test
//! harness.

// Each includer uses its own subset.
#![allow(dead_code)]

use serde_json::{Value, json};

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

    /// The summary and every run, rounded to three decimals.
    pub fn json(&self, runs: &[f64]) -> Value {
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

pub fn round3(x: f64) -> f64 {
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

pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The 1, 5 and 15-minute load averages, as `/proc/loadavg` gives them:
/// on a shared machine they tell which runs had company.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The 1-minute load average alone, as a number.
pub fn load_1m() -> Option<f64> {
    load_average().split_whitespace().next()?.parse().ok()
}
