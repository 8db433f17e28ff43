//! Command-line subcommands other than `serve` and `migrate`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

/// `clawtriage trigger`.
#[derive(Args)]
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
    /// Recorded with the scan as who asked for it.
    #[arg(long, env = "TRIGGER_ACTOR", default_value = "cli")]
    pub actor: String,
    /// Wait for the scan to finish, showing its progress.
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 3600)]
    pub wait_timeout_secs: u64,
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
fn read_token(from_stdin: bool) -> anyhow::Result<String> {
    let token = if from_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        line
    } else {
        std::env::var("OPS_TRIGGER_TOKEN").unwrap_or_default()
    };
    let token = token.trim().to_string();
    if token.is_empty() {
        anyhow::bail!(
            "no ops token: set OPS_TRIGGER_TOKEN, or pass --token-stdin and write it to standard input"
        );
    }
    Ok(token)
}

async fn trigger_async(args: TriggerArgs, token: String) -> anyhow::Result<bool> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let base = args.url.trim_end_matches('/');
    let mut body = serde_json::json!({"owner": args.owner, "repo": args.repo});
    if let Some(m) = args.max_open_prs {
        body["maxOpenPrs"] = m.into();
    }
    if let Some(s) = &args.snapshot {
        body["snapshot"] = s.clone().into();
    }
    let resp = http
        .post(format!("{base}/api/ops/public-scan"))
        .bearer_auth(&token)
        .header("x-trigger-actor", &args.actor)
        .json(&body)
        .send()
        .await?;
    let status = resp.status();
    let answer: serde_json::Value = resp.json().await.unwrap_or_default();
    if !status.is_success() {
        let msg = answer["error"]["message"].as_str().unwrap_or("no message");
        anyhow::bail!("the appliance answered {status}: {msg}");
    }
    let job_id = answer["jobId"].as_str().unwrap_or_default().to_string();
    if answer["enqueued"].as_bool() == Some(true) {
        eprintln!("scan queued: {job_id}");
    } else {
        eprintln!("this snapshot was triggered before: {job_id}");
    }
    println!("{job_id}");
    if !args.wait {
        return Ok(true);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.wait_timeout_secs);
    let url = format!("{base}/api/ops/scans/{}", job_id.replace('/', "%2F"));
    loop {
        let s: serde_json::Value = http
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        eprint!("\r{}", progress_line(&s));
        let _ = std::io::stderr().flush();
        match s["state"].as_str() {
            Some("done") => {
                eprintln!();
                return Ok(true);
            }
            Some("failed") => {
                eprintln!();
                eprintln!(
                    "scan failed: {}",
                    s["error"].as_str().unwrap_or("unknown error")
                );
                return Ok(false);
            }
            _ => {}
        }
        if tokio::time::Instant::now() > deadline {
            eprintln!();
            anyhow::bail!("gave up waiting after {} s", args.wait_timeout_secs);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Runs `clawtriage trigger`.
pub fn trigger(args: TriggerArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("clawtriage trigger: {e}");
            return ExitCode::FAILURE;
        }
    };
    let token = match read_token(args.token_stdin) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("clawtriage trigger: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(trigger_async(args, token)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("clawtriage trigger: {e:#}");
            ExitCode::FAILURE
        }
    }
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
