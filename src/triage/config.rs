//! Triage configuration: every weight, threshold, limit and path rule the engine uses.
//!
//! The built-in values live in `default_config.toml` (embedded at compile time, every value
//! commented there). A user file is merged over the built-in one key by key, so it only needs the
//! values it changes; unknown keys are rejected so a typo cannot silently keep a default.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The built-in configuration text (also the documentation of every value).
pub const DEFAULT_CONFIG_TOML: &str = include_str!("default_config.toml");

/// Why a configuration could not be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The text is not valid TOML.
    #[error("configuration is not valid TOML: {0}")]
    Syntax(String),
    /// The TOML does not have the expected shape (unknown key, wrong type).
    #[error("configuration has an invalid shape: {0}")]
    Shape(String),
    /// A value is out of its allowed range.
    #[error("configuration value `{key}` is invalid: {reason}")]
    Invalid {
        /// Dotted key of the offending value.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// All tunables of the engine. See `default_config.toml` for the meaning of every value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriageConfig {
    /// Version of this configuration, stored with every edge.
    pub config_version: i32,
    /// Final score at or above which an edge is a suggestion (SAME_CHANGE, SAME_FEATURE,
    /// COMPETING_IMPLEMENTATION always score at or above it; RELATED and NOT_RELATED below).
    pub review_threshold: f64,
    /// Final score at or above which a non-suggested edge is RELATED rather than NOT_RELATED.
    pub related_threshold: f64,
    /// Bounds for untrusted input.
    pub limits: Limits,
    /// Bot detection.
    pub bots: BotRules,
    /// Channel path rules.
    pub channels: ChannelRules,
    /// Shingling of changed lines.
    pub shingles: ShingleConfig,
    /// LSH banding of MinHash signatures.
    pub lsh: LshConfig,
    /// Candidate generation.
    pub candidates: CandidateConfig,
    /// Discounting of features shared by many PRs.
    pub rarity: RarityConfig,
    /// Score weights and caps.
    pub score: ScoreWeights,
    /// Category gates.
    pub category: CategoryThresholds,
}

/// Bounds for untrusted input; going over one degrades the analysis, never fails it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest patch (bytes) of one file that is parsed.
    pub max_patch_bytes: usize,
    /// Largest sum of parsed patch bytes for one PR.
    pub max_total_patch_bytes: usize,
    /// Most files of one PR looked at.
    pub max_files: usize,
    /// Most hunks parsed in one file.
    pub max_hunks_per_file: usize,
    /// Most changed lines parsed over the whole PR.
    pub max_changed_lines: usize,
    /// Longest line (bytes) tokenised.
    pub max_line_bytes: usize,
    /// Most distinct shingles fed into one MinHash.
    pub max_shingles: usize,
    /// Most change blocks kept per channel.
    pub max_blocks: usize,
    /// Most entries kept per name list.
    pub max_names: usize,
}

/// Which authors are bots, and which bot PRs are kept from pairing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotRules {
    /// Keep bot PRs from pairing (see `scope`).
    pub exclude: bool,
    /// Which pairs are left out: `"dependency_pairs"` (the default: only two PRs of dependency
    /// bots, see `dependency_bots`; coding agents' PRs are ordinary PRs), `"bot_pairs"` (any two
    /// bot PRs) or `"all"` (a bot PR is never indexed nor scored).
    pub scope: BotScope,
    /// Login suffixes marking a bot (case-insensitive).
    pub suffixes: Vec<String>,
    /// Exact bot logins (case-insensitive).
    pub logins: Vec<String>,
    /// Dependency-update bots (case-insensitive; a login matches with or without one of the
    /// `suffixes`, so `dependabot` names `dependabot[bot]` too).
    pub dependency_bots: Vec<String>,
}

/// Which pairs bot exclusion removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BotScope {
    /// Every pair with a bot PR.
    All,
    /// Only pairs of two bot PRs.
    BotPairs,
    /// Only pairs of two dependency-bot PRs (templated bumps).
    DependencyPairs,
}

/// Path rules per channel (meta, then tests, then docs; otherwise production).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelRules {
    /// Patterns for meta files (agent notes, plans, lockfiles).
    pub meta: Vec<String>,
    /// Patterns for generated files (meta unless the repository's `.gitattributes` says
    /// `-linguist-generated`).
    pub generated: Vec<String>,
    /// Directory names of vendored trees, counted at the repository root or a module root only
    /// (no `source_dirs` name above them), or anywhere when what lies below them looks like a
    /// package tree (`vendor/github.com/...`, `vendor/modules.txt`).
    pub vendored_dirs: Vec<String>,
    /// Directory names of package-manager install trees, vendored wherever they appear.
    pub vendored_anywhere: Vec<String>,
    /// Directory names of source trees: a `vendored_dirs` name below one of them is a module of
    /// the program (a CLI's `vendor` subcommand), not vendored code.
    pub source_dirs: Vec<String>,
    /// Patterns for test files.
    pub tests: Vec<String>,
    /// Patterns for documentation files.
    pub docs: Vec<String>,
    /// Move production files whose changed lines define tests with a language's test API to
    /// tests.
    pub refine_by_content: bool,
    /// Markers that make a file generated (meta) when seen in its first lines.
    pub generated_markers: Vec<String>,
}

/// Shingling parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShingleConfig {
    /// Tokens per shingle.
    pub size: usize,
    /// Least tokens of a change block for it to get an exact-match signature.
    pub min_block_tokens: usize,
    /// Content-defined cut: a block ends after a line whose hash is divisible by this.
    pub chunk_divisor: u64,
    /// A block ends after this many lines at the latest.
    pub chunk_max_lines: usize,
    /// Weight (in changed lines) of one path operation (a rename, a copy, a mode change, a
    /// binary file with its blob id) when compared like a change block.
    pub path_op_lines: u32,
}

/// LSH banding (bands x rows must not exceed the 128 MinHash values).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LshConfig {
    /// Bands over the production MinHash.
    pub prod_bands: usize,
    /// Rows per production band.
    pub prod_rows: usize,
    /// Bands over the test MinHash.
    pub test_bands: usize,
    /// Rows per test band.
    pub test_rows: usize,
}

/// Candidate generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CandidateConfig {
    /// Most candidates returned for one PR.
    pub max_candidates: usize,
    /// Keys with longer posting lists are ignored.
    pub max_posting: usize,
    /// Vote of a shared canonical hash.
    pub weight_canonical: f64,
    /// Vote of a shared change block.
    pub weight_block: f64,
    /// Vote of a shared test change block.
    pub weight_test_block: f64,
    /// Vote of a shared LSH bucket.
    pub weight_lsh: f64,
    /// Vote of a shared reference (or a direct mention).
    pub weight_ref: f64,
    /// Vote of a shared symbol.
    pub weight_symbol: f64,
    /// Vote of a shared production path.
    pub weight_path: f64,
    /// Vote of a shared test or doc path.
    pub weight_side_path: f64,
    /// Vote of a shared test name.
    pub weight_test: f64,
    /// Vote of a shared doc heading.
    pub weight_doc: f64,
}

/// Discounting of common features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RarityConfig {
    /// Features carried by at most this many PRs count fully.
    pub free_df: u32,
    /// Features carried by more than this many PRs are ignored.
    pub ignore_df: u32,
    /// Location features (paths, symbols, imports, headings) are discounted more gently:
    /// weight `(free_df / df) ^ location_exponent` above `free_df`, never zero.
    pub location_exponent: f64,
}

/// Score weights and caps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreWeights {
    /// Weight of production similarity.
    pub weight_prod: f64,
    /// Weight of production area (paths, symbols).
    pub weight_area: f64,
    /// Weight of test similarity.
    pub weight_tests: f64,
    /// Most that tests may add.
    pub cap_tests: f64,
    /// Weight of docs similarity.
    pub weight_docs: f64,
    /// Most that docs may add.
    pub cap_docs: f64,
    /// Weight of the reference signal.
    pub weight_refs: f64,
    /// Most that references may add.
    pub cap_refs: f64,
    /// Reference signal of a direct mention.
    pub direct_mention: f64,
    /// Reference signal of a shared non-closing mention.
    pub shared_mention: f64,
    /// Path similarity at which text similarity counts fully.
    pub text_path_gate: f64,
    /// Share of path similarity in the area score.
    pub area_path_share: f64,
    /// Fraction at which import similarity counts as symbol similarity.
    pub import_share: f64,
    /// Prior mass (weighted lines) in block similarity.
    pub block_prior_lines: f64,
}

/// Category gates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryThresholds {
    /// Production similarity for SAME_CHANGE.
    pub same_change_prod: f64,
    /// Path similarity for SAME_CHANGE.
    pub same_change_paths: f64,
    /// Exact change-block similarity for SAME_CHANGE without identical canonical hashes.
    pub same_change_blocks: f64,
    /// Area overlap for SAME_FEATURE.
    pub feature_min_area: f64,
    /// Production similarity supporting SAME_FEATURE.
    pub feature_min_prod: f64,
    /// Least shared production mass (weighted lines) for SAME_FEATURE.
    pub feature_min_shared_lines: f64,
    /// Test similarity for COMPETING_IMPLEMENTATION.
    pub competing_min_tests: f64,
    /// Least shared weighted test lines for COMPETING_IMPLEMENTATION.
    pub competing_min_test_lines: f64,
    /// Production similarity below which identical tests mean competing.
    pub competing_max_prod: f64,
    /// Least production area overlap (paths, symbols) for competing implementations.
    pub competing_min_area: f64,
    /// Least (rarity-weighted) similarity of the changed test paths for competing
    /// implementations.
    pub competing_min_test_paths: f64,
    /// Base final score of a competing edge.
    pub competing_base: f64,
    /// Span of the final score of a competing edge.
    pub competing_span: f64,
    /// Least final score of a SAME_CHANGE edge.
    pub same_change_floor: f64,
    /// Most final score of a SAME_FEATURE edge.
    pub feature_ceiling: f64,
    /// Cross similarity (added vs removed) marking a revert.
    pub revert_cross: f64,
    /// Share of the smaller change that matches the other only up to literal values (numbers,
    /// versions, dates, hashes) from which the pair is "same places, different values": weak
    /// evidence, at most RELATED.
    pub literal_only_share: f64,
}

impl Default for TriageConfig {
    fn default() -> Self {
        match toml::from_str::<TriageConfig>(DEFAULT_CONFIG_TOML) {
            Ok(cfg) => cfg,
            // The embedded file is checked by a unit test; reaching this is a build defect.
            Err(e) => unreachable!("built-in triage configuration is invalid: {e}"),
        }
    }
}

impl TriageConfig {
    /// Parses a user configuration, merged key by key over the built-in one, and validates it.
    pub fn from_toml_str(s: &str) -> Result<Self, ConfigError> {
        let mut base: toml::Table = toml::from_str(DEFAULT_CONFIG_TOML)
            .map_err(|e| ConfigError::Syntax(format!("built-in: {e}")))?;
        let user: toml::Table =
            toml::from_str(s).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        merge(&mut base, user);
        let cfg: TriageConfig = toml::Value::Table(base)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Shape(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks ranges that the type system cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, reason: &str| {
            Err(ConfigError::Invalid {
                key: key.to_string(),
                reason: reason.to_string(),
            })
        };
        let unit = [
            ("review_threshold", self.review_threshold),
            ("related_threshold", self.related_threshold),
            ("category.same_change_prod", self.category.same_change_prod),
            (
                "category.same_change_paths",
                self.category.same_change_paths,
            ),
            (
                "category.competing_min_tests",
                self.category.competing_min_tests,
            ),
            ("category.revert_cross", self.category.revert_cross),
            (
                "category.literal_only_share",
                self.category.literal_only_share,
            ),
            (
                "category.same_change_floor",
                self.category.same_change_floor,
            ),
            ("category.feature_ceiling", self.category.feature_ceiling),
        ];
        for (k, v) in unit {
            if !(0.0..=1.0).contains(&v) {
                return bad(k, "must be between 0 and 1");
            }
        }
        if self.related_threshold >= self.review_threshold {
            return bad("related_threshold", "must be below review_threshold");
        }
        if self.category.feature_ceiling < self.review_threshold
            || self.category.same_change_floor < self.review_threshold
        {
            return bad(
                "category.feature_ceiling",
                "suggestion bands must start at review_threshold",
            );
        }
        if self.lsh.prod_bands * self.lsh.prod_rows > crate::triage::minhash::NUM_HASHES
            || self.lsh.prod_bands == 0
            || self.lsh.prod_rows == 0
        {
            return bad("lsh.prod_bands", "bands x rows must be between 1 and 128");
        }
        if self.lsh.test_bands * self.lsh.test_rows > crate::triage::minhash::NUM_HASHES
            || self.lsh.test_bands == 0
            || self.lsh.test_rows == 0
        {
            return bad("lsh.test_bands", "bands x rows must be between 1 and 128");
        }
        if self.shingles.size == 0 {
            return bad("shingles.size", "must be at least 1");
        }
        if self.rarity.free_df == 0 || self.rarity.ignore_df < self.rarity.free_df {
            return bad("rarity.ignore_df", "need 1 <= free_df <= ignore_df");
        }
        if self.candidates.max_candidates == 0 {
            return bad("candidates.max_candidates", "must be at least 1");
        }
        Ok(())
    }

    /// Weight in `[0, 1]` of a feature carried by `df` indexed PRs (see `[rarity]`).
    pub fn rarity_weight(&self, df: u32) -> f64 {
        let free = self.rarity.free_df;
        let ignore = self.rarity.ignore_df;
        if df <= free {
            1.0
        } else if df > ignore {
            0.0
        } else {
            // Linear from 1 at `free` to 0 just past `ignore`.
            let span = f64::from(ignore - free + 1);
            1.0 - f64::from(df - free) / span
        }
    }

    /// Weight of a location feature (path, symbol, import, heading) carried by `df` PRs.
    pub fn location_weight(&self, df: u32) -> f64 {
        let free = self.rarity.free_df.max(1);
        if df <= free {
            1.0
        } else {
            (f64::from(free) / f64::from(df)).powf(self.rarity.location_exponent)
        }
    }

    /// True when bot PRs are kept out of the index and of every pair.
    pub fn excludes_bots_entirely(&self) -> bool {
        self.bots.exclude && self.bots.scope == BotScope::All
    }

    /// True when the pair is left out because of its authors (logins).
    pub fn excludes_pair(&self, a: &str, b: &str) -> bool {
        self.bots.exclude
            && match self.bots.scope {
                BotScope::All => self.is_bot(a) || self.is_bot(b),
                BotScope::BotPairs => self.is_bot(a) && self.is_bot(b),
                BotScope::DependencyPairs => self.is_dependency_bot(a) && self.is_dependency_bot(b),
            }
    }

    /// True when `login` is a bot according to `[bots]`.
    pub fn is_bot(&self, login: &str) -> bool {
        let l = login.to_ascii_lowercase();
        self.bots
            .suffixes
            .iter()
            .any(|s| l.ends_with(&s.to_ascii_lowercase()))
            || self.bots.logins.iter().any(|b| b.eq_ignore_ascii_case(&l))
            || self.is_dependency_bot(login)
    }

    /// True when `login` is a dependency-update bot (`bots.dependency_bots`).
    pub fn is_dependency_bot(&self, login: &str) -> bool {
        let l = login.to_ascii_lowercase();
        let bare = self
            .bots
            .suffixes
            .iter()
            .find_map(|s| l.strip_suffix(&s.to_ascii_lowercase()))
            .unwrap_or(&l);
        self.bots
            .dependency_bots
            .iter()
            .any(|b| b.eq_ignore_ascii_case(bare))
    }
}

/// Merges `user` into `base`, key by key (tables recursively, everything else replaced).
pub fn merge(base: &mut toml::Table, user: toml::Table) {
    for (k, v) in user {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(u)) => merge(b, u),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_parses_and_validates() {
        let cfg = TriageConfig::default();
        cfg.validate().unwrap();
        assert_eq!(cfg, TriageConfig::from_toml_str("").unwrap());
        assert!(cfg.review_threshold > cfg.related_threshold);
    }

    #[test]
    fn user_file_overrides_single_keys() {
        let cfg =
            TriageConfig::from_toml_str("review_threshold = 0.7\n[score]\ncap_tests = 0.05\n")
                .unwrap();
        assert_eq!(cfg.review_threshold, 0.7);
        assert_eq!(cfg.score.cap_tests, 0.05);
        assert_eq!(
            cfg.score.weight_prod,
            TriageConfig::default().score.weight_prod
        );
    }

    #[test]
    fn typed_errors() {
        assert!(matches!(
            TriageConfig::from_toml_str("review_threshold = "),
            Err(ConfigError::Syntax(_))
        ));
        assert!(matches!(
            TriageConfig::from_toml_str("no_such_key = 1"),
            Err(ConfigError::Shape(_))
        ));
        assert!(matches!(
            TriageConfig::from_toml_str("review_threshold = \"high\""),
            Err(ConfigError::Shape(_))
        ));
        assert!(matches!(
            TriageConfig::from_toml_str("review_threshold = 1.5"),
            Err(ConfigError::Invalid { .. })
        ));
        assert!(matches!(
            TriageConfig::from_toml_str("[lsh]\nprod_bands = 64\nprod_rows = 4"),
            Err(ConfigError::Invalid { .. })
        ));
    }

    #[test]
    fn rarity_weight_is_monotone() {
        let cfg = TriageConfig::default();
        let mut prev = 2.0;
        for df in 0..40 {
            let w = cfg.rarity_weight(df);
            assert!(w <= prev && (0.0..=1.0).contains(&w));
            prev = w;
        }
        assert_eq!(cfg.rarity_weight(2), 1.0);
        assert_eq!(cfg.rarity_weight(cfg.rarity.ignore_df + 1), 0.0);
    }

    #[test]
    fn bots() {
        let cfg = TriageConfig::default();
        assert!(cfg.is_bot("dependabot[bot]"));
        assert!(cfg.is_bot("Renovate"));
        assert!(cfg.is_bot("copilot-swe-agent[bot]"));
        assert!(!cfg.is_bot("robotics-dev"));
        assert!(cfg.is_dependency_bot("dependabot[bot]"));
        assert!(cfg.is_dependency_bot("renovate[bot]"));
        assert!(cfg.is_dependency_bot("Renovate"));
        assert!(!cfg.is_dependency_bot("copilot-swe-agent[bot]"));
        assert!(!cfg.is_dependency_bot("devin-ai-integration[bot]"));
        // Default: only two dependency bots are kept apart; agents pair with anyone.
        assert!(cfg.excludes_pair("dependabot[bot]", "renovate[bot]"));
        assert!(!cfg.excludes_pair("dependabot[bot]", "alice"));
        assert!(!cfg.excludes_pair("copilot-swe-agent[bot]", "devin-ai-integration[bot]"));
        assert!(!cfg.excludes_pair("copilot-swe-agent[bot]", "dependabot[bot]"));
        assert!(!cfg.excludes_bots_entirely());
        let all = TriageConfig::from_toml_str("[bots]\nscope = \"all\"").unwrap();
        assert!(all.excludes_bots_entirely());
        assert!(all.excludes_pair("copilot-swe-agent[bot]", "alice"));
        let pairs = TriageConfig::from_toml_str("[bots]\nscope = \"bot_pairs\"").unwrap();
        assert!(pairs.excludes_pair("copilot-swe-agent[bot]", "codex[bot]"));
        assert!(!pairs.excludes_pair("copilot-swe-agent[bot]", "alice"));
    }
}
