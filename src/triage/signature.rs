//! Signatures: everything derived from one PR head that matching needs, computed by [`analyse`].
//!
//! Production code gets a canonical diff hash (paths plus whitespace-normalised signed changed
//! lines, no hunk headers or line numbers), MinHash sketches over token shingles of added and of
//! removed lines (kept apart, so a revert does not resemble its original), exact signatures of
//! change blocks (runs of consecutive changed lines), paths, directory prefixes, declared symbols
//! and imports. Tests get a test-intent signature (suite/test names, matchers, imports, blocks and
//! a sketch). Docs get headings, fence languages and blocks. Title and body give references. Meta
//! files are only listed.

use crate::triage::SIGNATURE_VERSION;
use crate::triage::attributes::Attributes;
use crate::triage::channel::{Channel, Classifier, Lang, lang_of};
use crate::triage::config::TriageConfig;
use crate::triage::diff::{Hunk, LineKind, parse_patch};
use crate::triage::extract::{self, Refs};
use crate::triage::hash::{Fnv, combine, hash_str};
use crate::triage::minhash::MinHasher;
use crate::triage::tokens::{clip, for_each_token, normalise_line};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

/// GitHub's file `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    /// New file.
    Added,
    /// Deleted file.
    Removed,
    /// Changed file (also any status GitHub adds later).
    Modified,
    /// Renamed (maybe with changes).
    Renamed,
    /// Copied.
    Copied,
    /// Mode or type change.
    Changed,
    /// Listed without changes.
    Unchanged,
}

impl FileStatus {
    /// From GitHub's `status` string; unknown values are `Modified`.
    pub fn from_github(s: &str) -> Self {
        match s {
            "added" => FileStatus::Added,
            "removed" => FileStatus::Removed,
            "renamed" => FileStatus::Renamed,
            "copied" => FileStatus::Copied,
            "changed" => FileStatus::Changed,
            "unchanged" => FileStatus::Unchanged,
            _ => FileStatus::Modified,
        }
    }
}

/// One entry of a head's diff, as GitHub lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChange {
    /// Path after the change.
    pub path: String,
    /// Path before a rename or copy.
    pub previous_path: Option<String>,
    /// GitHub's status.
    pub status: FileStatus,
    /// Added lines (GitHub's count).
    pub additions: u32,
    /// Removed lines (GitHub's count).
    pub deletions: u32,
    /// Unified diff text; `None` for binary files, pure renames and diffs GitHub truncated.
    pub patch: Option<String>,
    /// Blob id of the file after the change (GitHub's `sha`), when known; identifies the content
    /// of binary files, which have no patch.
    #[serde(default)]
    pub sha: Option<String>,
}

/// Everything `analyse` needs about one PR head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrInput {
    /// PR number.
    pub number: u64,
    /// Title.
    pub title: String,
    /// Body (may be empty).
    pub body: String,
    /// Author login.
    pub author: String,
    /// Creation time, unix seconds.
    pub created_at: i64,
    /// Head commit.
    pub head_sha: String,
    /// Changed files.
    pub files: Vec<FileChange>,
}

/// A changed file with its channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassifiedFile {
    /// Path after the change.
    pub path: String,
    /// Path before a rename.
    pub previous_path: Option<String>,
    /// Channel.
    pub channel: Channel,
    /// GitHub's status.
    pub status: FileStatus,
    /// Added lines.
    pub additions: u32,
    /// Removed lines.
    pub deletions: u32,
    /// No patch and no line counts: a binary file (or a pure rename).
    pub binary: bool,
    /// No usable patch although lines changed: truncated by GitHub or over our limits.
    pub truncated: bool,
}

/// Per-channel size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelSize {
    /// Files in the channel.
    pub files: u32,
    /// Added lines.
    pub additions: u32,
    /// Removed lines.
    pub deletions: u32,
}

/// Sizes of all channels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelSizes {
    /// Production.
    pub production: ChannelSize,
    /// Tests.
    pub tests: ChannelSize,
    /// Docs.
    pub docs: ChannelSize,
    /// Meta.
    pub meta: ChannelSize,
}

impl ChannelSizes {
    fn get_mut(&mut self, c: Channel) -> &mut ChannelSize {
        match c {
            Channel::Production => &mut self.production,
            Channel::Tests => &mut self.tests,
            Channel::Docs => &mut self.docs,
            Channel::Meta => &mut self.meta,
        }
    }
}

/// Exact signature of one change block: `(hash, changed lines)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Block(pub u64, pub u32);

/// What every scored channel (production, tests, docs) records about its changed lines.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChangeSig {
    /// SHA-256 (hex) of paths plus normalised signed changed lines (no hunk headers, no line
    /// numbers); empty when nothing was parsed.
    pub canonical_hash: String,
    /// MinHash over token shingles of added lines (empty when none).
    pub added_minhash: Vec<u32>,
    /// MinHash over token shingles of removed lines (empty when none).
    pub removed_minhash: Vec<u32>,
    /// Shingles fed to the added sketch.
    pub added_shingles: u32,
    /// Shingles fed to the removed sketch.
    pub removed_shingles: u32,
    /// Change blocks (runs of consecutive changed lines), sorted and unique by hash. Also holds
    /// path operations (renames, copies, mode changes, binary files with their blob id) and tiny
    /// changes anchored to their place (path and surrounding lines), each with its line weight.
    pub blocks: Vec<Block>,
    /// The same change blocks with literal values masked (numbers, versions, dates, hashes),
    /// sorted and unique: two edits of the same lines that differ only in values share these.
    pub shapes: Vec<Block>,
    /// Path operations among the blocks.
    pub path_ops: u32,
    /// Paths (and previous paths of renames), sorted.
    pub paths: Vec<String>,
    /// Parsed added lines.
    pub added_lines: u32,
    /// Parsed removed lines.
    pub removed_lines: u32,
}

impl ChangeSig {
    /// True when changed lines were parsed or files were renamed, copied or replaced (an empty
    /// change is no evidence of anything).
    pub fn has_content(&self) -> bool {
        !self.added_minhash.is_empty() || !self.removed_minhash.is_empty() || self.path_ops > 0
    }
    /// Parsed changed lines.
    pub fn changed_lines(&self) -> u32 {
        self.added_lines.saturating_add(self.removed_lines)
    }
}

/// Production-channel signature.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProdSig {
    /// Changed lines.
    pub change: ChangeSig,
    /// Directory prefixes of the paths, sorted.
    pub dirs: Vec<String>,
    /// Declarations touched (hunk headers, added/removed declaration lines), sorted.
    pub symbols: Vec<String>,
    /// Modules imported or un-imported by changed lines, sorted.
    pub imports: Vec<String>,
}

/// Test-intent signature.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TestSig {
    /// Changed lines of test files.
    pub change: ChangeSig,
    /// Suite and test names added or changed, sorted.
    pub names: Vec<String>,
    /// Matcher / assertion names used by added lines, sorted.
    pub matchers: Vec<String>,
    /// Modules imported by added test lines (the code under test), sorted.
    pub imports: Vec<String>,
}

/// Documentation signature.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DocSig {
    /// Changed lines of doc files.
    pub change: ChangeSig,
    /// Headings added or removed (lowercase), sorted.
    pub headings: Vec<String>,
    /// Code-fence languages, sorted.
    pub fences: Vec<String>,
    /// References in added doc lines, sorted.
    pub refs: Vec<String>,
}

/// References from title and body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefSig {
    /// Issues/PRs the PR says it closes, sorted.
    pub closing: Vec<String>,
    /// Other references, sorted (closing ones excluded).
    pub mentions: Vec<String>,
}

/// Everything scoring needs about one PR head. Stored by the appliance (every type inside is
/// plainly serde-derived, so binary encodings work); carries its version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signature {
    /// [`SIGNATURE_VERSION`] at creation.
    pub signature_version: i32,
    /// PR number.
    pub number: u64,
    /// Author login.
    pub author: String,
    /// Creation time, unix seconds.
    pub created_at: i64,
    /// Head commit.
    pub head_sha: String,
    /// Author is a bot.
    pub is_bot: bool,
    /// Production channel.
    pub prod: ProdSig,
    /// Tests channel.
    pub tests: TestSig,
    /// Docs channel.
    pub docs: DocSig,
    /// References.
    pub refs: RefSig,
    /// Meta files (explanation only), sorted.
    pub meta_paths: Vec<String>,
    /// For a PR without production changes: SHA-256 (hex) of its whole diff, every channel
    /// (meta included) and path operation, normalised like the canonical hashes; empty otherwise.
    pub whole_hash: String,
    /// Channel sizes (GitHub's counts).
    pub sizes: ChannelSizes,
    /// Why the analysis is partial (limits hit, truncated patches), sorted.
    pub degraded: Vec<String>,
}

/// Result of [`analyse`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// The signature to store and score with.
    pub signature: Signature,
    /// Every looked-at file with its channel, in input order (files beyond `limits.max_files`
    /// are left out).
    pub files: Vec<ClassifiedFile>,
    /// Channel sizes.
    pub channel_sizes: ChannelSizes,
    /// Why the analysis is partial (same as the signature's).
    pub degraded: Vec<String>,
    /// Author is a bot.
    pub is_bot: bool,
}

/// Accumulates one channel's shingles and blocks.
struct ChannelAcc {
    added: MinHasher,
    removed: MinHasher,
    blocks: BTreeSet<Block>,
    shapes: BTreeSet<Block>,
    shingles: usize,
    shingle_limit_hit: bool,
    block_limit_hit: bool,
    canon: Sha256,
    canon_used: bool,
    paths: BTreeSet<String>,
    added_lines: u32,
    removed_lines: u32,
    path_ops: u32,
}

impl ChannelAcc {
    fn new() -> Self {
        ChannelAcc {
            added: MinHasher::default(),
            removed: MinHasher::default(),
            blocks: BTreeSet::new(),
            shapes: BTreeSet::new(),
            shingles: 0,
            shingle_limit_hit: false,
            block_limit_hit: false,
            canon: Sha256::new(),
            canon_used: false,
            paths: BTreeSet::new(),
            added_lines: 0,
            removed_lines: 0,
            path_ops: 0,
        }
    }

    /// Registers a file of this channel (before its hunks are fed).
    fn start_file(&mut self, path: &str, previous: Option<&str>, has_hunks: bool) {
        self.paths.insert(path.to_string());
        if let Some(p) = previous {
            self.paths.insert(p.to_string());
        }
        if has_hunks {
            self.canon.update(path.as_bytes());
            self.canon.update([0u8]);
            self.canon_used = true;
        }
    }

    /// Adds a block (and its literal-masked shape) within the block budget.
    fn add_block(&mut self, exact: Block, shape: Option<Block>, max_blocks: usize) {
        if self.blocks.len() < max_blocks {
            self.blocks.insert(exact);
            if let Some(shape) = shape {
                self.shapes.insert(shape);
            }
        } else {
            self.block_limit_hit = true;
        }
    }

    /// Records a path operation (see [`path_op`]) as a block and in the canonical hash.
    fn add_path_op(&mut self, op: &str, cfg: &TriageConfig) {
        self.canon.update(op.as_bytes());
        self.canon.update([0u8]);
        self.canon_used = true;
        self.path_ops += 1;
        let h = combine(OP_SEED, hash_str(op));
        let b = Block(h, cfg.shingles.path_op_lines.max(1));
        self.add_block(b, Some(b), cfg.limits.max_blocks);
    }

    fn finish(self, max_names: usize) -> ChangeSig {
        let canonical_hash = if self.canon_used
            && (self.added_lines + self.removed_lines > 0 || self.path_ops > 0)
        {
            hex::encode(self.canon.finalize())
        } else {
            String::new()
        };
        ChangeSig {
            canonical_hash,
            added_minhash: self.added.finish(),
            removed_minhash: self.removed.finish(),
            added_shingles: u32::try_from(self.added.count()).unwrap_or(u32::MAX),
            removed_shingles: u32::try_from(self.removed.count()).unwrap_or(u32::MAX),
            blocks: self.blocks.into_iter().collect(),
            shapes: self.shapes.into_iter().collect(),
            path_ops: self.path_ops,
            paths: sorted_capped(self.paths, max_names),
            added_lines: self.added_lines,
            removed_lines: self.removed_lines,
        }
    }
}

const SIGN_ADD: u64 = 0x2b;
const SIGN_REM: u64 = 0x2d;
const OP_SEED: u64 = 0x5041_5448_5f4f_5053;
const TINY_SEED: u64 = 0x5449_4e59_5f4c_4f43;

/// The path operation of a file change, when it is evidence by itself: a rename or copy
/// (`old -> new`), a mode or type change, or a binary file (no patch, no line counts) with its
/// blob id, or a binary file removed.
pub fn path_op(f: &FileChange) -> Option<String> {
    let no_text = f.patch.is_none() && f.additions == 0 && f.deletions == 0;
    match f.status {
        FileStatus::Renamed | FileStatus::Copied => {
            let kind = if f.status == FileStatus::Renamed {
                "rename"
            } else {
                "copy"
            };
            let old = f.previous_path.as_deref()?;
            Some(format!("{kind}\0{old}\0{}", f.path))
        }
        FileStatus::Changed => Some(format!("mode\0{}", f.path)),
        FileStatus::Removed if no_text => Some(format!("delete\0{}", f.path)),
        FileStatus::Added | FileStatus::Modified if no_text => {
            let sha = f.sha.as_deref().filter(|s| !s.is_empty())?;
            Some(format!("blob\0{}\0{sha}", f.path))
        }
        _ => None,
    }
}

/// True for tokens that are literal values: numbers and versions (`1.2.3`, `0x7f`), identifiers
/// that are mostly digits (`r1300`, `v2`), hex hashes (`d4e1023f`) and month names (dates).
fn is_literal(t: &str) -> bool {
    let b = t.as_bytes();
    let Some(&first) = b.first() else {
        return false;
    };
    if first.is_ascii_digit() {
        return true;
    }
    if !(first.is_ascii_alphabetic() || first == b'_') {
        return false;
    }
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return (3..=9).contains(&b.len()) && MONTHS.iter().any(|m| m.eq_ignore_ascii_case(t));
    }
    digits * 2 >= b.len() || (b.len() >= 7 && b.iter().all(u8::is_ascii_hexdigit))
}

const MONTHS: &[&str] = &[
    "jan",
    "feb",
    "mar",
    "apr",
    "may",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
    "january",
    "february",
    "march",
    "april",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// True for identifiers other than common keywords (masked in structure hashes).
fn is_identifier(t: &str) -> bool {
    t.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_' || c == '$')
        && !is_keyword(t)
}

fn is_keyword(t: &str) -> bool {
    matches!(
        t,
        "as" | "async"
            | "await"
            | "break"
            | "case"
            | "catch"
            | "class"
            | "const"
            | "continue"
            | "def"
            | "else"
            | "enum"
            | "export"
            | "fn"
            | "for"
            | "from"
            | "func"
            | "function"
            | "if"
            | "impl"
            | "import"
            | "in"
            | "let"
            | "match"
            | "mut"
            | "new"
            | "pub"
            | "return"
            | "self"
            | "static"
            | "struct"
            | "switch"
            | "this"
            | "throw"
            | "try"
            | "type"
            | "use"
            | "var"
            | "while"
            | "yield"
            | "true"
            | "false"
            | "null"
            | "None"
            | "nil"
    )
}

/// True when a token names something (an identifier or a literal), unlike punctuation.
fn is_word(t: &str) -> bool {
    t.chars()
        .next()
        .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$')
}

struct Ctx<'c> {
    cfg: &'c TriageConfig,
    toks: Vec<u64>,
    line_buf: String,
    /// Whole-diff hash over every channel (meta included).
    whole: Sha256,
}

impl Ctx<'_> {
    /// Registers a file (any channel) in the whole-diff hash.
    fn whole_file(&mut self, path: &str, op: Option<&str>) {
        self.whole.update(path.as_bytes());
        self.whole.update([0u8]);
        if let Some(op) = op {
            self.whole.update(op.as_bytes());
            self.whole.update([0u8]);
        }
    }

    /// Feeds a file's changed lines into the whole-diff hash.
    fn feed_whole_hunk(&mut self, hunk: &Hunk<'_>) {
        for (kind, line) in &hunk.lines {
            let sign = match kind {
                LineKind::Context => continue,
                LineKind::Added => b'+',
                LineKind::Removed => b'-',
            };
            normalise_line(
                clip(line, self.cfg.limits.max_line_bytes),
                &mut self.line_buf,
            );
            self.whole.update([sign]);
            self.whole.update(self.line_buf.as_bytes());
            self.whole.update(b"\n");
        }
    }

    /// Feeds one hunk's changed lines: shingles into the sketches (added and removed apart) and
    /// exact signatures of change blocks. A block is a run of consecutive changed lines, cut
    /// further at content-defined points (after a line whose structure hash, identifiers and
    /// literals masked, is divisible by `shingles.chunk_divisor`, or after
    /// `shingles.chunk_max_lines` lines), so one edited line inside a long run only changes the
    /// block around it, and two edits that differ only in values or names are cut alike. A run too small for a block of its own is kept anchored to its place
    /// (the file and the lines around it) when it names something.
    fn feed_hunk(&mut self, path_hash: u64, hunk: &Hunk<'_>, acc: &mut ChannelAcc) {
        let cfg = self.cfg;
        let mut run = Run::default();
        let mut block = BlockState::default();
        let mut tiny = TinyRun::default();
        // A cut chosen after a removed line waits for the next line: it happens before another
        // removed line, never between a removed line and the added line replacing it (so an
        // edit of a value stays one block and is compared as a whole).
        let mut pending_cut = false;
        for (kind, line) in &hunk.lines {
            if pending_cut {
                pending_cut = false;
                if *kind == LineKind::Removed {
                    tiny.blocked |= block.flush(acc, cfg);
                }
            }
            let sign = match kind {
                LineKind::Context => {
                    let ctx_hash = hash_str(line.trim());
                    tiny.blocked |= block.flush(acc, cfg);
                    run.flush(acc, cfg);
                    tiny.finish(acc, cfg, path_hash, ctx_hash);
                    tiny.before = ctx_hash;
                    continue;
                }
                LineKind::Added => {
                    acc.added_lines += 1;
                    SIGN_ADD
                }
                LineKind::Removed => {
                    acc.removed_lines += 1;
                    SIGN_REM
                }
            };
            let line = clip(line, cfg.limits.max_line_bytes);
            self.toks.clear();
            let toks = &mut self.toks;
            let mut shape = Fnv::default();
            shape.u64(sign);
            // Cut points come from the line's structure (identifiers and literals masked), so a
            // rename or another value does not move the block boundaries.
            let mut structure = Fnv::default();
            structure.u64(sign);
            let mut words = false;
            for_each_token(line, |t| {
                let h = hash_str(t);
                toks.push(h);
                let literal = is_literal(t);
                let ident = !literal && is_identifier(t);
                shape.u64(if literal { LITERAL } else { h });
                structure.u64(if literal {
                    LITERAL
                } else if ident {
                    IDENT
                } else {
                    h
                });
                words |= is_word(t);
            });
            normalise_line(line, &mut self.line_buf);
            acc.canon.update([sign as u8]);
            acc.canon.update(self.line_buf.as_bytes());
            acc.canon.update(b"\n");
            tiny.lines += 1;
            if self.toks.is_empty() {
                continue; // blank lines carry nothing
            }
            let mut line_hash = Fnv::default();
            line_hash.u64(sign);
            for t in &self.toks {
                line_hash.u64(*t);
            }
            let lh = line_hash.finish64();
            let sh = shape.finish64();
            block.hash = combine(block.hash, lh);
            block.shape = combine(block.shape, sh);
            block.lines += 1;
            block.tokens += self.toks.len();
            tiny.hash = combine(tiny.hash, lh);
            tiny.words |= words;
            if sign == SIGN_ADD {
                run.added.extend_from_slice(&self.toks);
            } else {
                run.removed.extend_from_slice(&self.toks);
            }
            let divisor = cfg.shingles.chunk_divisor.max(1);
            let cut = structure.finish64();
            if block.lines as usize >= cfg.shingles.chunk_max_lines.max(1) {
                tiny.blocked |= block.flush(acc, cfg);
            } else if cut % divisor == 0 {
                if sign == SIGN_REM {
                    pending_cut = true;
                } else {
                    tiny.blocked |= block.flush(acc, cfg);
                }
            }
        }
        tiny.blocked |= block.flush(acc, cfg);
        run.flush(acc, cfg);
        tiny.finish(acc, cfg, path_hash, 0);
    }
}

/// Stand-in for a literal token in shape hashes.
const LITERAL: u64 = 0x4c49_5445_5241_4c21;
/// Stand-in for an identifier in structure hashes.
const IDENT: u64 = 0x4944_454e_5449_4649;

/// A run of changed lines between context lines, kept when it is too small for a block.
struct TinyRun {
    /// Hash of the context line before the run (0 at the start of a hunk).
    before: u64,
    hash: u64,
    lines: u32,
    words: bool,
    /// Part of the run was kept as a change block.
    blocked: bool,
}

impl Default for TinyRun {
    fn default() -> Self {
        TinyRun {
            before: 0,
            hash: TINY_SEED,
            lines: 0,
            words: false,
            blocked: false,
        }
    }
}

impl TinyRun {
    /// Ends the run at a context line hashing to `after` (0 at the end of a hunk): a run too
    /// small to give a change block (below `shingles.min_block_tokens`) that names something
    /// becomes a block anchored to its file and surrounding lines. Blank lines and lone
    /// punctuation (`}`) are never evidence.
    fn finish(&mut self, acc: &mut ChannelAcc, cfg: &TriageConfig, path_hash: u64, after: u64) {
        if self.lines > 0 && self.words && !self.blocked {
            let h = combine(combine(combine(path_hash, self.before), self.hash), after);
            acc.add_block(Block(h, self.lines), None, cfg.limits.max_blocks);
        }
        let before = self.before;
        *self = TinyRun::default();
        self.before = before;
    }
}

/// Signature state of the current change block.
struct BlockState {
    hash: u64,
    shape: u64,
    lines: u32,
    tokens: usize,
}

impl Default for BlockState {
    fn default() -> Self {
        BlockState {
            hash: BLOCK_SEED,
            shape: BLOCK_SEED,
            lines: 0,
            tokens: 0,
        }
    }
}

const BLOCK_SEED: u64 = 0x424c_4f43_4b53_4947;

impl BlockState {
    /// Ends the block; true when it was big enough to be kept.
    fn flush(&mut self, acc: &mut ChannelAcc, cfg: &TriageConfig) -> bool {
        let kept = self.lines > 0 && self.tokens >= cfg.shingles.min_block_tokens;
        if kept {
            acc.add_block(
                Block(self.hash, self.lines),
                Some(Block(self.shape, self.lines)),
                cfg.limits.max_blocks,
            );
        }
        *self = BlockState::default();
        kept
    }
}

/// Token streams of the current run of changed lines, per sign.
#[derive(Default)]
struct Run {
    added: Vec<u64>,
    removed: Vec<u64>,
}

impl Run {
    /// Feeds the run's shingles. Shingles are unsigned: the two sketches keep added and removed
    /// lines apart, and comparing one side's added with the other's removed detects reverts.
    fn flush(&mut self, acc: &mut ChannelAcc, cfg: &TriageConfig) {
        let k = cfg.shingles.size.max(1);
        for (stream, mh) in [
            (&self.added, &mut acc.added),
            (&self.removed, &mut acc.removed),
        ] {
            if stream.is_empty() {
                continue;
            }
            let n = if stream.len() < k {
                1
            } else {
                stream.len() - k + 1
            };
            for i in 0..n {
                if acc.shingles >= cfg.limits.max_shingles {
                    acc.shingle_limit_hit = true;
                    break;
                }
                let end = (i + k).min(stream.len());
                let mut h = 0x5348_494e_474c_4553u64;
                for t in &stream[i..end] {
                    h = combine(h, *t);
                }
                mh.add(h);
                acc.shingles += 1;
            }
        }
        self.added.clear();
        self.removed.clear();
    }
}

fn sorted_capped(set: BTreeSet<String>, max: usize) -> Vec<String> {
    set.into_iter().take(max).collect()
}

/// Directory prefixes of `path` (`a/b/c.ts` -> `a`, `a/b`).
fn dir_prefixes(path: &str, out: &mut BTreeSet<String>) {
    let mut end = 0;
    while let Some(i) = path[end..].find('/') {
        end += i;
        out.insert(path[..end].to_string());
        end += 1;
    }
}

/// Analyses one PR head: classifies files, parses patches within the limits and builds the
/// signature. Never fails and never panics; over a limit the result is partial and says why.
/// Uses the built-in path rules alone; see [`analyse_with`] for the repository's attributes.
pub fn analyse(pr: &PrInput, cfg: &TriageConfig) -> Analysis {
    analyse_with(pr, cfg, &Attributes::none())
}

/// [`analyse`] with the repository's `.gitattributes` linguist rules (see
/// [`crate::triage::attributes`]): paths they mark vendored or generated are meta, paths they
/// mark documentation are docs, and an unset attribute switches the built-in rule off.
pub fn analyse_with(pr: &PrInput, cfg: &TriageConfig, attrs: &Attributes) -> Analysis {
    let classifier = Classifier::new(cfg);
    let lim = &cfg.limits;
    let mut degraded: BTreeSet<String> = BTreeSet::new();
    let mut files = Vec::new();
    let mut sizes = ChannelSizes::default();

    let mut prod_acc = ChannelAcc::new();
    let mut test_acc = ChannelAcc::new();
    let mut doc_acc = ChannelAcc::new();
    let mut prod_dirs = BTreeSet::new();
    let mut symbols = BTreeSet::new();
    let mut imports = BTreeSet::new();
    let mut test_names = BTreeSet::new();
    let mut test_matchers = BTreeSet::new();
    let mut test_imports = BTreeSet::new();
    let mut headings = BTreeSet::new();
    let mut fences = BTreeSet::new();
    let mut doc_refs = Refs::default();
    let mut meta_paths = BTreeSet::new();

    let mut ctx = Ctx {
        cfg,
        toks: Vec::new(),
        line_buf: String::new(),
        whole: Sha256::new(),
    };
    let mut patch_budget = lim.max_total_patch_bytes;
    let mut line_budget = lim.max_changed_lines;
    // Files of the whole-diff hash: (index, path operation, parsed patch within the limits).
    let mut whole_files: Vec<(usize, Option<String>, bool)> = Vec::new();

    // Files in path order, so the canonical hash does not depend on GitHub's listing order.
    let mut order: Vec<usize> = (0..pr.files.len()).collect();
    order.sort_by(|&a, &b| pr.files[a].path.cmp(&pr.files[b].path));
    if order.len() > lim.max_files {
        degraded.insert(format!(
            "file_limit: {} files, first {} analysed",
            order.len(),
            lim.max_files
        ));
        order.truncate(lim.max_files);
    }

    for &fi in &order {
        let f = &pr.files[fi];
        let mut truncated = false;
        let binary = f.patch.is_none() && f.additions == 0 && f.deletions == 0;
        let patch_text: &str = match &f.patch {
            Some(p) if p.len() > lim.max_patch_bytes => {
                degraded.insert(format!("patch_too_large: {}", f.path));
                truncated = true;
                ""
            }
            Some(p) if p.len() > patch_budget => {
                degraded.insert("total_patch_budget_exhausted".to_string());
                truncated = true;
                ""
            }
            Some(p) => {
                patch_budget -= p.len();
                p.as_str()
            }
            None => {
                if !binary {
                    degraded.insert(format!("patch_missing: {}", f.path));
                    truncated = true;
                }
                ""
            }
        };
        if patch_text.contains('\u{FFFD}') {
            degraded.insert(format!("invalid_utf8: {}", f.path));
        }
        let mut parsed = parse_patch(patch_text, lim.max_hunks_per_file);
        if parsed.skipped_hunks > 0 {
            degraded.insert(format!("hunk_limit: {}", f.path));
        }
        if parsed.stray_lines > 0 {
            degraded.insert(format!("malformed_patch: {}", f.path));
        }
        // Changed-line budget over the whole PR.
        let changed = parsed.added() + parsed.removed();
        if changed > line_budget {
            degraded.insert("changed_line_limit".to_string());
            parsed.hunks.clear();
            truncated = true;
        } else {
            line_budget -= changed;
        }
        let channel = classifier.classify(&f.path, &parsed.hunks, attrs.lookup(&f.path));
        let size = sizes.get_mut(channel);
        size.files += 1;
        size.additions = size.additions.saturating_add(f.additions);
        size.deletions = size.deletions.saturating_add(f.deletions);
        files.push((
            fi,
            ClassifiedFile {
                path: f.path.clone(),
                previous_path: f.previous_path.clone(),
                channel,
                status: f.status,
                additions: f.additions,
                deletions: f.deletions,
                binary,
                truncated,
            },
        ));
        let lang = lang_of(&f.path);
        let op = path_op(f);
        let path_hash = hash_str(&f.path);
        if op.is_some() || !parsed.hunks.is_empty() {
            whole_files.push((fi, op.clone(), !parsed.hunks.is_empty()));
        }
        if let Some(op) = &op {
            match channel {
                Channel::Production => prod_acc.add_path_op(op, cfg),
                Channel::Tests => test_acc.add_path_op(op, cfg),
                Channel::Docs => doc_acc.add_path_op(op, cfg),
                Channel::Meta => {}
            }
        }
        match channel {
            Channel::Meta => {
                meta_paths.insert(f.path.clone());
            }
            Channel::Production => {
                prod_acc.start_file(
                    &f.path,
                    f.previous_path.as_deref(),
                    !parsed.hunks.is_empty(),
                );
                dir_prefixes(&f.path, &mut prod_dirs);
                for h in &parsed.hunks {
                    if let Some(s) = extract::declared_symbol(h.header, lang) {
                        symbols.insert(s.to_string());
                    }
                    for (k, l) in &h.lines {
                        if *k == LineKind::Context {
                            continue;
                        }
                        let l = clip(l, lim.max_line_bytes);
                        if let Some(s) = extract::declared_symbol(l, lang) {
                            symbols.insert(s.to_string());
                        }
                        if let Some(m) = extract::imported_module(l, lang) {
                            imports.insert(m.to_string());
                        }
                    }
                    ctx.feed_hunk(path_hash, h, &mut prod_acc);
                }
            }
            Channel::Tests => {
                test_acc.start_file(
                    &f.path,
                    f.previous_path.as_deref(),
                    !parsed.hunks.is_empty(),
                );
                let tlang = if lang == Lang::Markup {
                    Lang::Other
                } else {
                    lang
                };
                for h in &parsed.hunks {
                    for (k, l) in &h.lines {
                        if *k == LineKind::Context {
                            continue;
                        }
                        let l = clip(l, lim.max_line_bytes);
                        if *k == LineKind::Added {
                            if let Some(n) = extract::test_name(l, tlang) {
                                test_names.insert(n);
                            }
                            let mut m = Vec::new();
                            extract::matchers(l, &mut m);
                            test_matchers.extend(m.into_iter().map(str::to_string));
                            if let Some(i) = extract::imported_module(l, lang) {
                                test_imports.insert(i.to_string());
                            }
                        }
                    }
                    ctx.feed_hunk(path_hash, h, &mut test_acc);
                }
            }
            Channel::Docs => {
                doc_acc.start_file(
                    &f.path,
                    f.previous_path.as_deref(),
                    !parsed.hunks.is_empty(),
                );
                for h in &parsed.hunks {
                    for (k, l) in &h.lines {
                        if *k == LineKind::Context {
                            continue;
                        }
                        let l = clip(l, lim.max_line_bytes);
                        if let Some(hd) = extract::heading(l) {
                            headings.insert(hd);
                        }
                        if let Some(fl) = extract::fence_lang(l) {
                            fences.insert(fl.to_string());
                        }
                        if *k == LineKind::Added {
                            extract::references(l, &mut doc_refs);
                        }
                    }
                    ctx.feed_hunk(path_hash, h, &mut doc_acc);
                }
            }
        }
    }
    for (name, acc) in [
        ("production", &prod_acc),
        ("tests", &test_acc),
        ("docs", &doc_acc),
    ] {
        if acc.shingle_limit_hit {
            degraded.insert(format!("shingle_limit: {name}"));
        }
        if acc.block_limit_hit {
            degraded.insert(format!("block_limit: {name}"));
        }
    }

    // References from title and body.
    let mut refs = Refs::default();
    extract::references(clip(&pr.title, 4096), &mut refs);
    extract::references(clip(&pr.body, 65536), &mut refs);
    let closing: BTreeSet<String> = refs.closing.into_iter().collect();
    let mentions: BTreeSet<String> = refs
        .mentions
        .into_iter()
        .filter(|m| !closing.contains(m))
        .collect();

    let is_bot = cfg.is_bot(&pr.author);
    let max = lim.max_names;
    let prod_change = prod_acc.finish(max);
    // Whole-diff identity only matters (and is only kept) for PRs without production changes.
    // Whole-diff identity only matters (and is only kept) for PRs without production changes,
    // so their files are hashed in a second pass (cheap: such PRs hold no program code).
    let whole_hash = if !whole_files.is_empty() && !prod_change.has_content() {
        for (fi, op, with_patch) in &whole_files {
            let f = &pr.files[*fi];
            ctx.whole_file(&f.path, op.as_deref());
            if *with_patch && let Some(p) = &f.patch {
                for h in &parse_patch(p, lim.max_hunks_per_file).hunks {
                    ctx.feed_whole_hunk(h);
                }
            }
        }
        hex::encode(ctx.whole.finalize())
    } else {
        String::new()
    };
    // Report files in input order (they were processed in path order).
    files.sort_by_key(|(fi, _)| *fi);
    let files: Vec<ClassifiedFile> = files.into_iter().map(|(_, f)| f).collect();
    finish(FinishParts {
        pr,
        is_bot,
        degraded,
        files,
        sizes,
        whole_hash,
        prod: ProdSig {
            change: prod_change,
            dirs: sorted_capped(prod_dirs, max),
            symbols: sorted_capped(symbols, max),
            imports: sorted_capped(imports, max),
        },
        tests: TestSig {
            change: test_acc.finish(max),
            names: sorted_capped(test_names, max),
            matchers: sorted_capped(test_matchers, max),
            imports: sorted_capped(test_imports, max),
        },
        docs: DocSig {
            change: doc_acc.finish(max),
            headings: sorted_capped(headings, max),
            fences: sorted_capped(fences, max),
            refs: sorted_capped(
                doc_refs
                    .closing
                    .into_iter()
                    .chain(doc_refs.mentions)
                    .collect(),
                max,
            ),
        },
        refs: RefSig {
            closing: sorted_capped(closing, max),
            mentions: sorted_capped(mentions, max),
        },
        meta_paths: sorted_capped(meta_paths, max),
    })
}

struct FinishParts<'a> {
    pr: &'a PrInput,
    is_bot: bool,
    degraded: BTreeSet<String>,
    files: Vec<ClassifiedFile>,
    sizes: ChannelSizes,
    prod: ProdSig,
    tests: TestSig,
    docs: DocSig,
    refs: RefSig,
    meta_paths: Vec<String>,
    whole_hash: String,
}

fn finish(p: FinishParts<'_>) -> Analysis {
    let prod = p.prod;
    let degraded: Vec<String> = p.degraded.into_iter().collect();
    let signature = Signature {
        signature_version: SIGNATURE_VERSION,
        number: p.pr.number,
        author: p.pr.author.clone(),
        created_at: p.pr.created_at,
        head_sha: p.pr.head_sha.clone(),
        is_bot: p.is_bot,
        prod,
        tests: p.tests,
        docs: p.docs,
        refs: p.refs,
        meta_paths: p.meta_paths,
        whole_hash: p.whole_hash,
        sizes: p.sizes,
        degraded: degraded.clone(),
    };
    Analysis {
        signature,
        files: p.files,
        channel_sizes: p.sizes,
        degraded,
        is_bot: p.is_bot,
    }
}

impl Signature {
    /// True when the production channel has parsed content.
    pub fn has_production(&self) -> bool {
        self.prod.change.has_content()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(path: &str, patch: &str) -> FileChange {
        FileChange {
            path: path.to_string(),
            previous_path: None,
            status: FileStatus::Modified,
            additions: patch.lines().filter(|l| l.starts_with('+')).count() as u32,
            deletions: patch.lines().filter(|l| l.starts_with('-')).count() as u32,
            patch: Some(patch.to_string()),
            sha: None,
        }
    }

    fn input(files: Vec<FileChange>) -> PrInput {
        PrInput {
            number: 7,
            title: "Fix the thing, closes #12".to_string(),
            body: "see #13 and owner/repo#14".to_string(),
            author: "someone".to_string(),
            created_at: 0,
            head_sha: "abc".to_string(),
            files,
        }
    }

    const P1: &str = "@@ -10,3 +10,3 @@ function go(url) {\n ctx\n-  return load(url, 1);\n+  return load(url, 2);\n ctx\n";

    #[test]
    fn canonical_hash_ignores_line_numbers_order_and_whitespace() {
        let cfg = TriageConfig::default();
        let a = analyse(
            &input(vec![change("src/a.ts", P1), change("src/b.ts", P1)]),
            &cfg,
        )
        .signature;
        let shifted = P1
            .replace("@@ -10,3 +10,3 @@", "@@ -99,3 +99,3 @@")
            .replace("return load", "return   load");
        let b = analyse(
            &input(vec![change("src/b.ts", &shifted), change("src/a.ts", P1)]),
            &cfg,
        )
        .signature;
        assert!(!a.prod.change.canonical_hash.is_empty());
        assert_eq!(a.prod.change.canonical_hash, b.prod.change.canonical_hash);
        let c = analyse(
            &input(vec![change("src/a.ts", &P1.replace("2);", "3);"))]),
            &cfg,
        )
        .signature;
        assert_ne!(a.prod.change.canonical_hash, c.prod.change.canonical_hash);
        assert_eq!(a.prod.symbols, vec!["go".to_string()]);
        assert_eq!(a.refs.closing, vec!["12".to_string()]);
        assert_eq!(
            a.refs.mentions,
            vec!["13".to_string(), "owner/repo#14".to_string()]
        );
    }

    #[test]
    fn revert_swaps_sketches_and_blocks_differ() {
        let cfg = TriageConfig::default();
        let orig = "@@ -1,2 +1,2 @@\n-const limit = computeLimit(a, b);\n+const limit = computeLimit(a, b) * 2;\n";
        let rev = "@@ -1,2 +1,2 @@\n-const limit = computeLimit(a, b) * 2;\n+const limit = computeLimit(a, b);\n";
        let a = analyse(&input(vec![change("src/x.ts", orig)]), &cfg).signature;
        let b = analyse(&input(vec![change("src/x.ts", rev)]), &cfg).signature;
        assert_eq!(a.prod.change.added_minhash, b.prod.change.removed_minhash);
        assert_eq!(a.prod.change.removed_minhash, b.prod.change.added_minhash);
        assert_ne!(a.prod.change.blocks, b.prod.change.blocks);
        assert_ne!(a.prod.change.canonical_hash, b.prod.change.canonical_hash);
    }

    #[test]
    fn channels_and_empty_input() {
        let cfg = TriageConfig::default();
        let t = "@@ -0,0 +1,3 @@\n+it('loads the page', async () => {\n+  expect(await load()).toBe(true);\n+});\n";
        let an = analyse(
            &input(vec![
                change("src/a.ts", P1),
                change("test/a.spec.ts", t),
                change("docs/api.md", "@@ -1 +1,2 @@\n+## Page.load\n+```ts\n"),
                change("yarn.lock", "@@ -1 +1 @@\n-a@1\n+a@2\n"),
            ]),
            &cfg,
        );
        let chans: Vec<Channel> = an.files.iter().map(|f| f.channel).collect();
        assert_eq!(
            chans,
            vec![
                Channel::Production,
                Channel::Tests,
                Channel::Docs,
                Channel::Meta
            ]
        );
        let s = &an.signature;
        assert_eq!(s.tests.names, vec!["loads the page".to_string()]);
        assert_eq!(s.tests.matchers, vec!["toBe".to_string()]);
        assert_eq!(s.docs.headings, vec!["page.load".to_string()]);
        assert_eq!(s.docs.fences, vec!["ts".to_string()]);
        assert_eq!(s.meta_paths, vec!["yarn.lock".to_string()]);
        assert_eq!(an.channel_sizes.meta.files, 1);
        let empty = analyse(&input(vec![]), &cfg).signature;
        assert!(!empty.has_production());
        assert!(empty.prod.change.canonical_hash.is_empty());
        assert!(empty.prod.change.added_minhash.is_empty());
    }

    #[test]
    fn deterministic() {
        let cfg = TriageConfig::default();
        let pr = input(vec![change("src/a.ts", P1), change("test/a.spec.ts", P1)]);
        let a = serde_json::to_string(&analyse(&pr, &cfg).signature).unwrap();
        let b = serde_json::to_string(&analyse(&pr, &cfg).signature).unwrap();
        assert_eq!(a, b);
    }
}
