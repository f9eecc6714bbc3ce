//! Writes: the files a writer holds, appending to the log, compaction, and
//! the three write operations (upsert, set payload, delete), each of which
//! puts its bytes on disk first and swaps the searchable state after.
//!
//! # A failed write changes nothing
//! Every write either commits (its log record synced) or leaves the index
//! as it was: the searchable state and the slot allocation are changed
//! only after the commit, and the bytes of a failed attempt are truncated
//! away: a partial log record (a full disk), and any growth of the vector
//! files. `vectors.i8` is truncated only back to its length before the
//! attempt, which the live map never exceeds (`index/mapped.rs`). The
//! caller gets the error, and its event is retried.

use std::{
    collections::HashMap,
    fs::{File, OpenOptions},
    io::{self, Write},
    os::unix::fs::FileExt,
};

use super::{
    Core, SlotMeta, State,
    format::{self, LogEntry, io_err},
    kernels::{all_binary_codes, binarise_codes, mean_reference, quantise},
};
use crate::index::{IndexError, Payload, Point, mapped::MappedCodes};

/// Files and the free-slot list, behind a `Mutex`: writes are serialised
/// (they are rare next to searches, and the disk serialises them anyway).
pub(super) struct Writer {
    pub(super) f32_file: File,
    pub(super) i8_file: File,
    pub(super) log: File,
    pub(super) free: Vec<usize>,
    pub(super) next_slot: usize,
    pub(super) log_entries: usize,
    /// Length of the log up to its last committed record.
    pub(super) log_len: u64,
    /// A failed append whose bytes could not be truncated yet: the next
    /// write truncates them first, or fails.
    pub(super) log_dirty: bool,
    /// The directory lock, held as long as the writer lives.
    pub(super) _lock: File,
    #[cfg(test)]
    pub(super) faults: Faults,
}

/// Injected failures, for the tests of the rollback paths: each fires once.
#[cfg(test)]
#[derive(Debug, Default)]
pub(super) struct Faults {
    /// The next log append writes this many bytes, then fails (ENOSPC).
    pub(super) log_write: Option<usize>,
    /// The next log sync fails (after the write went through).
    pub(super) log_sync: bool,
    /// The next vector write fails after writing half its bytes.
    pub(super) vector_write: bool,
    /// The next truncation of the log (the rollback) fails.
    pub(super) log_truncate: bool,
}

#[cfg(test)]
fn enospc() -> io::Error {
    io::Error::from_raw_os_error(28)
}

impl Writer {
    fn write_log(&mut self, buf: &[u8]) -> io::Result<()> {
        #[cfg(test)]
        if let Some(n) = self.faults.log_write.take() {
            self.log.write_all(&buf[..n.min(buf.len())])?;
            return Err(enospc());
        }
        self.log.write_all(buf)
    }

    fn sync_log(&mut self) -> io::Result<()> {
        #[cfg(test)]
        if std::mem::take(&mut self.faults.log_sync) {
            return Err(enospc());
        }
        self.log.sync_data()
    }

    fn truncate_log(&mut self) -> io::Result<()> {
        #[cfg(test)]
        if std::mem::take(&mut self.faults.log_truncate) {
            return Err(io::Error::other("injected truncate failure"));
        }
        self.log.set_len(self.log_len)
    }

    fn write_vector(&mut self, f32s: bool, bytes: &[u8], at: u64) -> io::Result<()> {
        let file = if f32s { &self.f32_file } else { &self.i8_file };
        #[cfg(test)]
        if std::mem::take(&mut self.faults.vector_write) {
            file.write_all_at(&bytes[..bytes.len() / 2], at)?;
            return Err(enospc());
        }
        file.write_all_at(bytes, at)
    }
}

/// The vector files' lengths before a write, to go back to if it fails.
struct VectorLens {
    f32: u64,
    i8: u64,
}

impl Core {
    /// Appends one record and syncs it: committed, or the log is cut back
    /// to its last committed record and nothing changed.
    fn append_log(&self, w: &mut Writer, entries: &[LogEntry]) -> Result<(), IndexError> {
        let path = self.dir.join("points.log");
        if w.log_dirty {
            w.truncate_log().map_err(io_err(&path))?;
            w.log_dirty = false;
        }
        let record = format::frame(entries);
        if let Err(e) = w.write_log(&record).and_then(|()| w.sync_log()) {
            match w.truncate_log() {
                Ok(()) => tracing::warn!(
                    path = %path.display(), error = %e,
                    "index log append failed; its bytes were truncated away"
                ),
                Err(t) => {
                    // Open would cut this torn tail too; the next write
                    // tries again first.
                    w.log_dirty = true;
                    tracing::error!(
                        path = %path.display(), error = %e, truncate_error = %t,
                        "index log append failed, and its bytes could not be truncated yet"
                    );
                }
            }
            return Err(io_err(&path)(e));
        }
        w.log_len += record.len() as u64;
        w.log_entries += entries.len();
        Ok(())
    }

    /// Rewrites the log with only the live points.
    pub(super) fn rewrite_log(&self, w: &mut Writer, st: &State) -> Result<(), IndexError> {
        let entries: Vec<LogEntry> = st
            .slots
            .iter()
            .enumerate()
            .filter_map(|(slot, meta)| {
                meta.as_ref().map(|m| LogEntry::Put {
                    slot,
                    scale: m.scale,
                    payload: m.payload.clone(),
                })
            })
            .collect();
        let len = format::write_log(&self.dir, &entries)?;
        let path = self.dir.join("points.log");
        w.log = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        w.log_len = len;
        w.log_dirty = false;
        w.log_entries = entries.len();
        Ok(())
    }

    /// Rewrites the log when most entries are dead. Not needed for
    /// correctness, so a failure (a full disk) is only logged.
    pub(super) fn compact_if_mostly_dead(&self) {
        let mut w = self.lock_writer();
        let st = self.read_state();
        if w.log_entries < 1024 || w.log_entries < 2 * st.by_id.len() {
            return;
        }
        if let Err(e) = self.rewrite_log(&mut w, &st) {
            tracing::warn!(error = %e, "index log compaction failed; keeping the log as it is");
        }
    }

    fn vector_lens(&self, w: &Writer) -> Result<VectorLens, IndexError> {
        let len = |f: &File, name: &str| {
            f.metadata()
                .map(|m| m.len())
                .map_err(io_err(&self.dir.join(name)))
        };
        Ok(VectorLens {
            f32: len(&w.f32_file, "vectors.f32")?,
            i8: len(&w.i8_file, "vectors.i8")?,
        })
    }

    /// Undoes a failed upsert's growth of the vector files. Best effort: a
    /// longer file is harmless (its tail is unreferenced), a shorter one
    /// is never made (`before.i8` is at least the mapped length).
    fn roll_back_vectors(&self, w: &Writer, before: &VectorLens) {
        for (file, len, name) in [
            (&w.f32_file, before.f32, "vectors.f32"),
            (&w.i8_file, before.i8, "vectors.i8"),
        ] {
            let grown = file.metadata().map(|m| m.len() > len).unwrap_or(true);
            if grown && let Err(e) = file.set_len(len) {
                tracing::warn!(file = name, error = %e, "could not truncate a failed write's vectors");
            }
        }
    }

    pub(super) fn upsert_sync(&self, points: Vec<Point>) -> Result<(), IndexError> {
        crate::index::check_dimensions(&points, self.dim)?;
        let mut w = self.lock_writer();
        // Last write wins within one batch.
        let mut batch: HashMap<String, Point> = HashMap::new();
        for p in points {
            batch.insert(p.payload.product_id.clone(), p);
        }
        if batch.is_empty() {
            return Ok(());
        }
        // Slots are chosen here and taken (off the free list, or past
        // `next_slot`) only once the write has committed.
        let reused = batch.len().min(w.free.len());
        let fresh = batch.len() - reused;
        let slots: Vec<usize> = w.free[w.free.len() - reused..]
            .iter()
            .rev()
            .copied()
            .chain(w.next_slot..w.next_slot + fresh)
            .collect();
        let before = self.vector_lens(&w)?;
        let mapped = self.read_state().codes.len();
        debug_assert!(
            before.i8 as usize >= mapped,
            "vectors.i8 is shorter than its map"
        );
        let staged = match self.write_vectors(&mut w, batch, &slots, mapped) {
            Ok(staged) => staged,
            Err(e) => {
                self.roll_back_vectors(&w, &before);
                return Err(e);
            }
        };
        let (staged, remapped) = staged;
        let entries: Vec<LogEntry> = staged
            .iter()
            .map(|(slot, _, scale, payload)| LogEntry::Put {
                slot: *slot,
                scale: *scale,
                payload: payload.clone(),
            })
            .collect();
        if let Err(e) = self.append_log(&mut w, &entries) {
            // The new map (if any) is dropped before the file shrinks.
            drop(remapped);
            self.roll_back_vectors(&w, &before);
            return Err(e);
        }

        // Committed: take the slots, then swap the state.
        let keep = w.free.len() - reused;
        w.free.truncate(keep);
        w.next_slot += fresh;
        let mut freed = Vec::new();
        {
            let mut st = self.write_state();
            if let Some(map) = remapped {
                // Readers hold the read lock while they use the old map, so
                // none is left when it is dropped here.
                st.codes = map;
            }
            let mut buf = vec![0f32; self.dim];
            for (slot, codes, scale, payload) in staged {
                // The codes themselves are already in the mapped file.
                if st.slots.len() <= slot {
                    st.bits.resize((slot + 1) * self.words, 0);
                    st.live.resize(slot + 1, false);
                    st.slots.resize(slot + 1, None);
                }
                let State {
                    bits, reference, ..
                } = &mut *st;
                binarise_codes(
                    &codes,
                    scale,
                    reference,
                    &mut buf,
                    &mut bits[slot * self.words..(slot + 1) * self.words],
                );
                if let Some(old) = st.by_id.insert(payload.product_id.clone(), slot) {
                    st.slots[old] = None;
                    st.live[old] = false;
                    freed.push(old);
                }
                st.slots[slot] = Some(SlotMeta { payload, scale });
                st.live[slot] = true;
            }
        }
        w.free.extend(freed);
        self.refresh_reference(&w);
        Ok(())
    }

    /// Writes and syncs the batch's vectors into `slots` (none of which a
    /// live point uses), growing `vectors.i8` and mapping it anew if the
    /// slots reach past the map. Returns what the state swap needs.
    #[allow(clippy::type_complexity)]
    fn write_vectors(
        &self,
        w: &mut Writer,
        batch: HashMap<String, Point>,
        slots: &[usize],
        mapped: usize,
    ) -> Result<(Vec<(usize, Vec<i8>, f32, Payload)>, Option<MappedCodes>), IndexError> {
        let f32_path = self.dir.join("vectors.f32");
        let i8_path = self.dir.join("vectors.i8");
        // The map must cover every slot the state will reference. The file
        // grows in steps (doubling, at least 256 slots) so that it is
        // remapped O(log n) times, not on every new point; the tail past the
        // last slot is a sparse run of zeros that no slot references.
        let need = slots.iter().map(|s| (s + 1) * self.dim).max().unwrap_or(0);
        let grow = need > mapped;
        if grow {
            let len = need.max(2 * mapped).max(256 * self.dim);
            let len = len.div_ceil(self.dim) * self.dim;
            w.i8_file.set_len(len as u64).map_err(io_err(&i8_path))?;
        }
        let mut staged = Vec::with_capacity(slots.len());
        for ((_, p), &slot) in batch.into_iter().zip(slots) {
            let (codes, scale) = quantise(&p.vector);
            let f32_bytes: Vec<u8> = p.vector.iter().flat_map(|x| x.to_le_bytes()).collect();
            let i8_bytes: Vec<u8> = codes.iter().map(|c| *c as u8).collect();
            w.write_vector(true, &f32_bytes, (slot * self.dim * 4) as u64)
                .map_err(io_err(&f32_path))?;
            w.write_vector(false, &i8_bytes, (slot * self.dim) as u64)
                .map_err(io_err(&i8_path))?;
            staged.push((slot, codes, scale, p.payload));
        }
        w.f32_file.sync_data().map_err(io_err(&f32_path))?;
        w.i8_file.sync_data().map_err(io_err(&i8_path))?;
        let remapped = if grow {
            Some(MappedCodes::map(&w.i8_file).map_err(io_err(&i8_path))?)
        } else {
            None
        };
        Ok((staged, remapped))
    }

    /// Recomputes the binary stage's thresholds, and every binary code with
    /// them, once the index has doubled since they were computed: a fresh
    /// index starts from its first batch, and a growing one follows its
    /// data, at an amortised cost of O(1) code rebuilds per upserted point.
    /// The work is done under the read lock (searches go on); only the swap
    /// takes the write lock. `_w` proves the caller holds the writer mutex,
    /// so no write can slip in between.
    fn refresh_reference(&self, _w: &Writer) {
        let (reference, reference_live, bits) = {
            let st = self.read_state();
            let live = st.by_id.len();
            if live == 0 || live < 2 * st.reference_live {
                return;
            }
            let (reference, n) = mean_reference(self.dim, st.codes.as_i8(), &st.slots);
            let bits = all_binary_codes(self.dim, st.codes.as_i8(), &st.slots, &reference);
            (reference, n, bits)
        };
        let mut st = self.write_state();
        st.reference = reference;
        st.reference_live = reference_live;
        st.bits = bits;
    }

    pub(super) fn set_payload_sync(&self, payload: Payload) -> Result<bool, IndexError> {
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

    pub(super) fn delete_sync(&self, ids: &[String]) -> Result<usize, IndexError> {
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
                st.live[slot] = false;
                w.free.push(slot);
            }
        }
        Ok(present.len())
    }
}
