//! Scoring and categorisation of a pair of signatures, with evidence.
//!
//! Production first: the score is mostly how much of the production change the two PRs share
//! (exact change blocks and MinHash text similarity, the latter trusted only over shared files),
//! plus where they change it (paths, symbols). Tests, docs and references can add only up to their
//! caps; meta never counts. Every feature is weighted by its rarity in the corpus (see
//! `[rarity]`), so boilerplate and tracker references carried by many PRs contribute nothing. Two
//! empty feature sets are "no evidence" (score `None`), never a match.
//!
//! `score(a, b)` and `score(b, a)` give the same category and final score; evidence lists are
//! oriented (sizes are a's then b's).

use crate::triage::channel::Channel;
use crate::triage::config::TriageConfig;
use crate::triage::hash::{FixedState, combine, hash_str, hex64_buf};
use crate::triage::index::{
    Index, K_BLOCK_DOC, K_BLOCK_PROD, K_BLOCK_TEST, K_CANON, K_CANON_DOC, K_CANON_TEST, K_DOC,
    K_IMP, K_PATH, K_PATH_DOC, K_PATH_TEST, K_REF, K_SYM, K_TEST, K_WHOLE, key,
};
use crate::triage::minhash::jaccard;
use crate::triage::signature::{Block, ChangeSig, Signature};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Mutex;

/// Strength of the relation between two PRs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Category {
    /// Nothing worth showing.
    NotRelated,
    /// Some overlap; context only, never suggested.
    Related,
    /// Identical or near-identical tests with different production code.
    CompetingImplementation,
    /// The same feature or fix, implemented differently or adapted.
    SameFeature,
    /// The same production change.
    SameChange,
}

impl Category {
    /// Wire name (`SAME_CHANGE`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Category::SameChange => "SAME_CHANGE",
            Category::SameFeature => "SAME_FEATURE",
            Category::CompetingImplementation => "COMPETING_IMPLEMENTATION",
            Category::Related => "RELATED",
            Category::NotRelated => "NOT_RELATED",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Category::SameChange,
            Category::SameFeature,
            Category::CompetingImplementation,
            Category::Related,
            Category::NotRelated,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }

    /// True for the categories shown to maintainers as suggestions.
    pub fn is_suggestion(self) -> bool {
        self >= Category::CompetingImplementation
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Corpus statistics scoring needs: how many indexed PRs carry each feature key.
///
/// Counts should include the two PRs being scored (count after indexing both). Unknown keys count
/// as carried by the two PRs only.
///
/// The context also memoises, per PR head and feature kind, the rarity-weighted size of each
/// side, so scoring one PR against tens of candidates looks each of its features up once. Within
/// one context a (PR number, head SHA) must therefore stand for one signature, and the counts must
/// not change while the context is used (build a new context after indexing more PRs).
pub struct ScoreContext<'a> {
    src: Source<'a>,
    memo: Mutex<HashMap<(u64, u8), f64, FixedState>>,
}

enum Source<'a> {
    Empty,
    Map(BTreeMap<String, u32>),
    Fn(Box<dyn Fn(&str) -> u32 + Send + Sync + 'a>),
    Index(&'a Index),
}

impl fmt::Debug for ScoreContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.src {
            Source::Empty => "empty",
            Source::Map(_) => "map",
            Source::Fn(_) => "fn",
            Source::Index(_) => "index",
        };
        f.debug_struct("ScoreContext")
            .field("source", &kind)
            .finish()
    }
}

impl Default for ScoreContext<'_> {
    fn default() -> Self {
        Self::empty()
    }
}

impl<'a> ScoreContext<'a> {
    /// No corpus knowledge: every feature counts as rare (only for tests and one-off scoring).
    pub fn empty() -> Self {
        Self::with(Source::Empty)
    }
    fn with(src: Source<'a>) -> Self {
        ScoreContext {
            src,
            memo: Mutex::new(HashMap::default()),
        }
    }
    /// From key -> number of PRs carrying it (e.g. one `GROUP BY key` over the index table for the
    /// keys of both signatures, see [`crate::triage::index_keys`]).
    pub fn from_counts(counts: BTreeMap<String, u32>) -> Self {
        Self::with(Source::Map(counts))
    }
    /// From a lookup function key -> count.
    pub fn from_fn(f: impl Fn(&str) -> u32 + Send + Sync + 'a) -> Self {
        Self::with(Source::Fn(Box::new(f)))
    }
    /// From an in-memory index.
    pub fn from_index(index: &'a Index) -> Self {
        Self::with(Source::Index(index))
    }

    /// Number of PRs carrying feature `prefix:item` (at least 2: the pair itself).
    pub fn df(&self, prefix: &str, item: &str) -> u32 {
        let n = match &self.src {
            Source::Empty => 0,
            Source::Map(m) => m.get(&key(prefix, item)).copied().unwrap_or(0),
            Source::Fn(f) => f(&key(prefix, item)),
            Source::Index(i) => u32::try_from(i.frequency_of(prefix, item)).unwrap_or(u32::MAX),
        };
        n.max(2)
    }

    /// Memoised per-side total (see the type's documentation).
    fn side_total(&self, side: u64, tag: u8, compute: impl FnOnce() -> f64) -> f64 {
        if let Ok(m) = self.memo.lock()
            && let Some(v) = m.get(&(side, tag))
        {
            return *v;
        }
        let v = compute();
        if let Ok(mut m) = self.memo.lock() {
            m.insert((side, tag), v);
        }
        v
    }
}

/// Every signal's score for one pair. `None` = no evidence (a side had nothing to compare).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scores {
    /// Channel that carried the change score: production, or for PRs without production
    /// changes the channel both change (tests or docs).
    pub primary: Channel,
    /// Identical canonical production hash (1.0) or not (0.0); rarity-weighted.
    pub prod_exact: Option<f64>,
    /// Rarity-weighted similarity of production change blocks.
    pub prod_blocks: Option<f64>,
    /// MinHash similarity of production text (added vs added, removed vs removed).
    pub prod_text: Option<f64>,
    /// MinHash similarity of one side's added lines with the other's removed lines.
    pub revert_cross: Option<f64>,
    /// Production similarity used for the score.
    pub prod: f64,
    /// Rarity-weighted similarity of production paths.
    pub paths: Option<f64>,
    /// Rarity-weighted similarity of symbols and imports.
    pub symbols: Option<f64>,
    /// Area score (paths and symbols).
    pub area: f64,
    /// Rarity-weighted similarity of test change blocks.
    pub test_blocks: Option<f64>,
    /// Rarity-weighted similarity of test names.
    pub test_names: Option<f64>,
    /// Test similarity used.
    pub tests: Option<f64>,
    /// Docs similarity.
    pub docs: Option<f64>,
    /// Reference signal.
    pub refs: Option<f64>,
    /// Score before category banding.
    pub raw: f64,
    /// Final score.
    pub final_score: f64,
}

impl Default for Scores {
    fn default() -> Self {
        Scores {
            primary: Channel::Production,
            prod_exact: None,
            prod_blocks: None,
            prod_text: None,
            revert_cross: None,
            prod: 0.0,
            paths: None,
            symbols: None,
            area: 0.0,
            test_blocks: None,
            test_names: None,
            tests: None,
            docs: None,
            refs: None,
            raw: 0.0,
            final_score: 0.0,
        }
    }
}

/// Facts behind an edge, for humans.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    /// Production paths both change (rare ones first, at most 20).
    pub shared_paths: Vec<String>,
    /// Symbols/imports both touch (at most 20).
    pub shared_symbols: Vec<String>,
    /// Test names both add (at most 20).
    pub shared_tests: Vec<String>,
    /// References both carry (closing or mentions), and direct mentions (`#N` of the other).
    pub shared_refs: Vec<String>,
    /// One PR names the other's number.
    pub direct_mention: bool,
    /// Production change blocks both contain.
    pub shared_hunks: u32,
    /// Changed lines in those blocks.
    pub shared_hunk_lines: u32,
    /// Test change blocks both contain.
    pub shared_test_hunks: u32,
    /// Meta files both touch (explanation only; never scored).
    pub shared_meta_paths: Vec<String>,
    /// Same author (often a resubmission).
    pub same_author: bool,
    /// Either author is a bot.
    pub bot: bool,
    /// One looks like a revert of the other.
    pub revert_like: bool,
    /// The two change the same lines to different values (versions, dates, hashes): weak.
    #[serde(default)]
    pub literal_only: bool,
    /// Neither changes production code and their whole diffs (meta files included) are identical.
    #[serde(default)]
    pub whole_diff_identical: bool,
    /// Production lines changed by a and by b.
    pub prod_lines: [u32; 2],
    /// Test lines changed by a and by b.
    pub test_lines: [u32; 2],
    /// One-line human-readable reasons.
    pub reasons: Vec<String>,
}

/// A scored, categorised, evidenced pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Edge {
    /// PR a.
    pub a: u64,
    /// PR b.
    pub b: u64,
    /// Category.
    pub category: Category,
    /// Final score in [0, 1].
    pub final_score: f64,
    /// Per-signal scores.
    pub scores: Scores,
    /// Evidence.
    pub evidence: Evidence,
}

/// How a feature kind is discounted by its corpus frequency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rarity {
    /// Content (blocks, canonical hashes, test names, references): ignored when common.
    Content,
    /// Location (paths, symbols, imports, headings): gently discounted, never ignored.
    Location,
}

fn feature_weight(
    rarity: Rarity,
    prefix: &str,
    item: &str,
    ctx: &ScoreContext<'_>,
    cfg: &TriageConfig,
) -> f64 {
    let df = ctx.df(prefix, item);
    match rarity {
        Rarity::Content => cfg.rarity_weight(df),
        Rarity::Location => cfg.location_weight(df),
    }
}

/// Result of a rarity-weighted comparison of two sorted string sets.
struct SetMatch {
    sim: Option<f64>,
    shared: Vec<(f64, String)>,
}

#[allow(clippy::too_many_arguments)]
fn weighted_sets(
    tag: u8,
    prefix: &str,
    rarity: Rarity,
    a: &[String],
    b: &[String],
    sides: (u64, u64),
    ctx: &ScoreContext<'_>,
    cfg: &TriageConfig,
) -> SetMatch {
    let w = |x: &str| feature_weight(rarity, prefix, x, ctx, cfg);
    let total = |v: &[String]| v.iter().map(|x| w(x)).sum::<f64>();
    let mut ws = 0.0;
    let mut shared = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            Ordering::Less => i += 1,
            Ordering::Greater => j += 1,
            Ordering::Equal => {
                let x = w(&a[i]);
                ws += x;
                if x > 0.0 {
                    shared.push((x, a[i].clone()));
                }
                i += 1;
                j += 1;
            }
        }
    }
    let wa = if a.is_empty() {
        0.0
    } else {
        ctx.side_total(sides.0, tag, || total(a))
    };
    let wb = if b.is_empty() {
        0.0
    } else {
        ctx.side_total(sides.1, tag, || total(b))
    };
    let sim = if wa <= 0.0 || wb <= 0.0 {
        None
    } else {
        Some((ws / (wa + wb - ws)).clamp(0.0, 1.0))
    };
    shared.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
    SetMatch { sim, shared }
}

struct BlockMatch {
    sim: Option<f64>,
    /// Rarity-weighted changed lines both share.
    shared_mass: f64,
    /// Shared changed lines discounted away as common (boilerplate).
    common_lines: f64,
    shared_count: u32,
    shared_lines: u32,
    /// Blocks with the same hash, whatever their weight.
    shared_any: u32,
}

fn weighted_blocks(
    tag: u8,
    prefix: &str,
    a: &[Block],
    b: &[Block],
    sides: (u64, u64),
    ctx: &ScoreContext<'_>,
    cfg: &TriageConfig,
) -> BlockMatch {
    let w = |blk: &Block| {
        let mut buf = [0u8; 16];
        cfg.rarity_weight(ctx.df(prefix, hex64_buf(blk.0, &mut buf)))
    };
    let mass = |v: &[Block]| v.iter().map(|blk| f64::from(blk.1) * w(blk)).sum::<f64>();
    let (mut ms, mut common) = (0.0, 0.0);
    let (mut count, mut lines, mut any) = (0u32, 0u32, 0u32);
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            Ordering::Less => i += 1,
            Ordering::Greater => j += 1,
            Ordering::Equal => {
                // Same hash means same lines.
                let n = f64::from(a[i].1.min(b[j].1));
                let x = w(&a[i]);
                any += 1;
                ms += n * x;
                common += n * (1.0 - x);
                if x > 0.0 {
                    count += 1;
                    lines += a[i].1.min(b[j].1);
                }
                i += 1;
                j += 1;
            }
        }
    }
    let ma = if a.is_empty() {
        0.0
    } else {
        ctx.side_total(sides.0, tag, || mass(a))
    };
    let mb = if b.is_empty() {
        0.0
    } else {
        ctx.side_total(sides.1, tag, || mass(b))
    };
    let sim = if ma <= 0.0 || mb <= 0.0 {
        None
    } else {
        Some((ms / (ma + mb - ms + cfg.score.block_prior_lines)).clamp(0.0, 1.0))
    };
    BlockMatch {
        sim,
        shared_mass: ms,
        common_lines: common,
        shared_count: count,
        shared_lines: lines,
        shared_any: any,
    }
}

/// Changed lines the two block lists share (same hash), unweighted, and each side's total.
fn shared_lines(a: &[Block], b: &[Block]) -> (u64, u64, u64) {
    let total = |v: &[Block]| v.iter().map(|x| u64::from(x.1)).sum::<u64>();
    let (mut i, mut j, mut shared) = (0, 0, 0u64);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            Ordering::Less => i += 1,
            Ordering::Greater => j += 1,
            Ordering::Equal => {
                shared += u64::from(a[i].1.min(b[j].1));
                i += 1;
                j += 1;
            }
        }
    }
    (shared, total(a), total(b))
}

/// Share of the smaller change that matches the other only once literal values are masked (the
/// same lines edited to different values), in `[0, 1]`.
fn literal_only_share(a: &ChangeSig, b: &ChangeSig) -> f64 {
    let (shape_shared, sa, sb) = shared_lines(&a.shapes, &b.shapes);
    let smaller = sa.min(sb);
    if smaller == 0 || shape_shared == 0 {
        return 0.0;
    }
    // Exact matches among the shaped blocks (path operations and anchored tiny changes have no
    // separate shape and count as exact on both lists).
    let (exact_shared, _, _) = shared_lines(&a.blocks, &b.blocks);
    (shape_shared.saturating_sub(exact_shared) as f64 / smaller as f64).clamp(0.0, 1.0)
}

/// Size-weighted MinHash similarity of two (added, removed) sketch pairs; `None` when there is
/// nothing on either side.
fn text_similarity(a: (&[u32], u32, &[u32], u32), b: (&[u32], u32, &[u32], u32)) -> Option<f64> {
    let part = |x: &[u32], nx: u32, y: &[u32], ny: u32| -> (f64, f64) {
        let size = f64::from(nx.max(ny));
        match jaccard(x, y) {
            Some(j) => (j * size, size),
            None => (0.0, size), // one side has lines of this sign, the other none
        }
    };
    let (s1, w1) = part(a.0, a.1, b.0, b.1);
    let (s2, w2) = part(a.2, a.3, b.2, b.3);
    let w = w1 + w2;
    (w > 0.0).then(|| (s1 + s2) / w)
}

/// Key prefixes of one channel's change features.
struct ChannelKeys {
    tag: u8,
    canon: &'static str,
    block: &'static str,
    path: &'static str,
}

const PROD_KEYS: ChannelKeys = ChannelKeys {
    tag: 10,
    canon: K_CANON,
    block: K_BLOCK_PROD,
    path: K_PATH,
};
const TEST_KEYS: ChannelKeys = ChannelKeys {
    tag: 20,
    canon: K_CANON_TEST,
    block: K_BLOCK_TEST,
    path: K_PATH_TEST,
};
const DOC_KEYS: ChannelKeys = ChannelKeys {
    tag: 30,
    canon: K_CANON_DOC,
    block: K_BLOCK_DOC,
    path: K_PATH_DOC,
};

/// Comparison of one channel's changed lines.
struct ChangeMatch {
    both: bool,
    canon_same: bool,
    exact: f64,
    blocks: BlockMatch,
    text: Option<f64>,
    cross: Option<f64>,
    paths: SetMatch,
    revert_like: bool,
    /// The two edit the same lines to different values (see `category.literal_only_share`).
    literal_only: bool,
    /// Combined similarity of the change.
    sim: f64,
}

fn change_match(
    a: &ChangeSig,
    b: &ChangeSig,
    keys: &ChannelKeys,
    sides: (u64, u64),
    ctx: &ScoreContext<'_>,
    cfg: &TriageConfig,
) -> ChangeMatch {
    let both = a.has_content() && b.has_content();
    let canon_same = both && !a.canonical_hash.is_empty() && a.canonical_hash == b.canonical_hash;
    let blocks = weighted_blocks(keys.tag, keys.block, &a.blocks, &b.blocks, sides, ctx, cfg);
    // An identical change counts only when it holds something: blank lines and lone punctuation
    // give no block, so two PRs that both delete a `}` are not "the same change".
    let exact = if canon_same && blocks.shared_any > 0 {
        cfg.rarity_weight(ctx.df(keys.canon, &a.canonical_hash))
    } else {
        0.0
    };
    let literal_only =
        both && !canon_same && literal_only_share(a, b) >= cfg.category.literal_only_share;
    let ta = (
        &a.added_minhash[..],
        a.added_shingles,
        &a.removed_minhash[..],
        a.removed_shingles,
    );
    let tb = (
        &b.added_minhash[..],
        b.added_shingles,
        &b.removed_minhash[..],
        b.removed_shingles,
    );
    let text = if both { text_similarity(ta, tb) } else { None };
    // One side's added lines against the other's removed lines: a revert swaps them.
    let cross = if both {
        text_similarity(ta, (tb.2, tb.3, tb.0, tb.1))
    } else {
        None
    };
    let paths = weighted_sets(
        keys.tag + 1,
        keys.path,
        Rarity::Location,
        &a.paths,
        &b.paths,
        sides,
        ctx,
        cfg,
    );
    let direct = text
        .unwrap_or(0.0)
        .max(blocks.sim.unwrap_or(0.0))
        .max(exact);
    let cross_v = cross.unwrap_or(0.0);
    let revert_like = cross_v >= cfg.category.revert_cross && cross_v > direct;
    // Text similarity counts in proportion to shared (rarity-weighted) paths, and without the
    // share of the change that is common boilerplate.
    let gate = if cfg.score.text_path_gate > 0.0 {
        (paths.sim.unwrap_or(0.0) / cfg.score.text_path_gate).min(1.0)
    } else {
        1.0
    };
    let smaller = f64::from(a.changed_lines().min(b.changed_lines())).max(1.0);
    let boiler = (blocks.common_lines / smaller).clamp(0.0, 1.0);
    // Text of the same lines with other values looks alike token by token; it is not trusted.
    let text_eff = if literal_only {
        0.0
    } else {
        text.unwrap_or(0.0) * gate * (1.0 - boiler)
    };
    let sim = if both {
        blocks.sim.unwrap_or(0.0).max(text_eff).max(exact)
    } else {
        0.0
    };
    ChangeMatch {
        both,
        canon_same,
        exact,
        blocks,
        text,
        cross,
        paths,
        revert_like,
        literal_only,
        sim,
    }
}

/// Least similarity worth a one-line reason in the evidence (presentation only, not scoring).
const REASON_MIN: f64 = 0.5;

/// Identity of one side for the context's memo: PR number and head.
fn side_id(s: &Signature) -> u64 {
    combine(s.number, hash_str(&s.head_sha))
}

/// Scores a pair of PRs. Pairs excluded because of their authors (see `[bots]`: by default two
/// dependency-update bots) yield NOT_RELATED with a reason; with the scope `"all"` bot PRs have
/// no index keys, so they are never candidates in the first place.
pub fn score(a: &Signature, b: &Signature, ctx: &ScoreContext<'_>, cfg: &TriageConfig) -> Edge {
    let mut ev = Evidence {
        same_author: !a.author.is_empty() && a.author.eq_ignore_ascii_case(&b.author),
        bot: a.is_bot || b.is_bot,
        prod_lines: [a.prod.change.changed_lines(), b.prod.change.changed_lines()],
        test_lines: [
            a.tests.change.changed_lines(),
            b.tests.change.changed_lines(),
        ],
        ..Evidence::default()
    };
    let mut s = Scores::default();
    if cfg.excludes_pair(&a.author, &b.author) {
        ev.reasons
            .push("bot authors: left out of triage (see [bots])".to_string());
        return Edge {
            a: a.number,
            b: b.number,
            category: Category::NotRelated,
            final_score: 0.0,
            scores: s,
            evidence: ev,
        };
    }
    let sc = &cfg.score;
    let cat = &cfg.category;

    let sides = (side_id(a), side_id(b));
    let prod = change_match(&a.prod.change, &b.prod.change, &PROD_KEYS, sides, ctx, cfg);
    let tests = change_match(
        &a.tests.change,
        &b.tests.change,
        &TEST_KEYS,
        sides,
        ctx,
        cfg,
    );
    let docs = change_match(&a.docs.change, &b.docs.change, &DOC_KEYS, sides, ctx, cfg);

    // The primary channel carries the production-first weight: production whenever either PR
    // changes production code; for PRs without any production change (docs-only, tests-only),
    // the channel they both change.
    let any_prod = a.has_production() || b.has_production();
    let primary = if any_prod {
        Channel::Production
    } else if tests.both {
        Channel::Tests
    } else if docs.both {
        Channel::Docs
    } else {
        Channel::Production
    };
    s.primary = primary;
    let pm = match primary {
        Channel::Tests => &tests,
        Channel::Docs => &docs,
        _ => &prod,
    };
    s.prod_exact = pm.both.then_some(pm.exact);
    s.prod_blocks = pm.blocks.sim;
    s.prod_text = pm.text;
    s.revert_cross = pm.cross;
    s.prod = pm.sim;
    s.paths = pm.paths.sim;
    ev.shared_hunks = pm.blocks.shared_count;
    ev.shared_hunk_lines = pm.blocks.shared_lines;
    ev.revert_like = pm.revert_like;
    ev.literal_only = pm.literal_only;
    // PRs without production changes (lockfile bumps, tests or docs alone): an identical whole
    // diff, carried by few PRs, is the same change.
    let whole = if !any_prod && !a.whole_hash.is_empty() && a.whole_hash == b.whole_hash {
        cfg.rarity_weight(ctx.df(K_WHOLE, &a.whole_hash))
    } else {
        0.0
    };
    ev.whole_diff_identical = whole > 0.0;

    let syms = weighted_sets(
        40,
        K_SYM,
        Rarity::Location,
        &a.prod.symbols,
        &b.prod.symbols,
        sides,
        ctx,
        cfg,
    );
    let imps = weighted_sets(
        41,
        K_IMP,
        Rarity::Location,
        &a.prod.imports,
        &b.prod.imports,
        sides,
        ctx,
        cfg,
    );
    if primary == Channel::Production {
        s.symbols = match (syms.sim, imps.sim) {
            (Some(x), Some(y)) => Some(x.max(y * sc.import_share)),
            (Some(x), None) => Some(x),
            (None, Some(y)) => Some(y * sc.import_share),
            (None, None) => None,
        };
    }
    let path_sim = s.paths.unwrap_or(0.0);
    s.area = match s.symbols {
        Some(sym) => sc.area_path_share * path_sim + (1.0 - sc.area_path_share) * sym,
        None => path_sim,
    };
    // The area guards against look-alike text in other files (the same patch applied to two
    // copies of a tree is not one feature), and discounts hot files as places. When most of the
    // change is the same rare lines and the two share a file, those lines show the place even if
    // the file is a hot one (a manifest most PRs touch): the area is at least the block
    // similarity.
    let blocks_sim = pm.blocks.sim.unwrap_or(0.0);
    if blocks_sim >= cat.same_change_blocks
        && pm.blocks.shared_mass >= cat.feature_min_shared_lines
        && !pm.paths.shared.is_empty()
    {
        s.area = s.area.max(blocks_sim);
    }

    // --- tests, docs, references -------------------------------------------------------------
    s.test_blocks = tests.blocks.sim;
    ev.shared_test_hunks = tests.blocks.shared_count;
    let tnames = weighted_sets(
        42,
        K_TEST,
        Rarity::Content,
        &a.tests.names,
        &b.tests.names,
        sides,
        ctx,
        cfg,
    );
    s.test_names = tnames.sim;
    s.tests = match (tests.blocks.sim, tnames.sim) {
        (None, None) => None,
        (x, y) => Some(x.unwrap_or(0.0).max(y.unwrap_or(0.0))),
    };
    let heads = weighted_sets(
        43,
        K_DOC,
        Rarity::Location,
        &a.docs.headings,
        &b.docs.headings,
        sides,
        ctx,
        cfg,
    );
    s.docs = match (docs.blocks.sim, heads.sim) {
        (None, None) => None,
        (x, y) => Some(x.unwrap_or(0.0).max(y.unwrap_or(0.0))),
    };

    let closing = weighted_sets(
        44,
        K_REF,
        Rarity::Content,
        &a.refs.closing,
        &b.refs.closing,
        sides,
        ctx,
        cfg,
    );
    let closing_shared = closing.shared.first().map_or(0.0, |x| x.0);
    let all_refs = |x: &Signature| -> Vec<String> {
        let mut v: Vec<String> = x
            .refs
            .closing
            .iter()
            .chain(&x.refs.mentions)
            .cloned()
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let (all_a, all_b) = (all_refs(a), all_refs(b));
    let mentions = weighted_sets(45, K_REF, Rarity::Content, &all_a, &all_b, sides, ctx, cfg);
    let mention_shared = mentions.shared.first().map_or(0.0, |x| x.0);
    let (a_num, b_num) = (a.number.to_string(), b.number.to_string());
    let a_names_b = all_a.contains(&b_num);
    let b_names_a = all_b.contains(&a_num);
    ev.direct_mention = a_names_b || b_names_a;
    let refs = closing_shared
        .max(sc.shared_mention * mention_shared)
        .max(if ev.direct_mention {
            sc.direct_mention
        } else {
            0.0
        });
    s.refs = (!all_a.is_empty() || !all_b.is_empty()).then_some(refs);

    // --- combine -----------------------------------------------------------------------------
    let tests_term = if primary == Channel::Tests {
        0.0
    } else {
        (sc.weight_tests * s.tests.unwrap_or(0.0)).min(sc.cap_tests)
    };
    let docs_term = if primary == Channel::Docs {
        0.0
    } else {
        (sc.weight_docs * s.docs.unwrap_or(0.0)).min(sc.cap_docs)
    };
    let raw = sc.weight_prod * s.prod
        + sc.weight_area * s.area
        + tests_term
        + docs_term
        + (sc.weight_refs * refs).min(sc.cap_refs);
    s.raw = raw.clamp(0.0, 1.0);

    let revert_like = pm.revert_like;
    let literal_only = pm.literal_only;
    let same_change = whole > 0.0
        || (!revert_like
            && pm.both
            && (pm.exact > 0.0
                || (!literal_only
                    && s.prod >= cat.same_change_prod
                    && path_sim >= cat.same_change_paths
                    && pm.blocks.sim.unwrap_or(0.0) >= cat.same_change_blocks)));
    let tests_sim = s.tests.unwrap_or(0.0);
    let test_support_lines =
        tests.blocks.shared_mass + tnames.shared.iter().map(|x| x.0).sum::<f64>();
    let competing = !same_change
        && !revert_like
        && primary == Channel::Production
        && prod.both
        && tests_sim >= cat.competing_min_tests
        && test_support_lines >= cat.competing_min_test_lines
        && s.prod < cat.competing_max_prod
        && s.area >= cat.competing_min_area
        && tests.paths.sim.unwrap_or(0.0) >= cat.competing_min_test_paths;
    let prod_support =
        s.prod >= cat.feature_min_prod && pm.blocks.shared_mass >= cat.feature_min_shared_lines;
    // Tests alone do not support SAME_FEATURE (they only add to the score): identical tests with
    // different production code is what COMPETING_IMPLEMENTATION is for.
    let feature_support = prod_support || closing_shared > 0.0;
    let feature = !revert_like
        && !literal_only
        && ((s.raw >= cfg.review_threshold && s.area >= cat.feature_min_area && feature_support)
            || (closing_shared >= 1.0
                && (s.area >= cat.feature_min_area || s.prod >= cat.feature_min_prod)));

    let review = cfg.review_threshold;
    // RELATED edges are kept strictly below the review threshold (presentation margin).
    let below_review = review - 0.01;
    let (category, final_score) = if same_change {
        (Category::SameChange, s.raw.max(cat.same_change_floor))
    } else if feature {
        (
            Category::SameFeature,
            s.raw.max(review).min(cat.feature_ceiling),
        )
    } else if competing {
        let span = ((tests_sim - cat.competing_min_tests)
            / (1.0 - cat.competing_min_tests).max(1e-9))
        .clamp(0.0, 1.0);
        (
            Category::CompetingImplementation,
            (cat.competing_base + cat.competing_span * span).max(review),
        )
    } else if s.raw >= cfg.related_threshold {
        (Category::Related, s.raw.min(below_review))
    } else {
        (Category::NotRelated, s.raw)
    };
    s.final_score = final_score;

    // --- evidence ----------------------------------------------------------------------------
    ev.shared_paths = prod
        .paths
        .shared
        .iter()
        .take(20)
        .map(|x| x.1.clone())
        .collect();
    ev.shared_symbols = syms
        .shared
        .iter()
        .chain(&imps.shared)
        .take(20)
        .map(|x| x.1.clone())
        .collect();
    ev.shared_tests = tnames.shared.iter().take(20).map(|x| x.1.clone()).collect();
    ev.shared_refs = mentions
        .shared
        .iter()
        .take(20)
        .map(|x| format!("#{}", x.1))
        .collect();
    ev.shared_meta_paths = shared_sorted(&a.meta_paths, &b.meta_paths, 20);
    let r = &mut ev.reasons;
    let what = match primary {
        Channel::Tests => "test",
        Channel::Docs => "docs",
        _ => "production",
    };
    if ev.whole_diff_identical {
        r.push("identical whole diff, no production change (canonical diff hash)".to_string());
    }
    if pm.canon_same {
        if pm.exact > 0.0 {
            r.push(format!("identical {what} change (canonical diff hash)"));
        } else {
            r.push(format!(
                "identical {what} change, but carried by many PRs (boilerplate)"
            ));
        }
    }
    if pm.blocks.shared_lines > 0 && !pm.canon_same {
        r.push(format!(
            "{} identical {what} lines in {} change blocks",
            pm.blocks.shared_lines, pm.blocks.shared_count
        ));
    }
    if let Some(t) = pm.text
        && t >= REASON_MIN
        && !pm.canon_same
    {
        r.push(format!("{what} text {:.0}% alike", t * 100.0));
    }
    if !ev.shared_paths.is_empty() {
        r.push(format!("both change {}", list_preview(&ev.shared_paths)));
    }
    if !ev.shared_symbols.is_empty() {
        r.push(format!("both touch {}", list_preview(&ev.shared_symbols)));
    }
    if let Some(first) = closing.shared.first() {
        r.push(format!("both close #{}", first.1));
    } else if let Some(first) = mentions.shared.first() {
        r.push(format!("both mention #{}", first.1));
    }
    if ev.direct_mention {
        let (x, y) = if a_names_b {
            (a.number, b.number)
        } else {
            (b.number, a.number)
        };
        r.push(format!("#{x} names #{y}"));
    }
    if primary == Channel::Production && tests_sim >= REASON_MIN {
        r.push(format!(
            "tests {:.0}% alike ({} shared test blocks)",
            tests_sim * 100.0,
            ev.shared_test_hunks
        ));
    }
    if revert_like {
        r.push("one reverts the other (added and removed lines swapped)".to_string());
    }
    if literal_only {
        r.push(
            "same places, different values (versions, dates, hashes): weak evidence".to_string(),
        );
    }
    if ev.same_author {
        r.push("same author (possibly a resubmission)".to_string());
    }
    if !ev.shared_meta_paths.is_empty() {
        r.push(format!(
            "both touch meta files {} (ignored)",
            list_preview(&ev.shared_meta_paths)
        ));
    }
    if any_prod && !prod.both {
        r.push("only one PR changes production code".to_string());
    }
    Edge {
        a: a.number,
        b: b.number,
        category,
        final_score,
        scores: s,
        evidence: ev,
    }
}

fn shared_sorted(a: &[String], b: &[String], max: usize) -> Vec<String> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() && j < b.len() && out.len() < max {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i].clone());
                i += 1;
                j += 1;
            }
        }
    }
    out
}

fn list_preview(v: &[String]) -> String {
    let mut s = v
        .iter()
        .take(3)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if v.len() > 3 {
        s.push_str(&format!(" and {} more", v.len() - 3));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::triage::signature::{FileChange, FileStatus, PrInput, analyse};

    fn sig(number: u64, author: &str, body: &str, files: &[(&str, &str)]) -> Signature {
        let pr = PrInput {
            number,
            title: String::new(),
            body: body.to_string(),
            author: author.to_string(),
            created_at: 0,
            head_sha: format!("{number}"),
            files: files
                .iter()
                .map(|(p, patch)| FileChange {
                    path: p.to_string(),
                    previous_path: None,
                    status: FileStatus::Modified,
                    additions: 1,
                    deletions: 1,
                    patch: Some(patch.to_string()),
                    sha: None,
                })
                .collect(),
        };
        analyse(&pr, &TriageConfig::default()).signature
    }

    const A: &str = "@@ -1,3 +1,4 @@\n ctx\n-  const t = options.timeout;\n+  const t = options.timeout ?? this._defaultTimeout;\n+  progress.log(`waiting ${t}ms`);\n";
    const B: &str = "@@ -5,3 +5,3 @@\n ctx\n-  await frame.waitForSelector(selector, { state: 'attached' });\n+  await frame.waitForSelector(selector, { state: 'visible' });\n";

    #[test]
    fn category_names_and_order() {
        assert!(Category::SameChange > Category::SameFeature);
        assert!(Category::SameFeature > Category::CompetingImplementation);
        assert!(Category::CompetingImplementation > Category::Related);
        assert_eq!(
            serde_json::to_string(&Category::CompetingImplementation).unwrap(),
            "\"COMPETING_IMPLEMENTATION\""
        );
        for c in [
            Category::SameChange,
            Category::SameFeature,
            Category::CompetingImplementation,
            Category::Related,
            Category::NotRelated,
        ] {
            assert_eq!(Category::parse(c.as_str()), Some(c));
        }
    }

    #[test]
    fn empty_against_empty_is_no_evidence() {
        let cfg = TriageConfig::default();
        let a = sig(1, "x", "", &[]);
        let b = sig(2, "y", "", &[]);
        let e = score(&a, &b, &ScoreContext::empty(), &cfg);
        assert_eq!(e.category, Category::NotRelated);
        assert_eq!(e.final_score, 0.0);
        assert_eq!(e.scores.prod_text, None);
        assert_eq!(e.scores.tests, None);
        // Two PRs that both only touch one file with unrelated one-line edits.
        let c = sig(3, "x", "", &[("src/a.ts", A)]);
        let d = sig(4, "y", "", &[("src/a.ts", B)]);
        let e = score(&c, &d, &ScoreContext::empty(), &cfg);
        assert!(!e.category.is_suggestion(), "{:?}", e.scores);
    }

    #[test]
    fn symmetric_and_identical_is_same_change() {
        let cfg = TriageConfig::default();
        let a = sig(1, "x", "", &[("src/a.ts", A), ("src/b.ts", B)]);
        let b = sig(2, "x", "", &[("src/b.ts", B), ("src/a.ts", A)]);
        let c = sig(3, "z", "", &[("src/a.ts", A)]);
        let ctx = ScoreContext::empty();
        for (x, y) in [(&a, &b), (&a, &c), (&b, &c)] {
            let e1 = score(x, y, &ctx, &cfg);
            let e2 = score(y, x, &ctx, &cfg);
            assert_eq!(e1.category, e2.category);
            assert_eq!(e1.final_score, e2.final_score);
            assert_eq!(e1.scores.raw, e2.scores.raw);
        }
        let e = score(&a, &b, &ctx, &cfg);
        assert_eq!(e.category, Category::SameChange);
        assert!(e.evidence.same_author);
        assert!(e.final_score >= cfg.review_threshold);
    }

    fn arb_patch() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let line = prop::sample::select(vec![
            "  return value + 1;",
            "  const t = options.timeout;",
            "  await page.click(selector);",
            "  if (!handle) throw new Error('gone');",
            "  log(`done ${n}`);",
            "}",
        ]);
        proptest::collection::vec((any::<bool>(), line), 1..8).prop_map(|lines| {
            let mut p = String::from("@@ -1,9 +1,9 @@ function f() {\n ctx\n");
            for (add, l) in lines {
                p.push(if add { '+' } else { '-' });
                p.push_str(l);
                p.push('\n');
            }
            p
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn score_is_symmetric(
            pa in arb_patch(), pb in arb_patch(), tb in arb_patch(),
            same_path in proptest::prelude::any::<bool>(),
        ) {
            let cfg = TriageConfig::default();
            let a = sig(1, "x", "fixes #5", &[("src/a.ts", pa.as_str())]);
            let path_b = if same_path { "src/a.ts" } else { "src/b.ts" };
            let b = sig(2, "y", "", &[(path_b, pb.as_str()), ("test/b.spec.ts", tb.as_str())]);
            let ctx = ScoreContext::empty();
            let e1 = score(&a, &b, &ctx, &cfg);
            let e2 = score(&b, &a, &ctx, &cfg);
            proptest::prop_assert_eq!(e1.category, e2.category);
            proptest::prop_assert_eq!(e1.final_score, e2.final_score);
            proptest::prop_assert!((0.0..=1.0).contains(&e1.final_score));
            proptest::prop_assert_eq!(e1.category.is_suggestion(), e1.final_score >= cfg.review_threshold);
        }
    }

    #[test]
    fn common_features_are_discounted() {
        let cfg = TriageConfig::default();
        let a = sig(1, "x", "Fixes #77", &[("src/a.ts", A)]);
        let b = sig(2, "y", "fixes #77", &[("src/z.ts", B)]);
        // A rare shared closing reference is strong evidence...
        let rare = ScoreContext::from_counts(BTreeMap::from([("ref:77".to_string(), 2)]));
        let e = score(&a, &b, &rare, &cfg);
        assert_eq!(e.scores.refs, Some(1.0));
        // ...a tracker carried by 40 PRs is not.
        let tracker = ScoreContext::from_fn(|k| if k == "ref:77" { 40 } else { 2 });
        let e = score(&a, &b, &tracker, &cfg);
        assert_eq!(e.scores.refs, Some(0.0));
        assert_eq!(e.category, Category::NotRelated);
        // An identical change carried by many PRs (boilerplate) is not SAME_CHANGE.
        let c = sig(3, "x", "", &[("src/gen.ts", A)]);
        let d = sig(4, "y", "", &[("src/gen.ts", A)]);
        let ctx = ScoreContext::from_fn(|k| {
            if k.starts_with("canon:") || k.starts_with("bp:") {
                50
            } else {
                2
            }
        });
        let e = score(&c, &d, &ctx, &cfg);
        assert_ne!(e.category, Category::SameChange, "{:?}", e.scores);
        assert!(
            e.evidence.reasons.iter().any(|r| r.contains("boilerplate")),
            "{:?}",
            e.evidence.reasons
        );
    }
}
