//! The on-disk format: the header (`index.json`), the log entries of
//! `points.log` and their replay at open. What the files are and how a
//! write is ordered is in the module doc of [`super`].

use std::{
    collections::HashMap,
    fs::File,
    io::{BufRead, BufReader},
    path::Path,
};

use serde::{Deserialize, Serialize};

use crate::index::{IndexError, Payload};

pub(super) const FORMAT: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    format: u32,
    dim: usize,
    model_version: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(super) enum LogEntry {
    Put {
        slot: usize,
        scale: f32,
        payload: Payload,
    },
    Del {
        id: String,
    },
}

pub(super) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> IndexError + '_ {
    move |source| IndexError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Checks `dir/index.json` against `dim` and `model_version`, or writes it
/// if the index is new.
pub(super) fn check_or_write_header(
    dir: &Path,
    dim: usize,
    model_version: &str,
) -> Result<(), IndexError> {
    let header_path = dir.join("index.json");
    if header_path.exists() {
        let text = std::fs::read_to_string(&header_path).map_err(io_err(&header_path))?;
        let h: Header = serde_json::from_str(&text).map_err(|e| IndexError::Corrupt {
            path: header_path.display().to_string(),
            reason: e.to_string(),
        })?;
        if h.model_version != model_version {
            return Err(IndexError::ModelMismatch {
                path: dir.display().to_string(),
                found: h.model_version,
                expected: model_version.to_string(),
            });
        }
        if h.dim != dim || h.format != FORMAT {
            return Err(IndexError::Corrupt {
                path: header_path.display().to_string(),
                reason: format!(
                    "format {} dim {} (expected {FORMAT}, {dim})",
                    h.format, h.dim
                ),
            });
        }
    } else {
        let h = Header {
            format: FORMAT,
            dim,
            model_version: model_version.to_string(),
        };
        let tmp = dir.join("index.json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(&h).expect("header serialises"),
        )
        .map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &header_path).map_err(io_err(&header_path))?;
    }
    Ok(())
}

/// The live points after replaying the log: id → (slot, scale, payload).
pub(super) type Replayed = HashMap<String, (usize, f32, Payload)>;

/// Replays `points.log` (absent: an empty index); returns the live points
/// and how many entries the log holds.
pub(super) fn replay(log_path: &Path) -> Result<(Replayed, usize), IndexError> {
    let mut live = Replayed::new();
    let mut log_entries = 0usize;
    if !log_path.exists() {
        return Ok((live, 0));
    }
    let f = File::open(log_path).map_err(io_err(log_path))?;
    for (n, line) in BufReader::new(f).lines().enumerate() {
        let line = line.map_err(io_err(log_path))?;
        if line.trim().is_empty() {
            continue;
        }
        // A torn last line (crash mid-append) was never acknowledged.
        let Ok(entry) = serde_json::from_str::<LogEntry>(&line) else {
            tracing::warn!(line = n + 1, path = %log_path.display(), "skipping unreadable index log line");
            continue;
        };
        log_entries += 1;
        match entry {
            LogEntry::Put {
                slot,
                scale,
                payload,
            } => {
                live.insert(payload.product_id.clone(), (slot, scale, payload));
            }
            LogEntry::Del { id } => {
                live.remove(&id);
            }
        }
    }
    Ok((live, log_entries))
}

/// The log's bytes for `entries`: one JSON line each.
pub(super) fn encode(entries: &[LogEntry]) -> Vec<u8> {
    let mut buf = Vec::new();
    for e in entries {
        serde_json::to_writer(&mut buf, e).expect("log entries serialise");
        buf.push(b'\n');
    }
    buf
}
