//! ClawTriage: a self-hosted appliance that finds duplicate pull requests.
//!
//! Data flows one way: `github` (fetch) → `triage` (pure analysis) → `store` (Postgres) →
//! `api` (serve). `jobs` moves work between them through Redis.

pub mod api;
pub mod backup;
pub mod cache;
pub mod cli;
pub mod config;
pub mod disk;
pub mod eval;
pub mod git;
pub mod github;
pub mod jobs;
pub mod limits;
pub mod metrics;
pub mod pull;
pub mod server;
pub mod state;
pub mod store;
pub mod triage;
pub mod workflow;
