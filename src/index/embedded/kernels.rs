//! Scoring kernels: int8 quantisation, the dot products of the int8 and f32
//! stages, and the binary codes (thresholds, binarising, Hamming distance).
//! Pure functions over slices; nothing here knows about files or locks.

use super::SlotMeta;

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

/// Hamming distance of two binary codes. Plain `count_ones` over u64
/// words: without a `popcnt` target feature LLVM vectorises it with SSE2
/// bit arithmetic. The 100k scan (16 MB) takes about 1.7 ms, judging by
/// the difference between the 100k and 10k timings.
#[inline]
pub fn hamming(a: &[u64], b: &[u64]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

/// Sets bit `d` of `out` when `v[d] > reference[d]`. `out` holds
/// `v.len().div_ceil(64)` words; the bits past the dimension stay 0 in
/// every code, so they never count in a distance.
pub fn binarise(v: &[f32], reference: &[f32], out: &mut [u64]) {
    for (word, (v, r)) in out.iter_mut().zip(v.chunks(64).zip(reference.chunks(64))) {
        *word = v
            .iter()
            .zip(r)
            .enumerate()
            .fold(0u64, |w, (i, (x, t))| w | (u64::from(x > t) << i));
    }
}

/// The binary code of a stored vector, from its int8 codes rather than the
/// f32 vector, so that codes built at upsert and those rebuilt at open (when
/// only `vectors.i8` is in memory) are the same function of the same data.
pub(super) fn binarise_codes(
    codes: &[i8],
    scale: f32,
    reference: &[f32],
    buf: &mut [f32],
    out: &mut [u64],
) {
    for (b, &c) in buf.iter_mut().zip(codes) {
        *b = f32::from(c) * scale;
    }
    binarise(buf, reference, out);
}

/// Per-dimension mean of the live vectors (dequantised), and how many there
/// were. Deterministic: slot order, f32 sums.
pub(super) fn mean_reference(
    dim: usize,
    codes: &[i8],
    slots: &[Option<SlotMeta>],
) -> (Vec<f32>, usize) {
    let mut sum = vec![0f32; dim];
    let mut n = 0usize;
    for (slot, meta) in slots.iter().enumerate() {
        let Some(m) = meta else { continue };
        for (s, &c) in sum.iter_mut().zip(&codes[slot * dim..(slot + 1) * dim]) {
            *s += f32::from(c) * m.scale;
        }
        n += 1;
    }
    if n > 0 {
        sum.iter_mut().for_each(|s| *s /= n as f32);
    }
    (sum, n)
}

/// Binary codes of every slot (dead ones too: they are skipped by `live`).
pub(super) fn all_binary_codes(
    dim: usize,
    codes: &[i8],
    slots: &[Option<SlotMeta>],
    reference: &[f32],
) -> Vec<u64> {
    let words = dim.div_ceil(64);
    let mut bits = vec![0u64; slots.len() * words];
    let mut buf = vec![0f32; dim];
    for (slot, (meta, out)) in slots.iter().zip(bits.chunks_exact_mut(words)).enumerate() {
        if let Some(m) = meta {
            let c = &codes[slot * dim..(slot + 1) * dim];
            binarise_codes(c, m.scale, reference, &mut buf, out);
        }
    }
    bits
}
