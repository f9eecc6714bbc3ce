//! Writes: the files a writer holds, appending to the log, compaction, and
//! the three write operations (upsert, set payload, delete), each of which
//! puts its bytes on disk first and swaps the searchable state after.

use std::{
    collections::HashMap,
    fs::{File, OpenOptions},
    io::Write,
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
}

impl Core {
    fn append_log(&self, w: &mut Writer, entries: &[LogEntry]) -> Result<(), IndexError> {
        let path = self.dir.join("points.log");
        let buf = format::encode(entries);
        w.log.write_all(&buf).map_err(io_err(&path))?;
        w.log.sync_data().map_err(io_err(&path))?;
        w.log_entries += entries.len();
        Ok(())
    }

    /// Rewrites the log with only live points when most entries are dead.
    pub(super) fn compact_if_mostly_dead(&self) -> Result<(), IndexError> {
        let mut w = self.lock_writer();
        let state = self.read_state();
        let live = state.by_id.len();
        if w.log_entries < 1024 || w.log_entries < 2 * live {
            return Ok(());
        }
        let tmp = self.dir.join("points.log.tmp");
        let path = self.dir.join("points.log");
        let entries: Vec<LogEntry> = state
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
        let buf = format::encode(&entries);
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

    pub(super) fn upsert_sync(&self, points: Vec<Point>) -> Result<(), IndexError> {
        crate::index::check_dimensions(&points, self.dim)?;
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
        // The map must cover every slot the state will reference. The file
        // grows in steps (doubling, at least 256 slots) so that it is
        // remapped O(log n) times, not on every new point; the tail past the
        // last slot is a sparse run of zeros that no slot references.
        let i8_path = self.dir.join("vectors.i8");
        let need = staged
            .iter()
            .map(|(slot, ..)| (slot + 1) * self.dim)
            .max()
            .unwrap_or(0);
        let mapped = self.read_state().codes.len();
        let remapped = if need > mapped {
            let len = need.max(2 * mapped).max(256 * self.dim);
            let len = len.div_ceil(self.dim) * self.dim;
            w.i8_file.set_len(len as u64).map_err(io_err(&i8_path))?;
            Some(MappedCodes::map(&w.i8_file).map_err(io_err(&i8_path))?)
        } else {
            None
        };
        w.f32_file
            .sync_data()
            .map_err(io_err(&self.dir.join("vectors.f32")))?;
        w.i8_file.sync_data().map_err(io_err(&i8_path))?;
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
