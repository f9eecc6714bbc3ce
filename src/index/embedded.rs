//! The embedded vector index: an exact scan over int8-quantised vectors,
//! rescored with the full-precision vectors, persisted in the data directory.
//!
//! # Why not an ANN engine (yet)
//! Qdrant's in-process engine `qdrant-edge` would give the embedded default
//! the same semantics as a Qdrant server, but its 0.8/0.9 releases need Rust
//! 1.96 (`debug_assert_matches`) and this project builds on 1.95; building
//! HNSW over 100k × 1280-d vectors also took minutes on 2 cores. A catalog
//! that fits one machine is served well by an exact scan:
//! - int8 codes (one byte per dimension, with a per-vector scale) are held in
//!   memory: 100k × 1280 = 128 MB, a quarter of the f32 data, and the scan is
//!   memory-bound, so a quarter of the bytes is about a quarter of the time;
//! - the best `max(8·limit, 64)` candidates are rescored with the exact f32
//!   vectors, read from `vectors.f32` with positioned reads. Those pages stay
//!   in the OS page cache, so full-precision vectors cost no heap; for the
//!   same reason `mmap` (and the `unsafe` it needs) is unnecessary here;
//! - the scan is exact over the codes, so filters cost nothing extra and can
//!   never "miss" the way a filtered HNSW walk can.
//!
//! Measured with `cargo bench --bench index` (2 cores, 1280-d clustered
//! vectors, 2026-11-22): recall@10 against an f32 brute force is 1.000 at
//! both sizes; top-10 takes 3.5 ms unfiltered / 0.6 ms filtered at 10k, and
//! 31.8 ms / 6.9 ms at 100k (filtered = category + price range, ~1/8 of the
//! catalog scanned). The 100k unfiltered figure is the scan's limit; an ANN
//! index or a coarser first stage is the next step when catalogs grow.
//!
//! # Files
//! - `index.json`: format, dimension and model version. Opening an index of
//!   another model version fails: vectors of two models never mix.
//! - `vectors.f32`, `vectors.i8`: fixed-size records by slot number.
//! - `points.log`: append-only JSON lines, `put` (slot, scale, payload) and
//!   `del` (id). Replayed at open; compacted when mostly dead.
//!
//! # Crash safety
//! A write first stores vector bytes in a slot no live point uses and syncs
//! them, then appends and syncs the log line that makes the slot live. A
//! crash before the log sync leaves an unreferenced slot, which is reused.
//! Replacing a point writes a fresh slot and frees the old one only after the
//! log commit, so a reader sees the old or the new vector, never a mix.

use std::{
    cmp::Ordering,
    collections::{BinaryHeap, HashMap},
    fs::{File, OpenOptions},
    io::{BufRead, BufReader, Write},
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, RwLock},
};

use serde::{Deserialize, Serialize};

use super::{Filter, Hit, IndexError, IndexInfo, Payload, Point, VectorIndex};

const FORMAT: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    format: u32,
    dim: usize,
    model_version: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum LogEntry {
    Put {
        slot: usize,
        scale: f32,
        payload: Payload,
    },
    Del {
        id: String,
    },
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
    codes: Vec<i8>,
    slots: Vec<Option<SlotMeta>>,
    by_id: HashMap<String, usize>,
}

/// Files and the free-slot list, behind a `Mutex`: writes are serialised
/// (they are rare next to searches, and the disk serialises them anyway).
struct Writer {
    f32_file: File,
    i8_file: File,
    log: File,
    free: Vec<usize>,
    next_slot: usize,
    log_entries: usize,
}

pub struct EmbeddedIndex {
    dir: PathBuf,
    dim: usize,
    model_version: String,
    state: RwLock<State>,
    writer: Mutex<Writer>,
    /// A second handle on `vectors.f32` for readers, so rescoring never
    /// waits for the writer's mutex.
    f32_reader: File,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> IndexError + '_ {
    move |source| IndexError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Symmetric int8 quantisation with a per-vector scale.
pub fn quantise(v: &[f32]) -> (Vec<i8>, f32) {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max == 0.0 {
        return (vec![0; v.len()], 0.0);
    }
    let scale = max / 127.0;
    let codes = v.iter().map(|x| (x / scale).round() as i8).collect();
    (codes, scale)
}

/// Integer dot product; written plainly so LLVM vectorises it (widening
/// multiply-adds on SSE2/AVX2).
#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| i32::from(x) * i32::from(y))
        .sum()
}

#[inline]
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Heap entry ordered by score (ties by slot), for a bounded top-k.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Scored(f32, usize);
impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap and we want the worst on top.
        other.0.total_cmp(&self.0).then(other.1.cmp(&self.1))
    }
}

fn push_top_k(heap: &mut BinaryHeap<Scored>, k: usize, s: Scored) {
    if heap.len() < k {
        heap.push(s);
    } else if let Some(worst) = heap.peek()
        && s.0 > worst.0
    {
        heap.pop();
        heap.push(s);
    }
}

impl EmbeddedIndex {
    /// Opens the index in `dir`, creating it for `dim`/`model_version` if new.
    pub fn open(dir: &Path, dim: usize, model_version: &str) -> Result<Self, IndexError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
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

        // Replay the log.
        let mut live: HashMap<String, (usize, f32, Payload)> = HashMap::new();
        let mut log_entries = 0usize;
        if log_path.exists() {
            let f = File::open(&log_path).map_err(io_err(&log_path))?;
            for (n, line) in BufReader::new(f).lines().enumerate() {
                let line = line.map_err(io_err(&log_path))?;
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
        }
        let next_slot = live.values().map(|(s, _, _)| s + 1).max().unwrap_or(0);
        let mut codes = vec![0i8; next_slot * dim];
        if next_slot > 0 {
            let mut raw = vec![0u8; next_slot * dim];
            i8_file
                .read_exact_at(&mut raw, 0)
                .map_err(io_err(&dir.join("vectors.i8")))?;
            for (c, b) in codes.iter_mut().zip(raw) {
                *c = b as i8;
            }
        }
        let mut slots: Vec<Option<SlotMeta>> = vec![None; next_slot];
        let mut by_id = HashMap::with_capacity(live.len());
        for (id, (slot, scale, payload)) in live {
            slots[slot] = Some(SlotMeta { payload, scale });
            by_id.insert(id, slot);
        }
        let free = (0..next_slot)
            .filter(|s| slots[*s].is_none())
            .rev()
            .collect();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io_err(&log_path))?;

        let index = Self {
            dir: dir.to_path_buf(),
            dim,
            model_version: model_version.to_string(),
            state: RwLock::new(State {
                codes,
                slots,
                by_id,
            }),
            writer: Mutex::new(Writer {
                f32_file,
                i8_file,
                log,
                free,
                next_slot,
                log_entries,
            }),
            f32_reader,
        };
        index.compact_if_mostly_dead()?;
        Ok(index)
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

    fn append_log(&self, w: &mut Writer, entries: &[LogEntry]) -> Result<(), IndexError> {
        let path = self.dir.join("points.log");
        let mut buf = Vec::new();
        for e in entries {
            serde_json::to_writer(&mut buf, e).expect("log entries serialise");
            buf.push(b'\n');
        }
        w.log.write_all(&buf).map_err(io_err(&path))?;
        w.log.sync_data().map_err(io_err(&path))?;
        w.log_entries += entries.len();
        Ok(())
    }

    /// Rewrites the log with only live points when most entries are dead.
    fn compact_if_mostly_dead(&self) -> Result<(), IndexError> {
        let mut w = self.lock_writer();
        let state = self.read_state();
        let live = state.by_id.len();
        if w.log_entries < 1024 || w.log_entries < 2 * live {
            return Ok(());
        }
        let tmp = self.dir.join("points.log.tmp");
        let path = self.dir.join("points.log");
        let mut buf = Vec::new();
        for (slot, meta) in state.slots.iter().enumerate() {
            if let Some(m) = meta {
                let e = LogEntry::Put {
                    slot,
                    scale: m.scale,
                    payload: m.payload.clone(),
                };
                serde_json::to_writer(&mut buf, &e).expect("log entries serialise");
                buf.push(b'\n');
            }
        }
        let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(&buf).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
        w.log = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        w.log_entries = live;
        Ok(())
    }

    pub fn upsert_sync(&self, points: Vec<Point>) -> Result<(), IndexError> {
        super::check_dimensions(&points, self.dim)?;
        let mut w = self.lock_writer();
        // Last write wins within one batch.
        let mut batch: HashMap<String, Point> = HashMap::new();
        for p in points {
            batch.insert(p.payload.product_id.clone(), p);
        }
        let mut staged = Vec::with_capacity(batch.len());
        for (_, p) in batch {
            let slot = match w.free.pop() {
                Some(s) => s,
                None => {
                    w.next_slot += 1;
                    w.next_slot - 1
                }
            };
            let (codes, scale) = quantise(&p.vector);
            let f32_bytes: Vec<u8> = p.vector.iter().flat_map(|x| x.to_le_bytes()).collect();
            let i8_bytes: Vec<u8> = codes.iter().map(|c| *c as u8).collect();
            let f32_path = self.dir.join("vectors.f32");
            w.f32_file
                .write_all_at(&f32_bytes, (slot * self.dim * 4) as u64)
                .map_err(io_err(&f32_path))?;
            w.i8_file
                .write_all_at(&i8_bytes, (slot * self.dim) as u64)
                .map_err(io_err(&self.dir.join("vectors.i8")))?;
            staged.push((slot, codes, scale, p.payload));
        }
        w.f32_file
            .sync_data()
            .map_err(io_err(&self.dir.join("vectors.f32")))?;
        w.i8_file
            .sync_data()
            .map_err(io_err(&self.dir.join("vectors.i8")))?;
        let entries: Vec<LogEntry> = staged
            .iter()
            .map(|(slot, _, scale, payload)| LogEntry::Put {
                slot: *slot,
                scale: *scale,
                payload: payload.clone(),
            })
            .collect();
        self.append_log(&mut w, &entries)?;

        let mut freed = Vec::new();
        {
            let mut st = self.write_state();
            for (slot, codes, scale, payload) in staged {
                let need = (slot + 1) * self.dim;
                if st.codes.len() < need {
                    st.codes.resize(need, 0);
                    st.slots.resize(slot + 1, None);
                }
                st.codes[slot * self.dim..need].copy_from_slice(&codes);
                if let Some(old) = st.by_id.insert(payload.product_id.clone(), slot) {
                    st.slots[old] = None;
                    freed.push(old);
                }
                st.slots[slot] = Some(SlotMeta { payload, scale });
            }
        }
        w.free.extend(freed);
        Ok(())
    }

    fn set_payload_sync(&self, payload: Payload) -> Result<bool, IndexError> {
        let mut w = self.lock_writer();
        let Some((slot, scale)) = ({
            let st = self.read_state();
            st.by_id
                .get(&payload.product_id)
                .and_then(|s| st.slots[*s].as_ref().map(|m| (*s, m.scale)))
        }) else {
            return Ok(false);
        };
        self.append_log(
            &mut w,
            &[LogEntry::Put {
                slot,
                scale,
                payload: payload.clone(),
            }],
        )?;
        let mut st = self.write_state();
        if let Some(m) = st.slots[slot].as_mut() {
            m.payload = payload;
        }
        Ok(true)
    }

    fn delete_sync(&self, ids: &[String]) -> Result<usize, IndexError> {
        let mut w = self.lock_writer();
        let present: Vec<String> = {
            let st = self.read_state();
            ids.iter()
                .filter(|id| st.by_id.contains_key(*id))
                .cloned()
                .collect()
        };
        if present.is_empty() {
            return Ok(0);
        }
        let entries: Vec<LogEntry> = present
            .iter()
            .map(|id| LogEntry::Del { id: id.clone() })
            .collect();
        self.append_log(&mut w, &entries)?;
        let mut st = self.write_state();
        for id in &present {
            if let Some(slot) = st.by_id.remove(id) {
                st.slots[slot] = None;
                w.free.push(slot);
            }
        }
        Ok(present.len())
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

    /// Exact scan over the int8 codes, then f32 rescoring of the best.
    pub fn search_sync(
        &self,
        vector: &[f32],
        filter: &Filter,
        limit: usize,
    ) -> Result<Vec<Hit>, IndexError> {
        if vector.len() != self.dim {
            return Err(IndexError::Dimension {
                got: vector.len(),
                expected: self.dim,
            });
        }
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (q, _) = quantise(vector);
        let candidates = (limit * 8).max(64);
        let st = self.read_state();
        let mut heap = BinaryHeap::with_capacity(candidates + 1);
        for (slot, meta) in st.slots.iter().enumerate() {
            let Some(meta) = meta else { continue };
            if !filter.matches(&meta.payload) {
                continue;
            }
            let codes = &st.codes[slot * self.dim..(slot + 1) * self.dim];
            // The query's own scale is the same for every candidate, so it
            // does not change the order and is left out.
            let approx = dot_i8(&q, codes) as f32 * meta.scale;
            push_top_k(&mut heap, candidates, Scored(approx, slot));
        }
        let mut rescored = BinaryHeap::with_capacity(limit + 1);
        for Scored(_, slot) in heap {
            let exact = dot_f32(vector, &self.read_f32(slot)?);
            push_top_k(&mut rescored, limit, Scored(exact, slot));
        }
        let mut hits: Vec<Hit> = rescored
            .into_iter()
            .filter_map(|Scored(score, slot)| {
                st.slots[slot].as_ref().map(|m| Hit {
                    score,
                    payload: m.payload.clone(),
                })
            })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        Ok(hits)
    }

    pub fn get_vector_sync(&self, id: &str) -> Result<Option<Vec<f32>>, IndexError> {
        let st = self.read_state();
        match st.by_id.get(id) {
            Some(&slot) => self.read_f32(slot).map(Some),
            None => Ok(None),
        }
    }

    pub fn len(&self) -> usize {
        self.read_state().by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The async trait runs the blocking work on tokio's blocking pool, so disk
/// syncs and scans never stall the request-handling threads.
#[async_trait::async_trait]
impl VectorIndex for Arc<EmbeddedIndex> {
    fn info(&self) -> IndexInfo {
        IndexInfo {
            backend: "embedded",
            dim: self.dim,
            model_version: self.model_version.clone(),
        }
    }

    async fn upsert(&self, points: Vec<Point>) -> Result<(), IndexError> {
        let me = self.clone();
        blocking(move || me.upsert_sync(points)).await
    }

    async fn set_payload(&self, payload: Payload) -> Result<bool, IndexError> {
        let me = self.clone();
        blocking(move || me.set_payload_sync(payload)).await
    }

    async fn delete(&self, ids: &[String]) -> Result<usize, IndexError> {
        let me = self.clone();
        let ids = ids.to_vec();
        blocking(move || me.delete_sync(&ids)).await
    }

    async fn search(
        &self,
        vector: &[f32],
        filter: &Filter,
        limit: usize,
    ) -> Result<Vec<Hit>, IndexError> {
        let me = self.clone();
        let (vector, filter) = (vector.to_vec(), filter.clone());
        blocking(move || me.search_sync(&vector, &filter, limit)).await
    }

    async fn get_vector(&self, id: &str) -> Result<Option<Vec<f32>>, IndexError> {
        let me = self.clone();
        let id = id.to_string();
        blocking(move || me.get_vector_sync(&id)).await
    }

    async fn count(&self) -> Result<usize, IndexError> {
        Ok(self.len())
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, IndexError> + Send + 'static,
) -> Result<T, IndexError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| IndexError::Backend(format!("index task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(seed: u64, dim: usize) -> Vec<f32> {
        // Small deterministic generator; non-negative like real embeddings.
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let v: Vec<f32> = (0..dim)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 33) as f32) / (u32::MAX as f32)
            })
            .collect();
        crate::embed::model::l2_normalised(&v)
    }

    fn point(id: &str, cat: &str, price: f64, v: Vec<f32>) -> Point {
        Point {
            vector: v,
            payload: Payload {
                product_id: id.into(),
                title: Some(format!("title {id}")),
                category: Some(cat.into()),
                price: Some(price),
                currency: Some("KGS".into()),
            },
        }
    }

    #[test]
    fn finds_filters_deletes_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let dim = 32;
        let idx = EmbeddedIndex::open(dir.path(), dim, "v1").unwrap();
        let pts: Vec<Point> = (0..200)
            .map(|i| {
                point(
                    &format!("p{i}"),
                    if i % 2 == 0 { "even" } else { "odd" },
                    i as f64,
                    unit(i, dim),
                )
            })
            .collect();
        idx.upsert_sync(pts).unwrap();
        assert_eq!(idx.len(), 200);

        let q = unit(7, dim);
        let hits = idx.search_sync(&q, &Filter::default(), 5).unwrap();
        assert_eq!(hits[0].payload.product_id, "p7");
        assert!((hits[0].score - 1.0).abs() < 1e-5);

        let f = Filter {
            category: Some("even".into()),
            min_price: Some(10.0),
            max_price: Some(50.0),
            exclude_id: None,
        };
        let hits = idx.search_sync(&q, &f, 100).unwrap();
        assert_eq!(hits.len(), 21);
        assert!(
            hits.iter()
                .all(|h| h.payload.category.as_deref() == Some("even")
                    && (10.0..=50.0).contains(&h.payload.price.unwrap()))
        );

        let ex = Filter {
            exclude_id: Some("p7".into()),
            ..Filter::default()
        };
        assert!(
            idx.search_sync(&q, &ex, 10)
                .unwrap()
                .iter()
                .all(|h| h.payload.product_id != "p7")
        );

        assert_eq!(idx.delete_sync(&["p7".into(), "nope".into()]).unwrap(), 1);
        assert!(
            idx.search_sync(&q, &Filter::default(), 5).unwrap()[0]
                .payload
                .product_id
                != "p7"
        );

        // Replace a vector and a payload, then reopen.
        idx.upsert_sync(vec![point("p8", "odd", 1.0, unit(1000, dim))])
            .unwrap();
        let mut pl = idx
            .search_sync(&unit(9, dim), &Filter::default(), 1)
            .unwrap()[0]
            .payload
            .clone();
        pl.title = Some("renamed".into());
        assert!(idx.set_payload_sync(pl).unwrap());
        drop(idx);

        let idx = EmbeddedIndex::open(dir.path(), dim, "v1").unwrap();
        assert_eq!(idx.len(), 199);
        let top = &idx
            .search_sync(&unit(1000, dim), &Filter::default(), 1)
            .unwrap()[0];
        assert_eq!(top.payload.product_id, "p8");
        let top = &idx
            .search_sync(&unit(9, dim), &Filter::default(), 1)
            .unwrap()[0];
        assert_eq!(top.payload.title.as_deref(), Some("renamed"));
        assert!(idx.get_vector_sync("p7").unwrap().is_none());
        assert_eq!(idx.get_vector_sync("p9").unwrap().unwrap(), unit(9, dim));
    }

    #[test]
    fn refuses_another_models_index() {
        let dir = tempfile::tempdir().unwrap();
        drop(EmbeddedIndex::open(dir.path(), 8, "model-a").unwrap());
        let err = EmbeddedIndex::open(dir.path(), 8, "model-b").err().unwrap();
        assert!(matches!(err, IndexError::ModelMismatch { .. }), "{err}");
    }

    #[test]
    fn int8_scan_with_rescoring_matches_exact_search() {
        let dir = tempfile::tempdir().unwrap();
        let dim = 64;
        let idx = EmbeddedIndex::open(dir.path(), dim, "v").unwrap();
        let vs: Vec<Vec<f32>> = (0..2000).map(|i| unit(i, dim)).collect();
        idx.upsert_sync(
            vs.iter()
                .enumerate()
                .map(|(i, v)| point(&i.to_string(), "c", 1.0, v.clone()))
                .collect(),
        )
        .unwrap();
        for qi in 5000..5020 {
            let q = unit(qi, dim);
            let mut exact: Vec<(f32, usize)> = vs
                .iter()
                .enumerate()
                .map(|(i, v)| (dot_f32(&q, v), i))
                .collect();
            exact.sort_by(|a, b| b.0.total_cmp(&a.0));
            let got: Vec<String> = idx
                .search_sync(&q, &Filter::default(), 10)
                .unwrap()
                .into_iter()
                .map(|h| h.payload.product_id)
                .collect();
            let want: Vec<String> = exact[..10].iter().map(|(_, i)| i.to_string()).collect();
            assert_eq!(got, want);
        }
    }
}
