//! The invariants of `fly.toml` that the appliance depends on, checked offline
//! by parsing the file: one always-on Machine, its data on a volume at /data,
//! a clean SIGTERM shutdown with time to finish, a health check, migrations in
//! the supervisor rather than in a release command (which has no volume).

use std::path::PathBuf;
use std::time::Duration;

use toml::Value;

fn fly_toml() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fly.toml");
    let text = std::fs::read_to_string(&path).expect("read fly.toml");
    toml::from_str(&text).expect("fly.toml is valid TOML")
}

/// `kill_timeout`, `grace_period`, ...: an integer (seconds for
/// `kill_timeout`) or a duration string such as "60s", "5m", "500ms".
fn duration(value: &Value, bare_unit: Duration) -> Duration {
    match value {
        Value::Integer(n) => bare_unit * u32::try_from(*n).expect("a small positive number"),
        Value::String(s) => {
            let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            let (number, unit) = s.split_at(split);
            let n: u64 = number
                .parse()
                .unwrap_or_else(|_| panic!("bad duration {s:?}"));
            match unit {
                "" => bare_unit * u32::try_from(n).unwrap(),
                "ms" => Duration::from_millis(n),
                "s" => Duration::from_secs(n),
                "m" => Duration::from_secs(n * 60),
                _ => panic!("unknown duration unit in {s:?}"),
            }
        }
        other => panic!("a duration must be an integer or a string, got {other:?}"),
    }
}

fn table<'a>(root: &'a Value, key: &str) -> &'a toml::Table {
    root.get(key)
        .and_then(Value::as_table)
        .unwrap_or_else(|| panic!("fly.toml needs a [{key}] table"))
}

fn array_of_tables<'a>(root: &'a Value, key: &str) -> Vec<&'a toml::Table> {
    root.get(key)
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("fly.toml needs [[{key}]]"))
        .iter()
        .map(|v| v.as_table().expect("a table"))
        .collect()
}

#[test]
fn app_is_a_placeholder_in_one_region() {
    let cfg = fly_toml();
    let app = cfg["app"].as_str().expect("app is a string");
    assert!(
        app.contains("change-me"),
        "app should stay a placeholder that the scripts' -a overrides, got {app:?}"
    );
    // The scripts refuse to deploy this very name (scripts/fly-lib.sh).
    let lib = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/fly-lib.sh"),
    )
    .unwrap();
    assert!(lib.contains(&format!("FLY_PLACEHOLDER_APP=\"{app}\"")));

    let region = cfg["primary_region"]
        .as_str()
        .expect("primary_region is a string");
    assert!(
        region.len() == 3 && region.chars().all(|c| c.is_ascii_lowercase()),
        "one region code, got {region:?}"
    );
}

#[test]
fn shutdown_is_sigterm_with_time_for_postgres_and_redis() {
    let cfg = fly_toml();
    assert_eq!(cfg["kill_signal"].as_str(), Some("SIGTERM"));
    let timeout = duration(&cfg["kill_timeout"], Duration::from_secs(1));
    // The supervisor gives the app SHUTDOWN_TIMEOUT_SECS (25) + 5 s before
    // Postgres and Redis stop; Fly caps kill_timeout at 300 s.
    assert!(
        timeout >= Duration::from_secs(30),
        "kill_timeout {timeout:?} < 30 s"
    );
    assert!(
        timeout <= Duration::from_secs(300),
        "kill_timeout {timeout:?} > Fly's 300 s"
    );
}

#[test]
fn http_service_is_always_on_and_checks_health() {
    let cfg = fly_toml();
    let env = table(&cfg, "env");
    let port: i64 = env["PORT"]
        .as_str()
        .expect("[env] PORT is a string")
        .parse()
        .expect("[env] PORT is a number");
    assert_eq!(env.get("HOST").and_then(Value::as_str), Some("0.0.0.0"));
    assert_eq!(env.get("DATA_ROOT").and_then(Value::as_str), Some("/data"));

    let http = table(&cfg, "http_service");
    assert_eq!(http["internal_port"].as_integer(), Some(port));
    assert_eq!(http["force_https"].as_bool(), Some(true));
    assert_eq!(
        http["auto_stop_machines"].as_str(),
        Some("off"),
        "a stopped Machine would kill background scans"
    );
    assert_eq!(http["min_machines_running"].as_integer(), Some(1));

    let checks = http["checks"].as_array().expect("[[http_service.checks]]");
    let health = checks
        .iter()
        .find(|c| c.get("path").and_then(Value::as_str) == Some("/api/health"))
        .expect("a check on /api/health");
    if let Some(grace) = health.get("grace_period") {
        // Bare numbers are milliseconds here.
        let grace = duration(grace, Duration::from_millis(1));
        assert!(
            grace >= Duration::from_secs(30),
            "first boot runs initdb + migrations"
        );
    }
}

#[test]
fn data_lives_on_a_volume_at_data() {
    let cfg = fly_toml();
    let mounts = array_of_tables(&cfg, "mounts");
    assert_eq!(mounts.len(), 1, "one volume: a Machine mounts one");
    let m = mounts[0];
    assert_eq!(m["source"].as_str(), Some("data"));
    assert_eq!(m["destination"].as_str(), Some("/data"));
    let size = m
        .get("initial_size")
        .expect("[[mounts]] initial_size, used when the first deploy creates the volume");
    match size {
        Value::Integer(gb) => assert!(*gb >= 1),
        Value::String(s) => assert!(
            s.ends_with("gb") && s.trim_end_matches("gb").parse::<u32>().is_ok(),
            "initial_size {s:?}"
        ),
        other => panic!("initial_size {other:?}"),
    }
}

#[test]
fn vm_is_sized_and_nothing_runs_without_the_volume() {
    let cfg = fly_toml();
    let vm = array_of_tables(&cfg, "vm");
    assert!(!vm.is_empty(), "[[vm]] present");
    assert!(
        vm[0].contains_key("size")
            || vm[0].contains_key("memory")
            || vm[0].contains_key("memory_mb"),
        "[[vm]] names a size or memory"
    );

    let deploy = cfg.get("deploy").and_then(Value::as_table);
    assert!(
        deploy.is_none_or(|d| !d.contains_key("release_command")),
        "no release_command: it runs without the volume; the supervisor migrates"
    );
    if let Some(strategy) = deploy
        .and_then(|d| d.get("strategy"))
        .and_then(Value::as_str)
    {
        assert!(
            strategy == "rolling" || strategy == "immediate",
            "canary and bluegreen cannot be used with volumes, got {strategy:?}"
        );
    }
    // The image's ENTRYPOINT is the supervisor; a [processes] command would be
    // passed to it as arguments.
    assert!(cfg.get("processes").is_none(), "no [processes]");
}

/// `fly.scale-out.toml`: two process groups of the same image, only `web` behind the proxy,
/// a health check for each group, no volume (state is in the managed Postgres and Redis), and
/// the role passed to the entry point as each group's command.
#[test]
fn the_scale_out_layout_has_web_and_worker_groups_and_no_volume() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fly.scale-out.toml");
    let cfg: Value = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let processes = table(&cfg, "processes");
    assert_eq!(processes["web"].as_str(), Some("web"));
    assert_eq!(processes["worker"].as_str(), Some("worker"));
    assert_eq!(processes.len(), 2);
    let http = table(&cfg, "http_service");
    assert_eq!(
        http["processes"].as_array().unwrap(),
        &vec![Value::from("web")]
    );
    assert_eq!(http["auto_stop_machines"].as_str(), Some("off"));
    let web_check = &http["checks"].as_array().unwrap()[0];
    assert_eq!(web_check["path"].as_str(), Some("/api/health"));
    let checks = table(&cfg, "checks");
    let worker_check = checks.values().find(|c| {
        c["processes"]
            .as_array()
            .is_some_and(|p| p == &vec![Value::from("worker")])
    });
    let worker_check = worker_check.expect("a check of the worker group");
    assert_eq!(worker_check["path"].as_str(), Some("/api/health"));
    assert_eq!(worker_check["port"].as_integer(), Some(8080));
    assert!(
        cfg.get("mounts").is_none(),
        "no volume: a machine holds no state"
    );
    let vms = array_of_tables(&cfg, "vm");
    for group in ["web", "worker"] {
        assert!(
            vms.iter().any(|v| v["processes"]
                .as_array()
                .is_some_and(|p| p == &vec![Value::from(group)])),
            "a [[vm]] for {group}"
        );
    }
    assert_eq!(cfg["kill_signal"].as_str(), Some("SIGTERM"));
    assert!(
        cfg.get("deploy")
            .and_then(|d| d.get("release_command"))
            .is_none()
    );
}
