//! Candidate generation in sublinear time: index keys, posting-list ranking and an in-memory index.
//!
//! A signature yields a sorted, deduplicated list of string keys: LSH band keys over the
//! production sketches (added and removed apart) and the test sketch, exact change-block hashes,
//! the canonical hash, production paths, symbols and imports, test names, doc headings and
//! references (a PR also carries `ref:<its own number>`, so a PR naming it shares that key). The
//! same keys are the features whose corpus frequency discounts scoring (see `ScoreContext`).
//!
//! Ranking sums a vote per shared key, weighted by key kind and divided by the key's posting
//! length; keys held by more than `candidates.max_posting` PRs are ignored, which keeps a lookup's
//! cost independent of corpus size.

use crate::triage::config::TriageConfig;
use crate::triage::hash::{FixedState, Fnv, hex64};
use crate::triage::minhash::band_keys;
use crate::triage::signature::Signature;
use crate::triage::tokens::clip;
use std::collections::{BTreeMap, HashMap};

/// Longest item (bytes) inside a key; longer names are cut (on a char boundary).
pub const MAX_KEY_ITEM: usize = 200;

/// Key prefix: canonical production hash.
pub const K_CANON: &str = "canon";
/// Key prefix: canonical test hash.
pub const K_CANON_TEST: &str = "tcanon";
/// Key prefix: canonical docs hash.
pub const K_CANON_DOC: &str = "dcanon";
/// Key prefix: test path.
pub const K_PATH_TEST: &str = "tpath";
/// Key prefix: doc path.
pub const K_PATH_DOC: &str = "dpath";
/// Key prefix: production change block.
pub const K_BLOCK_PROD: &str = "bp";
/// Key prefix: test change block.
pub const K_BLOCK_TEST: &str = "bt";
/// Key prefix: doc change block.
pub const K_BLOCK_DOC: &str = "bd";
/// Key prefix: production path.
pub const K_PATH: &str = "path";
/// Key prefix: declared symbol.
pub const K_SYM: &str = "sym";
/// Key prefix: imported module (production).
pub const K_IMP: &str = "imp";
/// Key prefix: test name.
pub const K_TEST: &str = "ti";
/// Key prefix: doc heading.
pub const K_DOC: &str = "dh";
/// Key prefix: reference (closing, mention, or the PR's own number).
pub const K_REF: &str = "ref";
/// Key prefix: whole-diff hash of a PR without production changes.
pub const K_WHOLE: &str = "whole";

/// The key string for `prefix` and `item`.
pub fn key(prefix: &str, item: &str) -> String {
    let item = clip(item, MAX_KEY_ITEM);
    let mut s = String::with_capacity(prefix.len() + 1 + item.len());
    s.push_str(prefix);
    s.push(':');
    s.push_str(item);
    s
}

/// 64-bit hash of `key(prefix, item)` computed without allocating.
pub fn key_hash(prefix: &str, item: &str) -> u64 {
    let item = clip(item, MAX_KEY_ITEM).as_bytes();
    let mut buf = [0u8; 256];
    let len = prefix.len() + 1 + item.len();
    if len > buf.len() {
        return key_hash_str(&key(prefix, std::str::from_utf8(item).unwrap_or("")));
    }
    buf[..prefix.len()].copy_from_slice(prefix.as_bytes());
    buf[prefix.len()] = b':';
    buf[prefix.len() + 1..len].copy_from_slice(item);
    let mut h = Fnv::default();
    h.bytes(&buf[..len]);
    h.finish64()
}

/// Hash of a full key string (same value as [`key_hash`] for its parts).
pub fn key_hash_str(key: &str) -> u64 {
    let mut h = Fnv::default();
    h.bytes(key.as_bytes());
    h.finish64()
}

/// Index keys of a signature: deterministic, deduplicated, sorted. Empty for excluded bots.
pub fn index_keys(sig: &Signature, cfg: &TriageConfig) -> Vec<String> {
    if sig.is_bot && cfg.excludes_bots_entirely() {
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::new();
    let p = &sig.prod.change;
    let t = &sig.tests.change;
    let d = &sig.docs.change;
    band_keys(
        "p+",
        &p.added_minhash,
        cfg.lsh.prod_bands,
        cfg.lsh.prod_rows,
        &mut out,
    );
    band_keys(
        "p-",
        &p.removed_minhash,
        cfg.lsh.prod_bands,
        cfg.lsh.prod_rows,
        &mut out,
    );
    band_keys(
        "t",
        &t.added_minhash,
        cfg.lsh.test_bands,
        cfg.lsh.test_rows,
        &mut out,
    );
    for (prefix, c) in [(K_CANON, p), (K_CANON_TEST, t), (K_CANON_DOC, d)] {
        if !c.canonical_hash.is_empty() {
            out.push(key(prefix, &c.canonical_hash));
        }
    }
    if !sig.whole_hash.is_empty() {
        out.push(key(K_WHOLE, &sig.whole_hash));
    }
    for (prefix, c) in [(K_BLOCK_PROD, p), (K_BLOCK_TEST, t), (K_BLOCK_DOC, d)] {
        out.extend(c.blocks.iter().map(|b| key(prefix, &hex64(b.0))));
    }
    out.extend(p.paths.iter().map(|x| key(K_PATH, x)));
    out.extend(t.paths.iter().map(|x| key(K_PATH_TEST, x)));
    out.extend(d.paths.iter().map(|x| key(K_PATH_DOC, x)));
    out.extend(sig.prod.symbols.iter().map(|x| key(K_SYM, x)));
    out.extend(sig.prod.imports.iter().map(|x| key(K_IMP, x)));
    out.extend(sig.tests.names.iter().map(|x| key(K_TEST, x)));
    out.extend(sig.docs.headings.iter().map(|x| key(K_DOC, x)));
    out.extend(
        sig.refs
            .closing
            .iter()
            .chain(&sig.refs.mentions)
            .map(|x| key(K_REF, x)),
    );
    out.push(key(K_REF, &sig.number.to_string()));
    out.sort_unstable();
    out.dedup();
    out
}

/// The keys whose corpus counts [`crate::triage::score`] consults for `sig`: its index keys
/// without the LSH bands. For a [`crate::triage::ScoreContext::from_counts`] map, count the union of
/// `feature_keys` of both PRs of every pair (unknown keys count as rare).
pub fn feature_keys(sig: &Signature, cfg: &TriageConfig) -> Vec<String> {
    let mut keys = index_keys(sig, cfg);
    keys.retain(|k| !k.starts_with("lsh:"));
    keys
}

/// Vote of one key of kind given by its prefix.
fn kind_weight(k: &str, cfg: &TriageConfig) -> f64 {
    let c = &cfg.candidates;
    let prefix = k.split(':').next().unwrap_or("");
    match prefix {
        "lsh" => c.weight_lsh,
        K_CANON | K_CANON_TEST | K_CANON_DOC | K_WHOLE => c.weight_canonical,
        K_BLOCK_PROD => c.weight_block,
        K_BLOCK_TEST => c.weight_test_block,
        K_BLOCK_DOC => c.weight_doc,
        K_PATH => c.weight_path,
        K_PATH_TEST | K_PATH_DOC => c.weight_side_path,
        K_SYM | K_IMP => c.weight_symbol,
        K_TEST => c.weight_test,
        K_DOC => c.weight_doc,
        K_REF => c.weight_ref,
        _ => 0.0,
    }
}

/// Ranks the PRs found in `postings` (key, PRs holding it) as candidates for `self_number`.
///
/// Each shared key votes `kind weight / posting length`; keys with more than
/// `candidates.max_posting` holders are ignored. Returns at most `candidates.max_candidates`
/// numbers, best first, ties by ascending number. The result does not depend on the order of
/// `postings` or of the numbers inside them.
pub fn rank_candidates(
    self_number: u64,
    postings: &[(String, Vec<u64>)],
    cfg: &TriageConfig,
) -> Vec<u64> {
    // Holders are counted once per key, whatever the caller's list looks like.
    let dedup: Vec<(&str, Vec<u64>)> = postings
        .iter()
        .map(|(k, v)| {
            let mut v = v.clone();
            v.sort_unstable();
            v.dedup();
            (k.as_str(), v)
        })
        .collect();
    let view: Vec<(&str, &[u64])> = dedup.iter().map(|(k, v)| (*k, v.as_slice())).collect();
    rank_view(self_number, view, cfg)
}

fn rank_view(self_number: u64, mut postings: Vec<(&str, &[u64])>, cfg: &TriageConfig) -> Vec<u64> {
    postings.sort_unstable_by(|a, b| a.0.cmp(b.0));
    // `postings` hold distinct numbers per key (the index keeps them so; `rank_candidates`
    // deduplicates caller input).
    let mut votes: BTreeMap<u64, f64> = BTreeMap::new();
    for (k, nums) in postings {
        let df = nums.len();
        if df == 0 || df > cfg.candidates.max_posting {
            continue;
        }
        let w = kind_weight(k, cfg) / df as f64;
        if w <= 0.0 {
            continue;
        }
        for &n in nums {
            if n != self_number {
                *votes.entry(n).or_insert(0.0) += w;
            }
        }
    }
    let mut ranked: Vec<(u64, f64)> = votes.into_iter().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.truncate(cfg.candidates.max_candidates);
    ranked.into_iter().map(|(n, _)| n).collect()
}

/// In-memory inverted index over signatures' keys (used by the quality harness and benches; the
/// appliance keeps the same keys in Postgres and calls [`rank_candidates`]).
#[derive(Debug, Default, Clone)]
pub struct Index {
    postings: HashMap<u64, Vec<u64>, FixedState>,
    keys_of: HashMap<u64, Vec<u64>, FixedState>,
}

impl Index {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of indexed PRs.
    pub fn len(&self) -> usize {
        self.keys_of.len()
    }

    /// True when nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.keys_of.is_empty()
    }

    /// Indexes (or re-indexes) PR `number` under the keys of `sig`. Idempotent.
    pub fn insert(&mut self, number: u64, sig: &Signature, cfg: &TriageConfig) {
        self.remove(number);
        let hashes: Vec<u64> = index_keys(sig, cfg)
            .iter()
            .map(|k| key_hash_str(k))
            .collect();
        for h in &hashes {
            self.postings.entry(*h).or_default().push(number);
        }
        self.keys_of.insert(number, hashes);
    }

    /// Removes PR `number` from the index (no-op when absent).
    pub fn remove(&mut self, number: u64) {
        let Some(hashes) = self.keys_of.remove(&number) else {
            return;
        };
        for h in hashes {
            if let Some(v) = self.postings.get_mut(&h) {
                v.retain(|&n| n != number);
                if v.is_empty() {
                    self.postings.remove(&h);
                }
            }
        }
    }

    /// Candidates for `sig` (excluding its own number), best first.
    pub fn candidates(&self, sig: &Signature, cfg: &TriageConfig) -> Vec<u64> {
        let keys = index_keys(sig, cfg);
        let view: Vec<(&str, &[u64])> = keys
            .iter()
            .filter_map(|k| {
                self.postings
                    .get(&key_hash_str(k))
                    .map(|v| (k.as_str(), v.as_slice()))
            })
            .collect();
        rank_view(sig.number, view, cfg)
    }

    /// Number of indexed PRs holding `key`.
    pub fn key_frequency(&self, key: &str) -> usize {
        self.postings.get(&key_hash_str(key)).map_or(0, Vec::len)
    }

    /// Number of indexed PRs holding `key(prefix, item)`, without allocating.
    pub fn frequency_of(&self, prefix: &str, item: &str) -> usize {
        self.postings
            .get(&key_hash(prefix, item))
            .map_or(0, Vec::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_hash_matches_string_form() {
        assert_eq!(
            key_hash("path", "src/a.ts"),
            key_hash_str(&key("path", "src/a.ts"))
        );
        let long = "x".repeat(500);
        assert_eq!(key_hash("ti", &long), key_hash_str(&key("ti", &long)));
    }

    #[test]
    fn ranking_is_deterministic_and_discounts_frequent_keys() {
        let cfg = TriageConfig::default();
        let common: Vec<u64> = (1..=200).collect();
        let postings = vec![
            ("path:a".to_string(), common.clone()),
            ("bp:00000000000000aa".to_string(), vec![5, 7]),
            ("sym:foo".to_string(), vec![9, 5]),
        ];
        let r = rank_candidates(7, &postings, &cfg);
        assert_eq!(r, vec![5, 9]);
        let mut rev = postings.clone();
        rev.reverse();
        assert_eq!(rank_candidates(7, &rev, &cfg), r);
    }
}

#[cfg(test)]
mod index_tests {
    use super::*;
    use crate::triage::signature::{FileChange, FileStatus, PrInput, analyse};

    fn sig(number: u64, body: &str, line: &str) -> Signature {
        let patch = format!(
            "@@ -1,2 +1,2 @@\n-  let value = compute(input);\n+  let value = {line};\n+  report(value, {number});\n"
        );
        let pr = PrInput {
            number,
            title: String::new(),
            body: body.to_string(),
            author: "dev".to_string(),
            created_at: 0,
            head_sha: String::new(),
            files: vec![FileChange {
                path: "src/lib.rs".to_string(),
                previous_path: None,
                status: FileStatus::Modified,
                additions: 2,
                deletions: 1,
                patch: Some(patch),
                sha: None,
            }],
        };
        analyse(&pr, &TriageConfig::default()).signature
    }

    #[test]
    fn keys_are_sorted_unique_and_carry_own_number() {
        let cfg = TriageConfig::default();
        let k = index_keys(&sig(5, "fixes #9", "compute_fast(input)"), &cfg);
        let mut sorted = k.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(k, sorted);
        assert!(k.contains(&"ref:5".to_string()));
        assert!(k.contains(&"ref:9".to_string()));
        assert!(k.contains(&"path:src/lib.rs".to_string()));
        assert!(k.iter().any(|x| x.starts_with("lsh:p+:")));
        assert!(k.iter().any(|x| x.starts_with("canon:")));
    }

    #[test]
    fn insert_remove_and_candidates() {
        let cfg = TriageConfig::default();
        let mut idx = Index::new();
        let a = sig(1, "", "compute_fast(input)");
        let b = sig(2, "", "compute_fast(input)");
        let c = sig(3, "see #1", "totally_different(other, stuff, here)");
        for s in [&a, &b, &c] {
            idx.insert(s.number, s, &cfg);
        }
        idx.insert(2, &b, &cfg); // idempotent
        assert_eq!(idx.len(), 3);
        assert_eq!(idx.key_frequency("path:src/lib.rs"), 3);
        let cands = idx.candidates(&a, &cfg);
        assert_eq!(cands.first(), Some(&2));
        assert!(cands.contains(&3), "a PR naming #1 is a candidate of #1");
        assert!(!cands.contains(&1));
        idx.remove(2);
        assert_eq!(idx.key_frequency("path:src/lib.rs"), 2);
        assert!(!idx.candidates(&a, &cfg).contains(&2));
        idx.remove(2);
        assert_eq!(idx.len(), 2);
    }
}
