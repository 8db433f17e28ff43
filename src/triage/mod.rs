//! The triage engine: pure, deterministic duplicate detection for pull requests.
//!
//! Flow: [`analyse`] turns one PR head ([`PrInput`]) into an [`Analysis`] holding its
//! [`Signature`] ([`analyse_with`] also takes the repository's `.gitattributes` rules, parsed by
//! [`Attributes::parse`]); [`index_keys`] lists the keys to index it under; candidates come from an
//! [`Index`] (or the caller's own store through [`rank_candidates`]); [`score`] turns a pair of
//! signatures into an [`Edge`] with a [`Category`], per-signal [`Scores`] and [`Evidence`].
//!
//! No I/O, no async, no clock, no randomness: the same input always gives the same output, and all
//! outputs are ordered (sorted vectors, ordered maps). Every tunable lives in [`TriageConfig`].

pub mod attributes;
pub mod channel;
pub mod config;
pub mod diff;
pub mod extract;
pub mod glob;
pub mod hash;
pub mod index;
pub mod minhash;
pub mod score;
pub mod set_ids;
pub mod sets;
pub mod signature;
pub mod tokens;

pub use attributes::{Attributes, PathAttributes};
pub use channel::Channel;
pub use config::{ConfigError, DEFAULT_CONFIG_TOML, TriageConfig};
pub use index::{Index, feature_keys, index_keys, rank_candidates};
pub use score::{Category, Edge, Evidence, ScoreContext, Scores, score};
pub use signature::{
    Analysis, Block, ChannelSize, ChannelSizes, ClassifiedFile, DocSig, FileChange, FileStatus,
    PrInput, ProdSig, RefSig, Signature, TestSig, analyse, analyse_with,
};

/// Version of the signature contents; bump whenever `analyse` output changes for the same input
/// (or the appliance stores signatures differently: 2 also brings the binary encoding).
pub const SIGNATURE_VERSION: i32 = 2;

/// Version of scoring and categorisation; bump whenever `score` output changes for the same input.
pub const ALGORITHM_VERSION: i32 = 2;
