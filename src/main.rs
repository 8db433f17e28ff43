//! `clawtriage`: serve | migrate | trigger | eval, and the commands that read a running
//! appliance (repos | sets | pr | candidates | scans | feedback).

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use clawtriage::cli::client;
use clawtriage::cli::commands;
use clawtriage::config::{LogFormat, Settings};

/// ClawTriage finds duplicate pull requests in busy GitHub repositories and shows maintainers,
/// with evidence, which PRs are the same change, the same feature, or competing implementations.
///
/// Every flag can also be given as the environment variable named in its help; flags win.
#[derive(Parser)]
#[command(
    name = "clawtriage",
    version,
    about,
    long_about,
    after_long_help = "Exit codes of the commands that talk to an appliance:
  0  done
  1  any other error (e.g. an invalid import file: nothing is imported)
  2  invalid command line, or the appliance refused the request as invalid (400)
  3  the appliance could not be reached
  4  missing or wrong token (401, 403)
  5  no such repository, PR or scan (404)
  6  the appliance cannot serve now: database, queue, disk or rate limit (503, 429)
  7  trigger --wait: the scan failed
  8  trigger --wait: gave up waiting (the scan goes on)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API, dashboard, webhooks and job workers in one process.
    Serve(Box<Settings>),
    /// Apply pending database migrations and exit.
    Migrate {
        /// Postgres connection URL.
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: String,
    },
    /// Ask a running appliance to scan a repository's open PRs (POST /api/ops/public-scan).
    Trigger(clawtriage::cli::TriggerArgs),
    /// Run the triage engine over a PR set and print quality figures.
    Eval(clawtriage::cli::EvalArgs),
    /// List the repositories a running appliance triages.
    Repos(commands::ReposArgs),
    /// Duplicate sets of a repository, strongest first.
    Sets(commands::SetsArgs),
    /// One pull request: state, head, latest analysis and files by channel.
    Pr(commands::PrArgs),
    /// A pull request's ranked candidates with category and score.
    Candidates(commands::CandidatesArgs),
    /// Recent scans with their progress, or one scan.
    Scans(commands::ScansArgs),
    /// Maintainer verdicts: list, add, export (backup) and import (restore).
    Feedback(commands::FeedbackArgs),
}

fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,refinery_core=warn,tokio_postgres=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(settings) => {
            let config = match settings.validate() {
                Ok(c) => c,
                Err(e) => {
                    eprint!("clawtriage serve: {e}");
                    return ExitCode::from(2);
                }
            };
            init_tracing(config.log_format);
            let rt = match runtime() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("clawtriage: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let result = rt.block_on(async move {
                let state = clawtriage::server::build_state(config).await?;
                clawtriage::server::run(state, clawtriage::server::shutdown_signal(), None).await
            });
            rt.shutdown_timeout(Duration::from_secs(1));
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "clawtriage serve failed");
                    eprintln!("clawtriage serve: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Migrate { database_url } => {
            init_tracing(LogFormat::Text);
            let rt = match runtime() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("clawtriage: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let result = rt.block_on(async move {
                let pool =
                    clawtriage::store::connect(&database_url, 2).map_err(anyhow::Error::msg)?;
                clawtriage::server::migrate_with_retry(&pool, Duration::from_secs(30)).await
            });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("clawtriage migrate: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Trigger(args) => clawtriage::cli::trigger(args),
        Command::Eval(args) => clawtriage::cli::eval(args),
        Command::Repos(a) => client::run("repos", commands::repos(a)),
        Command::Sets(a) => client::run("sets", commands::sets(a)),
        Command::Pr(a) => client::run("pr", commands::pr(a)),
        Command::Candidates(a) => client::run("candidates", commands::candidates(a)),
        Command::Scans(a) => client::run("scans", commands::scans(a)),
        Command::Feedback(a) => client::run("feedback", commands::feedback(a)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
