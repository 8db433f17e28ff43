//! `clawtriage repos | sets | pr | candidates | scans | feedback`: read (and, for feedback,
//! write) a running appliance through its API. Human tables by default; `--json` prints one
//! document `{"schemaVersion": 1, ...}` whose items are the API's objects (described in
//! `/api/openapi.json`); `--jsonl` prints a list's items one per line.

use std::io::{BufRead, Read, Write};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::client::{CliError, Client, token_from_env};
use crate::backup::{MAX_LINE_BYTES, VerdictRecord};

/// Version of the `--json` documents; fields are only ever added within one version.
pub const JSON_SCHEMA_VERSION: u32 = 1;

/// Where the appliance is.
#[derive(Args, Debug, Clone)]
pub struct Target {
    /// Base URL of the running appliance. The token comes from the environment only:
    /// CLAWTRIAGE_TOKEN, else DASHBOARD_TOKEN (else OPS_TRIGGER_TOKEN, enough for `scans`).
    #[arg(long, env = "CLAWTRIAGE_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
}

impl Target {
    fn client(&self) -> Result<Client, CliError> {
        Client::new(&self.url, token_from_env())
    }
}

/// Output of a list.
#[derive(Args, Debug, Clone, Copy)]
pub struct ListFormat {
    /// One JSON document: `{"schemaVersion": 1, ...}` (see the README's "CLI" section).
    #[arg(long, conflicts_with = "jsonl")]
    pub json: bool,
    /// One JSON object per line: the list's items.
    #[arg(long)]
    pub jsonl: bool,
}

/// Output of one object.
#[derive(Args, Debug, Clone, Copy)]
pub struct OneFormat {
    /// One JSON document: `{"schemaVersion": 1, ...}` (see the README's "CLI" section).
    #[arg(long)]
    pub json: bool,
}

/// Which repository.
#[derive(Args, Debug, Clone)]
pub struct RepoArg {
    /// The repository, `owner/name`. May be left out when the appliance triages only one.
    #[arg(long, short = 'r')]
    pub repo: Option<String>,
}

/// `clawtriage repos`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  clawtriage repos
  clawtriage repos --jsonl | jq -r '.owner + \"/\" + .name'")]
pub struct ReposArgs {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    format: ListFormat,
}

/// `clawtriage sets`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  clawtriage sets --repo microsoft/playwright
  clawtriage sets -r acme/widgets --min-score 0.8 --state all --limit 100 --json
  clawtriage sets --jsonl | jq 'select(.tier == \"high\") | .members[].number'")]
pub struct SetsArgs {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    repo: RepoArg,
    /// Lowest link score (0-1; the appliance never goes below its review threshold).
    #[arg(long)]
    min_score: Option<f64>,
    /// open (default) | closed | merged | all.
    #[arg(long)]
    state: Option<String>,
    /// Comma-separated categories (default SAME_CHANGE,SAME_FEATURE,COMPETING_IMPLEMENTATION).
    #[arg(long)]
    categories: Option<String>,
    /// At most this many sets, strongest first.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10000))]
    limit: u32,
    #[command(flatten)]
    format: ListFormat,
}

/// `clawtriage pr`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  clawtriage pr 1234 --repo microsoft/playwright
  clawtriage pr 1234 --json | jq '.pr.analysis.status'")]
pub struct PrArgs {
    /// PR number.
    number: i64,
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    repo: RepoArg,
    #[command(flatten)]
    format: OneFormat,
}

/// `clawtriage candidates`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  clawtriage candidates 1234 --repo microsoft/playwright
  clawtriage candidates 1234 --min-score 0.6 --jsonl | jq -r '.candidatePrNumber'")]
pub struct CandidatesArgs {
    /// PR number.
    number: i64,
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    repo: RepoArg,
    /// Lowest final score shown (0-1).
    #[arg(long)]
    min_score: Option<f64>,
    /// At most this many (1-50).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=50))]
    limit: u32,
    #[command(flatten)]
    format: ListFormat,
}

/// `clawtriage scans`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  clawtriage scans
  clawtriage scans 'scan:acme/widgets:2026-11-22T14' --json
  clawtriage scans --limit 5 --jsonl | jq -r '.state'")]
pub struct ScansArgs {
    /// One scan's job id (`scan:owner/repo:snapshot`); without it, the recent scans.
    job_id: Option<String>,
    #[command(flatten)]
    target: Target,
    /// At most this many recent scans (1-100).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100))]
    limit: u32,
    #[command(flatten)]
    format: ListFormat,
}

/// `clawtriage feedback`.
#[derive(Args, Debug)]
pub struct FeedbackArgs {
    #[command(subcommand)]
    command: FeedbackCommand,
}

#[derive(Subcommand, Debug)]
enum FeedbackCommand {
    /// A repository's verdicts, newest first.
    #[command(after_help = "Examples:
  clawtriage feedback list --repo acme/widgets
  clawtriage feedback list --jsonl | jq -r 'select(.verdict == \"not_duplicate\")'")]
    List {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        repo: RepoArg,
        /// At most this many.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100000))]
        limit: u32,
        #[command(flatten)]
        format: ListFormat,
    },
    /// Record a verdict on a pair (`--pair A B`) or a set (`--set ID --members ...`).
    #[command(after_help = "Examples:
  clawtriage feedback add -r acme/widgets --pair 12 15 --verdict duplicate
  clawtriage feedback add -r acme/widgets --set set-3f2a --members 12,15,20 --verdict not_duplicate --note 'different bugs'
  clawtriage feedback add -r acme/widgets --pair 12 15 --verdict base_is --base 12")]
    Add {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        repo: RepoArg,
        /// The two PRs of a pair verdict.
        #[arg(long, num_args = 2, value_names = ["A", "B"], conflicts_with = "set")]
        pair: Option<Vec<i64>>,
        /// The set of a set verdict (its id as `sets` shows it).
        #[arg(long, requires = "members")]
        set: Option<String>,
        /// The set's members as shown, comma-separated.
        #[arg(long, value_delimiter = ',')]
        members: Option<Vec<i64>>,
        /// duplicate | not_duplicate | competing | related | base_is.
        #[arg(long)]
        verdict: String,
        /// For base_is: the base PR.
        #[arg(long)]
        base: Option<i64>,
        /// Who (default: $USER).
        #[arg(long, env = "CLAWTRIAGE_ACTOR")]
        actor: Option<String>,
        /// Free text (at most 2,000 characters).
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        format: OneFormat,
    },
    /// Back up every verdict of every repository as JSONL (stdout, or --output FILE).
    #[command(after_help = "Examples:
  clawtriage feedback export > verdicts.jsonl
  clawtriage feedback export --output /backups/verdicts-$(date +%F).jsonl")]
    Export {
        #[command(flatten)]
        target: Target,
        /// Write here instead of stdout (replaced only once the export is complete).
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
    },
    /// Restore verdicts from an export (a file, or `-` for stdin). Every line is checked before
    /// anything is sent; verdicts already present are left alone, so importing twice is safe.
    #[command(after_help = "Examples:
  clawtriage feedback import verdicts.jsonl
  ssh old-box clawtriage feedback export | clawtriage feedback import -")]
    Import {
        /// The JSONL file, or `-` for stdin.
        file: PathBuf,
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        format: OneFormat,
    },
}

fn short(s: &str, max: usize) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().count() <= max {
        s
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn score(v: &Value) -> String {
    v.as_f64().map_or_else(|| "-".into(), |f| format!("{f:.2}"))
}

/// A borderless table with a header row.
fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::NOTHING);
    t.set_header(header.to_vec());
    t.add_rows(rows);
    t.lines()
        .map(|l| l.trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn print_json(v: &Value) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v).map_err(|e| CliError::Other(e.to_string()))?;
    writeln!(out).map_err(|e| CliError::Other(e.to_string()))
}

/// Prints a list as the format asks: `envelope` gains `schemaVersion` and `key: items`.
fn emit_list(
    format: ListFormat,
    mut envelope: Value,
    key: &str,
    items: Vec<Value>,
    human: impl FnOnce(&[Value]) -> String,
) -> Result<(), CliError> {
    if format.jsonl {
        let mut out = std::io::stdout().lock();
        for item in &items {
            serde_json::to_writer(&mut out, item).map_err(|e| CliError::Other(e.to_string()))?;
            writeln!(out).map_err(|e| CliError::Other(e.to_string()))?;
        }
        return Ok(());
    }
    if format.json {
        envelope["schemaVersion"] = json!(JSON_SCHEMA_VERSION);
        envelope[key] = Value::Array(items);
        return print_json(&envelope);
    }
    if items.is_empty() {
        eprintln!("(none)");
        return Ok(());
    }
    println!("{}", human(&items));
    Ok(())
}

/// The repository's id and name: `--repo`, or the only repository there is.
async fn resolve_repo(client: &Client, repo: &RepoArg) -> Result<(i64, String), CliError> {
    let answer = client.get_json(&["api", "repos"], &[]).await?;
    let repos = answer["repos"].as_array().cloned().unwrap_or_default();
    let name_of = |r: &Value| format!("{}/{}", text(&r["owner"]), text(&r["name"]));
    let pick = match &repo.repo {
        Some(want) => {
            crate::config::RepoName::parse(want)
                .map_err(|e| CliError::Usage(format!("--repo: {e}")))?;
            repos
                .iter()
                .find(|r| name_of(r).eq_ignore_ascii_case(want.trim()))
                .ok_or_else(|| CliError::Http {
                    status: reqwest::StatusCode::NOT_FOUND,
                    message: format!(
                        "no repository {want} on this appliance (it has: {})",
                        if repos.is_empty() {
                            "none yet".to_string()
                        } else {
                            repos.iter().map(name_of).collect::<Vec<_>>().join(", ")
                        }
                    ),
                })?
        }
        None => match repos.as_slice() {
            [one] => one,
            [] => {
                return Err(CliError::Http {
                    status: reqwest::StatusCode::NOT_FOUND,
                    message: "the appliance has no repository yet (trigger a scan first)".into(),
                });
            }
            many => {
                return Err(CliError::Usage(format!(
                    "--repo is needed: the appliance triages {} repositories ({})",
                    many.len(),
                    many.iter().map(name_of).collect::<Vec<_>>().join(", ")
                )));
            }
        },
    };
    let id = pick["repoId"]
        .as_i64()
        .ok_or_else(|| CliError::Other("a repository without repoId".into()))?;
    Ok((id, name_of(pick)))
}

/// `clawtriage repos`.
pub async fn repos(a: ReposArgs) -> Result<(), CliError> {
    let client = a.target.client()?;
    let answer = client.get_json(&["api", "repos"], &[]).await?;
    let items = answer["repos"].as_array().cloned().unwrap_or_default();
    emit_list(a.format, json!({}), "repos", items, |items| {
        table(
            &["ID", "REPOSITORY", "OPEN PRS", "LAST SCAN"],
            items
                .iter()
                .map(|r| {
                    vec![
                        text(&r["repoId"]),
                        format!("{}/{}", text(&r["owner"]), text(&r["name"])),
                        text(&r["openPrs"]),
                        text(&r["lastScanAt"]),
                    ]
                })
                .collect(),
        )
    })
}

/// Pages of a cursor-paged listing at `segments` (query `q` on every page, pages of at most
/// `page_max`) until `want` items of the array `key` or the last page: the items and the last
/// page read.
async fn pages(
    client: &Client,
    segments: &[&str],
    q: &[(&str, String)],
    key: &str,
    want: usize,
    page_max: usize,
) -> Result<(Vec<Value>, Value), CliError> {
    let mut items: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("limit", (want - items.len()).min(page_max).to_string())];
        query.extend(q.iter().cloned());
        if let Some(c) = &cursor {
            query.push(("cursor", c.clone()));
        }
        let page = client.get_json(segments, &query).await?;
        items.extend(page[key].as_array().cloned().unwrap_or_default());
        cursor = page["nextCursor"].as_str().map(str::to_string);
        if cursor.is_none() || items.len() >= want {
            return Ok((items, page));
        }
    }
}

/// `clawtriage sets`.
pub async fn sets(a: SetsArgs) -> Result<(), CliError> {
    let client = a.target.client()?;
    let (id, name) = resolve_repo(&client, &a.repo).await?;
    let id = id.to_string();
    let want = a.limit as usize;
    let mut q: Vec<(&str, String)> = Vec::new();
    if let Some(s) = a.min_score {
        q.push(("minScore", s.to_string()));
    }
    if let Some(s) = &a.state {
        q.push(("state", s.clone()));
    }
    if let Some(c) = &a.categories {
        q.push(("includeCategories", c.clone()));
    }
    let (mut items, last) = pages(
        &client,
        &["api", "repos", &id, "duplicate-sets"],
        &q,
        "sets",
        want,
        100,
    )
    .await?;
    let total = last["total"].clone();
    items.truncate(want);
    emit_list(
        a.format,
        json!({"repo": name, "total": total}),
        "sets",
        items,
        |items| {
            table(
                &[
                    "SET",
                    "TIER",
                    "SIZE",
                    "SCORE",
                    "KEEP",
                    "MEMBERS",
                    "CATEGORIES",
                ],
                items
                    .iter()
                    .map(|s| {
                        let members = s["members"]
                            .as_array()
                            .map(|m| {
                                m.iter()
                                    .map(|p| format!("#{}", text(&p["number"])))
                                    .collect::<Vec<_>>()
                                    .join(" ")
                            })
                            .unwrap_or_default();
                        let cats = s["categories"]
                            .as_array()
                            .map(|c| c.iter().map(text).collect::<Vec<_>>().join(","))
                            .unwrap_or_default();
                        vec![
                            text(&s["setId"]),
                            text(&s["tier"]),
                            text(&s["size"]),
                            score(&s["maxScore"]),
                            format!("#{}", text(&s["keep"]["number"])),
                            short(&members, 60),
                            cats,
                        ]
                    })
                    .collect(),
            )
        },
    )
}

/// `clawtriage pr`.
pub async fn pr(a: PrArgs) -> Result<(), CliError> {
    let client = a.target.client()?;
    let (id, name) = resolve_repo(&client, &a.repo).await?;
    let pr = client
        .get_json(
            &[
                "api",
                "repos",
                &id.to_string(),
                "prs",
                &a.number.to_string(),
            ],
            &[],
        )
        .await?;
    if a.format.json {
        return print_json(&json!({"schemaVersion": JSON_SCHEMA_VERSION, "repo": name, "pr": pr}));
    }
    println!(
        "{name}#{} {}",
        text(&pr["number"]),
        short(&text(&pr["title"]), 100)
    );
    println!(
        "{} by {} · head {} · base {} · {}",
        text(&pr["state"]),
        text(&pr["author"]),
        short(&text(&pr["headSha"]), 12),
        text(&pr["baseRef"]),
        text(&pr["url"])
    );
    match pr.get("analysis").filter(|a| !a.is_null()) {
        Some(an) => println!(
            "analysis: {} ({} candidates, from {}){}",
            text(&an["status"]),
            text(&an["candidates"]),
            text(&an["source"]),
            an["error"]
                .as_str()
                .map(|e| format!(" — {e}"))
                .unwrap_or_default()
        ),
        None => println!("analysis: none yet"),
    }
    let files = pr["files"].as_array().cloned().unwrap_or_default();
    if !files.is_empty() {
        println!();
        let shown = 30;
        println!(
            "{}",
            table(
                &["CHANNEL", "+", "-", "PATH"],
                files
                    .iter()
                    .take(shown)
                    .map(|f| vec![
                        text(&f["channel"]),
                        text(&f["additions"]),
                        text(&f["deletions"]),
                        short(&text(&f["path"]), 90),
                    ])
                    .collect(),
            )
        );
        if files.len() > shown {
            println!(
                "… and {} more files (--json lists them all)",
                files.len() - shown
            );
        }
    }
    Ok(())
}

/// `clawtriage candidates`.
pub async fn candidates(a: CandidatesArgs) -> Result<(), CliError> {
    let client = a.target.client()?;
    let (id, name) = resolve_repo(&client, &a.repo).await?;
    let mut q = vec![("limit", a.limit.to_string())];
    if let Some(s) = a.min_score {
        q.push(("minScore", s.to_string()));
    }
    let answer = client
        .get_json(
            &[
                "api",
                "repos",
                &id.to_string(),
                "prs",
                &a.number.to_string(),
                "candidates",
            ],
            &q,
        )
        .await?;
    let items = answer["candidates"].as_array().cloned().unwrap_or_default();
    emit_list(
        a.format,
        json!({"repo": name, "number": a.number}),
        "candidates",
        items,
        |items| {
            table(
                &["PR", "SCORE", "CATEGORY", "STATE", "VERDICT", "TITLE"],
                items
                    .iter()
                    .map(|c| {
                        vec![
                            format!("#{}", text(&c["candidatePrNumber"])),
                            score(&c["finalScore"]),
                            text(&c["category"]),
                            text(&c["candidateState"]),
                            text(&c["feedback"]),
                            short(&text(&c["candidateTitle"]), 60),
                        ]
                    })
                    .collect(),
            )
        },
    )
}

fn scan_row(s: &Value) -> Vec<String> {
    vec![
        text(&s["jobId"]),
        text(&s["state"]),
        format!(
            "{}/{}",
            s["prsAnalyzed"].as_i64().unwrap_or(0)
                + s["prsUnchanged"].as_i64().unwrap_or(0)
                + s["prsFailed"].as_i64().unwrap_or(0),
            text(&s["prsListed"])
        ),
        text(&s["prsFailed"]),
        text(&s["apiCalls"]),
        format!(
            "{}{}",
            text(&s["trigger"]),
            s["actor"]
                .as_str()
                .map(|a| format!(" by {}", short(a, 40)))
                .unwrap_or_default()
        ),
        text(&s["createdAt"]),
    ]
}

const SCAN_HEADER: &[&str] = &[
    "JOB",
    "STATE",
    "SETTLED",
    "FAILED",
    "API CALLS",
    "BY",
    "QUEUED",
];

/// `clawtriage scans`.
pub async fn scans(a: ScansArgs) -> Result<(), CliError> {
    let client = a.target.client()?;
    if let Some(job) = &a.job_id {
        let s = client.get_json(&["api", "ops", "scans", job], &[]).await?;
        if a.format.json || a.format.jsonl {
            return print_json(&json!({"schemaVersion": JSON_SCHEMA_VERSION, "scan": s}));
        }
        println!("{}", table(SCAN_HEADER, vec![scan_row(&s)]));
        if let Some(e) = s["error"].as_str() {
            println!("error: {e}");
        }
        return Ok(());
    }
    let answer = client
        .get_json(&["api", "ops", "scans"], &[("limit", a.limit.to_string())])
        .await?;
    let items = answer["scans"].as_array().cloned().unwrap_or_default();
    emit_list(a.format, json!({}), "scans", items, |items| {
        table(SCAN_HEADER, items.iter().map(scan_row).collect())
    })
}

/// `clawtriage feedback ...`.
pub async fn feedback(a: FeedbackArgs) -> Result<(), CliError> {
    match a.command {
        FeedbackCommand::List {
            target,
            repo,
            limit,
            format,
        } => feedback_list(target, repo, limit, format).await,
        FeedbackCommand::Add {
            target,
            repo,
            pair,
            set,
            members,
            verdict,
            base,
            actor,
            note,
            format,
        } => {
            let client = target.client()?;
            let (id, _) = resolve_repo(&client, &repo).await?;
            let mut body = json!({"verdict": verdict});
            match (pair, set) {
                (Some(p), None) => {
                    body["target"] = json!("pair");
                    body["a"] = json!(p[0]);
                    body["b"] = json!(p[1]);
                }
                (None, Some(s)) => {
                    body["target"] = json!("set");
                    body["setId"] = json!(s);
                    body["members"] = json!(members.unwrap_or_default());
                }
                _ => {
                    return Err(CliError::Usage(
                        "name a pair (--pair A B) or a set (--set ID --members ...)".into(),
                    ));
                }
            }
            if let Some(b) = base {
                body["baseNumber"] = json!(b);
            }
            let actor = actor.or_else(|| std::env::var("USER").ok());
            if let Some(a) = actor.filter(|a| !a.is_empty()) {
                body["actor"] = json!(a);
            }
            if let Some(n) = note {
                body["note"] = json!(n);
            }
            let row = client
                .post(
                    &["api", "repos", &id.to_string(), "feedback"],
                    "application/json",
                    body.to_string().into_bytes(),
                    &[],
                )
                .await?;
            if format.json {
                return print_json(&json!({"schemaVersion": JSON_SCHEMA_VERSION, "feedback": row}));
            }
            println!(
                "recorded verdict {} ({})",
                text(&row["feedbackId"]),
                text(&row["verdict"])
            );
            Ok(())
        }
        FeedbackCommand::Export { target, output } => feedback_export(target, output).await,
        FeedbackCommand::Import {
            file,
            target,
            format,
        } => feedback_import(target, file, format).await,
    }
}

async fn feedback_list(
    target: Target,
    repo: RepoArg,
    limit: u32,
    format: ListFormat,
) -> Result<(), CliError> {
    let client = target.client()?;
    let (id, name) = resolve_repo(&client, &repo).await?;
    let id = id.to_string();
    let want = limit as usize;
    let (items, _) = pages(
        &client,
        &["api", "repos", &id, "feedback"],
        &[],
        "feedback",
        want,
        1000,
    )
    .await?;
    emit_list(format, json!({"repo": name}), "feedback", items, |items| {
        table(
            &["ID", "GIVEN", "ON", "VERDICT", "BY", "NOTE"],
            items
                .iter()
                .map(|f| {
                    let on = if f["target"] == "pair" {
                        format!("#{} #{}", text(&f["aNumber"]), text(&f["bNumber"]))
                    } else {
                        format!("set {}", text(&f["setId"]))
                    };
                    vec![
                        text(&f["feedbackId"]),
                        text(&f["createdAt"]),
                        on,
                        text(&f["verdict"]),
                        short(&text(&f["actor"]), 30),
                        short(&text(&f["note"]), 40),
                    ]
                })
                .collect(),
        )
    })
}

async fn feedback_export(target: Target, output: Option<PathBuf>) -> Result<(), CliError> {
    let client = target.client()?;
    let io = |e: std::io::Error| CliError::Other(format!("writing the export: {e}"));
    // A file is written beside its final name and renamed once complete.
    let (mut sink, tmp): (Box<dyn Write>, Option<PathBuf>) = match &output {
        Some(path) => {
            let tmp = path.with_extension("partial");
            let f = std::fs::File::create(&tmp).map_err(io)?;
            (Box::new(std::io::BufWriter::new(f)), Some(tmp))
        }
        None => (Box::new(std::io::stdout().lock()), None),
    };
    let mut cursor: Option<String> = None;
    let mut count = 0usize;
    loop {
        let mut q = vec![("limit", "1000".to_string())];
        if let Some(c) = &cursor {
            q.push(("cursor", c.clone()));
        }
        let (body, headers) = client.get_text(&["api", "feedback", "export"], &q).await?;
        for line in body.lines().filter(|l| !l.trim().is_empty()) {
            writeln!(sink, "{line}").map_err(io)?;
            count += 1;
        }
        cursor = headers
            .get("x-next-cursor")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    sink.flush().map_err(io)?;
    drop(sink);
    if let (Some(tmp), Some(path)) = (tmp, &output) {
        std::fs::rename(&tmp, path).map_err(io)?;
        eprintln!("exported {count} verdicts to {}", path.display());
    } else {
        eprintln!("exported {count} verdicts");
    }
    Ok(())
}

/// Lines per import request, and bytes (well under the import route's own 2 MiB bound).
const IMPORT_BATCH_LINES: usize = 500;
const IMPORT_BATCH_BYTES: usize = 512 * 1024;

/// Reads the export's lines, each at most [`MAX_LINE_BYTES`] (checked while reading).
fn read_lines(file: &PathBuf) -> Result<Vec<(usize, String)>, CliError> {
    let reader: Box<dyn BufRead> = if file.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let f = std::fs::File::open(file)
            .map_err(|e| CliError::Invalid(format!("{}: {e}", file.display())))?;
        Box::new(std::io::BufReader::new(f))
    };
    let mut reader = reader;
    let mut out = Vec::new();
    let mut n = 0usize;
    loop {
        n += 1;
        let mut buf = Vec::new();
        let read = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| CliError::Invalid(format!("{}: {e}", file.display())))?;
        if read == 0 {
            break;
        }
        if buf.len() > MAX_LINE_BYTES && buf.last() != Some(&b'\n') {
            return Err(CliError::Invalid(format!(
                "line {n}: longer than {MAX_LINE_BYTES} bytes; nothing was imported"
            )));
        }
        let line = String::from_utf8(buf).map_err(|_| {
            CliError::Invalid(format!("line {n}: not UTF-8 text; nothing was imported"))
        })?;
        let line = line.trim_end_matches(['\n', '\r']).to_string();
        if !line.trim().is_empty() {
            out.push((n, line));
        }
    }
    Ok(out)
}

async fn feedback_import(target: Target, file: PathBuf, format: OneFormat) -> Result<(), CliError> {
    let lines = read_lines(&file)?;
    let bad: Vec<String> = lines
        .iter()
        .filter_map(|(n, l)| {
            VerdictRecord::parse_line(l)
                .err()
                .map(|e| format!("line {n}: {e}"))
        })
        .collect();
    if !bad.is_empty() {
        let shown = bad
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n  ");
        let more = if bad.len() > 10 {
            format!("\n  … and {} more", bad.len() - 10)
        } else {
            String::new()
        };
        return Err(CliError::Invalid(format!(
            "{} of {} lines are not valid verdicts; nothing was imported:\n  {shown}{more}",
            bad.len(),
            lines.len()
        )));
    }
    let client = target.client()?;
    let (mut imported, mut present) = (0u64, 0u64);
    let mut start = 0;
    while start < lines.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < lines.len()
            && end - start < IMPORT_BATCH_LINES
            && (end == start || bytes + lines[end].1.len() < IMPORT_BATCH_BYTES)
        {
            bytes += lines[end].1.len() + 1;
            end += 1;
        }
        let mut body = String::with_capacity(bytes);
        for (_, line) in &lines[start..end] {
            body.push_str(line);
            body.push('\n');
        }
        let sent = client
            .post(
                &["api", "feedback", "import"],
                "application/x-ndjson",
                body.into_bytes(),
                &[],
            )
            .await;
        match sent {
            Ok(answer) => {
                imported += answer["imported"].as_u64().unwrap_or(0);
                present += answer["alreadyPresent"].as_u64().unwrap_or(0);
                start = end;
            }
            Err(e) => {
                if imported + present > 0 {
                    eprintln!(
                        "{imported} verdicts were imported before this error; importing the file again is safe"
                    );
                }
                return Err(e);
            }
        }
    }
    if format.json {
        return print_json(&json!({
            "schemaVersion": JSON_SCHEMA_VERSION,
            "imported": imported,
            "alreadyPresent": present,
        }));
    }
    println!("imported {imported} verdicts; {present} were already there");
    Ok(())
}
