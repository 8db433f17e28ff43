//! Quality harness: runs the triage engine over a PR set in the shared dataset format and measures
//! it against the set's labels.
//!
//! A set directory holds `prs.jsonl.gz` (one GitHub pull object per line plus its `files` array)
//! and `labels.json` (`pairs`, `hard_negative_pairs`, `unlabeled_similar`). The harness analyses
//! every PR, indexes all of them in memory, asks the index for each PR's candidates, scores them,
//! and reports recall@k, precision per category, hard negatives at or above the review threshold,
//! the precision of the duplicate sets built from the suggestions, the score distribution and wall
//! time. Single-threaded, deterministic. A [`Gate`] turns the figures into a pass/fail verdict
//! (`clawtriage eval --min-recall5 ...`), so an engine regression fails CI.

use crate::triage::sets::{MemberInfo, SetEdge, SetParams, build_sets};
use crate::triage::{
    self, Category, Edge, FileChange, FileStatus, Index, PrInput, ScoreContext, Signature,
    TriageConfig,
};
use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Instant;

/// Options of a harness run.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Engine configuration.
    pub config: TriageConfig,
    /// Suggestions kept per PR (the appliance stores the top 10).
    pub top_k: usize,
    /// How many missed pairs / false suggestions to list in the report (0 = none).
    pub show_examples: usize,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            config: TriageConfig::default(),
            top_k: 10,
            show_examples: 0,
        }
    }
}

#[derive(Deserialize)]
struct GhUser {
    login: String,
}

#[derive(Deserialize)]
struct GhHead {
    sha: String,
}

#[derive(Deserialize)]
struct GhFile {
    filename: String,
    status: String,
    #[serde(default)]
    additions: u32,
    #[serde(default)]
    deletions: u32,
    patch: Option<String>,
    previous_filename: Option<String>,
    #[serde(default)]
    sha: Option<String>,
}

#[derive(Deserialize)]
struct GhPull {
    number: u64,
    #[serde(default)]
    title: String,
    body: Option<String>,
    user: Option<GhUser>,
    created_at: Option<String>,
    head: GhHead,
    #[serde(default)]
    files: Vec<GhFile>,
}

#[derive(Deserialize)]
struct LabelPair {
    a: u64,
    b: u64,
    kind: String,
    category: String,
}

#[derive(Deserialize)]
struct LabelGroup {
    members: Vec<u64>,
}

#[derive(Deserialize)]
struct Labels {
    pairs: Vec<LabelPair>,
    #[serde(default)]
    groups: Vec<LabelGroup>,
    #[serde(default)]
    hard_negative_pairs: Vec<(u64, u64, String)>,
    #[serde(default)]
    unlabeled_similar: Vec<(u64, u64, f64)>,
}

/// Maps one GitHub pull object (with `files`) to engine input.
fn to_input(p: GhPull) -> PrInput {
    let created_at = p
        .created_at
        .as_deref()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map_or(0, |d| d.timestamp());
    PrInput {
        number: p.number,
        title: p.title,
        body: p.body.unwrap_or_default(),
        author: p.user.map(|u| u.login).unwrap_or_default(),
        created_at,
        head_sha: p.head.sha,
        files: p
            .files
            .into_iter()
            .map(|f| FileChange {
                path: f.filename,
                previous_path: f.previous_filename,
                status: FileStatus::from_github(&f.status),
                additions: f.additions,
                deletions: f.deletions,
                patch: f.patch,
                sha: f.sha,
            })
            .collect(),
    }
}

/// Reads `prs.jsonl.gz` of a set directory.
pub fn load_prs(dir: &Path) -> Result<Vec<PrInput>> {
    let path = dir.join("prs.jsonl.gz");
    let file = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let reader = BufReader::new(flate2::read::GzDecoder::new(file));
    let mut out = Vec::new();
    for (i, line) in reader.split(b'\n').enumerate() {
        let line = line.with_context(|| format!("reading {} line {}", path.display(), i + 1))?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        // Lossy: invalid UTF-8 in a patch must not stop the run (the engine handles U+FFFD).
        let text = String::from_utf8_lossy(&line);
        let pull: GhPull = serde_json::from_str(&text)
            .with_context(|| format!("parsing {} line {}", path.display(), i + 1))?;
        out.push(to_input(pull));
    }
    Ok(out)
}

/// Recall figures for one group of labelled pairs.
#[derive(Debug, Clone, Default)]
pub struct Recall {
    /// Labelled pairs in the group.
    pub pairs: usize,
    /// Found at rank 1 (either direction).
    pub at1: usize,
    /// Found within the top 5.
    pub at5: usize,
    /// Found anywhere among the scored candidates at RELATED or above.
    pub any: usize,
    /// Labelled pairs whose edge got the labelled category.
    pub category_match: usize,
}

/// Precision of one category.
#[derive(Debug, Clone, Default)]
pub struct Precision {
    /// Pairs suggested with this category (excluding `unlabeled_similar`).
    pub suggested: usize,
    /// Of those, labelled duplicate pairs (any category).
    pub labelled: usize,
    /// Of those, labelled with this very category.
    pub same_category: usize,
}

/// Duplicate sets built (as the appliance does, by `triage::sets`) from the suggested edges.
#[derive(Debug, Clone, Default)]
pub struct SetFigures {
    /// Sets built.
    pub sets: usize,
    /// PRs in sets.
    pub members: usize,
    /// Sets whose members all belong to one labelled group.
    pub precise: usize,
    /// Sets that are one group only through `unlabeled_similar` pairs ("don't know", skipped).
    pub unknown: usize,
    /// Sets mixing labelled groups or unlabelled PRs.
    pub imprecise: usize,
}

impl SetFigures {
    /// Precise sets over judged ones (1.0 when there are none).
    pub fn precision(&self) -> f64 {
        let judged = self.precise + self.imprecise;
        if judged == 0 {
            1.0
        } else {
            self.precise as f64 / judged as f64
        }
    }
}

/// Everything a harness run measured.
#[derive(Debug, Clone, Default)]
pub struct EvalReport {
    /// Set directory.
    pub dir: String,
    /// PRs analysed.
    pub prs: usize,
    /// PRs whose analysis was degraded.
    pub degraded_prs: usize,
    /// Bot PRs.
    pub bot_prs: usize,
    /// Pairs scored (unordered).
    pub pairs_scored: usize,
    /// Review threshold used.
    pub review_threshold: f64,
    /// Recall over all labelled pairs.
    pub recall: Recall,
    /// Recall per label `kind`.
    pub recall_by_kind: BTreeMap<String, Recall>,
    /// Recall per label category.
    pub recall_by_category: BTreeMap<String, Recall>,
    /// Precision per suggested category.
    pub precision: BTreeMap<String, Precision>,
    /// Hard-negative pairs, by kind: (total, suggested at/above the review threshold, RELATED).
    pub hard_negatives: BTreeMap<String, (usize, usize, usize)>,
    /// Histogram of final scores of scored pairs (10 buckets of 0.1), per category.
    pub histogram: BTreeMap<String, [usize; 10]>,
    /// Duplicate sets from the suggestions.
    pub sets: SetFigures,
    /// Seconds spent analysing.
    pub secs_analyse: f64,
    /// Seconds spent indexing.
    pub secs_index: f64,
    /// Seconds spent on candidates and scoring.
    pub secs_score: f64,
    /// Total seconds (excluding loading the files).
    pub secs_total: f64,
    /// Seconds spent loading and decompressing the set.
    pub secs_load: f64,
    /// Example lines (misses, false suggestions, trapped hard negatives).
    pub examples: Vec<String>,
}

/// The engine's output over a set: signatures and the scored edges of every candidate pair.
pub struct EngineRun {
    /// Signatures by PR number.
    pub sigs: BTreeMap<u64, Signature>,
    /// Edges by unordered pair (lower number first).
    pub edges: BTreeMap<(u64, u64), Edge>,
    /// Seconds analysing, indexing, scoring.
    pub secs: (f64, f64, f64),
    /// PRs with degraded analyses.
    pub degraded: usize,
}

/// Runs the engine over `prs` as the appliance would (analyse, index all, candidates, score).
pub fn run_engine(prs: &[PrInput], cfg: &TriageConfig) -> EngineRun {
    let t0 = Instant::now();
    let mut sigs = BTreeMap::new();
    let mut degraded = 0;
    for pr in prs {
        let a = triage::analyse(pr, cfg);
        if !a.degraded.is_empty() {
            degraded += 1;
        }
        sigs.insert(pr.number, a.signature);
    }
    let t1 = Instant::now();
    let mut index = Index::new();
    for (n, s) in &sigs {
        index.insert(*n, s, cfg);
    }
    let t2 = Instant::now();
    let ctx = ScoreContext::from_index(&index);
    let mut edges = BTreeMap::new();
    for (n, s) in &sigs {
        for c in index.candidates(s, cfg) {
            let key = ((*n).min(c), (*n).max(c));
            if edges.contains_key(&key) {
                continue;
            }
            let Some(other) = sigs.get(&c) else { continue };
            let (x, y) = if *n < c { (s, other) } else { (other, s) };
            edges.insert(key, triage::score(x, y, &ctx, cfg));
        }
    }
    let t3 = Instant::now();
    EngineRun {
        sigs,
        edges,
        secs: (
            (t1 - t0).as_secs_f64(),
            (t2 - t1).as_secs_f64(),
            (t3 - t2).as_secs_f64(),
        ),
        degraded,
    }
}

/// Runs the harness over the set in `dir`.
pub fn run(dir: &Path, opts: &EvalOptions) -> Result<EvalReport> {
    let t_load = Instant::now();
    let prs = load_prs(dir)?;
    let labels_path = dir.join("labels.json");
    let labels: Labels = serde_json::from_slice(
        &std::fs::read(&labels_path)
            .with_context(|| format!("reading {}", labels_path.display()))?,
    )
    .with_context(|| format!("parsing {}", labels_path.display()))?;
    if prs.is_empty() {
        bail!("{} holds no PRs", dir.display());
    }
    let secs_load = t_load.elapsed().as_secs_f64();
    let cfg = &opts.config;
    let t = Instant::now();
    let run = run_engine(&prs, cfg);
    let secs_total = t.elapsed().as_secs_f64();

    // Ranked suggestion lists per PR: suggested edges (at/above review), and all RELATED+ edges.
    let mut suggested: BTreeMap<u64, Vec<(f64, u64)>> = BTreeMap::new();
    let mut related: BTreeMap<u64, Vec<(f64, u64)>> = BTreeMap::new();
    for (&(a, b), e) in &run.edges {
        if e.category >= Category::Related {
            related.entry(a).or_default().push((e.final_score, b));
            related.entry(b).or_default().push((e.final_score, a));
        }
        if e.category.is_suggestion() {
            suggested.entry(a).or_default().push((e.final_score, b));
            suggested.entry(b).or_default().push((e.final_score, a));
        }
    }
    for m in [&mut suggested, &mut related] {
        for v in m.values_mut() {
            v.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
            v.truncate(opts.top_k.max(5));
        }
    }
    let rank_of = |m: &BTreeMap<u64, Vec<(f64, u64)>>, a: u64, b: u64| -> Option<usize> {
        m.get(&a).and_then(|v| v.iter().position(|x| x.1 == b))
    };
    let best_rank = |m: &BTreeMap<u64, Vec<(f64, u64)>>, a: u64, b: u64| -> Option<usize> {
        match (rank_of(m, a, b), rank_of(m, b, a)) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        }
    };

    let mut rep = EvalReport {
        dir: dir.display().to_string(),
        prs: prs.len(),
        degraded_prs: run.degraded,
        bot_prs: run.sigs.values().filter(|s| s.is_bot).count(),
        pairs_scored: run.edges.len(),
        review_threshold: cfg.review_threshold,
        secs_analyse: run.secs.0,
        secs_index: run.secs.1,
        secs_score: run.secs.2,
        secs_total,
        secs_load,
        ..EvalReport::default()
    };

    let mut labelled: BTreeMap<(u64, u64), &LabelPair> = BTreeMap::new();
    for p in &labels.pairs {
        labelled.insert((p.a.min(p.b), p.a.max(p.b)), p);
    }
    let unlabeled: BTreeSet<(u64, u64)> = labels
        .unlabeled_similar
        .iter()
        .map(|u| (u.0.min(u.1), u.0.max(u.1)))
        .collect();

    let mut misses = Vec::new();
    for p in &labels.pairs {
        let key = (p.a.min(p.b), p.a.max(p.b));
        let r = best_rank(&suggested, p.a, p.b);
        let any = best_rank(&related, p.a, p.b).is_some();
        let edge = run.edges.get(&key);
        let cat_ok = edge.is_some_and(|e| e.category.as_str() == p.category);
        for rec in [
            &mut rep.recall,
            rep.recall_by_kind.entry(p.kind.clone()).or_default(),
            rep.recall_by_category
                .entry(p.category.clone())
                .or_default(),
        ] {
            rec.pairs += 1;
            rec.at1 += usize::from(r == Some(0));
            rec.at5 += usize::from(r.is_some_and(|x| x < 5));
            rec.any += usize::from(any);
            rec.category_match += usize::from(cat_ok);
        }
        if r.is_none_or(|x| x >= 5) || !cat_ok {
            misses.push(format!(
                "miss {} #{} #{} label {} got {} ({})",
                p.kind,
                p.a,
                p.b,
                p.category,
                edge.map_or("no candidate".to_string(), |e| format!(
                    "{} {:.3}",
                    e.category, e.final_score
                )),
                edge.map_or(String::new(), scores_line),
            ));
        }
    }

    let mut false_pos = Vec::new();
    for (key, e) in &run.edges {
        if !e.category.is_suggestion() || unlabeled.contains(key) {
            continue;
        }
        let pr = rep
            .precision
            .entry(e.category.as_str().to_string())
            .or_default();
        pr.suggested += 1;
        if let Some(l) = labelled.get(key) {
            pr.labelled += 1;
            pr.same_category += usize::from(l.category == e.category.as_str());
        } else {
            false_pos.push(format!(
                "false {} #{} #{} {:.3} ({})",
                e.category,
                key.0,
                key.1,
                e.final_score,
                scores_line(e)
            ));
        }
    }

    let mut trapped = Vec::new();
    for (a, b, kind) in &labels.hard_negative_pairs {
        let key = ((*a).min(*b), (*a).max(*b));
        let entry = rep.hard_negatives.entry(kind.clone()).or_insert((0, 0, 0));
        entry.0 += 1;
        if let Some(e) = run.edges.get(&key) {
            if e.final_score >= cfg.review_threshold {
                entry.1 += 1;
                trapped.push(format!(
                    "trap {kind} #{} #{} {} {:.3} ({})",
                    key.0,
                    key.1,
                    e.category,
                    e.final_score,
                    scores_line(e)
                ));
            } else if e.category == Category::Related {
                entry.2 += 1;
            }
        }
    }

    for e in run.edges.values() {
        let h = rep
            .histogram
            .entry(e.category.as_str().to_string())
            .or_insert([0; 10]);
        let bucket = ((e.final_score * 10.0).floor() as usize).min(9);
        h[bucket] += 1;
    }

    let (sets, set_examples) = set_figures(&prs, &run, &labels, cfg);
    rep.sets = sets;

    if opts.show_examples > 0 {
        let n = opts.show_examples;
        rep.examples.extend(set_examples.into_iter().take(n));
        rep.examples.extend(trapped.into_iter().take(n));
        rep.examples.extend(misses.into_iter().take(n));
        rep.examples.extend(false_pos.into_iter().take(n));
    }
    Ok(rep)
}

/// Union-find root of `x` (path halving).
fn root(parent: &mut BTreeMap<u64, u64>, x: u64) -> u64 {
    let mut x = x;
    loop {
        let p = *parent.entry(x).or_insert(x);
        if p == x {
            return x;
        }
        let gp = *parent.entry(p).or_insert(p);
        parent.insert(x, gp);
        x = gp;
    }
}

fn union(parent: &mut BTreeMap<u64, u64>, a: u64, b: u64) {
    let (ra, rb) = (root(parent, a), root(parent, b));
    if ra != rb {
        parent.insert(ra.max(rb), ra.min(rb));
    }
}

/// Builds duplicate sets from the suggested edges with the appliance's set builder and judges each
/// against the labelled groups (the union of labelled pairs and groups).
fn set_figures(
    prs: &[PrInput],
    run: &EngineRun,
    labels: &Labels,
    cfg: &TriageConfig,
) -> (SetFigures, Vec<String>) {
    let members: BTreeMap<u64, MemberInfo> = prs
        .iter()
        .map(|p| {
            let sig = run.sigs.get(&p.number);
            (
                p.number,
                MemberInfo {
                    number: p.number,
                    created_at: p.created_at,
                    state: "open".to_string(),
                    ci_state: None,
                    approvals: 0,
                    canonical_hash: sig
                        .map(|s| s.prod.change.canonical_hash.clone())
                        .filter(|h| !h.is_empty()),
                    production_lines: sig.map_or(0, |s| s.prod.change.changed_lines()),
                },
            )
        })
        .collect();
    let edges: Vec<SetEdge> = run
        .edges
        .iter()
        .filter(|(_, e)| e.category.is_suggestion())
        .map(|(&(a, b), e)| SetEdge {
            a,
            b,
            category: e.category,
            score: e.final_score,
        })
        .collect();
    let params = SetParams {
        min_score: cfg.review_threshold,
        ..SetParams::default()
    };
    let sets = build_sets("eval", &edges, &members, &Default::default(), &params);
    let mut labelled = BTreeMap::new();
    for p in &labels.pairs {
        union(&mut labelled, p.a, p.b);
    }
    for g in &labels.groups {
        for w in g.members.windows(2) {
            union(&mut labelled, w[0], w[1]);
        }
    }
    let mut loose = labelled.clone();
    for u in &labels.unlabeled_similar {
        union(&mut loose, u.0, u.1);
    }
    let mut fig = SetFigures {
        sets: sets.len(),
        ..SetFigures::default()
    };
    let mut examples = Vec::new();
    for set in &sets {
        fig.members += set.members.len();
        let one_group = |parent: &mut BTreeMap<u64, u64>| {
            let r0 = root(parent, set.members[0]);
            set.members.iter().all(|&m| root(parent, m) == r0)
        };
        if one_group(&mut labelled) {
            fig.precise += 1;
        } else if one_group(&mut loose) {
            fig.unknown += 1;
        } else {
            fig.imprecise += 1;
            examples.push(format!(
                "imprecise set {:?} ({})",
                set.members,
                set.edges
                    .iter()
                    .map(|(a, b, c, s)| format!("#{a}-#{b} {c} {s:.2}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    (fig, examples)
}

/// Quality thresholds; a run that misses one fails (see [`Gate::check`]).
#[derive(Debug, Clone, Default)]
pub struct Gate {
    /// Least recall@5 over all labelled pairs.
    pub min_recall5: Option<f64>,
    /// Least recall@5 of every label kind.
    pub min_kind_recall5: Option<f64>,
    /// Least precision (share of suggestions that are labelled pairs) of every suggested
    /// category.
    pub min_precision: Option<f64>,
    /// Most hard-negative pairs suggested (at or above the review threshold).
    pub max_hard_negatives: Option<usize>,
    /// Least duplicate-set precision.
    pub min_set_precision: Option<f64>,
}

impl Gate {
    /// True when no threshold is set.
    pub fn is_empty(&self) -> bool {
        self.min_recall5.is_none()
            && self.min_kind_recall5.is_none()
            && self.min_precision.is_none()
            && self.max_hard_negatives.is_none()
            && self.min_set_precision.is_none()
    }

    /// Every threshold `report` misses, one line each (empty = pass).
    pub fn check(&self, report: &EvalReport) -> Vec<String> {
        let ratio = |n: usize, d: usize| if d == 0 { 1.0 } else { n as f64 / d as f64 };
        let mut out = Vec::new();
        if let Some(min) = self.min_recall5 {
            let r = ratio(report.recall.at5, report.recall.pairs);
            if r < min {
                out.push(format!("recall@5 {r:.3} < {min}"));
            }
        }
        if let Some(min) = self.min_kind_recall5 {
            for (k, rec) in &report.recall_by_kind {
                let r = ratio(rec.at5, rec.pairs);
                if r < min {
                    out.push(format!("recall@5 of kind {k} {r:.3} < {min}"));
                }
            }
        }
        if let Some(min) = self.min_precision {
            for (k, p) in &report.precision {
                let r = ratio(p.labelled, p.suggested);
                if r < min {
                    out.push(format!("precision of {k} {r:.3} < {min}"));
                }
            }
        }
        if let Some(max) = self.max_hard_negatives {
            let n: usize = report.hard_negatives.values().map(|x| x.1).sum();
            if n > max {
                out.push(format!("{n} hard negatives suggested > {max}"));
            }
        }
        if let Some(min) = self.min_set_precision {
            let r = report.sets.precision();
            if r < min {
                out.push(format!("duplicate-set precision {r:.3} < {min}"));
            }
        }
        out
    }
}

fn scores_line(e: &Edge) -> String {
    let f = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.2}"));
    let s = &e.scores;
    format!(
        "prod {:.2} blocks {} text {} cross {} paths {} sym {} tests {} docs {} refs {} raw {:.2}{}",
        s.prod,
        f(s.prod_blocks),
        f(s.prod_text),
        f(s.revert_cross),
        f(s.paths),
        f(s.symbols),
        f(s.tests),
        f(s.docs),
        f(s.refs),
        s.raw,
        if e.evidence.revert_like {
            " revert"
        } else {
            ""
        }
    )
}

fn pct(n: usize, d: usize) -> String {
    if d == 0 {
        "   n/a".to_string()
    } else {
        format!("{:6.3}", n as f64 / d as f64)
    }
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "set {}: {} PRs ({} degraded, {} bots), {} pairs scored",
            self.dir, self.prs, self.degraded_prs, self.bot_prs, self.pairs_scored
        )?;
        writeln!(
            f,
            "recall over labelled pairs (suggestions at/above review threshold {:.2}):",
            self.review_threshold
        )?;
        writeln!(
            f,
            "  {:<28} {:>6} {:>6} {:>6} {:>8} {:>8}",
            "group", "pairs", "@1", "@5", "related+", "category"
        )?;
        let row = |f: &mut fmt::Formatter<'_>, name: &str, r: &Recall| {
            writeln!(
                f,
                "  {:<28} {:>6} {} {} {:>8} {:>8}",
                name,
                r.pairs,
                pct(r.at1, r.pairs),
                pct(r.at5, r.pairs),
                pct(r.any, r.pairs),
                pct(r.category_match, r.pairs)
            )
        };
        row(f, "all", &self.recall)?;
        for (k, r) in &self.recall_by_kind {
            row(f, &format!("kind {k}"), r)?;
        }
        for (k, r) in &self.recall_by_category {
            row(f, &format!("label {k}"), r)?;
        }
        writeln!(
            f,
            "precision per suggested category (unlabeled_similar skipped):"
        )?;
        writeln!(
            f,
            "  {:<28} {:>9} {:>9} {:>9}",
            "category", "suggested", "any-label", "same-cat"
        )?;
        for (k, p) in &self.precision {
            writeln!(
                f,
                "  {:<28} {:>9} {:>9} {:>9}",
                k,
                p.suggested,
                pct(p.labelled, p.suggested),
                pct(p.same_category, p.suggested)
            )?;
        }
        writeln!(
            f,
            "hard negatives (total / at-or-above review threshold / RELATED):"
        )?;
        let mut tot = (0, 0, 0);
        for (k, (t, s, r)) in &self.hard_negatives {
            writeln!(f, "  {k:<28} {t:>6} {s:>6} {r:>6}")?;
            tot = (tot.0 + t, tot.1 + s, tot.2 + r);
        }
        writeln!(f, "  {:<28} {:>6} {:>6} {:>6}", "all", tot.0, tot.1, tot.2)?;
        let st = &self.sets;
        writeln!(
            f,
            "duplicate sets: {} sets of {} PRs; precise {}, imprecise {}, unknown {}; set precision {:.3}",
            st.sets,
            st.members,
            st.precise,
            st.imprecise,
            st.unknown,
            st.precision()
        )?;
        writeln!(
            f,
            "final score histogram of scored pairs (bucket lower bounds 0.0 .. 0.9):"
        )?;
        for (k, h) in &self.histogram {
            let cells: Vec<String> = h.iter().map(|c| format!("{c:>6}")).collect();
            writeln!(f, "  {:<26}{}", k, cells.join(""))?;
        }
        writeln!(
            f,
            "wall time: load {:.2}s, analyse {:.2}s, index {:.2}s, candidates+score {:.2}s, engine total {:.2}s",
            self.secs_load, self.secs_analyse, self.secs_index, self.secs_score, self.secs_total
        )?;
        for e in &self.examples {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn pull(number: u64, login: &str, files: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "number": number,
            "title": format!("change {number}"),
            "body": null,
            "user": { "login": login },
            "created_at": "2024-05-01T10:00:00Z",
            "head": { "sha": format!("{number:040x}"), "ref": "main" },
            "state": "open",
            "files": files,
        })
    }

    #[test]
    fn runs_on_a_tiny_set() {
        let patch = "@@ -10,3 +10,4 @@ export class Page {\n ctx\n-    return this._load(url);\n+    const timeout = this._timeoutSettings.navigationTimeout(options);\n+    return this._load(url, { timeout, waitUntil: options.waitUntil });\n ctx\n";
        let other = "@@ -3,3 +3,3 @@ function render() {\n ctx\n-  drawTheWidget(canvas, 1);\n+  drawTheWidget(canvas, 2, { retina: true });\n ctx\n";
        let f = |path: &str, p: &str| serde_json::json!([{ "filename": path, "status": "modified", "additions": 2, "deletions": 1, "patch": p }]);
        let prs = [
            pull(1, "dev-a", f("src/page.ts", patch)),
            pull(2, "dev-b", f("src/page.ts", patch)),
            pull(3, "dev-c", f("src/widget.ts", other)),
        ];
        let dir = tempfile::tempdir().unwrap();
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(dir.path().join("prs.jsonl.gz")).unwrap(),
            flate2::Compression::fast(),
        );
        for p in &prs {
            writeln!(gz, "{p}").unwrap();
        }
        gz.finish().unwrap();
        let labels = serde_json::json!({
            "pairs": [{ "a": 1, "b": 2, "kind": "backport", "category": "SAME_CHANGE" }],
            "hard_negative_pairs": [[1, 3, "same_files"]],
            "unlabeled_similar": [],
        });
        std::fs::write(dir.path().join("labels.json"), labels.to_string()).unwrap();
        let report = run(dir.path(), &EvalOptions::default()).unwrap();
        assert_eq!(report.prs, 3);
        assert_eq!(report.recall.pairs, 1);
        assert_eq!(report.recall.at1, 1);
        assert_eq!(report.recall.category_match, 1);
        assert_eq!(report.hard_negatives["same_files"].1, 0);
        assert_eq!(report.precision["SAME_CHANGE"].suggested, 1);
        assert_eq!((report.sets.sets, report.sets.precise), (1, 1));
        assert_eq!(report.sets.precision(), 1.0);
        let pass = Gate {
            min_recall5: Some(1.0),
            min_kind_recall5: Some(1.0),
            min_precision: Some(1.0),
            max_hard_negatives: Some(0),
            min_set_precision: Some(1.0),
        };
        assert!(pass.check(&report).is_empty(), "{:?}", pass.check(&report));
        let mut worse = report.clone();
        worse.recall.at5 = 0;
        worse.hard_negatives.insert("same_files".into(), (1, 1, 0));
        worse.sets.imprecise = 1;
        worse.recall_by_kind.get_mut("backport").unwrap().at5 = 0;
        let failed = pass.check(&worse);
        assert_eq!(failed.len(), 4, "{failed:?}");
        assert!(failed[1].contains("kind backport"), "{failed:?}");
        assert!(failed[0].starts_with("recall@5 0.000 < 1"), "{failed:?}");
        assert!(Gate::default().check(&worse).is_empty());
        let text = report.to_string();
        assert!(text.contains("set precision 1.000"), "{text}");
        assert!(text.contains("recall over labelled pairs"));
        assert!(run(&dir.path().join("missing"), &EvalOptions::default()).is_err());
    }
}
