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
    /// Ops token of the appliance (set it in the environment rather than on the command line).
    #[arg(long, env = "OPS_TRIGGER_TOKEN", hide_env_values = true)]
    pub token: String,
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

/// `clawtriage eval`.
#[derive(Args)]
pub struct EvalArgs {
    /// A PR set folder (prs.jsonl.gz + labels.json).
    #[arg(default_value = "../shared/datasets/playwright-1k")]
    pub dir: PathBuf,
}

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

async fn trigger_async(args: TriggerArgs) -> Result<(), CliError> {
    let client = Client::new(&args.url, Some(args.token.clone()))?;
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
    match crate::eval::run(&args.dir, &crate::eval::EvalOptions::default()) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("clawtriage eval: {e:#}");
            ExitCode::FAILURE
        }
    }
}
