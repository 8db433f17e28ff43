//! Command-line subcommands other than `serve` and `migrate`: the ones that talk to a running
//! appliance (`trigger`, and `repos`, `sets`, `pr`, `candidates`, `scans`, `feedback` in
//! [`commands`]) and `eval`. Exit codes are in [`client::exit`].

pub mod client;
pub mod commands;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use client::{CliError, Client};

/// `clawtriage trigger`.
#[derive(Args)]
#[command(after_help = "Examples:
  OPS_TRIGGER_TOKEN=... clawtriage trigger --owner acme --repo widgets --wait
  clawtriage trigger --url https://you-clawtriage.fly.dev --owner acme --repo widgets --snapshot 2026-11-22 --json")]
pub struct TriggerArgs {
    /// Repository owner.
    #[arg(long)]
    pub owner: String,
    /// Repository name.
    #[arg(long)]
    pub repo: String,
    /// Base URL of the running appliance.
    #[arg(long, env = "CLAWTRIAGE_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Cap on the open PRs scanned (newest first).
    #[arg(long)]
    pub max_open_prs: Option<u32>,
    /// Snapshot id: triggering the same snapshot twice scans once (default: now).
    #[arg(long)]
    pub snapshot: Option<String>,
    /// Read the appliance's ops token from the first line of standard input instead of the
    /// OPS_TRIGGER_TOKEN environment variable. (There is no flag taking the token itself: a
    /// command line is visible to every user of the machine.)
    #[arg(long)]
    pub token_stdin: bool,
    /// Recorded with the scan as who asked for it (sent as X-Trigger-Actor).
    #[arg(long, env = "TRIGGER_ACTOR", default_value = "cli")]
    pub actor: String,
    /// Wait for the scan to finish, showing its progress on stderr.
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 3600)]
    pub wait_timeout_secs: u64,
    /// Print the appliance's answer (and, with --wait, the finished scan) as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `clawtriage eval`: quality figures of the engine on a labelled PR set, and a quality gate.
///
/// Exit codes: 0 = figures printed and every given threshold met; 1 = the set could not be
/// read; 3 = a threshold was missed (each miss is named on stderr).
///
/// Example (the CI gate): `clawtriage eval tests/fixtures/datasets/playwright-slice
/// --min-recall5 0.9 --min-kind-recall5 0.8 --min-precision 0.97 --max-hard-negatives 0
/// --min-set-precision 0.97`
#[derive(Args)]
pub struct EvalArgs {
    /// A PR set folder (prs.jsonl.gz + labels.json).
    #[arg(default_value = "../shared/datasets/playwright-1k")]
    pub dir: PathBuf,
    /// Engine configuration file (TOML, merged over the built-in one).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Suggestions kept per PR.
    #[arg(long, default_value_t = 10)]
    pub top_k: usize,
    /// List this many missed pairs, false suggestions, trapped hard negatives and imprecise sets.
    #[arg(long, default_value_t = 0)]
    pub examples: usize,
    /// Fail unless recall@5 over all labelled pairs is at least this.
    #[arg(long)]
    pub min_recall5: Option<f64>,
    /// Fail unless recall@5 of every label kind is at least this.
    #[arg(long)]
    pub min_kind_recall5: Option<f64>,
    /// Fail unless the precision of every suggested category is at least this.
    #[arg(long)]
    pub min_precision: Option<f64>,
    /// Fail when more hard-negative pairs than this are suggested.
    #[arg(long)]
    pub max_hard_negatives: Option<usize>,
    /// Fail unless the duplicate-set precision is at least this.
    #[arg(long)]
    pub min_set_precision: Option<f64>,
}

/// Exit code of `clawtriage eval` when a quality threshold is missed.
pub const EVAL_GATE_FAILED: u8 = 3;

fn progress_line(s: &serde_json::Value) -> String {
    let n = |k: &str| s.get(k).and_then(|v| v.as_i64()).unwrap_or(0);
    let listed = n("prsListed");
    let settled = n("prsAnalyzed") + n("prsUnchanged") + n("prsFailed");
    let width = 30usize;
    let filled = if listed > 0 {
        (settled as usize * width / listed as usize).min(width)
    } else {
        0
    };
    format!(
        "[{}{}] {}/{} PRs ({} analysed, {} unchanged, {} failed) · {} API calls · {}",
        "#".repeat(filled),
        " ".repeat(width - filled),
        settled,
        listed,
        n("prsAnalyzed"),
        n("prsUnchanged"),
        n("prsFailed"),
        n("apiCalls"),
        s.get("state").and_then(|v| v.as_str()).unwrap_or("?"),
    )
}

/// The ops token: the first line of standard input with `--token-stdin`, else OPS_TRIGGER_TOKEN.
fn read_token(from_stdin: bool) -> Result<String, CliError> {
    let token = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| CliError::Invalid(format!("cannot read the token from stdin: {e}")))?;
        line
    } else {
        std::env::var("OPS_TRIGGER_TOKEN").unwrap_or_default()
    };
    let token = token.trim().to_string();
    if token.is_empty() {
        return Err(CliError::Usage(
            "no ops token: set OPS_TRIGGER_TOKEN, or pass --token-stdin and write it to standard input"
                .into(),
        ));
    }
    Ok(token)
}

async fn trigger_async(args: TriggerArgs) -> Result<(), CliError> {
    let token = read_token(args.token_stdin)?;
    let client = Client::new(&args.url, Some(token))?;
    let mut body = serde_json::json!({"owner": args.owner, "repo": args.repo});
    if let Some(m) = args.max_open_prs {
        body["maxOpenPrs"] = m.into();
    }
    if let Some(s) = &args.snapshot {
        body["snapshot"] = s.clone().into();
    }
    let answer = client
        .post(
            &["api", "ops", "public-scan"],
            "application/json",
            body.to_string().into_bytes(),
            &[("x-trigger-actor", args.actor.as_str())],
        )
        .await?;
    let job_id = answer["jobId"].as_str().unwrap_or_default().to_string();
    if answer["enqueued"].as_bool() == Some(true) {
        eprintln!("scan queued: {job_id}");
    } else {
        eprintln!("this snapshot was triggered before: {job_id}");
    }
    if !args.wait {
        if args.json {
            println!("{answer}");
        } else {
            println!("{job_id}");
        }
        return Ok(());
    }
    if !args.json {
        println!("{job_id}");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.wait_timeout_secs);
    loop {
        let s = client
            .get_json(&["api", "ops", "scans", &job_id], &[])
            .await?;
        eprint!("\r{}", progress_line(&s));
        let _ = std::io::stderr().flush();
        match s["state"].as_str() {
            Some("done") => {
                eprintln!();
                if args.json {
                    println!("{s}");
                }
                return Ok(());
            }
            Some("failed") => {
                eprintln!();
                if args.json {
                    println!("{s}");
                }
                return Err(CliError::ScanFailed(
                    s["error"].as_str().unwrap_or("unknown error").to_string(),
                ));
            }
            _ => {}
        }
        if tokio::time::Instant::now() > deadline {
            eprintln!();
            return Err(CliError::TimedOut(format!(
                "gave up waiting after {} s; the scan goes on (clawtriage scans '{job_id}')",
                args.wait_timeout_secs
            )));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Runs `clawtriage trigger`.
pub fn trigger(args: TriggerArgs) -> ExitCode {
    client::run("trigger", trigger_async(args))
}

/// Runs `clawtriage eval`.
pub fn eval(args: EvalArgs) -> ExitCode {
    let mut opts = crate::eval::EvalOptions {
        top_k: args.top_k,
        show_examples: args.examples,
        ..Default::default()
    };
    if let Some(path) = &args.config {
        let parsed = std::fs::read_to_string(path)
            .map_err(anyhow::Error::from)
            .and_then(|t| Ok(crate::triage::TriageConfig::from_toml_str(&t)?));
        match parsed {
            Ok(cfg) => opts.config = cfg,
            Err(e) => {
                eprintln!("clawtriage eval: {}: {e:#}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    let gate = crate::eval::Gate {
        min_recall5: args.min_recall5,
        min_kind_recall5: args.min_kind_recall5,
        min_precision: args.min_precision,
        max_hard_negatives: args.max_hard_negatives,
        min_set_precision: args.min_set_precision,
    };
    match crate::eval::run(&args.dir, &opts) {
        Ok(report) => {
            println!("{report}");
            if gate.is_empty() {
                return ExitCode::SUCCESS;
            }
            let missed = gate.check(&report);
            if missed.is_empty() {
                eprintln!("quality gate: passed");
                ExitCode::SUCCESS
            } else {
                for m in &missed {
                    eprintln!("quality gate: FAILED: {m}");
                }
                ExitCode::from(EVAL_GATE_FAILED)
            }
        }
        Err(e) => {
            eprintln!("clawtriage eval: {e:#}");
            ExitCode::FAILURE
        }
    }
}
