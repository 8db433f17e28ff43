//! Backup and restore of maintainer verdicts: one JSON object per line (JSONL), each naming its
//! repository by `owner/name` (ids differ between databases) and carrying its `verdictKey`, so
//! a restore is idempotent. `clawtriage feedback export` writes these lines and `import` reads
//! them; the appliance checks every line with [`VerdictRecord::validate`] before storing any.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::RepoName;

/// The format version written in every line.
pub const SCHEMA_VERSION: u32 = 1;
/// Longest line accepted (a set verdict lists at most 200 members; notes are at most 2,000
/// characters).
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Verdicts: the values the API accepts.
pub const VERDICTS: &[&str] = &[
    "duplicate",
    "not_duplicate",
    "competing",
    "related",
    "base_is",
];

/// The rules of a verdict's own fields, wherever it comes from (the feedback API or an import):
/// a known verdict, an actor of 1-100 characters, a note of at most 2,000.
pub fn check_verdict_fields(verdict: &str, actor: &str, note: Option<&str>) -> Result<(), String> {
    if !VERDICTS.contains(&verdict) {
        return Err(format!(
            "verdict: `{}` is not one of {}",
            verdict.escape_debug(),
            VERDICTS.join(", ")
        ));
    }
    if actor.is_empty() || actor.chars().count() > 100 {
        return Err("actor: 1-100 characters".into());
    }
    if note.is_some_and(|n| n.chars().count() > 2000) {
        return Err("note: at most 2,000 characters".into());
    }
    Ok(())
}

/// One verdict as exported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerdictRecord {
    /// Always 1 for this format.
    pub schema_version: u32,
    /// Stable key of the verdict (a UUID); importing a key that exists changes nothing.
    pub verdict_key: String,
    /// `owner/name`.
    pub repo: String,
    /// pair | set.
    pub target: String,
    /// Lower PR number of a pair.
    pub a_number: Option<i64>,
    /// Higher PR number of a pair.
    pub b_number: Option<i64>,
    /// Set id (set verdicts, and the pair verdicts a set verdict implied).
    pub set_id: Option<String>,
    /// Members of a set verdict, as shown when it was given.
    pub members: Option<Vec<i64>>,
    /// duplicate | not_duplicate | competing | related | base_is.
    pub verdict: String,
    /// The base, for base_is.
    pub base_number: Option<i64>,
    /// Who gave it.
    pub actor: String,
    /// Free text.
    pub note: Option<String>,
    /// When it was given.
    pub created_at: DateTime<Utc>,
}

impl VerdictRecord {
    /// Parses and checks one line; the error says what is wrong (without the line number).
    pub fn parse_line(line: &str) -> Result<VerdictRecord, String> {
        if line.len() > MAX_LINE_BYTES {
            return Err(format!("longer than {MAX_LINE_BYTES} bytes"));
        }
        let r: VerdictRecord =
            serde_json::from_str(line).map_err(|e| format!("not a verdict record: {e}"))?;
        r.validate()?;
        Ok(r)
    }

    /// The rules the API applies to a new verdict, plus the format's own.
    pub fn validate(&self) -> Result<(), String> {
        if self.schema_version != SCHEMA_VERSION {
            return Err(format!(
                "schemaVersion {} is not {SCHEMA_VERSION}",
                self.schema_version
            ));
        }
        let key_ok = (8..=100).contains(&self.verdict_key.len())
            && self
                .verdict_key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !key_ok {
            return Err("verdictKey: 8-100 letters, digits or dashes".into());
        }
        RepoName::parse(&self.repo).map_err(|e| format!("repo: {e}"))?;
        check_verdict_fields(&self.verdict, &self.actor, self.note.as_deref())?;
        if let Some(id) = &self.set_id
            && (id.is_empty() || id.len() > 100)
        {
            return Err("setId: 1-100 characters".into());
        }
        let in_scope: Vec<i64> = match self.target.as_str() {
            "pair" => {
                let (Some(a), Some(b)) = (self.a_number, self.b_number) else {
                    return Err("aNumber and bNumber: a pair verdict names two PRs".into());
                };
                if a <= 0 || a >= b {
                    return Err("aNumber and bNumber: two PR numbers, the lower first".into());
                }
                vec![a, b]
            }
            "set" => {
                if self.set_id.is_none() {
                    return Err("setId: a set verdict names its set".into());
                }
                let m = self.members.clone().unwrap_or_default();
                let sorted = m.windows(2).all(|w| w[0] < w[1]);
                if m.len() < 2 || m.len() > 200 || m.iter().any(|n| *n <= 0) || !sorted {
                    return Err("members: 2-200 distinct PR numbers in ascending order".into());
                }
                m
            }
            other => {
                return Err(format!(
                    "target: `{}` is not pair or set",
                    other.escape_debug()
                ));
            }
        };
        match (self.verdict.as_str(), self.base_number) {
            ("base_is", Some(b)) if in_scope.contains(&b) => Ok(()),
            ("base_is", _) => {
                Err("baseNumber: base_is names one of the PRs the verdict is about".into())
            }
            (_, Some(_)) => Err("baseNumber: only a base_is verdict has one".into()),
            (_, None) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> VerdictRecord {
        VerdictRecord {
            schema_version: 1,
            verdict_key: "0f8fad5b-d9cb-469f-a165-70867728950e".into(),
            repo: "acme/widgets".into(),
            target: "pair".into(),
            a_number: Some(3),
            b_number: Some(9),
            set_id: None,
            members: None,
            verdict: "duplicate".into(),
            base_number: None,
            actor: "alice".into(),
            note: None,
            created_at: "2026-11-22T14:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn a_record_round_trips_through_its_line() {
        let r = pair();
        let line = serde_json::to_string(&r).unwrap();
        assert!(line.contains("\"verdictKey\":\"0f8fad5b"), "{line}");
        assert_eq!(VerdictRecord::parse_line(&line).unwrap(), r);
    }

    #[test]
    fn bad_records_say_what_is_wrong() {
        type Change = Box<dyn Fn(&mut VerdictRecord)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|r| r.schema_version = 2), "schemaVersion"),
            (Box::new(|r| r.verdict_key = "x".into()), "verdictKey"),
            (Box::new(|r| r.repo = "no-slash".into()), "repo"),
            (Box::new(|r| r.verdict = "maybe".into()), "verdict"),
            (Box::new(|r| r.actor = String::new()), "actor"),
            (Box::new(|r| r.b_number = Some(2)), "the lower first"),
            (Box::new(|r| r.base_number = Some(3)), "only a base_is"),
            (
                Box::new(|r| {
                    r.verdict = "base_is".into();
                    r.base_number = Some(4);
                }),
                "baseNumber",
            ),
            (
                Box::new(|r| {
                    r.target = "set".into();
                    r.set_id = Some("set-1".into());
                    r.members = Some(vec![5, 2]);
                }),
                "ascending",
            ),
        ];
        for (change, word) in cases {
            let mut r = pair();
            change(&mut r);
            let err = r.validate().unwrap_err();
            assert!(err.contains(word), "{err} (expected {word})");
        }
        let err = VerdictRecord::parse_line("{\"schemaVersion\":1,\"extra\":true}").unwrap_err();
        assert!(err.starts_with("not a verdict record"), "{err}");
        assert!(VerdictRecord::parse_line(&"x".repeat(MAX_LINE_BYTES + 1)).is_err());
    }
}
