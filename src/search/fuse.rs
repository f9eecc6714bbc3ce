//! Hybrid ranking: reciprocal-rank fusion (Cormack, Clarke and Büttcher,
//! SIGIR 2009) of a vector ranking and a text ranking. A result's fused
//! score is the sum, over the rankings that hold it, of `1 / (K + rank)`
//! (rank from 1). It needs no calibration between cosine similarity and
//! text relevance, whose scales have nothing in common: only the ranks
//! count. A dozen lines, so no crate for it.

use std::collections::HashMap;

use super::SearchResult;

/// The usual constant: it damps the weight of the very first ranks, so one
/// signal's top result does not outvote agreement between both.
pub const K: f32 = 60.0;

/// How deep each ranking is read, whatever the page asked for: every page
/// is then a slice of one fused ranking (of at most `2 · DEPTH` results).
pub const DEPTH: usize = 200;

/// Fuses the rankings (each best first), best first, ties by product id.
/// A result's fields come from the ranking that holds it (the vector one
/// first); its signals from both.
pub fn reciprocal_rank(vector: Vec<SearchResult>, text: Vec<SearchResult>) -> Vec<SearchResult> {
    let mut fused: HashMap<String, SearchResult> = HashMap::new();
    for (rank, mut r) in vector.into_iter().enumerate() {
        r.score = 1.0 / (K + rank as f32 + 1.0);
        fused.insert(r.product_id.clone(), r);
    }
    for (rank, r) in text.into_iter().enumerate() {
        let contribution = 1.0 / (K + rank as f32 + 1.0);
        match fused.get_mut(&r.product_id) {
            Some(f) => {
                f.score += contribution;
                f.signals.text = r.signals.text;
                f.signals.label = r.signals.label;
                f.signals.typo = r.signals.typo;
            }
            None => {
                let mut r = r;
                r.score = contribution;
                fused.insert(r.product_id.clone(), r);
            }
        }
    }
    let mut out: Vec<SearchResult> = fused.into_values().collect();
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.product_id.cmp(&b.product_id))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::Signals;

    fn r(id: &str, vector: Option<f32>, text: bool) -> SearchResult {
        let label = false;
        SearchResult {
            product_id: id.into(),
            score: vector.unwrap_or(1.0),
            title: None,
            category: None,
            price: None,
            currency: None,
            signals: Signals {
                vector,
                text,
                label,
                typo: false,
            },
        }
    }

    #[test]
    fn agreement_outranks_one_signal_s_first_place() {
        let vector = vec![r("v", Some(0.9), false), r("both", Some(0.8), false)];
        let text = vec![r("t", None, true), r("both", None, true)];
        let fused = reciprocal_rank(vector, text);
        let ids: Vec<&str> = fused.iter().map(|r| r.product_id.as_str()).collect();
        assert_eq!(ids, ["both", "t", "v"]);
        let s = |vector, text| Signals {
            vector,
            text,
            label: false,
            typo: false,
        };
        assert_eq!(fused[0].signals, s(Some(0.8), true));
        assert_eq!(fused[1].signals, s(None, true));
        assert_eq!(fused[2].signals, s(Some(0.9), false));
        assert!((fused[0].score - 2.0 / 62.0).abs() < 1e-6);
    }
}
