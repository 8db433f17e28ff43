#!/usr/bin/env bash
# ClawTriage supervisor: runs Postgres, Redis and `clawtriage serve` together.
#
# Used as the container entry point on Fly (DATA_ROOT=/data) and locally
# (DATA_ROOT=./.data). With DATABASE_URL / REDIS_URL naming servers elsewhere
# (managed Postgres / Redis: anything but 127.0.0.1 or localhost on
# POSTGRES_PORT / REDIS_PORT), that server is not started here: with both
# elsewhere the supervisor runs migrations (under the app's advisory lock, so
# many machines may start at once) and supervises only the app. Lifecycle:
#   1. prepare $DATA_ROOT (postgres/, redis/, run/), initdb on first start;
#   2. start Postgres and Redis on 127.0.0.1, wait until both answer;
#   3. create role and database `clawtriage` (idempotent), run `clawtriage migrate`;
#   4. start `clawtriage serve` and wait for any of the three to exit.
# SIGTERM/SIGINT: stop the app (bounded), then Postgres (fast), then Redis
# (SHUTDOWN, which fsyncs the append-only file) and exit 0. If a child exits
# on its own, the others are stopped the same way and the exit code is 1, so
# Fly's restart policy restarts the machine.
#
# Environment (all optional):
#   DATA_ROOT              /data on Fly (FLY_APP_NAME set), ./.data otherwise
#   PORT                   app HTTP port, default 8080
#   POSTGRES_PORT          default 5432 (127.0.0.1 only)
#   REDIS_PORT             default 6379 (127.0.0.1 only)
#   CLAWTRIAGE_BIN         default: `clawtriage` on PATH, else <repo>/target/release/clawtriage
#   DATABASE_URL           default: built from $DATA_ROOT/postgres-app-password;
#                          a server elsewhere is used as it is (no local Postgres)
#   REDIS_URL              default: built from $DATA_ROOT/redis-password;
#                          a server elsewhere is used as it is (no local Redis)
#   ROLE                   all | web | worker, passed to `clawtriage serve` (the
#                          script's first argument, when given, sets it)
#   PG_BINDIR              Postgres server binaries; default newest /usr/lib/postgresql/*/bin
#   SHUTDOWN_TIMEOUT_SECS  the app's drain bound (default 25); the supervisor waits 5 s more, then SIGKILL
#   READY_TIMEOUT_SECS     how long to wait for Postgres/Redis to answer, default 120
#   APP_USER               run the app as this user (root supervisor only; the image
#                          sets clawtriage); default: the supervisor's own user
#
# Postgres, Redis and their tools run with a cleared environment (PATH and the
# locale only): on Fly every secret of the app is in the supervisor's
# environment, and only the app needs them.
#
# Files under $DATA_ROOT: postgres/ (PGDATA), redis/ (append-only file),
# postgres-app-password, redis-password (mode 600), run/ (pid files and the
# Postgres socket; recreated at every start), supervisor.lock.
set -euo pipefail

# ---------------------------------------------------------------------------
# Shutdown machinery. Defined before anything else runs so that the traps,
# installed right below, can act from the first moment.

APP_PID=""
PG_PID=""
REDIS_PID=""
FG_PID=""          # a one-off child we are waiting for (initdb, migrate, ...)
FG_NAME=""
PG_LOG_PID=""      # the prefixers copying Postgres's and Redis's output
REDIS_LOG_PID=""
TMP_SOCKET_DIR=""  # set when the Postgres socket lives under /tmp instead
CHILD_ENV=()       # `env -i ...` for Postgres, Redis and their tools (set below)
STOPPING=0

log() { printf '[supervisor] %s\n' "$*" >&2; }

# True while $1 names a live (non-zombie) process.
alive() {
    local pid="$1" state
    [[ -n "$pid" ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)"
    [[ "$state" != "Z" ]]
}

# Waits up to $2 seconds for pid $1 to exit. Returns 1 on timeout.
wait_gone() {
    local pid="$1" deadline=$((SECONDS + $2))
    while alive "$pid"; do
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 0.1
    done
    wait "$pid" 2>/dev/null || true
    return 0
}

stop_app() {
    local bound=$((${SHUTDOWN_TIMEOUT_SECS:-25} + 5))
    if alive "$APP_PID"; then
        log "stopping app (pid $APP_PID, SIGTERM, up to ${bound}s)"
        kill -TERM "$APP_PID" 2>/dev/null || true
        if ! wait_gone "$APP_PID" "$bound"; then
            log "app did not exit within ${bound}s; sending SIGKILL"
            kill -KILL "$APP_PID" 2>/dev/null || true
            wait_gone "$APP_PID" 5 || true
        fi
        log "app stopped"
    fi
    if alive "$FG_PID"; then
        log "stopping $FG_NAME (pid $FG_PID)"
        kill -TERM "$FG_PID" 2>/dev/null || true
        wait_gone "$FG_PID" 10 || kill -KILL "$FG_PID" 2>/dev/null || true
    fi
}

stop_postgres() {
    alive "$PG_PID" || return 0
    log "stopping Postgres (pid $PG_PID, fast shutdown)"
    if ! ct_run_as "$PG_USER" "${CHILD_ENV[@]}" "$PG_BINDIR/pg_ctl" -D "$PGDATA" stop -s -m fast -w -t 20 >&2; then
        log "pg_ctl stop failed; sending SIGINT (fast shutdown) to the postmaster"
        kill -INT "$PG_PID" 2>/dev/null || true
    fi
    if ! wait_gone "$PG_PID" 20; then
        log "Postgres still running; sending SIGQUIT (immediate shutdown)"
        kill -QUIT "$PG_PID" 2>/dev/null || true
        wait_gone "$PG_PID" 5 || kill -KILL "$PG_PID" 2>/dev/null || true
    fi
    # Let the last log lines through before we report.
    wait_gone "$PG_LOG_PID" 2 || true
    log "Postgres stopped"
}

stop_redis() {
    alive "$REDIS_PID" || return 0
    log "stopping Redis (pid $REDIS_PID, SHUTDOWN)"
    if ! "${CHILD_ENV[@]}" REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown >/dev/null 2>&1; then
        # SHUTDOWN closes the connection; redis-cli may report that as an error.
        if alive "$REDIS_PID"; then
            kill -TERM "$REDIS_PID" 2>/dev/null || true
        fi
    fi
    if ! wait_gone "$REDIS_PID" 20; then
        log "Redis still running after 20s; sending SIGKILL"
        kill -KILL "$REDIS_PID" 2>/dev/null || true
        wait_gone "$REDIS_PID" 5 || true
    fi
    wait_gone "$REDIS_LOG_PID" 2 || true
    log "Redis stopped"
}

# Stops everything that runs, in order. Safe to call at any stage of start-up.
stop_all() {
    if ((STOPPING)); then
        return 0
    fi
    STOPPING=1
    trap 'log "already shutting down; signal ignored"' TERM INT
    stop_app
    stop_postgres
    stop_redis
    rm -f "${RUN_DIR:-/nonexistent}"/{app,postgres,redis,supervisor}.pid 2>/dev/null || true
    if [[ -n "$TMP_SOCKET_DIR" ]]; then
        rm -rf "$TMP_SOCKET_DIR" 2>/dev/null || true
    fi
}

# shellcheck disable=SC2317  # called from traps
on_signal() {
    log "received SIG$1; shutting down"
    stop_all
    log "clean shutdown complete"
    trap - EXIT
    exit 0
}

# shellcheck disable=SC2317  # called from traps
on_exit() {
    local rc=$?
    if ((!STOPPING)); then
        log "exiting with status $rc; stopping the remaining processes"
        stop_all
    fi
    exit "$rc"
}

trap 'on_signal TERM' TERM
trap 'on_signal INT' INT
trap on_exit EXIT

# ---------------------------------------------------------------------------
# Configuration

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
CT_LOG_TAG=supervisor
# shellcheck source=scripts/lib.sh
source "$SCRIPT_DIR/lib.sh"

# The environment of Postgres, Redis and their tools: what they need to run, none
# of the app's secrets (tokens, keys, database and Redis URLs).
CHILD_ENV=(env -i "PATH=$PATH")
for var in LANG LC_ALL LC_CTYPE LC_MESSAGES TZ TMPDIR; do
    if [[ -n "${!var:-}" ]]; then CHILD_ENV+=("$var=${!var}"); fi
done

# A role as the first argument (Fly passes a process group's command here):
# all, web or worker; it becomes ROLE for `clawtriage serve`.
if (($# > 0)); then
    case "$1" in
        all | web | worker) ROLE="$1" ;;
        *) ct_die "unknown role '$1' (all, web or worker)" ;;
    esac
    export ROLE
fi

if [[ -z "${DATA_ROOT:-}" ]]; then
    if [[ -n "${FLY_APP_NAME:-}" ]]; then DATA_ROOT=/data; else DATA_ROOT=./.data; fi
fi
PORT="${PORT:-8080}"
POSTGRES_PORT="${POSTGRES_PORT:-5432}"
REDIS_PORT="${REDIS_PORT:-6379}"
READY_TIMEOUT_SECS="${READY_TIMEOUT_SECS:-120}"
for var in PORT POSTGRES_PORT REDIS_PORT READY_TIMEOUT_SECS; do
    [[ "${!var}" =~ ^[0-9]+$ ]] || ct_die "$var must be a number, got '${!var}'"
done
if [[ -n "${SHUTDOWN_TIMEOUT_SECS:-}" && ! "$SHUTDOWN_TIMEOUT_SECS" =~ ^[0-9]+$ ]]; then
    ct_die "SHUTDOWN_TIMEOUT_SECS must be a whole number of seconds, got '$SHUTDOWN_TIMEOUT_SECS'"
fi

# True when URL $1 is unset or names this machine's own server on port $2
# (the default port of the URL's scheme is $3): the server this script runs.
# A URL naming any other host or port (or not a URL at all) is a server
# elsewhere, which this script leaves alone.
is_local_url() {
    local url="$1" port="$2" default_port="$3" rest host url_port
    [[ -z "$url" ]] && return 0
    [[ "$url" == *://* ]] || return 1
    rest="${url#*://}"
    rest="${rest##*@}"
    rest="${rest%%/*}"
    rest="${rest%%\?*}"
    if [[ "$rest" == \[* ]]; then
        host="${rest%%]*}]"
        url_port="${rest#"$host"}"
    else
        host="${rest%%:*}"
        url_port="${rest#"$host"}"
    fi
    url_port="${url_port#:}"
    case "$host" in
        127.0.0.1 | localhost | "[::1]") ;;
        *) return 1 ;;
    esac
    [[ "${url_port:-$default_port}" == "$port" ]]
}
LOCAL_PG=1
LOCAL_REDIS=1
is_local_url "${DATABASE_URL:-}" "$POSTGRES_PORT" 5432 || LOCAL_PG=0
is_local_url "${REDIS_URL:-}" "$REDIS_PORT" 6379 || LOCAL_REDIS=0

if [[ -z "${CLAWTRIAGE_BIN:-}" ]]; then
    if command -v clawtriage >/dev/null 2>&1; then
        CLAWTRIAGE_BIN="$(command -v clawtriage)"
    else
        CLAWTRIAGE_BIN="$REPO_ROOT/target/release/clawtriage"
    fi
fi
if [[ "$CLAWTRIAGE_BIN" != */* ]] && command -v "$CLAWTRIAGE_BIN" >/dev/null 2>&1; then
    CLAWTRIAGE_BIN="$(command -v "$CLAWTRIAGE_BIN")"
fi
[[ -x "$CLAWTRIAGE_BIN" ]] || ct_die "CLAWTRIAGE_BIN=$CLAWTRIAGE_BIN is not an executable (build it with 'cargo build --release')"
if ((LOCAL_REDIS)); then
    command -v redis-server >/dev/null 2>&1 || ct_die "redis-server not found (Debian: apt-get install redis-server)"
    command -v redis-cli >/dev/null 2>&1 || ct_die "redis-cli not found (Debian: apt-get install redis-tools)"
fi

mkdir -p "$DATA_ROOT"
DATA_ROOT="$(cd "$DATA_ROOT" && pwd)"
PGDATA="$DATA_ROOT/postgres"
REDIS_DIR="$DATA_ROOT/redis"
RUN_DIR="$DATA_ROOT/run"
PG_PASSWORD_FILE="$DATA_ROOT/postgres-app-password"
REDIS_PASSWORD_FILE="$DATA_ROOT/redis-password"

PG_BINDIR=""
if ((LOCAL_PG)); then
    PG_BINDIR="$(ct_find_pg_bindir "$PGDATA")" \
        || ct_die "no Postgres server binaries in /usr/lib/postgresql/*/bin (Debian: apt-get install postgresql); or set PG_BINDIR"
fi

# Postgres refuses to run as root: as root, Postgres runs as `postgres` and
# Redis as `redis` (when that user exists). Otherwise everything runs as us.
# AS_PG/AS_REDIS prefix the long-running servers' command lines: setpriv
# replaces itself with the server, so `$!` is the server's own pid.
AS_PG=()
AS_REDIS=()
if ct_is_root; then
    if ((LOCAL_PG)); then
        id postgres >/dev/null 2>&1 || ct_die "running as root but there is no 'postgres' user to run Postgres as"
    fi
    PG_USER=postgres
    AS_PG=(setpriv --reuid=postgres --regid=postgres --init-groups --)
    if id redis >/dev/null 2>&1; then
        REDIS_USER=redis
        AS_REDIS=(setpriv --reuid=redis --regid=redis --init-groups --)
    else
        REDIS_USER=root
    fi
else
    PG_USER="$(id -un)"
    REDIS_USER="$PG_USER"
fi

# APP_USER (the image sets `clawtriage`): the user `clawtriage migrate` and
# `serve` run as, with that user's HOME (git reads its config there). Needs a
# root supervisor. Unset or our own name: the app runs as we do.
AS_APP=()
if [[ -n "${APP_USER:-}" && "$APP_USER" != "$(id -un)" ]]; then
    ct_is_root || ct_die "APP_USER=$APP_USER needs the supervisor to run as root (or unset APP_USER to run the app as $(id -un))"
    id "$APP_USER" >/dev/null 2>&1 || ct_die "APP_USER=$APP_USER: there is no such user"
    app_home="$(getent passwd "$APP_USER" | cut -d: -f6)"
    AS_APP=(setpriv --reuid="$APP_USER" --regid="$(id -g "$APP_USER")" --init-groups -- env HOME="${app_home:-/}")
    ct_run_as "$APP_USER" test -x "$CLAWTRIAGE_BIN" \
        || ct_die "APP_USER=$APP_USER cannot run $CLAWTRIAGE_BIN (put the binary where that user can reach it)"
else
    APP_USER="$(id -un)"
fi

# One supervisor per data directory. The lock is inherited by the children,
# so it stays held while any of them is still alive.
exec 9>"$DATA_ROOT/supervisor.lock"
flock -n 9 || ct_die "another supervisor (or a process it left behind) is using $DATA_ROOT"

pg_where="127.0.0.1:$POSTGRES_PORT"
((LOCAL_PG)) || pg_where="elsewhere (DATABASE_URL; not started here)"
redis_where="127.0.0.1:$REDIS_PORT"
((LOCAL_REDIS)) || redis_where="elsewhere (REDIS_URL; not started here)"
log "data root $DATA_ROOT; app port $PORT, role ${ROLE:-all}, Postgres $pg_where, Redis $redis_where"
if ((LOCAL_PG)); then
    log "Postgres binaries $PG_BINDIR (as $PG_USER); app $CLAWTRIAGE_BIN"
else
    log "app $CLAWTRIAGE_BIN"
fi

if [[ -n "${FLY_APP_NAME:-}" ]] && ((LOCAL_PG || LOCAL_REDIS)); then
    # Without the volume, everything would vanish at the next restart.
    if command -v mountpoint >/dev/null 2>&1 && ! mountpoint -q "$DATA_ROOT"; then
        log "WARNING: $DATA_ROOT is not a mounted volume; data will be lost when the Machine restarts (see [[mounts]] in fly.toml)"
    fi
    # We own the VM: Redis asks for overcommit so background saves cannot fail.
    if ct_is_root; then
        echo 1 >/proc/sys/vm/overcommit_memory 2>/dev/null || true
    fi
fi

# Runs "$@" in the background and waits for it, so that a signal is handled
# at once instead of after the command finishes. "$@" must be an executable,
# not a shell function, so that FG_PID is the process itself.
run_waited() {
    FG_NAME="$1"
    shift
    # `<&0`: a background command would otherwise read /dev/null, not our stdin.
    "$@" <&0 &
    FG_PID=$!
    local rc=0
    wait "$FG_PID" || rc=$?
    FG_PID=""
    return "$rc"
}

# Copies a child's output to our stderr with a prefix. The prefixer ignores
# INT/TERM so a Ctrl-C in the terminal cannot cut the shutdown log short.
prefix_lines() {
    trap '' INT TERM
    exec sed -u "s/^/[$1] /"
}

# Opens a write fd into a new prefixer and stores it in LOG_FD, its pid in
# LOG_PID. The prefixer is our child (not the server's); close LOG_FD once the
# server has it, so the prefixer ends when the server does.
open_log_pipe() {
    exec {LOG_FD}> >(prefix_lines "$1")
    LOG_PID=$!
}

random_secret() {
    od -An -tx1 -N24 /dev/urandom | tr -d ' \n'
}

# Prints the secret stored in file $1, creating it (mode 600) when missing.
load_secret() {
    local file="$1"
    if [[ ! -s "$file" ]]; then
        (umask 077 && random_secret >"$file.tmp" && mv -f "$file.tmp" "$file")
        log "generated a new secret in $file"
    fi
    chmod 600 "$file"
    tr -d '\n' <"$file"
}

# ---------------------------------------------------------------------------
# Directories

rm -rf "$RUN_DIR"
mkdir -p "$RUN_DIR"
((LOCAL_REDIS)) && mkdir -p "$REDIS_DIR"
chmod 755 "$RUN_DIR"
echo $$ >"$RUN_DIR/supervisor.pid"

# A Unix socket path must stay under ~107 bytes, and Postgres splits
# unix_socket_directories at commas and spaces: fall back to /tmp otherwise.
PG_SOCKET_DIR="$RUN_DIR/pg"
if ((LOCAL_PG)); then
    if ((${#PG_SOCKET_DIR} + 20 > 100)) || [[ ! "$PG_SOCKET_DIR" =~ ^[A-Za-z0-9/._-]+$ ]]; then
        PG_SOCKET_DIR="$(mktemp -d /tmp/clawtriage-pg.XXXXXX)"
        TMP_SOCKET_DIR="$PG_SOCKET_DIR"
    fi
    mkdir -p "$PG_SOCKET_DIR"
    chmod 755 "$PG_SOCKET_DIR"
fi

# Gives a tree to user $2 unless its top already belongs to them (a full
# chown -R of a big data directory at every boot would be slow).
own_tree() {
    if ct_is_root && [[ "$(stat -c %U "$1")" != "$2" ]]; then
        chown -R "$2:" "$1"
    fi
}

if ct_is_root && ((LOCAL_PG)); then
    chown "$PG_USER:" "$PG_SOCKET_DIR"
fi
((LOCAL_REDIS)) && own_tree "$REDIS_DIR" "$REDIS_USER"
# The app's git mirrors; the app gets its database and Redis passwords through
# DATABASE_URL and REDIS_URL in its environment, so it needs no other file here.
mkdir -p "$DATA_ROOT/repos"
own_tree "$DATA_ROOT/repos" "$APP_USER"
((LOCAL_REDIS)) && chmod 700 "$REDIS_DIR"

# ---------------------------------------------------------------------------
# Postgres (first-time initialisation, start) and Redis, unless elsewhere

users=("$APP_USER")
((LOCAL_PG)) && users+=("$PG_USER")
((LOCAL_REDIS)) && users+=("$REDIS_USER")
for user in "${users[@]}"; do
    if ! ct_run_as "$user" test -x "$DATA_ROOT"; then
        ct_die "user $user cannot enter $DATA_ROOT (a parent directory is not searchable, e.g. /root is mode 700); use a DATA_ROOT elsewhere or make its parents searchable (chmod o+x)"
    fi
done

start_local_postgres() {
    if [[ ! -f "$PGDATA/PG_VERSION" ]]; then
        if [[ -e "$PGDATA" ]] && [[ -n "$(ls -A "$PGDATA")" ]]; then
            ct_die "$PGDATA exists, is not empty and holds no PG_VERSION; refusing to initialise over it"
        fi
        # initdb into a scratch directory and rename it, so an interrupted first
        # start leaves nothing half-made behind.
        staging="$DATA_ROOT/postgres.initdb"
        rm -rf "$staging"
        mkdir -p "$staging"
        chmod 700 "$staging"
        ct_is_root && chown "$PG_USER:" "$staging"
        log "initialising a new Postgres cluster in $PGDATA"
        run_waited initdb "${AS_PG[@]}" "${CHILD_ENV[@]}" "$PG_BINDIR/initdb" -D "$staging" -U "$PG_USER" \
            --auth-local=peer --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 --no-instructions >&2 \
            || ct_die "initdb failed (see above)"
        rmdir "$PGDATA" 2>/dev/null || true
        mv "$staging" "$PGDATA"
    fi
    own_tree "$PGDATA" "$PG_USER"
    chmod 700 "$PGDATA"

    # A postmaster.pid left by a crash can name a pid that now belongs to some
    # other process, and Postgres then refuses to start. Nothing of ours runs on
    # this directory (we hold the lock), so only a live `postgres` keeps it.
    if [[ -f "$PGDATA/postmaster.pid" ]]; then
        old_pid="$(head -n1 "$PGDATA/postmaster.pid" 2>/dev/null || true)"
        if [[ "$old_pid" =~ ^[0-9]+$ ]] && [[ "$(cat "/proc/$old_pid/comm" 2>/dev/null || true)" == postgres ]]; then
            ct_die "a Postgres (pid $old_pid) is already running on $PGDATA; stop it first"
        fi
        log "removing stale $PGDATA/postmaster.pid (pid ${old_pid:-?} is not running Postgres)"
        rm -f "$PGDATA/postmaster.pid"
    fi

    open_log_pipe postgres
    "${AS_PG[@]}" "${CHILD_ENV[@]}" setsid "$PG_BINDIR/postgres" -D "$PGDATA" \
        -c listen_addresses=127.0.0.1 \
        -c port="$POSTGRES_PORT" \
        -c unix_socket_directories="$PG_SOCKET_DIR" \
        -c logging_collector=off \
        -c log_destination=stderr \
        >&"$LOG_FD" 2>&1 &
    PG_PID=$!
    PG_LOG_PID=$LOG_PID
    exec {LOG_FD}>&-
    echo "$PG_PID" >"$RUN_DIR/postgres.pid"
    log "Postgres started (pid $PG_PID)"
}

start_local_redis() {
    REDIS_PASSWORD="$(load_secret "$REDIS_PASSWORD_FILE")"
    # The password goes in on stdin (config file "-") so it never shows in `ps`.
    open_log_pipe redis
    "${AS_REDIS[@]}" "${CHILD_ENV[@]}" setsid redis-server - \
        --daemonize no \
        --bind 127.0.0.1 \
        --port "$REDIS_PORT" \
        --dir "$REDIS_DIR" \
        --logfile "" \
        --appendonly yes \
        --appendfsync everysec \
        --save "" \
        <<<"requirepass $REDIS_PASSWORD" \
        >&"$LOG_FD" 2>&1 &
    REDIS_PID=$!
    REDIS_LOG_PID=$LOG_PID
    exec {LOG_FD}>&-
    echo "$REDIS_PID" >"$RUN_DIR/redis.pid"
    log "Redis started (pid $REDIS_PID)"
}

REDIS_PASSWORD=""
((LOCAL_PG)) && start_local_postgres
((LOCAL_REDIS)) && start_local_redis

pg_ready() {
    ct_run_as "$PG_USER" "${CHILD_ENV[@]}" "$PG_BINDIR/pg_isready" -q -h "$PG_SOCKET_DIR" -p "$POSTGRES_PORT" -U "$PG_USER" -d postgres
}
redis_ready() {
    [[ "$("${CHILD_ENV[@]}" REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]
}

deadline=$((SECONDS + READY_TIMEOUT_SECS))
# A server elsewhere is the app's to wait for (it retries while connecting).
pg_up=$((!LOCAL_PG))
redis_up=$((!LOCAL_REDIS))
while ((!pg_up || !redis_up)); do
    ((pg_up)) || alive "$PG_PID" || ct_die "Postgres exited during start-up (see its log lines above)"
    ((redis_up)) || alive "$REDIS_PID" || ct_die "Redis exited during start-up (see its log lines above)"
    ((pg_up)) || { pg_ready && pg_up=1 && log "Postgres is ready"; } || true
    ((redis_up)) || { redis_ready && redis_up=1 && log "Redis is ready"; } || true
    if ((!pg_up || !redis_up)); then
        if ((SECONDS >= deadline)); then
            ((pg_up)) || log "Postgres did not accept connections within ${READY_TIMEOUT_SECS}s"
            ((redis_up)) || log "Redis did not answer PING within ${READY_TIMEOUT_SECS}s"
            ct_die "start-up timed out (raise READY_TIMEOUT_SECS if loading a big data set takes longer)"
        fi
        sleep 0.2
    fi
done

# ---------------------------------------------------------------------------
# Role, database, migrations

if ((LOCAL_PG)); then
    PG_APP_PASSWORD="$(load_secret "$PG_PASSWORD_FILE")"
    # Fed on stdin so the password is not in any argv. Secrets are hex, so the
    # quoting is safe. The password is re-set at every start: the file is the truth.
    run_waited "role setup" "${AS_PG[@]}" "${CHILD_ENV[@]}" "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 \
        -h "$PG_SOCKET_DIR" -p "$POSTGRES_PORT" -U "$PG_USER" -d postgres >/dev/null <<SQL \
        || ct_die "could not create the clawtriage role and database"
SELECT 'CREATE ROLE clawtriage LOGIN'
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'clawtriage')\gexec
ALTER ROLE clawtriage WITH LOGIN PASSWORD '$PG_APP_PASSWORD';
SELECT 'CREATE DATABASE clawtriage OWNER clawtriage'
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'clawtriage')\gexec
SQL
    log "role and database 'clawtriage' are in place"
    export DATABASE_URL="${DATABASE_URL:-postgres://clawtriage:$PG_APP_PASSWORD@127.0.0.1:$POSTGRES_PORT/clawtriage}"
fi
if ((LOCAL_REDIS)); then
    export REDIS_URL="${REDIS_URL:-redis://:$REDIS_PASSWORD@127.0.0.1:$REDIS_PORT/}"
fi
export DATABASE_URL REDIS_URL
export PORT DATA_ROOT

log "running migrations"
run_waited migrate "${AS_APP[@]}" "$CLAWTRIAGE_BIN" migrate || ct_die "'clawtriage migrate' failed (see above)"

# ---------------------------------------------------------------------------
# The app

"${AS_APP[@]}" setsid "$CLAWTRIAGE_BIN" serve &
APP_PID=$!
echo "$APP_PID" >"$RUN_DIR/app.pid"
log "app started (pid $APP_PID, as $APP_USER), listening on port $PORT"

rc=0
children=("$APP_PID")
[[ -n "$PG_PID" ]] && children+=("$PG_PID")
[[ -n "$REDIS_PID" ]] && children+=("$REDIS_PID")
wait -n "${children[@]}" || rc=$?
# Only reached when a child exited on its own: a signal ends in on_signal.
for name in app postgres redis; do
    case "$name" in
        app) pid="$APP_PID" ;;
        postgres) pid="$PG_PID" ;;
        redis) pid="$REDIS_PID" ;;
    esac
    if [[ -n "$pid" ]] && ! alive "$pid"; then
        log "$name (pid $pid) exited unexpectedly (status $rc); stopping the others"
    fi
done
stop_all
log "stopped after a child failure; exiting 1"
trap - EXIT
exit 1
