//! The `clawtriage` CLI as people and agents run it: the real binary against a running appliance
//! (real Postgres, Redis and the fake GitHub). `trigger --wait` with an actor that is stored and
//! shown; `repos`, `sets`, `pr`, `candidates`, `scans`, `feedback` as tables, `--json` and
//! `--jsonl`; the token from the environment only; and the exit codes.

mod common;

use std::process::Output;
use std::time::Duration;

use common::{App, FakeGithub, Services, settings};
use serde_json::Value;

const DASH: &str = "dash-token-for-tests-0123456789abcdef";

/// Runs the binary with a clean environment: the appliance's URL, `token` as CLAWTRIAGE_TOKEN
/// and `extra` variables.
async fn cli(app_base: &str, token: Option<&str>, extra: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_clawtriage"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CLAWTRIAGE_URL", app_base)
        .envs(extra.iter().copied());
    if let Some(t) = token {
        cmd.env("CLAWTRIAGE_TOKEN", t);
    }
    tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("the CLI finished")
        .expect("run the CLI")
}

/// `clawtriage trigger --owner OWNER --repo REPO ARGS...` with the ops token in the environment.
async fn trigger(app_base: &str, owner: &str, repo: &str, args: &[&str]) -> Output {
    let mut all = vec!["trigger", "--owner", owner, "--repo", repo];
    all.extend_from_slice(args);
    cli(
        app_base,
        None,
        &[("OPS_TRIGGER_TOKEN", "ops-token-for-tests-0123456789abcdef")],
        &all,
    )
    .await
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited, not killed")
}

fn json_of(o: &Output) -> Value {
    assert_eq!(code(o), 0, "stdout:\n{}\nstderr:\n{}", out(o), err(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", out(o)))
}

fn jsonl_of(o: &Output) -> Vec<Value> {
    assert_eq!(code(o), 0, "stdout:\n{}\nstderr:\n{}", out(o), err(o));
    out(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("line not JSON ({e}): {l}")))
        .collect()
}

async fn api(app: &App, path: &str) -> Value {
    let r = app
        .http
        .get(app.url(path))
        .bearer_auth(DASH)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

#[tokio::test]
async fn trigger_wait_and_the_read_commands_against_a_real_appliance() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    gh.add_repo("o", "r", common::fixture_repo(None));
    let mut s = settings(&svc, &gh.url());
    s.dashboard_token = Some(DASH.into());
    let app = App::start(s).await;
    let base = app.base.clone();

    // trigger --wait: the job id on stdout, progress on stderr, exit 0 when done; the actor
    // is stored with the scan and shown by the API and by `scans`.
    let o = trigger(&base, "o", "r", &["--wait", "--actor", "alice@laptop"]).await;
    assert_eq!(code(&o), 0, "{}\n{}", out(&o), err(&o));
    let job_id = out(&o).trim().to_string();
    assert!(job_id.starts_with("scan:o/r:"), "{job_id}");
    assert!(err(&o).contains("scan queued"), "{}", err(&o));
    assert!(err(&o).contains("72/72 PRs"), "progress: {}", err(&o));
    let scan = api(
        &app,
        &format!("/api/ops/scans/{}", job_id.replace('/', "%2F")),
    )
    .await;
    assert_eq!(scan["state"], "done");
    assert_eq!(scan["actor"], "alice@laptop");
    assert_eq!(scan["trigger"], "ops");
    let o = cli(&base, Some(DASH), &[], &["scans"]).await;
    assert_eq!(code(&o), 0, "{}", err(&o));
    assert!(out(&o).contains("ops by alice@laptop"), "{}", out(&o));
    assert!(out(&o).contains(&job_id), "{}", out(&o));
    let j = json_of(&cli(&base, Some(DASH), &[], &["scans", "--json"]).await);
    assert_eq!(j["schemaVersion"], 1);
    assert_eq!(j["scans"][0]["actor"], "alice@laptop");
    let j = json_of(&cli(&base, Some(DASH), &[], &["scans", &job_id, "--json"]).await);
    assert_eq!(j["scan"]["jobId"], job_id.as_str());
    assert_eq!(j["scan"]["prsListed"], 72);
    // The same snapshot again: no second scan, still exit 0; --json prints the answer.
    let snapshot = job_id.rsplit(':').next().unwrap();
    let o = trigger(&base, "o", "r", &["--snapshot", snapshot, "--json"]).await;
    let j = json_of(&o);
    assert_eq!(j["duplicate"], true);
    assert!(err(&o).contains("triggered before"), "{}", err(&o));

    // repos.
    let o = cli(&base, Some(DASH), &[], &["repos"]).await;
    assert_eq!(code(&o), 0, "{}", err(&o));
    let table = out(&o);
    assert!(
        table.lines().next().unwrap().contains("REPOSITORY"),
        "{table}"
    );
    assert!(table.contains("o/r") && table.contains("72"), "{table}");
    let j = json_of(&cli(&base, Some(DASH), &[], &["repos", "--json"]).await);
    assert_eq!(j["schemaVersion"], 1);
    assert_eq!(j["repos"], api(&app, "/api/repos").await["repos"]);
    let repo_id = j["repos"][0]["repoId"].as_i64().unwrap();

    // sets: the CLI pages through the API; --json and --jsonl carry the API's objects.
    let all = api(
        &app,
        &format!("/api/repos/{repo_id}/duplicate-sets?limit=100"),
    )
    .await;
    let total = all["total"].as_u64().unwrap() as usize;
    assert!(total >= 2, "the slice has duplicate sets: {all}");
    let lines = jsonl_of(
        &cli(
            &base,
            Some(DASH),
            &[],
            &["sets", "--jsonl", "--limit", "1000"],
        )
        .await,
    );
    assert_eq!(lines.len(), total);
    assert_eq!(&lines[..], all["sets"].as_array().unwrap().as_slice());
    let j = json_of(
        &cli(
            &base,
            Some(DASH),
            &[],
            &["sets", "-r", "O/R", "--json", "--limit", "1"],
        )
        .await,
    );
    assert_eq!(j["repo"], "o/r");
    assert_eq!(j["total"], total);
    assert_eq!(j["sets"].as_array().unwrap().len(), 1);
    assert_eq!(j["sets"][0], all["sets"][0]);
    let o = cli(&base, Some(DASH), &[], &["sets"]).await;
    let first = &all["sets"][0];
    assert!(
        out(&o).contains(first["setId"].as_str().unwrap()),
        "{}",
        out(&o)
    );
    assert!(
        out(&o).contains(&format!("#{}", first["keep"]["number"])),
        "{}",
        out(&o)
    );

    // pr and candidates of a set member.
    let n = first["members"][0]["number"].as_i64().unwrap().to_string();
    let j = json_of(&cli(&base, Some(DASH), &[], &["pr", &n, "--json"]).await);
    assert_eq!(
        j["pr"],
        api(&app, &format!("/api/repos/{repo_id}/prs/{n}")).await
    );
    let o = cli(&base, Some(DASH), &[], &["pr", &n]).await;
    assert!(out(&o).starts_with(&format!("o/r#{n} ")), "{}", out(&o));
    assert!(out(&o).contains("analysis: done"), "{}", out(&o));
    let cands = jsonl_of(&cli(&base, Some(DASH), &[], &["candidates", &n, "--jsonl"]).await);
    let from_api = api(&app, &format!("/api/repos/{repo_id}/prs/{n}/candidates")).await;
    assert!(!cands.is_empty());
    assert_eq!(
        &cands[..],
        from_api["candidates"].as_array().unwrap().as_slice()
    );
    let o = cli(&base, Some(DASH), &[], &["candidates", &n]).await;
    let other = format!("#{}", cands[0]["candidatePrNumber"]);
    assert!(out(&o).contains(&other), "{}", out(&o));

    // Exit codes.
    let o = cli(&base, None, &[], &["repos"]).await;
    assert_eq!(code(&o), 4, "no token: {}", err(&o));
    assert!(err(&o).contains("CLAWTRIAGE_TOKEN"), "{}", err(&o));
    let o = cli(&base, Some("wrong"), &[], &["sets"]).await;
    assert_eq!(code(&o), 4);
    // DASHBOARD_TOKEN works as well.
    let o = cli(
        &base,
        None,
        &[("DASHBOARD_TOKEN", DASH)],
        &["repos", "--jsonl"],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", err(&o));
    let o = cli(&base, Some(DASH), &[], &["sets", "--repo", "other/repo"]).await;
    assert_eq!(code(&o), 5, "{}", err(&o));
    assert!(
        err(&o).contains("no repository other/repo") && err(&o).contains("o/r"),
        "{}",
        err(&o)
    );
    let o = cli(&base, Some(DASH), &[], &["pr", "999999"]).await;
    assert_eq!(code(&o), 5, "{}", err(&o));
    let o = cli(&base, Some(DASH), &[], &["sets", "--min-score", "7"]).await;
    assert_eq!(code(&o), 2, "the appliance's 400: {}", err(&o));
    let o = cli(&base, Some(DASH), &[], &["sets", "--json", "--jsonl"]).await;
    assert_eq!(code(&o), 2, "{}", err(&o));
    let closed = format!("http://127.0.0.1:{}", common::services::free_port());
    let o = cli(&closed, Some(DASH), &[], &["repos"]).await;
    assert_eq!(code(&o), 3, "{}", err(&o));
    assert!(
        err(&o).contains("cannot reach the appliance"),
        "{}",
        err(&o)
    );
    let o = trigger(&base, "not", "allowed", &[]).await;
    assert_eq!(code(&o), 4, "forbidden repository: {}", err(&o));
    // A scan that fails (the repository is allowed but GitHub does not have it): exit 7.
    let o = trigger(
        &base,
        "bench",
        "playwright",
        &["--wait", "--wait-timeout-secs", "60"],
    )
    .await;
    assert_eq!(code(&o), 7, "{}\n{}", out(&o), err(&o));
    assert!(err(&o).contains("scan failed"), "{}", err(&o));

    // --help carries examples.
    for sub in ["repos", "sets", "pr", "candidates", "scans", "trigger"] {
        let o = cli(&base, None, &[], &[sub, "--help"]).await;
        assert_eq!(code(&o), 0);
        assert!(out(&o).contains("Examples:"), "{sub} --help:\n{}", out(&o));
    }
    app.stop().await;
}

#[tokio::test]
async fn trigger_wait_gives_up_with_its_own_exit_code() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    gh.add_repo("o", "r", common::fixture_repo(Some(3)));
    // Listing hangs: the scan never finishes while we wait.
    gh.with(|g| g.faults.hang_on = Some("/pulls".into()));
    let app = App::start(settings(&svc, &gh.url())).await;
    let o = trigger(&app.base, "o", "r", &["--wait", "--wait-timeout-secs", "2"]).await;
    assert_eq!(code(&o), 8, "{}\n{}", out(&o), err(&o));
    assert!(err(&o).contains("gave up waiting after 2 s"), "{}", err(&o));
    gh.with(|g| g.faults.hang_on = None);
    app.stop().await;
}

async fn feedback_rows(svc: &Services) -> i64 {
    svc.client()
        .await
        .query_one("SELECT count(*) FROM feedback", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn feedback_export_then_import_restores_every_verdict_once() {
    // The old appliance, with verdicts on two repositories.
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    let mut s = settings(&svc, &gh.url());
    s.dashboard_token = Some(DASH.into());
    let old = App::start(s).await;
    {
        let c = svc.client().await;
        c.batch_execute(
            "INSERT INTO repositories (owner, name) VALUES ('acme', 'widgets'), ('Octo', 'Cat')",
        )
        .await
        .unwrap();
    }
    let adds: [&[&str]; 5] = [
        &[
            "-r",
            "acme/widgets",
            "--pair",
            "15",
            "12",
            "--verdict",
            "duplicate",
        ],
        &[
            "-r",
            "acme/widgets",
            "--pair",
            "12",
            "20",
            "--verdict",
            "base_is",
            "--base",
            "12",
            "--note",
            "the original; \"quoted\"\nnew line",
        ],
        &[
            "-r",
            "acme/widgets",
            "--set",
            "set-3f2a",
            "--members",
            "20,31,44",
            "--verdict",
            "not_duplicate",
            "--actor",
            "bob",
        ],
        &[
            "-r",
            "octo/cat",
            "--pair",
            "1",
            "2",
            "--verdict",
            "competing",
        ],
        &[
            "-r",
            "octo/cat",
            "--set",
            "set-77",
            "--members",
            "3,4",
            "--verdict",
            "duplicate",
            "--json",
        ],
    ];
    for a in adds {
        let mut args = vec!["feedback", "add"];
        args.extend_from_slice(a);
        let o = cli(&old.base, Some(DASH), &[("USER", "alice")], &args).await;
        assert_eq!(code(&o), 0, "{args:?}: {}", err(&o));
    }
    // Four verdicts plus the three pair verdicts the set's "not duplicate" implies.
    let stored = feedback_rows(&svc).await;
    assert_eq!(stored, 8);
    // And many long ones: more than one import request holds under the test appliance's 64 KiB
    // body limit, so the CLI must split its batches.
    svc.client()
        .await
        .batch_execute(
            "INSERT INTO feedback (repo_id, target, a_number, b_number, verdict, actor, note)
             SELECT 1, 'pair', n, n + 1, 'related', 'bulk', repeat('n', 1900)
             FROM generate_series(1000, 1299) AS n",
        )
        .await
        .unwrap();
    let stored = feedback_rows(&svc).await;
    assert_eq!(stored, 308);
    let list = jsonl_of(
        &cli(
            &old.base,
            Some(DASH),
            &[],
            &[
                "feedback",
                "list",
                "-r",
                "acme/widgets",
                "--jsonl",
                "--limit",
                "5000",
            ],
        )
        .await,
    );
    // Paged through (the API gives at most 1,000 a page): 6 + the 300 bulk ones.
    assert_eq!(list.len(), 306);
    assert!(
        list.iter()
            .any(|f| f["actor"] == "alice" && f["verdict"] == "duplicate")
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("verdicts.jsonl");
    let o = cli(
        &old.base,
        Some(DASH),
        &[],
        &["feedback", "export", "--output", file.to_str().unwrap()],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", err(&o));
    assert!(err(&o).contains("exported 308 verdicts"), "{}", err(&o));
    let exported = std::fs::read_to_string(&file).unwrap();
    assert_eq!(exported.lines().count(), 308);
    assert!(exported.len() > 500 * 1024, "{} bytes", exported.len());
    // The same through stdout.
    let o = cli(&old.base, Some(DASH), &[], &["feedback", "export"]).await;
    assert_eq!(out(&o), exported);
    old.stop().await;

    // A new appliance with an empty database.
    let svc2 = Services::new().await;
    let mut s = settings(&svc2, &gh.url());
    s.dashboard_token = Some(DASH.into());
    let new = App::start(s).await;
    assert_eq!(feedback_rows(&svc2).await, 0);

    // A broken file imports nothing and names its bad lines.
    let broken = dir.path().join("broken.jsonl");
    let mut lines: Vec<String> = exported.lines().map(str::to_string).collect();
    lines[2] = lines[2].replace("\"verdict\":\"", "\"verdict\":\"perhaps_");
    lines.insert(5, "{not json".into());
    std::fs::write(&broken, lines.join("\n")).unwrap();
    let o = cli(
        &new.base,
        Some(DASH),
        &[],
        &["feedback", "import", broken.to_str().unwrap()],
    )
    .await;
    assert_eq!(code(&o), 1, "{}", err(&o));
    assert!(err(&o).contains("2 of 309 lines"), "{}", err(&o));
    assert!(err(&o).contains("line 3: verdict"), "{}", err(&o));
    assert!(
        err(&o).contains("line 6: not a verdict record"),
        "{}",
        err(&o)
    );
    assert!(err(&o).contains("nothing was imported"), "{}", err(&o));
    assert_eq!(feedback_rows(&svc2).await, 0);

    // The real file: every verdict comes back; a second import changes nothing.
    let o = cli(
        &new.base,
        Some(DASH),
        &[],
        &["feedback", "import", file.to_str().unwrap(), "--json"],
    )
    .await;
    let j = json_of(&o);
    assert_eq!(
        (j["imported"].as_u64(), j["alreadyPresent"].as_u64()),
        (Some(308), Some(0))
    );
    let mut stdin_import = tokio::process::Command::new(env!("CARGO_BIN_EXE_clawtriage"));
    stdin_import
        .args(["feedback", "import", "-"])
        .env_clear()
        .env("CLAWTRIAGE_URL", &new.base)
        .env("CLAWTRIAGE_TOKEN", DASH)
        .stdin(std::fs::File::open(&file).unwrap());
    let o = stdin_import.output().await.unwrap();
    assert_eq!(code(&o), 0, "{}", err(&o));
    assert_eq!(
        out(&o).trim(),
        "imported 0 verdicts; 308 were already there"
    );
    assert_eq!(feedback_rows(&svc2).await, 308);
    // What the new appliance exports is what the old one did, line for line.
    let o = cli(&new.base, Some(DASH), &[], &["feedback", "export"]).await;
    assert_eq!(out(&o), exported);
    // The repositories came back under their names; verdicts read as before.
    let o = cli(
        &new.base,
        Some(DASH),
        &[],
        &["feedback", "list", "-r", "octo/cat"],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", err(&o));
    assert!(
        out(&o).contains("competing") && out(&o).contains("set set-77"),
        "{}",
        out(&o)
    );
    new.stop().await;
}
