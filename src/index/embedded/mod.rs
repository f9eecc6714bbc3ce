//! The embedded vector index: a binary first stage over all points, int8
//! rescoring of its survivors, f32 rescoring of the best of those; persisted
//! in the data directory. Benchmark figures are in BENCHMARKS.md (§5); this
//! doc keeps the reasoning.
//!
//! | file | owns |
//! |---|---|
//! | `mod.rs` (here) | [`EmbeddedIndex`], its options, its in-memory state, open |
//! | [`kernels`] | int8/f32 dot products, quantising, binary codes, Hamming distance |
//! | `format.rs` | the on-disk format: header, directory lock, log records and their framing, replay |
//! | `writer.rs` | the files a writer holds, log appends, compaction, the write operations and their rollback |
//! | `plan.rs` | the search plan ([`Plan`], its constants), candidate selection, top-k |
//! | `adapter.rs` | [`VectorIndex`](crate::index::VectorIndex) on the index's sized pools |
//! | [`live`] | the `LIVE` pointer naming the index folder that serves |
//!
//! # Why not an ANN engine (yet)
//! Qdrant's in-process engine `qdrant-edge` would give the embedded default
//! the same semantics as a Qdrant server, but its 0.8/0.9 releases need Rust
//! 1.96 (`debug_assert_matches`) and this project builds on 1.95; building
//! HNSW over 100k × 1280-d vectors also took minutes on 2 cores. A catalog
//! that fits one machine is served well by a scan whose first stage reads
//! few bytes per point.
//!
//! # Search
//! 1. **Binary stage** (unfiltered searches, and similar-by-product, whose
//!    only condition is excluding the product itself): one bit per dimension,
//!    160 bytes per 1280-d point, 16 MB at 100k, scanned with XOR + popcount
//!    over u64 words. The bit says whether the point's value in that
//!    dimension exceeds the **per-dimension mean** of the indexed vectors.
//!    EfficientNet features are non-negative (ReLU6, average pool, L2 norm),
//!    so sign bits would only say which values are exactly zero (47 % of
//!    them in the test photos' embeddings) and nothing about the rest; a
//!    per-vector threshold (its own mean) would waste the dimensions that
//!    are large or small in every image.
//!    The `max(100 · limit, 1000)` nearest by Hamming distance go on: with
//!    fewer candidates recall@10 fell on the synthetic sets (250 and 500
//!    were short of 1.000; the sweep is in BENCHMARKS.md §5), hence the
//!    floor of 1000.
//! 2. **int8 rescoring** of those with the int8 codes (one byte per
//!    dimension, per-vector scale, 128 MB at 100k), read through a memory
//!    map of `vectors.i8` (`index/mapped.rs`): page cache, not heap; the
//!    best `max(8 · limit, 64)` go on.
//! 3. **f32 rescoring** with the exact vectors, read from `vectors.f32` with
//!    positioned reads: a few dozen per query, so a map would buy nothing,
//!    and those pages stay in the page cache too.
//!
//! Searches with a category or price condition skip stage 1 and scan the
//! int8 codes of the matching points, exactly as before the binary stage:
//! the cost is what the filter leaves, a filter can never "miss" the way a
//! filtered graph walk can, and the Hamming ranking is weakest there (a
//! query whose own neighbourhood does not match the filter faces matches
//! that are all about equally far: through the binary stage a category
//! filter over 1/8 of 100k points kept recall@10 0.61). So does any search
//! over at most `8 × 1000` points, where the int8 scan costs about what the
//! binary stage does. `exclude_id` is resolved to a slot once, instead of
//! comparing the product id of all 100k payloads.
//!
//! The per-dimension means are not stored: they are computed at open from
//! `vectors.i8` and the scales in `points.log` (which open reads anyway),
//! and the binary codes with them, so the format is unchanged and indexes
//! written before open as they did. A growing index recomputes them, and
//! every binary code, each time it has doubled since (a fresh index after
//! its first batch): O(1) amortised rebuilds per upserted point, done under
//! the read lock with only the swap under the write lock. Codes are always
//! derived from the dequantised int8 codes, so those built at upsert equal
//! those rebuilt at open.
//!
//! # Files
//! - `index.json`: format, dimension and model version. Opening an index of
//!   another model version fails: vectors of two models never mix.
//! - `LOCK`: held (`flock`, exclusive) by the one process that has the
//!   index open; a second open fails with [`IndexError::Locked`]. Every
//!   open is a writer, `vitrine reindex` included.
//! - `vectors.f32`, `vectors.i8`: fixed-size records by slot number.
//!   `vectors.i8` is pre-extended in doubling steps (its tail past the last
//!   slot is zeros no slot references), so its map is replaced O(log n)
//!   times as the index grows; it never becomes shorter than its map.
//! - `points.log`: append-only entries, `put` (slot, scale, payload) and
//!   `del` (id), framed one record per write with a length and a CRC32
//!   (format 2; `format.rs` says how torn tails and format-1 JSON lines are
//!   read). Replayed at open; compacted when mostly dead.
//!
//! # Crash safety
//! A write first stores vector bytes in a slot no live point uses and syncs
//! them, then appends and syncs the log record that makes the slot live. A
//! crash before the log sync leaves an unreferenced slot, which is reused,
//! and at most a torn last record, which open cuts off. Replacing a point
//! writes a fresh slot and frees the old one only after the log commit, so
//! a reader sees the old or the new vector, never a mix. A write that fails
//! (a full disk) returns its error and leaves the index as it was
//! (`writer.rs`), so the event that caused it is retried.

mod adapter;
mod format;
pub mod kernels;
pub mod live;
mod plan;
mod writer;

#[cfg(test)]
mod recovery_tests;
#[cfg(test)]
mod tests;

use std::{
    collections::HashMap,
    fs::{File, OpenOptions},
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, RwLock},
};

pub use kernels::{binarise, dot_f32, dot_i8, hamming, quantise};
pub use plan::{BINARY_MIN_CANDIDATES, BINARY_OVERSAMPLE, EXACT_FACTOR, Plan};

use super::{Filter, Hit, IndexError, Payload, Point, mapped::MappedCodes};
use format::io_err;
use kernels::{all_binary_codes, mean_reference};
use writer::Writer;

/// How an [`EmbeddedIndex`] runs. `Default` is what [`EmbeddedIndex::open`]
/// uses.
#[derive(Debug, Clone, Default)]
pub struct EmbeddedOptions {
    /// Threads of the pool that runs searches and vector reads for the async
    /// [`VectorIndex`](crate::index::VectorIndex) calls; 0 (the default)
    /// leaves it to rayon: one per core, unless `RAYON_NUM_THREADS` says
    /// otherwise. Writes run on a thread of their own.
    pub search_threads: usize,
}

/// What the scan needs per live slot, kept compact and contiguous.
#[derive(Debug, Clone)]
struct SlotMeta {
    payload: Payload,
    scale: f32,
}

/// Searchable in-memory state, behind an `RwLock`: searches share it, and a
/// writer holds it exclusively only for the moment it takes to swap
/// entries in, never across disk I/O.
#[derive(Default)]
struct State {
    /// `vectors.i8`, memory-mapped: `dim` codes per slot. The file (and the
    /// map) may be longer than the live slots need: it grows in steps.
    codes: MappedCodes,
    /// Binary codes, `words` u64 per slot: bit `d` is set when the slot's
    /// dequantised int8 value in dimension `d` exceeds `reference[d]`.
    bits: Vec<u64>,
    /// Per-dimension thresholds of the binary codes: the mean of the live
    /// vectors (dequantised) when last computed. Not persisted: derived from
    /// `vectors.i8` and the scales at open, and recomputed when the index
    /// has doubled since (see `Core::refresh_reference`).
    reference: Vec<f32>,
    /// Live points when `reference` was computed.
    reference_live: usize,
    /// `slots[s].is_some()`, packed apart so that the scan can skip dead
    /// slots without touching the (large) payload entries.
    live: Vec<bool>,
    slots: Vec<Option<SlotMeta>>,
    by_id: HashMap<String, usize>,
}

/// Everything the blocking work needs, shared (`Arc`) between the handle
/// and the pool jobs it has running.
struct Core {
    dir: PathBuf,
    dim: usize,
    /// u64 words per binary code: `dim.div_ceil(64)`.
    words: usize,
    model_version: String,
    state: RwLock<State>,
    writer: Mutex<Writer>,
    /// A second handle on `vectors.f32` for readers, so rescoring never
    /// waits for the writer's mutex.
    f32_reader: File,
}

/// The embedded index. Share it as `Arc<dyn VectorIndex>`; the `*_sync`
/// methods are the same operations without the hop onto its pools, for
/// benches, tests and callers that already run on a blocking thread.
pub struct EmbeddedIndex {
    core: Arc<Core>,
    pools: adapter::Pools,
}

impl EmbeddedIndex {
    /// Opens the index in `dir`, creating it for `dim`/`model_version` if
    /// new, with the default [`EmbeddedOptions`].
    pub fn open(dir: &Path, dim: usize, model_version: &str) -> Result<Self, IndexError> {
        Self::open_with(dir, dim, model_version, EmbeddedOptions::default())
    }

    /// [`Self::open`] with explicit options.
    pub fn open_with(
        dir: &Path,
        dim: usize,
        model_version: &str,
        options: EmbeddedOptions,
    ) -> Result<Self, IndexError> {
        let core = Core::open(dir, dim, model_version)?;
        Ok(Self {
            core: Arc::new(core),
            pools: adapter::Pools::new(&options)?,
        })
    }

    /// Threads of the search pool.
    pub fn search_threads(&self) -> usize {
        self.pools.search_threads()
    }

    /// Inserts or replaces points, keyed by `payload.product_id`.
    pub fn upsert_sync(&self, points: Vec<Point>) -> Result<(), IndexError> {
        self.core.upsert_sync(points)
    }

    /// Replaces a point's payload, keeping its vector. False if absent.
    pub fn set_payload_sync(&self, payload: Payload) -> Result<bool, IndexError> {
        self.core.set_payload_sync(payload)
    }

    /// Removes points; returns how many existed.
    pub fn delete_sync(&self, ids: &[String]) -> Result<usize, IndexError> {
        self.core.delete_sync(ids)
    }

    /// The `limit` nearest points passing `filter`: binary first stage,
    /// int8 rescoring, f32 rescoring (see the module doc).
    pub fn search_sync(
        &self,
        vector: &[f32],
        filter: &Filter,
        limit: usize,
    ) -> Result<Vec<Hit>, IndexError> {
        self.core.search_sync(vector, filter, limit)
    }

    /// [`Self::search_sync`] with an explicit plan, for benches and tests.
    pub fn search_with(
        &self,
        vector: &[f32],
        filter: &Filter,
        limit: usize,
        plan: Plan,
    ) -> Result<Vec<Hit>, IndexError> {
        self.core.search_with(vector, filter, limit, plan)
    }

    pub fn get_vector_sync(&self, id: &str) -> Result<Option<Vec<f32>>, IndexError> {
        self.core.get_vector_sync(id)
    }

    pub fn len(&self) -> usize {
        self.core.read_state().by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A vector file shorter than the slots the log references.
fn too_short(path: &Path, held: u64, next_slot: usize, needed: usize) -> IndexError {
    IndexError::Io {
        path: path.display().to_string(),
        source: std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!(
                "holds {held} bytes, but the log references slots up to {next_slot} \
                 ({needed} bytes)"
            ),
        ),
    }
}

impl Core {
    fn open(dir: &Path, dim: usize, model_version: &str) -> Result<Self, IndexError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        // Before anything is read: another writer could change it all.
        let lock = format::lock_dir(dir)?;
        let header_format = format::check_or_write_header(dir, dim, model_version)?;

        let open_rw = |name: &str| -> Result<File, IndexError> {
            let p = dir.join(name);
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&p)
                .map_err(io_err(&p))
        };
        let f32_file = open_rw("vectors.f32")?;
        let i8_file = open_rw("vectors.i8")?;
        let log_path = dir.join("points.log");
        let f32_reader = File::open(dir.join("vectors.f32")).map_err(io_err(dir))?;

        let loaded = format::load_log(&log_path)?;
        let live = loaded.live;
        let next_slot = live.values().map(|(s, _, _)| s + 1).max().unwrap_or(0);
        let i8_path = dir.join("vectors.i8");
        let codes = MappedCodes::map(&i8_file).map_err(io_err(&i8_path))?;
        if codes.len() < next_slot * dim {
            return Err(too_short(
                &i8_path,
                codes.len() as u64,
                next_slot,
                next_slot * dim,
            ));
        }
        // The exact vectors too: a short `vectors.f32` (cut by hand, or a
        // disk that lost its tail) would otherwise open and then fail every
        // search at its rescoring read.
        let f32_path = dir.join("vectors.f32");
        let f32_len = f32_file.metadata().map_err(io_err(&f32_path))?.len();
        if f32_len < (next_slot * dim * 4) as u64 {
            return Err(too_short(
                &f32_path,
                f32_len,
                next_slot,
                next_slot * dim * 4,
            ));
        }
        let mut slots: Vec<Option<SlotMeta>> = vec![None; next_slot];
        let mut by_id = HashMap::with_capacity(live.len());
        for (id, (slot, scale, payload)) in live {
            slots[slot] = Some(SlotMeta { payload, scale });
            by_id.insert(id, slot);
        }
        // The binary stage is derived, never stored: no new file to keep
        // crash-consistent, and indexes written before it open unchanged.
        let (reference, reference_live) = mean_reference(dim, codes.as_i8(), &slots);
        let bits = all_binary_codes(dim, codes.as_i8(), &slots, &reference);
        let live_slots = slots.iter().map(Option::is_some).collect();
        let free = (0..next_slot)
            .filter(|s| slots[*s].is_none())
            .rev()
            .collect();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io_err(&log_path))?;

        let core = Self {
            dir: dir.to_path_buf(),
            dim,
            words: dim.div_ceil(64),
            model_version: model_version.to_string(),
            state: RwLock::new(State {
                codes,
                bits,
                reference,
                reference_live,
                live: live_slots,
                slots,
                by_id,
            }),
            writer: Mutex::new(Writer {
                f32_file,
                i8_file,
                log,
                free,
                next_slot,
                log_entries: loaded.entries,
                log_len: loaded.framed_len.unwrap_or(0),
                log_dirty: false,
                _lock: lock,
                #[cfg(test)]
                faults: Default::default(),
            }),
            f32_reader,
        };
        if loaded.framed_len.is_none() || header_format != format::FORMAT {
            // Format 1 (or no log yet): the header first, so that an older
            // binary refuses the index from here on, then the log framed.
            format::write_header(dir, dim, model_version)?;
            let mut w = core.lock_writer();
            core.rewrite_log(&mut w, &core.read_state())?;
        } else {
            core.compact_if_mostly_dead();
        }
        Ok(core)
    }

    fn read_state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_state(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_writer(&self) -> std::sync::MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn search_sync(
        &self,
        vector: &[f32],
        filter: &Filter,
        limit: usize,
    ) -> Result<Vec<Hit>, IndexError> {
        self.search_with(vector, filter, limit, Plan::for_limit(limit))
    }

    fn read_f32(&self, slot: usize) -> Result<Vec<f32>, IndexError> {
        let mut raw = vec![0u8; self.dim * 4];
        self.f32_reader
            .read_exact_at(&mut raw, (slot * self.dim * 4) as u64)
            .map_err(io_err(&self.dir.join("vectors.f32")))?;
        Ok(raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    fn get_vector_sync(&self, id: &str) -> Result<Option<Vec<f32>>, IndexError> {
        let st = self.read_state();
        match st.by_id.get(id) {
            Some(&slot) => self.read_f32(slot).map(Some),
            None => Ok(None),
        }
    }
}
