//! The diffs of many heads at once. A git process costs more than the diff it computes (~2 ms to
//! start, against well under a millisecond for a PR's merge base or listing), so a batch of heads
//! runs five commands for all of them: a `rev-list --no-walk` for which heads the mirror has,
//! one `rev-parse <base>...<head>…` for their merge bases, one `diff-tree --stdin` for the
//! tree-level listings, one `cat-file --batch-check` for the sizes of every blob they name, and
//! one `diff-tree --stdin` for the patches, whose output is cut at each head's header line and
//! read through a capped [`DiffStream`] per head.
//!
//! Whatever the batch cannot take goes the way of a head alone ([`Mirror::diff_alone`]'s steps),
//! with the same caps: a head with files over the blob limit (their pathspec exclusions cannot be
//! given per input line), a listing over its cap, a head whose section was not complete when a
//! batch command failed. A head whose patches reach the cap stops the batch command there (its
//! result is the capped one a head alone gets) and the command starts again after it.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use futures::StreamExt;

use super::{
    GitError, MAX_DIFF_BYTES, Mirror, MirrorDiff, PATCH_ARGS, RAW_ARGS, RAW_CAP, RawEntry,
    assemble, parse_raw,
};
use crate::git::stream::{DiffStream, ParsedDiff};

/// `git merge-base` processes at once, for heads the batch's `rev-parse` did not answer.
const MERGE_BASE_CONCURRENCY: usize = 8;
/// Heads per `git rev-parse` of merge bases (keeps the command line short).
const REV_PARSE_PAIRS: usize = 128;
/// Heads diffed alone at once.
const ALONE_CONCURRENCY: usize = 4;
/// Largest tree-level listing of a whole batch.
const BATCH_RAW_CAP: usize = 64 << 20;
/// Time for one batch command; heads it did not finish are diffed alone.
const BATCH_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest header line of the patch output: an object id and its newline.
const MAX_HEADER: usize = 65;

/// A full object id as git prints it (SHA-1 or SHA-256, lower case): the only heads a batch
/// takes, since it finds each head's output by this exact text.
fn full_oid(s: &str) -> bool {
    matches!(s.len(), 40 | 64) && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// What the batch does with one head.
enum Step {
    /// No merge base (the mirror lacks the head): the caller reads it from REST.
    Failed,
    /// Diffed alone from its merge base (no listing from the batch).
    Alone { base: String },
    /// Listed by the batch but with files over the blob limit: its patches come alone.
    Large {
        base: String,
        entries: Vec<RawEntry>,
        large: BTreeSet<String>,
    },
    /// Listed by the batch; its patches come from the batch too.
    Batched {
        base: String,
        entries: Vec<RawEntry>,
    },
}

impl Mirror {
    /// The diffs of `heads` (`(head_sha, base_branch)`) of `owner/repo`, in order, each exactly
    /// what [`Mirror::diff_alone`] gives for it, with five git commands for the whole batch (see
    /// the module documentation).
    pub async fn diffs(
        &self,
        owner: &str,
        repo: &str,
        heads: &[(&str, &str)],
    ) -> Vec<Result<MirrorDiff, GitError>> {
        let Some(dir) = self.existing(owner, repo) else {
            return heads
                .iter()
                .map(|(h, _)| Err(GitError::MissingCommit(h.to_string())))
                .collect();
        };
        let dir = dir.as_path();
        // 1. The merge bases of all heads.
        let bases = self.merge_bases(dir, heads).await;
        // 2. The listings of every head with a merge base and a full id, in one command.
        let listed: Vec<usize> = (0..heads.len())
            .filter(|&i| bases[i].is_ok() && full_oid(heads[i].0))
            .collect();
        let pairs: Vec<(&str, &str)> = listed
            .iter()
            .map(|&i| (heads[i].0, bases[i].as_deref().unwrap_or_default()))
            .collect();
        let listings = self.raw_listings(dir, &pairs).await;
        // 3. The sizes of all their blobs, in one command (without them, every head goes alone).
        let oids: Vec<&str> = listings
            .iter()
            .flatten()
            .flat_map(|entries| entries.iter().flat_map(RawEntry::oids))
            .collect();
        let sizes = match self.blob_sizes(dir, oids).await {
            Ok(sizes) => Some(sizes),
            Err(e) => {
                tracing::debug!(error = %e, "blob sizes of a batch unavailable; its heads are diffed alone");
                None
            }
        };
        self.finish(dir, heads, bases, &listed, listings, sizes.as_ref())
            .await
    }

    /// The merge base of each head with the tip of its base branch, as `git merge-base` gives
    /// it. Which heads the mirror has is asked in one `rev-list` ([`Mirror::missing`]'s); then
    /// `git rev-parse <base>...<head>` for up to [`REV_PARSE_PAIRS`] heads at once prints, for each,
    /// the head, the base tip and `^` before each merge base (git's own merge-base computation,
    /// the first one being the one `git merge-base` prints). A head whose answer is not in that
    /// shape gets a `git merge-base` of its own.
    async fn merge_bases(
        &self,
        dir: &Path,
        heads: &[(&str, &str)],
    ) -> Vec<Result<String, GitError>> {
        let missing = |h: &str| Err(GitError::MissingCommit(h.to_string()));
        let mut out: Vec<Option<Result<String, GitError>>> = heads.iter().map(|_| None).collect();
        let asked: Vec<usize> = (0..heads.len())
            .filter(|&i| full_oid(heads[i].0) && super::safe_ref(heads[i].1))
            .collect();
        let shas: Vec<&str> = asked.iter().map(|&i| heads[i].0).collect();
        let lacking = self.missing_in(dir, &shas).await;
        let mut together = Vec::new();
        for &i in &asked {
            match &lacking {
                Ok(l) if l.iter().any(|m| m == heads[i].0) => out[i] = Some(missing(heads[i].0)),
                Ok(_) => together.push(i),
                Err(_) => {}
            }
        }
        for chunk in together.chunks(REV_PARSE_PAIRS) {
            let args: Vec<String> = chunk
                .iter()
                .map(|&i| format!("refs/heads/{}...{}", heads[i].1, heads[i].0))
                .collect();
            let mut argv = vec!["rev-parse"];
            argv.extend(args.iter().map(String::as_str));
            let Ok(text) = self
                .git(
                    dir,
                    &argv,
                    Duration::from_secs(120),
                    chunk.len() * 1024 + 4096,
                    None,
                )
                .await
            else {
                continue;
            };
            let text = String::from_utf8_lossy(&text);
            let mut lines = text.lines().peekable();
            for &i in chunk {
                let head = heads[i].0;
                if lines.next() != Some(head) || !lines.next().is_some_and(full_oid) {
                    break;
                }
                let mut first = None;
                while let Some(base) = lines.next_if(|l| l.starts_with('^')) {
                    first.get_or_insert(base[1..].to_string());
                }
                out[i] = Some(match first {
                    Some(b) if full_oid(&b) => Ok(b),
                    Some(_) => continue,
                    // No common history: `git merge-base` fails the same way.
                    None => missing(head),
                });
            }
        }
        // Whatever is left (an unusual id, or an answer out of shape) alone.
        let alone: Vec<_> = out
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_none())
            .map(|(i, _)| async move { (i, self.merge_base(dir, heads[i].0, heads[i].1).await) })
            .collect();
        let alone: Vec<(usize, Result<String, GitError>)> = futures::stream::iter(alone)
            .buffered(MERGE_BASE_CONCURRENCY)
            .collect()
            .await;
        for (i, r) in alone {
            out[i] = Some(r);
        }
        out.into_iter()
            .zip(heads)
            .map(|(r, (h, _))| r.unwrap_or_else(|| missing(h)))
            .collect()
    }

    /// Steps 4 and 5 of [`Mirror::diffs`]: the patches of the heads without large files in one
    /// command, the rest alone.
    async fn finish(
        &self,
        dir: &Path,
        heads: &[(&str, &str)],
        bases: Vec<Result<String, GitError>>,
        listed: &[usize],
        listings: Vec<Option<Vec<RawEntry>>>,
        sizes: Option<&super::BlobSizes>,
    ) -> Vec<Result<MirrorDiff, GitError>> {
        let mut listing_of: Vec<Option<Vec<RawEntry>>> = (0..heads.len()).map(|_| None).collect();
        for (&i, l) in listed.iter().zip(listings) {
            listing_of[i] = l;
        }
        let steps: Vec<Step> = bases
            .into_iter()
            .zip(listing_of)
            .map(|(base, listing)| match (base, listing, sizes) {
                (Err(_), _, _) => Step::Failed,
                (Ok(base), Some(entries), Some(sizes)) => {
                    let large = sizes.large_paths(&entries);
                    if large.is_empty() {
                        Step::Batched { base, entries }
                    } else {
                        Step::Large {
                            base,
                            entries,
                            large,
                        }
                    }
                }
                (Ok(base), _, _) => Step::Alone { base },
            })
            .collect();
        // 4. The patches of the batched heads, in one command (again after a capped head).
        let batched: Vec<(usize, &str, &str)> = steps
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match s {
                Step::Batched { base, .. } => Some((i, heads[i].0, base.as_str())),
                _ => None,
            })
            .collect();
        let pairs: Vec<(&str, &str)> = batched.iter().map(|(_, h, b)| (*h, *b)).collect();
        let mut patches: Vec<Option<ParsedDiff>> = (0..heads.len()).map(|_| None).collect();
        for ((i, _, _), p) in batched.iter().zip(self.patches(dir, &pairs).await) {
            patches[*i] = p;
        }
        // 5. Everything else alone, a few at a time.
        let work: Vec<_> = steps
            .iter()
            .zip(patches)
            .enumerate()
            .map(|(i, (step, patch))| async move {
                let head = heads[i].0;
                match (step, patch) {
                    (Step::Failed, _) => Err(GitError::MissingCommit(head.to_string())),
                    (Step::Batched { entries, .. }, Some(parsed)) => {
                        Ok(assemble(entries, parsed, Vec::new(), Vec::new()))
                    }
                    (Step::Batched { base, entries }, None) => {
                        self.patch_alone(dir, base, head, entries, &BTreeSet::new())
                            .await
                    }
                    (
                        Step::Large {
                            base,
                            entries,
                            large,
                        },
                        _,
                    ) => self.patch_alone(dir, base, head, entries, large).await,
                    (Step::Alone { base }, _) => self.diff_from_base(dir, base, head).await,
                }
            })
            .collect();
        futures::stream::iter(work)
            .buffered(ALONE_CONCURRENCY)
            .collect()
            .await
    }

    /// The tree-level listings of `pairs` (`(head, merge base)`), in order; `None` for a head
    /// whose listing is over [`RAW_CAP`] or was not read (the batch's output over its cap, or
    /// git failed).
    async fn raw_listings(&self, dir: &Path, pairs: &[(&str, &str)]) -> Vec<Option<Vec<RawEntry>>> {
        let mut out: Vec<Option<Vec<RawEntry>>> = (0..pairs.len()).map(|_| None).collect();
        if pairs.is_empty() {
            return out;
        }
        let mut args = RAW_ARGS.to_vec();
        args.extend(["--stdin", "--always"]);
        let raw = match self
            .git(
                dir,
                &args,
                Duration::from_secs(120),
                BATCH_RAW_CAP,
                Some(stdin_lines(pairs)),
            )
            .await
        {
            Ok(raw) => raw,
            Err(e) => {
                tracing::debug!(error = %e, "batch listing failed; its heads are diffed alone");
                return out;
            }
        };
        for (k, section) in raw_sections(&raw, pairs) {
            if section.len() <= RAW_CAP {
                out[k] = Some(parse_raw(section));
            }
        }
        out
    }

    /// The patches of `pairs` (`(head, merge base)`), in order, each read through its own
    /// [`DiffStream`]; `None` for a head whose output was not complete when git failed.
    async fn patches(&self, dir: &Path, pairs: &[(&str, &str)]) -> Vec<Option<ParsedDiff>> {
        let mut out: Vec<Option<ParsedDiff>> = (0..pairs.len()).map(|_| None).collect();
        let mut start = 0;
        let mut args = PATCH_ARGS.to_vec();
        args.extend(["--stdin", "--always"]);
        while start < pairs.len() {
            let rest = &pairs[start..];
            let mut split = Sections::new(rest.iter().map(|(h, _)| *h).collect(), MAX_DIFF_BYTES);
            let run = self
                .run(
                    dir,
                    &args,
                    BATCH_TIMEOUT,
                    Some(stdin_lines(rest)),
                    None,
                    &mut |b| split.push(b),
                )
                .await;
            if let Err(e) = &run {
                tracing::debug!(error = %e, "batch patches failed; the heads left are diffed alone");
            }
            let (done, capped) = split.finish(matches!(run, Ok(true)));
            let n = done.len();
            for (k, p) in done.into_iter().enumerate() {
                out[start + k] = Some(p);
            }
            // Only a head at its cap stops git early with the rest still to do.
            if !capped {
                break;
            }
            start += n;
        }
        out
    }
}

/// `diff-tree --stdin` input: one `<head> <merge base>` line per head, read by git as a commit
/// and the one parent to diff it against.
fn stdin_lines(pairs: &[(&str, &str)]) -> Vec<u8> {
    pairs
        .iter()
        .map(|(head, base)| format!("{head} {base}\n"))
        .collect::<String>()
        .into_bytes()
}

/// Cuts `diff-tree --stdin --always -z --raw` output into each head's records. The output is
/// `head\0` followed by `:meta\0path\0` records; a head id is recognised only where a record's
/// meta could start, so a path that spells a commit id is never taken for one. Returns
/// `(index in pairs, records)` for every head whose section ended (by the next head's id or the
/// end); a section out of step with the input ends the reading.
fn raw_sections<'r>(raw: &'r [u8], pairs: &[(&str, &str)]) -> Vec<(usize, &'r [u8])> {
    let mut out = Vec::new();
    let mut pos = 0;
    let mut current: Option<(usize, usize)> = None;
    let mut next = 0;
    while pos < raw.len() {
        let end = raw[pos..]
            .iter()
            .position(|&b| b == 0)
            .map_or(raw.len(), |i| pos + i);
        let token = &raw[pos..end];
        if token.first() == Some(&b':') {
            // A record: its meta, then its path.
            if current.is_none() {
                return out;
            }
            let path_end = raw
                .get(end + 1..)
                .and_then(|r| r.iter().position(|&b| b == 0))
                .map_or(raw.len(), |i| end + 1 + i);
            pos = path_end + 1;
            continue;
        }
        if next >= pairs.len() || token != pairs[next].0.as_bytes() {
            return out;
        }
        if let Some((k, from)) = current {
            out.push((k, &raw[from..pos]));
        }
        current = Some((next, end + 1));
        next += 1;
        pos = end + 1;
    }
    if let Some((k, from)) = current {
        out.push((k, &raw[from.min(raw.len())..]));
    }
    out
}

/// Cuts `diff-tree --stdin --always -p` output at each head's header line (the head's id alone on
/// a line: patch lines always start with a marker, so none can be one) and feeds each head's
/// bytes to its own capped [`DiffStream`]. Holds at most a header's length of a line beside the
/// streams.
struct Sections<'h> {
    heads: Vec<&'h str>,
    cap: usize,
    /// The next header expected.
    next: usize,
    current: Option<DiffStream>,
    done: Vec<ParsedDiff>,
    /// The start of a line that may still be a header.
    pending: Vec<u8>,
    /// Inside a line that is known not to be a header.
    mid_line: bool,
    /// The current head reached its cap.
    capped: bool,
    /// Output out of step with the input.
    broken: bool,
}

impl<'h> Sections<'h> {
    fn new(heads: Vec<&'h str>, cap: usize) -> Self {
        Sections {
            heads,
            cap,
            next: 0,
            current: None,
            done: Vec::new(),
            pending: Vec::new(),
            mid_line: false,
            capped: false,
            broken: false,
        }
    }

    /// Takes the next bytes; false when git should be stopped (a head at its cap, or output out
    /// of step).
    fn push(&mut self, mut chunk: &[u8]) -> bool {
        while !chunk.is_empty() && !self.capped && !self.broken {
            let newline = chunk.iter().position(|&b| b == b'\n');
            if self.mid_line {
                let n = newline.map_or(chunk.len(), |i| i + 1);
                self.forward(&chunk[..n]);
                self.mid_line = newline.is_none();
                chunk = &chunk[n..];
                continue;
            }
            let n = newline.map_or(chunk.len(), |i| i + 1);
            let take = n.min(MAX_HEADER + 1 - self.pending.len());
            self.pending.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
            if self.pending.last() == Some(&b'\n') {
                let line = std::mem::take(&mut self.pending);
                if self
                    .heads
                    .get(self.next)
                    .is_some_and(|h| line[..line.len() - 1] == *h.as_bytes())
                {
                    self.start_next();
                } else {
                    self.forward(&line);
                }
            } else if self.pending.len() > MAX_HEADER {
                let start = std::mem::take(&mut self.pending);
                self.forward(&start);
                self.mid_line = true;
            }
        }
        !self.capped && !self.broken
    }

    fn start_next(&mut self) {
        if let Some(s) = self.current.take() {
            self.done.push(s.finish());
        }
        self.current = Some(DiffStream::new(self.cap));
        self.next += 1;
    }

    fn forward(&mut self, bytes: &[u8]) {
        match &mut self.current {
            Some(s) => {
                if !s.push(bytes) {
                    self.capped = true;
                }
            }
            None => self.broken = true,
        }
    }

    /// The heads read to their end, in order, and whether the last of them stopped git at its
    /// cap. `complete`: git ran to its end and succeeded, so the last section is whole too.
    fn finish(mut self, complete: bool) -> (Vec<ParsedDiff>, bool) {
        if self.capped {
            if let Some(s) = self.current.take() {
                self.done.push(s.finish());
            }
            return (self.done, true);
        }
        if complete
            && !self.broken
            && self.pending.is_empty()
            && let Some(s) = self.current.take()
        {
            self.done.push(s.finish());
        }
        (self.done, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";
    const C: &str = "3333333333333333333333333333333333333333";

    fn patch(path: &str, line: &str) -> String {
        format!(
            "diff --git a/{path} b/{path}\nindex 1..2 100644\n--- a/{path}\n+++ b/{path}\n@@ -1 +1 @@\n-x\n+{line}\n"
        )
    }

    /// Feeds `text` in chunks of `size` bytes.
    fn split(text: &str, size: usize, cap: usize, complete: bool) -> (Vec<ParsedDiff>, bool) {
        let mut s = Sections::new(vec![A, B, C], cap);
        for chunk in text.as_bytes().chunks(size) {
            if !s.push(chunk) {
                break;
            }
        }
        s.finish(complete)
    }

    #[test]
    fn each_heads_patches_are_cut_at_its_header_whatever_the_chunks() {
        // B's file is named like C's id, and one of its lines is C's id after the marker.
        let text = format!("{A}\n{}{B}\n{}{C}\n", patch("src/a.rs", "a"), patch(C, C));
        for size in [1, 2, 7, 40, 41, 64, 65, 66, 4096] {
            let (done, capped) = split(&text, size, 1 << 20, true);
            assert!(!capped);
            assert_eq!(done.len(), 3, "chunks of {size}");
            assert_eq!(done[0].files[0].filename, "src/a.rs");
            assert_eq!(done[1].files[0].filename, C);
            assert_eq!(
                done[1].files[0].patch.as_deref(),
                Some(&*format!("@@ -1 +1 @@\n-x\n+{C}"))
            );
            assert!(done[2].files.is_empty(), "C's diff is empty");
        }
    }

    #[test]
    fn an_unfinished_run_keeps_only_the_heads_it_finished() {
        let text = format!("{A}\n{}{B}\n{}", patch("a", "1"), patch("b", "2"));
        let (done, capped) = split(&text, 10, 1 << 20, false);
        assert!(!capped);
        assert_eq!(done.len(), 1, "B's section may be incomplete");
        let (done, _) = split(&text, 10, 1 << 20, true);
        assert_eq!(done.len(), 2);
    }

    #[test]
    fn a_head_at_its_cap_stops_the_run_and_is_kept_capped() {
        let long = "y".repeat(300);
        let text = format!("{A}\n{}{B}\n{}{C}\n", patch("a", "1"), patch("b", &long));
        let (done, capped) = split(&text, 16, 200, false);
        assert!(capped);
        assert_eq!(done.len(), 2);
        assert!(!done[0].capped);
        assert!(done[1].capped);
    }

    #[test]
    fn output_out_of_step_with_the_input_is_not_taken() {
        let text = format!("{}{A}\n", patch("a", "1"));
        let (done, capped) = split(&text, 8, 1 << 20, true);
        assert!(!capped);
        assert!(done.is_empty());
    }

    #[test]
    fn raw_sections_skip_paths_that_spell_a_head() {
        let z = "0".repeat(40);
        let raw =
            format!("{A}\0:000000 100644 {z} {A} A\0{B}\0{B}\0{C}\0:100644 100644 {A} {B} M\0x\0");
        let pairs = [(A, z.as_str()), (B, z.as_str()), (C, z.as_str())];
        let s = raw_sections(raw.as_bytes(), &pairs);
        assert_eq!(s.len(), 3);
        let first = parse_raw(s[0].1);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].path, B, "a path, not a header");
        assert!(parse_raw(s[1].1).is_empty());
        assert_eq!(parse_raw(s[2].1)[0].path, "x");
        // Out of step: C's header where B's is due.
        let raw = format!("{A}\0{C}\0");
        assert_eq!(raw_sections(raw.as_bytes(), &pairs).len(), 0);
    }

    /// Output made of the heads' header lines in order, patch-like lines and arbitrary bytes.
    fn output() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(format!("{A}\n").into_bytes()),
            Just(format!("{B}\n").into_bytes()),
            Just(format!("{C}\n").into_bytes()),
            Just(patch("x", "1").into_bytes()),
            Just(patch(C, C).into_bytes()),
            proptest::collection::vec(any::<u8>(), 0..90),
        ];
        proptest::collection::vec(piece, 0..12).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// However git's output is shaped and chunked, the splitter never panics, gives the same
        /// heads, never more than asked, and keeps each within its cap.
        #[test]
        fn splitting_is_independent_of_chunking_and_bounded(
            out in output(),
            step in 1usize..80,
            cap in 1usize..400,
            complete in any::<bool>(),
        ) {
            let run = |size: usize| {
                let mut s = Sections::new(vec![A, B, C], cap);
                for chunk in out.chunks(size) {
                    if !s.push(chunk) {
                        break;
                    }
                }
                let (done, capped) = s.finish(complete);
                prop_assert!(done.len() <= 3);
                prop_assert!(done.iter().all(|d| d.bytes <= cap));
                Ok((format!("{done:?}"), capped))
            };
            prop_assert_eq!(run(out.len().max(1))?, run(step)?);
            let pairs = [(A, A), (B, B), (C, C)];
            let sections = raw_sections(&out, &pairs);
            prop_assert!(sections.len() <= 3);
        }
    }

    #[test]
    fn only_full_lower_case_ids_are_batched() {
        assert!(full_oid(A));
        assert!(!full_oid(&A.to_uppercase().replace('1', "A")));
        assert!(!full_oid("abc1234"));
    }
}
