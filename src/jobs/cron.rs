//! The in-process scan schedule (`SCAN_SCHEDULE` + `SCAN_REPOS`), driven by apalis-cron. Each
//! tick queues one scan per repository whose snapshot id is the tick's *period* (for an hourly
//! schedule `2026-11-22T14`), so two ticks of one period, a restart, or a Fly-scheduled trigger
//! in the same period never scan twice. A tick missed while the machine was down is caught up
//! once at start-up (only the latest missed period), never replayed many times.

use std::str::FromStr;

use apalis::prelude::*;
use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};

use super::ScanJob;
use crate::state::AppState;

/// How a schedule's periods are named, from the gap between its ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    /// `2026-11-22T14:05:30`.
    Second,
    /// `2026-11-22T14:05`.
    Minute,
    /// `2026-11-22T14` (what Fly's hourly schedule sends).
    Hour,
    /// `2026-11-22` (daily).
    Day,
    /// `2026-W47` (ISO week; weekly).
    Week,
    /// `2026-11` (monthly).
    Month,
}

impl Granularity {
    /// The granularity of a schedule: the smallest gap between its next few ticks.
    pub fn of(schedule: &cron::Schedule, now: DateTime<Utc>) -> Granularity {
        let ticks: Vec<DateTime<Utc>> = schedule.after(&now).take(6).collect();
        let gap = ticks
            .windows(2)
            .map(|w| (w[1] - w[0]).num_seconds())
            .min()
            .unwrap_or(i64::MAX);
        match gap {
            g if g >= 28 * 86_400 => Granularity::Month,
            g if g >= 7 * 86_400 => Granularity::Week,
            g if g >= 86_400 => Granularity::Day,
            g if g >= 3_600 => Granularity::Hour,
            g if g >= 60 => Granularity::Minute,
            _ => Granularity::Second,
        }
    }

    /// The period a moment belongs to.
    pub fn period(self, t: DateTime<Utc>) -> String {
        let fmt = match self {
            Granularity::Second => "%Y-%m-%dT%H:%M:%S",
            Granularity::Minute => "%Y-%m-%dT%H:%M",
            Granularity::Hour => "%Y-%m-%dT%H",
            Granularity::Day => "%Y-%m-%d",
            Granularity::Week => "%G-W%V",
            Granularity::Month => "%Y-%m",
        };
        t.format(fmt).to_string()
    }

    /// How far back to look for a missed tick.
    fn lookback(self) -> ChronoDuration {
        match self {
            Granularity::Second => ChronoDuration::minutes(1),
            Granularity::Minute => ChronoDuration::hours(2),
            Granularity::Hour => ChronoDuration::days(2),
            Granularity::Day => ChronoDuration::days(8),
            Granularity::Week => ChronoDuration::days(15),
            Granularity::Month => ChronoDuration::days(63),
        }
    }
}

/// The latest tick at or before `now`, if one fell within the look-back window.
pub fn latest_tick(schedule: &cron::Schedule, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let g = Granularity::of(schedule, now);
    schedule
        .after(&(now - g.lookback()))
        .take_while(|t| *t <= now)
        .last()
}

/// The scans one tick queues.
pub fn scans_for_tick(
    state: &AppState,
    granularity: Granularity,
    t: DateTime<Utc>,
) -> Vec<ScanJob> {
    let period = granularity.period(t);
    state
        .config
        .scan_repos
        .iter()
        .map(|r| ScanJob {
            owner: r.owner.clone(),
            repo: r.name.clone(),
            snapshot: period.clone(),
            max_open_prs: None,
        })
        .collect()
}

async fn enqueue_all(state: &AppState, jobs: Vec<ScanJob>) {
    for job in jobs {
        match super::scan::enqueue(state, &job, "cron", Some("schedule")).await {
            Ok(outcome) => tracing::info!(scan = %job.job_id(), ?outcome, "scheduled scan"),
            Err(e) => {
                tracing::warn!(scan = %job.job_id(), error = %e, "scheduled scan not queued")
            }
        }
    }
}

/// apalis-cron handler: one tick.
pub async fn on_tick(tick: apalis_cron::Tick, state: Data<AppState>) -> Result<(), BoxDynError> {
    let Some(expr) = state.config.scan_schedule.clone() else {
        return Ok(());
    };
    let schedule = cron::Schedule::from_str(&expr)?;
    let t = Utc
        .timestamp_opt(tick.get_timestamp() as i64, 0)
        .single()
        .unwrap_or_else(Utc::now);
    let g = Granularity::of(&schedule, t);
    enqueue_all(&state, scans_for_tick(&state, g, t)).await;
    Ok(())
}

/// At start-up: queue the latest period's scans once (a no-op when they ran already).
pub async fn catch_up(state: &AppState) {
    let Some(expr) = state.config.scan_schedule.clone() else {
        return;
    };
    let Ok(schedule) = cron::Schedule::from_str(&expr) else {
        return;
    };
    let now = Utc::now();
    if let Some(t) = latest_tick(&schedule, now) {
        let g = Granularity::of(&schedule, now);
        tracing::info!(period = %g.period(t), "catching up the latest scheduled scan");
        enqueue_all(state, scans_for_tick(state, g, t)).await;
    }
}

/// The snapshot of a reconciliation scan at `now` with one scan every `hours`: the start of the
/// `hours`-long period (counted from the Unix epoch) that holds `now`, e.g.
/// `reconcile-20261122T12` for six-hourly periods.
pub fn reconcile_snapshot(hours: u32, now: DateTime<Utc>) -> String {
    let len = i64::from(hours.max(1)) * 3600;
    let start = now.timestamp().div_euclid(len) * len;
    let start = Utc.timestamp_opt(start, 0).single().unwrap_or(now);
    format!("reconcile-{}", start.format("%Y%m%dT%H"))
}

/// App and hybrid modes: queues one scan of every repository with an active installation, once
/// per `RECONCILE_HOURS` period (the snapshot names the period, so calling this often queues
/// each scan once). GitHub does not redeliver failed webhook deliveries by itself; a scan
/// catches up whatever they carried, and costs one 304 per listing page when nothing changed.
/// Returns the ids of the scans queued now.
pub async fn reconcile(state: &AppState, now: DateTime<Utc>) -> Vec<String> {
    let hours = state.config.reconcile_hours;
    if hours == 0 || !state.config.github_mode.uses_app() {
        return Vec::new();
    }
    let repos = match crate::store::app::installed_repos(&state.pool).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "reconciliation: could not list installed repositories");
            return Vec::new();
        }
    };
    let snapshot = reconcile_snapshot(hours, now);
    let mut queued = Vec::new();
    for (owner, repo) in repos {
        if !state.config.account_allowed(&owner) {
            continue;
        }
        let job = ScanJob {
            owner,
            repo,
            snapshot: snapshot.clone(),
            max_open_prs: None,
        };
        match super::scan::enqueue(state, &job, "reconcile", None).await {
            Ok(super::PushOutcome::Enqueued) => queued.push(job.job_id()),
            Ok(super::PushOutcome::Duplicate) => {}
            Err(e) => {
                tracing::warn!(scan = %job.job_id(), error = %e, "reconciliation scan not queued");
                break;
            }
        }
    }
    if !queued.is_empty() {
        tracing::info!(scans = queued.len(), %snapshot, "reconciliation scans queued");
    }
    queued
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn periods_follow_the_schedule_and_match_flys_four_intervals() {
        let now = at("2026-11-22T14:37:12Z");
        let hourly = cron::Schedule::from_str("0 0 * * * *").unwrap();
        assert_eq!(Granularity::of(&hourly, now), Granularity::Hour);
        assert_eq!(Granularity::Hour.period(now), "2026-11-22T14");
        let daily = cron::Schedule::from_str("0 30 3 * * *").unwrap();
        assert_eq!(Granularity::of(&daily, now).period(now), "2026-11-22");
        let weekly = cron::Schedule::from_str("0 0 6 * * Mon").unwrap();
        assert_eq!(Granularity::of(&weekly, now).period(now), "2026-W47");
        let monthly = cron::Schedule::from_str("0 0 0 1 * *").unwrap();
        assert_eq!(Granularity::of(&monthly, now).period(now), "2026-11");
        let quarter_hour = cron::Schedule::from_str("0 */15 * * * *").unwrap();
        assert_eq!(
            Granularity::of(&quarter_hour, now).period(now),
            "2026-11-22T14:37"
        );
    }

    #[test]
    fn two_ticks_of_one_period_name_the_same_snapshot() {
        let hourly = cron::Schedule::from_str("0 0,30 * * * *").unwrap();
        // Half-hourly ticks are named by minute, so they differ; hourly ones by hour.
        let g = Granularity::of(&hourly, at("2026-11-22T14:00:00Z"));
        assert_ne!(
            g.period(at("2026-11-22T14:00:00Z")),
            g.period(at("2026-11-22T14:30:00Z"))
        );
        let h = Granularity::Hour;
        assert_eq!(
            h.period(at("2026-11-22T14:00:00Z")),
            h.period(at("2026-11-22T14:59:59Z"))
        );
    }

    #[test]
    fn reconciliation_snapshots_name_the_period() {
        for (hours, t, snapshot) in [
            (6, "2026-11-22T14:37:12Z", "reconcile-20261122T12"),
            (6, "2026-11-22T17:59:59Z", "reconcile-20261122T12"),
            (6, "2026-11-22T18:00:00Z", "reconcile-20261122T18"),
            (24, "2026-11-22T14:37:12Z", "reconcile-20261122T00"),
        ] {
            assert_eq!(
                reconcile_snapshot(hours, at(t)),
                snapshot,
                "{hours} h at {t}"
            );
        }
        crate::jobs::checked_task_id(
            &ScanJob {
                owner: "o".into(),
                repo: "r".into(),
                snapshot: reconcile_snapshot(1, at("2026-11-22T14:37:12Z")),
                max_open_prs: None,
            }
            .job_id(),
        )
        .unwrap();
    }

    #[test]
    fn only_the_latest_missed_tick_is_caught_up() {
        let hourly = cron::Schedule::from_str("0 0 * * * *").unwrap();
        let now = at("2026-11-22T14:37:12Z");
        assert_eq!(latest_tick(&hourly, now), Some(at("2026-11-22T14:00:00Z")));
        let yearly = cron::Schedule::from_str("0 0 0 1 1 *").unwrap();
        assert_eq!(
            latest_tick(&yearly, now),
            None,
            "outside the look-back window"
        );
    }
}
