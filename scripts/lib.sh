# shellcheck shell=bash
# Shared helpers for the ClawTriage scripts. Source it; do not run it.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Every function is prefixed `ct_` so it cannot clash with the caller's names.

# Name shown in front of every message; callers may set it before sourcing.
: "${CT_LOG_TAG:=clawtriage}"

ct_log() {
    printf '[%s] %s\n' "$CT_LOG_TAG" "$*" >&2
}

ct_die() {
    printf '[%s] ERROR: %s\n' "$CT_LOG_TAG" "$*" >&2
    exit 1
}

ct_is_root() {
    [[ "$(id -u)" -eq 0 ]]
}

# Runs a command as root: directly when we are root, through sudo otherwise.
ct_as_root() {
    if ct_is_root; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        ct_die "need root to run '$*' and sudo is not installed; run it as root or install the packages yourself"
    fi
}

# Prints the Postgres server binary directory.
# Order: $PG_BINDIR; the major version that matches an existing data directory
# (argument 1, optional); the newest /usr/lib/postgresql/<major>/bin.
# Returns 1 (prints nothing) when none is found.
ct_find_pg_bindir() {
    local datadir="${1:-}" major dir best=""
    if [[ -n "${PG_BINDIR:-}" ]]; then
        if [[ -x "$PG_BINDIR/postgres" ]]; then
            printf '%s\n' "$PG_BINDIR"
            return 0
        fi
        ct_log "PG_BINDIR=$PG_BINDIR has no postgres binary; ignoring it"
    fi
    if [[ -n "$datadir" && -f "$datadir/PG_VERSION" ]]; then
        major="$(<"$datadir/PG_VERSION")"
        if [[ -x "/usr/lib/postgresql/$major/bin/postgres" ]]; then
            printf '%s\n' "/usr/lib/postgresql/$major/bin"
            return 0
        fi
    fi
    for dir in /usr/lib/postgresql/*/bin; do
        [[ -x "$dir/postgres" ]] || continue
        major="${dir#/usr/lib/postgresql/}"
        major="${major%/bin}"
        [[ "$major" =~ ^[0-9]+$ ]] || continue
        if [[ -z "$best" || "$major" -gt "$best" ]]; then
            best="$major"
        fi
    done
    [[ -n "$best" ]] || return 1
    printf '%s\n' "/usr/lib/postgresql/$best/bin"
}

# Installs Debian's postgresql and redis-server packages when either server is
# missing.
ct_ensure_servers() {
    local want=()
    if ! ct_find_pg_bindir "" >/dev/null; then
        want+=(postgresql)
    fi
    if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
        want+=(redis-server)
    fi
    if [[ ${#want[@]} -eq 0 ]]; then
        return 0
    fi
    ct_apt_install "${want[@]}"
    ct_find_pg_bindir "" >/dev/null || ct_die "postgresql was installed but no /usr/lib/postgresql/*/bin/postgres was found"
    command -v redis-server >/dev/null 2>&1 || ct_die "redis-server was installed but is not on PATH"
}

# apt-get update + install, non-interactive. Works as root or through sudo.
ct_apt_install() {
    command -v apt-get >/dev/null 2>&1 \
        || ct_die "apt-get not found: install these packages with your package manager: $*"
    ct_log "installing with apt-get: $*"
    ct_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    ct_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# Prints a TCP port on 127.0.0.1 that nothing listens on right now.
# (It is released before the caller binds it, so a tiny race remains.)
ct_free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
        return
    fi
    local port tries
    for ((tries = 0; tries < 200; tries++)); do
        port=$((20000 + RANDOM % 40000))
        # A refused connection means nothing listens there.
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            printf '%s\n' "$port"
            return 0
        fi
    done
    ct_die "could not find a free TCP port"
}

# Runs a command as OS user $1 with that user's groups, keeping the
# environment (a foreground helper: backgrounding a function forks a subshell,
# so `$!` would not be the command). When $1 is the current user it runs directly.
ct_run_as() {
    local user="$1"
    shift
    if [[ "$user" == "$(id -un)" ]]; then
        "$@"
    else
        # The user's primary group by number: it need not share the user's name.
        setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups -- "$@"
    fi
}
