#!/usr/bin/env bash
# Runs the whole appliance on this machine: Postgres, Redis and ClawTriage.
#
#   scripts/run-local.sh
#
# Installs Debian's postgresql and redis-server when they are missing (with
# sudo when not root), builds the release binary, then hands over to the
# supervisor (scripts/start-fly.sh) with DATA_ROOT=./.data. Stop it with
# Ctrl-C; data stays in ./.data. The app listens on 127.0.0.1 unless HOST is
# set. Everything the supervisor and the app read (PORT, POSTGRES_PORT,
# REDIS_PORT, GITHUB_TOKEN, ...) can be set in the environment.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
CT_LOG_TAG=run-local
# shellcheck source=scripts/lib.sh
source "$SCRIPT_DIR/lib.sh"

cd "$REPO_ROOT"
command -v cargo >/dev/null 2>&1 || ct_die "cargo not found: install Rust first (https://rustup.rs)"

ct_ensure_servers
ct_log "cargo build --release"
cargo build --release

export DATA_ROOT="${DATA_ROOT:-$REPO_ROOT/.data}"
# Locally the dashboard answers on loopback only unless HOST says otherwise.
export HOST="${HOST:-127.0.0.1}"
export CLAWTRIAGE_BIN="$REPO_ROOT/target/release/clawtriage"
ct_log "starting the supervisor (data in $DATA_ROOT; http://127.0.0.1:${PORT:-8080}/)"
exec bash "$SCRIPT_DIR/start-fly.sh"
