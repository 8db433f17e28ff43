//! MinHash sketches (128 values, fixed seeds) and LSH band keys.
//!
//! Each of the 128 hash functions is a multiply-shift hash `(a_i * x + b_i) >> 32` over an
//! already well-mixed 64-bit shingle hash `x`; `a_i`/`b_i` come from a fixed SplitMix64 stream so
//! sketches are identical across runs, machines and releases. The estimate of the Jaccard
//! similarity of two sets is the share of positions where their minima agree.

use crate::triage::hash::{Fnv, hex64, mix64};
use std::sync::OnceLock;

/// Number of hash functions (sketch length).
pub const NUM_HASHES: usize = 128;

struct Params {
    a: [u64; NUM_HASHES],
    b: [u64; NUM_HASHES],
}

fn params() -> &'static Params {
    static P: OnceLock<Params> = OnceLock::new();
    P.get_or_init(|| {
        let mut a = [0u64; NUM_HASHES];
        let mut b = [0u64; NUM_HASHES];
        let mut state: u64 = 0x5eed_c1a5_7a1a_6e00;
        for i in 0..NUM_HASHES {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            a[i] = mix64(state) | 1;
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            b[i] = mix64(state);
        }
        Params { a, b }
    })
}

/// Builds a sketch incrementally from shingle hashes.
#[derive(Debug, Clone)]
pub struct MinHasher {
    mins: [u32; NUM_HASHES],
    count: usize,
}

impl Default for MinHasher {
    fn default() -> Self {
        MinHasher {
            mins: [u32::MAX; NUM_HASHES],
            count: 0,
        }
    }
}

impl MinHasher {
    /// Adds one shingle hash (duplicates are harmless).
    #[inline]
    pub fn add(&mut self, x: u64) {
        let p = params();
        for i in 0..NUM_HASHES {
            let h = (p.a[i].wrapping_mul(x).wrapping_add(p.b[i]) >> 32) as u32;
            if h < self.mins[i] {
                self.mins[i] = h;
            }
        }
        self.count += 1;
    }

    /// Number of shingles added (with duplicates).
    pub fn count(&self) -> usize {
        self.count
    }

    /// The sketch; empty when nothing was added (an empty set has no sketch).
    pub fn finish(&self) -> Vec<u32> {
        if self.count == 0 {
            Vec::new()
        } else {
            self.mins.to_vec()
        }
    }
}

/// Estimated Jaccard similarity of two sketches; `None` when either set was empty (no evidence).
pub fn jaccard(a: &[u32], b: &[u32]) -> Option<f64> {
    if a.len() != NUM_HASHES || b.len() != NUM_HASHES {
        return None;
    }
    let eq = a.iter().zip(b).filter(|(x, y)| x == y).count();
    Some(eq as f64 / NUM_HASHES as f64)
}

/// LSH band keys of a sketch: `bands` keys over `rows` values each, tagged with `tag`.
pub fn band_keys(tag: &str, sketch: &[u32], bands: usize, rows: usize, out: &mut Vec<String>) {
    if sketch.len() != NUM_HASHES || bands * rows > NUM_HASHES {
        return;
    }
    for band in 0..bands {
        let mut h = Fnv::default();
        h.u64(band as u64);
        for v in &sketch[band * rows..(band + 1) * rows] {
            h.bytes(&v.to_le_bytes());
        }
        out.push(format!("lsh:{tag}:{band}:{}", hex64(h.finish64())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::triage::hash::hash_str;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn sketch(items: &BTreeSet<u32>) -> Vec<u32> {
        let mut m = MinHasher::default();
        for i in items {
            m.add(hash_str(&i.to_string()));
        }
        m.finish()
    }

    #[test]
    fn empty_is_no_evidence() {
        let e = MinHasher::default().finish();
        assert!(e.is_empty());
        assert_eq!(jaccard(&e, &e), None);
        let one: BTreeSet<u32> = [1].into_iter().collect();
        assert_eq!(jaccard(&sketch(&one), &e), None);
        assert_eq!(jaccard(&sketch(&one), &sketch(&one)), Some(1.0));
    }

    #[test]
    fn band_keys_are_stable_and_identical_for_identical_sketches() {
        let s: BTreeSet<u32> = (0..50).collect();
        let mut a = Vec::new();
        let mut b = Vec::new();
        band_keys("p", &sketch(&s), 32, 4, &mut a);
        band_keys("p", &sketch(&s), 32, 4, &mut b);
        assert_eq!(a.len(), 32);
        assert_eq!(a, b);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn estimate_close_to_exact(
            a in proptest::collection::btree_set(0u32..400, 20..200),
            b in proptest::collection::btree_set(0u32..400, 20..200),
        ) {
            let exact = a.intersection(&b).count() as f64 / a.union(&b).count() as f64;
            let est = jaccard(&sketch(&a), &sketch(&b)).unwrap();
            // 128 hashes: standard error <= 0.045; allow ~4.5 sigma.
            prop_assert!((est - exact).abs() <= 0.2, "exact {exact} est {est}");
        }
    }
}
