//! The on-disk format: the header (`index.json`), the directory lock, the
//! log entries of `points.log`, how they are framed, and their replay at
//! open, torn tails and the old unframed format included. What the files
//! are and how a write is ordered is in the module doc of [`super`].
//!
//! # The log (format 2)
//! `points.log` starts with [`LOG_MAGIC`] and holds records, one per
//! append (so one per write call: a batch is all or nothing):
//!
//! ```text
//! len: u32 LE | crc: u32 LE = CRC32(len LE ‖ body) | body: len bytes, a JSON array of entries
//! ```
//!
//! A write that did not complete (a crash, a full disk) leaves a **torn
//! tail**: a last record shorter than its length says, or one whose
//! checksum fails and which ends the file, or zeros to the end. It was
//! never acknowledged, so open cuts it off, with a warning, and keeps its
//! bytes beside the log (`points.log.torn-<ms>`). A bad record with more
//! after it is corruption, and open fails: skipping it would silently
//! resurrect or lose points (the audit's deleted product that came back).
//!
//! # Format 1
//! Indexes written before framing hold JSON lines. They open as before,
//! and are rewritten in format 2 at once (the header first, so that an
//! older binary refuses the index rather than misreading framed records).
//! A last line without its newline is a torn tail; a line that does not
//! parse but ends in a whole entry is the old bug's "next write glued onto
//! a torn line", and that entry is kept.

use std::{
    collections::HashMap,
    fs::{File, OpenOptions},
    io::{self, Write},
    path::Path,
};

use serde::{Deserialize, Serialize};

use crate::index::{IndexError, Payload};

/// The format this code writes.
pub(super) const FORMAT: u32 = 2;
/// JSON-lines logs: still opened, and rewritten as [`FORMAT`].
const FORMAT_JSON_LINES: u32 = 1;

/// The first bytes of a framed log. A JSON-lines log starts with `{`.
pub(super) const LOG_MAGIC: [u8; 8] = *b"VTRLOG2\n";
/// Frame header: length and checksum.
const FRAME_HEADER: usize = 8;
/// Entries per record when a whole log is written (compaction, migration).
const ENTRIES_PER_RECORD: usize = 4096;

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    format: u32,
    dim: usize,
    model_version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

pub(super) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> IndexError + '_ {
    move |source| IndexError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn corrupt(path: &Path, reason: String) -> IndexError {
    IndexError::Corrupt {
        path: path.display().to_string(),
        reason,
    }
}

/// Takes the exclusive lock on `dir` (its `LOCK` file), which the returned
/// file holds until dropped: one writing process per index. The lock is
/// advisory (`flock`), so it binds every Vitrine process, and is released
/// by the kernel when the process dies, `kill -9` included.
pub(super) fn lock_dir(dir: &Path) -> Result<File, IndexError> {
    let path = dir.join("LOCK");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_err(&path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(IndexError::Locked {
            path: dir.display().to_string(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(io_err(&path)(e)),
    }
}

/// Checks `dir/index.json` against `dim` and `model_version`, or writes it
/// if the index is new. Returns the format found (a new index: [`FORMAT`]).
pub(super) fn check_or_write_header(
    dir: &Path,
    dim: usize,
    model_version: &str,
) -> Result<u32, IndexError> {
    let header_path = dir.join("index.json");
    if !header_path.exists() {
        write_header(dir, dim, model_version)?;
        return Ok(FORMAT);
    }
    let text = std::fs::read_to_string(&header_path).map_err(io_err(&header_path))?;
    let h: Header =
        serde_json::from_str(&text).map_err(|e| corrupt(&header_path, e.to_string()))?;
    if h.model_version != model_version {
        return Err(IndexError::ModelMismatch {
            path: dir.display().to_string(),
            found: h.model_version,
            expected: model_version.to_string(),
        });
    }
    if h.dim != dim || !(FORMAT_JSON_LINES..=FORMAT).contains(&h.format) {
        return Err(corrupt(
            &header_path,
            format!(
                "format {} dim {} (expected {FORMAT_JSON_LINES}..={FORMAT}, {dim})",
                h.format, h.dim
            ),
        ));
    }
    Ok(h.format)
}

/// Writes `dir/index.json` in [`FORMAT`], atomically.
pub(super) fn write_header(dir: &Path, dim: usize, model_version: &str) -> Result<(), IndexError> {
    let h = Header {
        format: FORMAT,
        dim,
        model_version: model_version.to_string(),
    };
    let tmp = dir.join("index.json.tmp");
    let path = dir.join("index.json");
    std::fs::write(
        &tmp,
        serde_json::to_vec_pretty(&h).expect("header serialises"),
    )
    .map_err(io_err(&tmp))?;
    File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
    sync_dir(dir)
}

pub(super) fn sync_dir(dir: &Path) -> Result<(), IndexError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// One record: the frame header and the entries' JSON.
pub(super) fn frame(entries: &[LogEntry]) -> Vec<u8> {
    let body = serde_json::to_vec(entries).expect("log entries serialise");
    let len = u32::try_from(body.len()).expect("a log record is under 4 GiB");
    let mut out = Vec::with_capacity(FRAME_HEADER + body.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&checksum(len, &body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

fn checksum(len: u32, body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len.to_le_bytes());
    h.update(body);
    h.finalize()
}

/// The live points after replaying the log: id → (slot, scale, payload).
pub(super) type Replayed = HashMap<String, (usize, f32, Payload)>;

/// The log as open found it.
pub(super) struct Loaded {
    pub(super) live: Replayed,
    /// Entries replayed (live or not): what compaction weighs.
    pub(super) entries: usize,
    /// Length of the framed log after any torn tail was cut; `None` when
    /// the log is absent or in format 1 and must be written anew.
    pub(super) framed_len: Option<u64>,
}

/// Replays `points.log`: framed, format 1, or absent (an empty index). A
/// torn framed tail is cut off the file here; a format-1 log is left for
/// the caller to rewrite (`framed_len: None`).
pub(super) fn load_log(path: &Path) -> Result<Loaded, IndexError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_err(path)(e)),
    };
    let mut loaded = Loaded {
        live: Replayed::new(),
        entries: 0,
        framed_len: None,
    };
    let apply = |loaded: &mut Loaded, entry: LogEntry| {
        loaded.entries += 1;
        match entry {
            LogEntry::Put {
                slot,
                scale,
                payload,
            } => {
                loaded
                    .live
                    .insert(payload.product_id.clone(), (slot, scale, payload));
            }
            LogEntry::Del { id } => {
                loaded.live.remove(&id);
            }
        }
    };
    if bytes.starts_with(&LOG_MAGIC) {
        let valid = replay_framed(&bytes, path, |e| apply(&mut loaded, e))?;
        if valid < bytes.len() {
            cut_torn_tail(path, &bytes, valid)?;
        }
        loaded.framed_len = Some(valid as u64);
    } else {
        let valid = replay_json_lines(&bytes, path, |e| apply(&mut loaded, e))?;
        if valid < bytes.len() {
            tracing::warn!(
                path = %path.display(), offset = valid, bytes = bytes.len() - valid,
                "index log (format 1) ends in a torn line, a write that never completed \
                 and was never acknowledged; dropping it"
            );
            save_torn(path, &bytes[valid..]);
        }
    }
    Ok(loaded)
}

/// Replays the records after the magic; returns where the valid records
/// end (the file's length unless its tail is torn).
fn replay_framed(
    bytes: &[u8],
    path: &Path,
    mut apply: impl FnMut(LogEntry),
) -> Result<usize, IndexError> {
    let mut pos = LOG_MAGIC.len();
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        // Shorter than its header or its length: the last write, torn.
        if rest.len() < FRAME_HEADER {
            return Ok(pos);
        }
        let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
        let end = FRAME_HEADER + len as usize;
        if rest.len() < end {
            return Ok(pos);
        }
        let body = &rest[FRAME_HEADER..end];
        let entries = (len > 0 && checksum(len, body) == crc)
            .then(|| serde_json::from_slice::<Vec<LogEntry>>(body).ok())
            .flatten();
        match entries {
            Some(entries) => entries.into_iter().for_each(&mut apply),
            // A bad last record, or zeros to the end (a crash after the
            // file grew but before its data reached the disk): torn.
            None if end == rest.len() || rest.iter().all(|b| *b == 0) => return Ok(pos),
            None => {
                return Err(corrupt(
                    path,
                    format!(
                        "the log record at byte {pos} fails its checksum, and {} bytes follow \
                         it; the index cannot be trusted: rebuild it (`vitrine reindex` into \
                         a fresh directory)",
                        rest.len() - end
                    ),
                ));
            }
        }
        pos += end;
    }
    Ok(pos)
}

/// Replays format-1 JSON lines; returns where the last whole line ends.
fn replay_json_lines(
    bytes: &[u8],
    path: &Path,
    mut apply: impl FnMut(LogEntry),
) -> Result<usize, IndexError> {
    let mut pos = 0;
    for (n, line) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
        if line.last() != Some(&b'\n') {
            // The last line, without its newline: torn.
            return Ok(pos);
        }
        pos += line.len();
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        if let Ok(entry) = serde_json::from_slice::<LogEntry>(text) {
            apply(entry);
            continue;
        }
        // The old code appended after a torn line without cutting it, so a
        // later entry can follow a fragment on the same line. JSON escapes
        // every quote inside strings, so `{"op":` only starts an entry.
        let glued = (1..text.len())
            .filter(|i| text[*i..].starts_with(br#"{"op":"#))
            .find_map(|i| serde_json::from_slice::<LogEntry>(&text[i..]).ok());
        match glued {
            Some(entry) => {
                tracing::warn!(
                    path = %path.display(), line = n + 1,
                    "index log (format 1): an entry was glued onto a torn one; keeping the \
                     entry, dropping the fragment"
                );
                apply(entry);
            }
            None => {
                return Err(corrupt(
                    path,
                    format!(
                        "line {} is not a log entry; the index cannot be trusted: rebuild it \
                         (`vitrine reindex` into a fresh directory)",
                        n + 1
                    ),
                ));
            }
        }
    }
    Ok(pos)
}

/// Cuts a framed log's torn tail off, loudly, keeping its bytes aside.
fn cut_torn_tail(path: &Path, bytes: &[u8], valid: usize) -> Result<(), IndexError> {
    tracing::warn!(
        path = %path.display(), offset = valid, bytes = bytes.len() - valid,
        "index log ends in a torn record, a write that never completed (a crash or a full \
         disk) and was never acknowledged; truncating the log there"
    );
    save_torn(path, &bytes[valid..]);
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err(path))?;
    f.set_len(valid as u64).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

/// Keeps a torn tail's bytes beside the log, for a post-mortem. Best
/// effort: on a full disk this fails too, and the log line above remains.
fn save_torn(log: &Path, tail: &[u8]) {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let aside = log.with_extension(format!("log.torn-{ms}"));
    if let Err(e) = std::fs::write(&aside, tail) {
        tracing::warn!(path = %aside.display(), error = %e, "could not keep the torn log tail");
    }
}

/// Writes a whole framed log with `entries` to `dir/points.log` through a
/// synced temporary file and a rename; returns its length.
pub(super) fn write_log(dir: &Path, entries: &[LogEntry]) -> Result<u64, IndexError> {
    let tmp = dir.join("points.log.tmp");
    let path = dir.join("points.log");
    let write = || -> io::Result<u64> {
        let mut f = File::create(&tmp)?;
        let mut len = LOG_MAGIC.len() as u64;
        f.write_all(&LOG_MAGIC)?;
        for chunk in entries.chunks(ENTRIES_PER_RECORD) {
            let record = frame(chunk);
            f.write_all(&record)?;
            len += record.len() as u64;
        }
        f.sync_all()?;
        Ok(len)
    };
    let len = match write() {
        Ok(len) => len,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(io_err(&tmp)(e));
        }
    };
    std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
    sync_dir(dir)?;
    Ok(len)
}
