//! The search plan: which stage finds the int8 candidates ([`Plan`] and the
//! constants that size it), the scans themselves, the bounded top-k and the
//! final f32 rescoring. Reads the searchable [`State`] under its read lock;
//! never writes.

use std::{cmp::Ordering, collections::BinaryHeap};

use super::{
    Core, State,
    kernels::{binarise, dot_f32, dot_i8, hamming, quantise},
};
use crate::index::{Filter, Hit, IndexError};

/// How a search finds its int8 candidates; [`Plan::for_limit`] is what
/// [`super::EmbeddedIndex::search_sync`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// The int8 scan over every slot, as before binary codes existed: exact
    /// over the codes. Kept as the benches' baseline and the tests'
    /// reference.
    ExactInt8,
    /// Hamming scan over the binary codes, keeping the `candidates` nearest
    /// for int8 rescoring. Used only where it pays and ranks well: a search
    /// with category or price conditions, or over no more than
    /// `EXACT_FACTOR × candidates` points, takes the exact int8 scan instead
    /// (see the module doc).
    Binary { candidates: usize },
}

/// Up to this many times the binary stage's candidates, the int8 scan is
/// about as cheap as the binary stage (8 × 1000 × 1280 bytes = 10 MB, ~2.5
/// ms) and exact.
pub const EXACT_FACTOR: usize = 8;

/// Binary-stage survivors per result asked for, and the floor. Chosen from
/// the recall/latency sweep in `benches/index.rs` (see the module doc, and
/// BENCHMARKS.md §5 for the figures).
pub const BINARY_OVERSAMPLE: usize = 100;
pub const BINARY_MIN_CANDIDATES: usize = 1000;

impl Plan {
    pub fn for_limit(limit: usize) -> Self {
        Plan::Binary {
            candidates: (limit * BINARY_OVERSAMPLE).max(BINARY_MIN_CANDIDATES),
        }
    }
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

/// The `k` slots of smallest distance (`u32::MAX` = not eligible), ties
/// broken by lower slot. A histogram over the distance range (0..=dim)
/// finds the cut in two linear passes, cheaper than a heap or a sort over
/// 100k entries.
pub(super) fn nearest_by_hamming(dist: &[u32], dim: usize, k: usize) -> Vec<usize> {
    let mut hist = vec![0usize; dim + 1];
    for &d in dist {
        if let Some(h) = hist.get_mut(d as usize) {
            *h += 1;
        }
    }
    // `cut`: the largest distance admitted; `at_cut`: how many of that
    // distance still fit.
    let (mut cut, mut below) = (0usize, 0usize);
    while cut < dim && below + hist[cut] < k {
        below += hist[cut];
        cut += 1;
    }
    let mut at_cut = k.saturating_sub(below);
    let mut out = Vec::with_capacity(k);
    for (slot, &d) in dist.iter().enumerate() {
        let d = d as usize;
        if d < cut {
            out.push(slot);
        } else if d == cut && at_cut > 0 {
            out.push(slot);
            at_cut -= 1;
        }
    }
    out
}

impl Core {
    /// The `limit` nearest points passing `filter` under `plan`: the binary
    /// stage or the int8 scan, then f32 rescoring (see the module doc).
    pub(super) fn search_with(
        &self,
        vector: &[f32],
        filter: &Filter,
        limit: usize,
        plan: Plan,
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
        let rescore = (limit * 8).max(64);
        let st = self.read_state();
        let heap = match plan {
            // Filters stay exact: the scan then costs what the filtered set
            // holds, and the Hamming ranking is weakest exactly there (a
            // query whose neighbourhood has no matching items, so that the
            // matches are all about equally far).
            Plan::Binary { candidates }
                if !filter.has_payload_conditions()
                    && st.by_id.len() > candidates.max(rescore).saturating_mul(EXACT_FACTOR) =>
            {
                self.scan_binary(&st, vector, filter, candidates.max(rescore), rescore)
            }
            _ => self.scan_int8(&st, vector, filter, rescore),
        };
        self.rescore_f32(&st, vector, heap, limit)
    }

    /// The int8 scan over every slot: the whole search before binary codes.
    fn scan_int8(
        &self,
        st: &State,
        vector: &[f32],
        filter: &Filter,
        keep: usize,
    ) -> BinaryHeap<Scored> {
        let (q, _) = quantise(vector);
        let all = st.codes.as_i8();
        let mut heap = BinaryHeap::with_capacity(keep + 1);
        for (slot, meta) in st.slots.iter().enumerate() {
            let Some(meta) = meta else { continue };
            if !filter.matches(&meta.payload) {
                continue;
            }
            let codes = &all[slot * self.dim..(slot + 1) * self.dim];
            // The query's own scale is the same for every candidate, so it
            // does not change the order and is left out.
            let approx = dot_i8(&q, codes) as f32 * meta.scale;
            push_top_k(&mut heap, keep, Scored(approx, slot));
        }
        heap
    }

    /// Hamming scan over the binary codes of all live slots but the excluded
    /// one, then int8 scores for the `candidates` nearest; returns the best
    /// `keep` of those. `filter` has no payload conditions.
    fn scan_binary(
        &self,
        st: &State,
        vector: &[f32],
        filter: &Filter,
        candidates: usize,
        keep: usize,
    ) -> BinaryHeap<Scored> {
        let mut qb = vec![0u64; self.words];
        binarise(vector, &st.reference, &mut qb);
        // `exclude_id` is resolved to its slot once, instead of comparing
        // the id string of every payload (similar-by-product).
        let exclude = filter
            .exclude_id
            .as_ref()
            .and_then(|id| st.by_id.get(id))
            .copied();
        let mut dist = vec![u32::MAX; st.live.len()];
        for (slot, ((d, &live), code)) in dist
            .iter_mut()
            .zip(&st.live)
            .zip(st.bits.chunks_exact(self.words))
            .enumerate()
        {
            if live && exclude != Some(slot) {
                *d = hamming(&qb, code);
            }
        }
        let chosen = nearest_by_hamming(&dist, self.dim, candidates);
        let (q, _) = quantise(vector);
        let all = st.codes.as_i8();
        let mut heap = BinaryHeap::with_capacity(keep + 1);
        for slot in chosen {
            let Some(meta) = &st.slots[slot] else {
                continue;
            };
            let codes = &all[slot * self.dim..(slot + 1) * self.dim];
            let approx = dot_i8(&q, codes) as f32 * meta.scale;
            push_top_k(&mut heap, keep, Scored(approx, slot));
        }
        heap
    }

    /// Exact f32 scores for the int8 survivors; the best `limit`, best first.
    fn rescore_f32(
        &self,
        st: &State,
        vector: &[f32],
        heap: BinaryHeap<Scored>,
        limit: usize,
    ) -> Result<Vec<Hit>, IndexError> {
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
}

#[cfg(test)]
mod tests {
    use super::nearest_by_hamming;

    #[test]
    fn nearest_by_hamming_cuts_ties_at_k() {
        let dist = [3, u32::MAX, 1, 3, 0, 3, 2, u32::MAX];
        assert_eq!(nearest_by_hamming(&dist, 4, 3), vec![2, 4, 6]);
        assert_eq!(nearest_by_hamming(&dist, 4, 4), vec![0, 2, 4, 6]);
        assert_eq!(nearest_by_hamming(&dist, 4, 9), vec![0, 2, 3, 4, 5, 6]);
    }
}
