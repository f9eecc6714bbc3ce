//! `[duplicates]`: near-duplicate detection at ingest (the same product
//! uploaded twice, by two sellers or twice by one).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DuplicatesSettings {
    /// Look for near-duplicates of each newly embedded image.
    pub enabled: bool,
    /// Cosine similarity at or above which two products' images are
    /// near-duplicates. The default comes from the measured curve in
    /// BENCHMARKS.md ("Near-duplicate threshold"): every mild copy (a 90%
    /// crop, a half-size rescale, a JPEG re-encode at quality 40) of the
    /// test photos reaches it (the lowest is 0.77), and no two distinct
    /// photos do (the highest is 0.61).
    pub threshold: f32,
    /// How many nearest neighbours of the new vector are compared.
    pub neighbours: usize,
}

impl Default for DuplicatesSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            threshold: 0.75,
            neighbours: 10,
        }
    }
}
