//! Per-repository settings: `.github/clawtriage.toml` on the repository's default branch.
//!
//! The file may override the engine (a `[triage]` table with the keys of the appliance's triage
//! configuration: thresholds, channel rules, bot lists), say which PRs count as written by
//! coding agents (`[agents]`), which writes to GitHub a maintainer may make from the dashboard
//! (`[actions]`, all off by default), and opt into the digest issue (`[digest]`) and the
//! outgoing webhook (`[notify]`). Anything left out keeps the appliance's value.
//!
//! Parsing is pure. Every problem found is reported with its line and column, all at once where
//! the file's shape allows it; a file with problems is not used at all (the appliance's
//! defaults apply, so writes stay off) and never stops triage.

use serde::{Deserialize, Serialize};
use toml::de::{DeTable, DeValue};
use utoipa::ToSchema;

use crate::triage::{ConfigError, TriageConfig};

/// Where the file lives in the repository.
pub const SETTINGS_PATH: &str = ".github/clawtriage.toml";
/// Largest file read (bytes); a bigger one is reported as a problem, not parsed.
pub const MAX_SETTINGS_BYTES: usize = 64 * 1024;
/// Most entries of one list in the file.
pub const MAX_LIST: usize = 200;

/// One problem in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SettingsProblem {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
    /// What is wrong, in words.
    pub message: String,
}

/// Who counts as a coding agent (the "PRs by coding agents" filter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentRules {
    /// Author logins (case-insensitive).
    pub logins: Vec<String>,
    /// Head branch prefixes that agents use (`copilot/`, `codex/`, ...).
    #[serde(alias = "branch_prefixes")]
    pub branch_prefixes: Vec<String>,
}

impl Default for AgentRules {
    fn default() -> Self {
        AgentRules {
            logins: [
                "Copilot",
                "copilot-swe-agent[bot]",
                "devin-ai-integration[bot]",
                "google-labs-jules[bot]",
                "chatgpt-codex-connector[bot]",
                "cursor[bot]",
                "claude[bot]",
                "openhands-agent",
            ]
            .map(String::from)
            .to_vec(),
            branch_prefixes: [
                "copilot/",
                "codex/",
                "cursor/",
                "devin/",
                "claude/",
                "jules/",
                "openhands/",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

/// Which writes to GitHub maintainers may make from the dashboard (App mode only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ActionSettings {
    /// Close PRs of a set as duplicates of the kept one, with a comment.
    #[serde(alias = "close_duplicates")]
    pub close_duplicates: bool,
    /// Add and remove labels.
    pub labels: bool,
}

/// The digest issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DigestSettings {
    /// Keep one issue listing the new duplicate sets, edited in place on `DIGEST_SCHEDULE`.
    pub enabled: bool,
    /// Most sets listed (1-50).
    #[serde(alias = "max_sets")]
    pub max_sets: u32,
    /// Most members listed per set (2-40).
    #[serde(alias = "max_members")]
    pub max_members: u32,
}

impl Default for DigestSettings {
    fn default() -> Self {
        DigestSettings {
            enabled: false,
            max_sets: 10,
            max_members: 20,
        }
    }
}

/// The outgoing webhook (`NOTIFY_WEBHOOK_URL`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotifySettings {
    /// Send this repository's events (when the appliance has a webhook URL).
    pub webhook: bool,
    /// Lowest tier of a set that is announced: high | medium | review.
    #[serde(alias = "min_tier")]
    pub min_tier: String,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            webhook: true,
            min_tier: "high".into(),
        }
    }
}

/// The validated settings of a repository (the appliance's defaults where the file is silent).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RepoSettings {
    /// Engine overrides: keys of the triage configuration, as written in `[triage]`.
    #[schema(value_type = Object)]
    pub triage: serde_json::Map<String, serde_json::Value>,
    /// Coding agents.
    pub agents: AgentRules,
    /// Allowed writes.
    pub actions: ActionSettings,
    /// Digest issue.
    pub digest: DigestSettings,
    /// Outgoing webhook.
    pub notify: NotifySettings,
}

/// The file's shape for our own sections, with their defaults; `[triage]` takes its shape from
/// the engine's built-in configuration.
const SCHEMA_TOML: &str = r#"
[agents]
logins = []
branch_prefixes = []
[actions]
close_duplicates = false
labels = false
[digest]
enabled = false
max_sets = 10
max_members = 20
[notify]
webhook = true
min_tier = "high"
"#;

/// Tiers in strength order.
pub const TIERS: [&str; 3] = ["high", "medium", "review"];

/// True when a set of tier `tier` is at least `min_tier`.
pub fn tier_at_least(tier: &str, min_tier: &str) -> bool {
    let rank = |t: &str| TIERS.iter().position(|x| *x == t).unwrap_or(TIERS.len());
    rank(tier) <= rank(min_tier)
}

fn schema() -> toml::Table {
    let mut t: toml::Table = toml::from_str(SCHEMA_TOML).unwrap_or_default();
    let triage: toml::Table =
        toml::from_str(crate::triage::DEFAULT_CONFIG_TOML).unwrap_or_default();
    t.insert("triage".into(), toml::Value::Table(triage));
    t
}

/// Line and column (1-based) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (u32, u32) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map(|p| p + 1)
        .unwrap_or(0);
    let column = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
    (line as u32, column as u32)
}

fn problem(text: &str, offset: usize, message: impl Into<String>) -> SettingsProblem {
    let (line, column) = line_col(text, offset);
    SettingsProblem {
        line,
        column,
        message: message.into(),
    }
}

fn kind(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a number",
        DeValue::Boolean(_) => "true or false",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "a list",
        DeValue::Table(_) => "a table",
    }
}

fn expected(v: &toml::Value) -> &'static str {
    match v {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a number",
        toml::Value::Boolean(_) => "true or false",
        toml::Value::Datetime(_) => "a date",
        toml::Value::Array(_) => "a list of strings",
        toml::Value::Table(_) => "a table",
    }
}

/// Checks `user` against the shape of `schema`: every key must exist there, every value must
/// have the type of the default (an integer may stand for a number), lists hold strings.
fn check_shape(
    text: &str,
    path: &str,
    user: &DeTable<'_>,
    schema: &toml::Table,
    out: &mut Vec<SettingsProblem>,
) {
    for (key, value) in user.iter() {
        let name = key.get_ref().as_ref();
        let dotted = if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}.{name}")
        };
        let Some(want) = schema.get(name) else {
            let known: Vec<&str> = schema.keys().map(String::as_str).collect();
            out.push(problem(
                text,
                key.span().start,
                format!("unknown key `{dotted}` (known here: {})", known.join(", ")),
            ));
            continue;
        };
        if dotted == "triage.config_version" {
            out.push(problem(
                text,
                key.span().start,
                "`triage.config_version` is set by the appliance, not by this file",
            ));
            continue;
        }
        let got = value.get_ref();
        let ok = match (want, got) {
            (toml::Value::Table(s), DeValue::Table(u)) => {
                check_shape(text, &dotted, u, s, out);
                true
            }
            (toml::Value::String(_), DeValue::String(_))
            | (toml::Value::Integer(_), DeValue::Integer(_))
            | (toml::Value::Float(_), DeValue::Float(_) | DeValue::Integer(_))
            | (toml::Value::Boolean(_), DeValue::Boolean(_)) => true,
            (toml::Value::Array(_), DeValue::Array(items)) => {
                if items.len() > MAX_LIST {
                    out.push(problem(
                        text,
                        value.span().start,
                        format!("`{dotted}` has {} entries; at most {MAX_LIST}", items.len()),
                    ));
                }
                for item in items.iter() {
                    match item.get_ref() {
                        DeValue::String(s) if s.len() <= 200 => {}
                        DeValue::String(_) => out.push(problem(
                            text,
                            item.span().start,
                            format!("an entry of `{dotted}` is longer than 200 characters"),
                        )),
                        other => out.push(problem(
                            text,
                            item.span().start,
                            format!("`{dotted}` lists strings; this entry is {}", kind(other)),
                        )),
                    }
                }
                true
            }
            _ => false,
        };
        if !ok {
            out.push(problem(
                text,
                value.span().start,
                format!("`{dotted}` must be {}, not {}", expected(want), kind(got)),
            ));
        }
    }
}

/// The span of the value (else the key) at `path` in the parsed file.
fn find_span(root: &DeTable<'_>, path: &[&str]) -> Option<std::ops::Range<usize>> {
    let (first, rest) = path.split_first()?;
    let (key, value) = root.iter().find(|(k, _)| k.get_ref().as_ref() == *first)?;
    if rest.is_empty() {
        return Some(value.span());
    }
    match value.get_ref() {
        DeValue::Table(t) => find_span(t, rest).or(Some(key.span())),
        _ => Some(key.span()),
    }
}

/// The file's sections, typed.
#[derive(Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct FileSettings {
    triage: Option<toml::Table>,
    agents: Option<FileAgents>,
    actions: Option<ActionSettings>,
    digest: Option<FileDigest>,
    notify: Option<FileNotify>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAgents {
    logins: Option<Vec<String>>,
    branch_prefixes: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDigest {
    enabled: Option<bool>,
    max_sets: Option<i64>,
    max_members: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileNotify {
    webhook: Option<bool>,
    min_tier: Option<String>,
}

/// The engine configuration of a repository: `base` (the appliance's) with `overrides` (the
/// file's `[triage]` table) merged over it key by key, then validated.
pub fn apply_overrides(
    base: &TriageConfig,
    overrides: &toml::Table,
) -> Result<TriageConfig, ConfigError> {
    let mut t = toml::Table::try_from(base).map_err(|e| ConfigError::Shape(e.to_string()))?;
    crate::triage::config::merge(&mut t, overrides.clone());
    let cfg: TriageConfig = toml::Value::Table(t)
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError::Shape(e.to_string()))?;
    cfg.validate()?;
    Ok(cfg)
}

/// [`apply_overrides`] from the JSON form stored with [`RepoSettings`].
pub fn apply_json_overrides(
    base: &TriageConfig,
    overrides: &serde_json::Map<String, serde_json::Value>,
) -> Result<TriageConfig, ConfigError> {
    let table: toml::Table = serde_json::from_value(serde_json::Value::Object(overrides.clone()))
        .map_err(|e| ConfigError::Shape(e.to_string()))?;
    apply_overrides(base, &table)
}

/// Parses and validates the file against the appliance's engine configuration `base`.
pub fn parse(text: &str, base: &TriageConfig) -> Result<RepoSettings, Vec<SettingsProblem>> {
    if text.len() > MAX_SETTINGS_BYTES {
        return Err(vec![SettingsProblem {
            line: 1,
            column: 1,
            message: format!(
                "the file is {} bytes; at most {MAX_SETTINGS_BYTES} are read",
                text.len()
            ),
        }]);
    }
    let (root, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        return Err(errors
            .iter()
            .map(|e| {
                let at = e.span().map(|s| s.start).unwrap_or(0);
                problem(text, at, e.message().trim().to_string())
            })
            .collect());
    }
    let root = root.into_inner();
    let mut problems = Vec::new();
    check_shape(text, "", &root, &schema(), &mut problems);
    if !problems.is_empty() {
        return Err(problems);
    }
    let file: FileSettings = match toml::from_str(text) {
        Ok(f) => f,
        Err(e) => {
            let at = e.span().map(|s| s.start).unwrap_or(0);
            return Err(vec![problem(text, at, e.message().trim().to_string())]);
        }
    };
    let at = |path: &[&str]| find_span(&root, path).map(|s| s.start).unwrap_or_default();
    let mut out = RepoSettings::default();
    if let Some(a) = file.agents {
        if let Some(l) = a.logins {
            out.agents.logins = l;
        }
        if let Some(p) = a.branch_prefixes {
            out.agents.branch_prefixes = p;
        }
    }
    if let Some(a) = file.actions {
        out.actions = a;
    }
    if let Some(d) = file.digest {
        if let Some(e) = d.enabled {
            out.digest.enabled = e;
        }
        let mut range = |value: Option<i64>, key: &str, lo: i64, hi: i64, slot: &mut u32| {
            if let Some(n) = value {
                if (lo..=hi).contains(&n) {
                    *slot = n as u32;
                } else {
                    problems.push(problem(
                        text,
                        at(&["digest", key]),
                        format!("`digest.{key}` must be from {lo} to {hi}"),
                    ));
                }
            }
        };
        range(d.max_sets, "max_sets", 1, 50, &mut out.digest.max_sets);
        range(
            d.max_members,
            "max_members",
            2,
            40,
            &mut out.digest.max_members,
        );
    }
    if let Some(n) = file.notify {
        if let Some(w) = n.webhook {
            out.notify.webhook = w;
        }
        if let Some(t) = n.min_tier {
            if TIERS.contains(&t.as_str()) {
                out.notify.min_tier = t;
            } else {
                problems.push(problem(
                    text,
                    at(&["notify", "min_tier"]),
                    format!(
                        "`notify.min_tier` must be one of high, medium, review, not `{}`",
                        t.escape_debug()
                    ),
                ));
            }
        }
    }
    if let Some(t) = file.triage.filter(|t| !t.is_empty()) {
        match apply_overrides(base, &t) {
            Ok(_) => {
                out.triage = match serde_json::to_value(&t) {
                    Ok(serde_json::Value::Object(m)) => m,
                    _ => serde_json::Map::new(),
                };
            }
            Err(ConfigError::Invalid { key, reason }) => {
                let path: Vec<&str> = std::iter::once("triage").chain(key.split('.')).collect();
                let offset = find_span(&root, &path)
                    .or_else(|| find_span(&root, &["triage"]))
                    .map(|s| s.start)
                    .unwrap_or_default();
                problems.push(problem(
                    text,
                    offset,
                    format!("`triage.{key}` is invalid: {reason}"),
                ));
            }
            Err(e) => problems.push(problem(text, at(&["triage"]), format!("[triage]: {e}"))),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> TriageConfig {
        TriageConfig::default()
    }

    #[test]
    fn an_empty_file_means_the_appliance_defaults() {
        let s = parse("", &base()).unwrap();
        assert_eq!(s, RepoSettings::default());
        assert!(!s.actions.close_duplicates && !s.actions.labels && !s.digest.enabled);
    }

    #[test]
    fn a_full_file_is_read() {
        let text = r#"
[triage]
review_threshold = 0.7
[triage.bots]
logins = ["my-release-bot"]
[triage.channels]
docs = ["handbook/"]

[agents]
logins = ["agent-smith"]
branch_prefixes = ["smith/"]

[actions]
close_duplicates = true
labels = true

[digest]
enabled = true
max_sets = 5

[notify]
min_tier = "medium"
"#;
        let s = parse(text, &base()).unwrap();
        assert!(s.actions.close_duplicates && s.actions.labels);
        assert!(s.digest.enabled);
        assert_eq!(s.digest.max_sets, 5);
        assert_eq!(s.digest.max_members, 20);
        assert_eq!(s.notify.min_tier, "medium");
        assert!(s.notify.webhook);
        assert_eq!(s.agents.logins, ["agent-smith"]);
        let cfg = apply_json_overrides(&base(), &s.triage).unwrap();
        assert_eq!(cfg.review_threshold, 0.7);
        assert_eq!(cfg.bots.logins, ["my-release-bot"]);
        assert_eq!(cfg.channels.docs, ["handbook/"]);
        assert_eq!(
            cfg.channels.meta,
            base().channels.meta,
            "untouched keys keep"
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let text = "[actions]\nclose_duplicates = \"yes\"\nlabel = true\n\n[triage]\nreview_threshold = 1.5\n";
        let p = parse(text, &base()).unwrap_err();
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!((p[0].line, p[0].column), (2, 20), "{p:?}");
        assert!(p[0].message.contains("true or false"), "{p:?}");
        assert_eq!(p[1].line, 3);
        assert!(
            p[1].message.contains("unknown key `actions.label`"),
            "{p:?}"
        );
        // Once the shape is right, ranges are checked where the value is.
        let p = parse("[triage]\n\nreview_threshold = 1.5\n", &base()).unwrap_err();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].line, 3, "{p:?}");
        assert!(p[0].message.contains("review_threshold"), "{p:?}");
        let p = parse(
            "[digest]\nmax_sets = 0\n[notify]\nmin_tier = \"loud\"\n",
            &base(),
        )
        .unwrap_err();
        assert_eq!((p[0].line, p[1].line), (2, 4), "{p:?}");
    }

    #[test]
    fn syntax_errors_have_lines_too() {
        let p = parse("[actions]\nlabels = tru\n", &base()).unwrap_err();
        assert_eq!(p[0].line, 2, "{p:?}");
        let p = parse("[triage]\nconfig_version = 7\n", &base()).unwrap_err();
        assert_eq!(p[0].line, 2);
        let p = parse("[triage.channels]\nmeta = [1]\n", &base()).unwrap_err();
        assert!(p[0].message.contains("lists strings"), "{p:?}");
        let big = "#".repeat(MAX_SETTINGS_BYTES + 1);
        assert!(
            parse(&big, &base()).unwrap_err()[0]
                .message
                .contains("bytes")
        );
    }

    #[test]
    fn overrides_apply_over_a_custom_base() {
        let mut b = base();
        b.review_threshold = 0.65;
        b.config_version = 7;
        let mut t = toml::Table::new();
        t.insert("related_threshold".into(), toml::Value::Float(0.2));
        let cfg = apply_overrides(&b, &t).unwrap();
        assert_eq!(cfg.review_threshold, 0.65);
        assert_eq!(cfg.related_threshold, 0.2);
        assert_eq!(cfg.config_version, 7);
    }

    #[test]
    fn tiers_order() {
        assert!(tier_at_least("high", "medium"));
        assert!(!tier_at_least("review", "high"));
        assert!(tier_at_least("review", "review"));
    }
}
