//! The model manifest: everything about a model that the code must not
//! hard-code, so another image model (a CLIP image tower, say) drops in by
//! shipping a different `manifest.json` beside its `.onnx` file.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::EmbedError;

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    pub name: String,
    /// Model file, relative to the manifest's folder.
    pub file: String,
    /// Expected sha256 of the model file; checked at load when present.
    #[serde(default)]
    pub sha256: Option<String>,
    pub input: InputSpec,
    pub preprocess: PreprocessSpec,
    pub output: OutputSpec,
    /// The classifier head, when the model has one: each image then gets
    /// its top-k class names with scores. Absent: no labels.
    #[serde(default)]
    pub labels: Option<LabelsSpec>,
    #[serde(default)]
    pub supports_text: bool,
}

/// A classifier output and the names of its classes.
#[derive(Debug, Clone, Deserialize)]
pub struct LabelsSpec {
    /// The output holding one score (a logit) per class.
    pub output: String,
    /// Class names, one per line in the output's order, relative to the
    /// manifest's folder.
    pub file: String,
    /// How many of the best classes an image keeps.
    #[serde(default = "five")]
    pub top_k: usize,
    /// Classes under this probability (softmax of the logits) are dropped.
    #[serde(default = "min_score")]
    pub min_score: f32,
}

fn five() -> usize {
    5
}

fn min_score() -> f32 {
    0.05
}

#[derive(Debug, Clone, Deserialize)]
pub struct InputSpec {
    pub name: String,
    pub width: u32,
    pub height: u32,
    /// `NCHW` or `NHWC`.
    pub layout: Layout,
    /// `RGB` or `BGR`.
    #[serde(default = "rgb")]
    pub channels: String,
}

fn rgb() -> String {
    "RGB".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Layout {
    #[serde(rename = "NCHW")]
    Nchw,
    #[serde(rename = "NHWC")]
    Nhwc,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PreprocessSpec {
    /// Resize so the shorter side has this length, then crop. `None` (or 0)
    /// resizes straight to the input size.
    #[serde(default)]
    pub resize_shortest_side: Option<u32>,
    /// `center` is the only crop supported.
    #[serde(default)]
    pub crop: Option<String>,
    /// `bilinear`, `bicubic`, `lanczos3` or `nearest`.
    #[serde(default = "bilinear")]
    pub filter: String,
    /// Per channel, in 0–255 pixel units: `(x - mean) / std`.
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

fn bilinear() -> String {
    "bilinear".into()
}

#[derive(Debug, Clone, Deserialize)]
pub struct OutputSpec {
    pub name: String,
    pub dim: usize,
}

/// A manifest with its resolved model path and version.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub manifest: Manifest,
    pub model_path: PathBuf,
    /// The model file's sha256: vectors of different versions never mix.
    pub version: String,
    /// The class names of `manifest.labels`, in output order; empty when
    /// the model has no classifier head.
    pub label_names: Vec<String>,
}

impl ModelInfo {
    /// Reads `dir/manifest.json` and hashes the model file it names.
    pub fn load(dir: &Path) -> Result<Self, EmbedError> {
        let manifest_path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&manifest_path).map_err(|e| {
            EmbedError::Model(format!(
                "cannot read model manifest {}: {e}",
                manifest_path.display()
            ))
        })?;
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
            EmbedError::Model(format!("invalid manifest {}: {e}", manifest_path.display()))
        })?;
        if manifest.input.channels != "RGB" && manifest.input.channels != "BGR" {
            return Err(EmbedError::Model(format!(
                "manifest: channels must be RGB or BGR, not {}",
                manifest.input.channels
            )));
        }
        let model_path = dir.join(&manifest.file);
        let bytes = std::fs::read(&model_path).map_err(|e| {
            EmbedError::Model(format!(
                "model file {} is missing ({e}); run scripts/fetch-assets.sh",
                model_path.display()
            ))
        })?;
        let version = hex::encode(Sha256::digest(&bytes));
        if let Some(expected) = &manifest.sha256
            && !expected.eq_ignore_ascii_case(&version)
        {
            return Err(EmbedError::Model(format!(
                "model file {} has sha256 {version}, but the manifest expects {expected}; \
                 re-run scripts/fetch-assets.sh",
                model_path.display()
            )));
        }
        let label_names = match &manifest.labels {
            None => Vec::new(),
            Some(spec) => {
                let path = dir.join(&spec.file);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    EmbedError::Model(format!(
                        "label names file {} is missing ({e}); run scripts/fetch-assets.sh",
                        path.display()
                    ))
                })?;
                let names: Vec<String> = text.lines().map(str::to_string).collect();
                if names.is_empty() || names.iter().any(|n| n.trim().is_empty()) {
                    return Err(EmbedError::Model(format!(
                        "label names file {} is empty or has a blank line",
                        path.display()
                    )));
                }
                names
            }
        };
        Ok(Self {
            manifest,
            model_path,
            version,
            label_names,
        })
    }

    /// A short, human-friendly form of the version: `efficientnet-lite0@1a2b3c4d`.
    pub fn short_version(&self) -> String {
        format!("{}@{}", self.manifest.name, &self.version[..12])
    }

    pub fn dim(&self) -> usize {
        self.manifest.output.dim
    }
}
