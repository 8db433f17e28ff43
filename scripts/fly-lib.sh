# shellcheck shell=bash
# Helpers of the Fly.io scripts (deploy-fly.sh, schedule-fly.sh, setup-fly.sh,
# teardown-fly.sh). Source it after lib.sh; do not run it.
#
#   source "$SCRIPT_DIR/lib.sh"
#   source "$SCRIPT_DIR/fly-lib.sh"
#
# Every flyctl call goes through fly_run (or fly_run_stdin / fly_capture),
# which shows the command and, when FLY_DRY_RUN=1, runs nothing: a dry run
# prints each command on stdout as `+ fly ...`; a real run logs it on stderr
# before running it. Functions are prefixed `fly_`.

: "${FLY_DRY_RUN:=0}"
FLY_BIN=""
# The caller's stdout, kept so that a dry run's commands reach it even from
# inside $(...) (fly_capture).
exec {FLY_STDOUT}>&1

# Prints the calling script's header comment (from line 2 to `set -euo`) as
# its --help text.
fly_usage() {
    sed -n '2,/^set -euo/p' "$1" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
}

# The app name in the repository's fly.toml until the user picks their own.
FLY_PLACEHOLDER_APP="clawtriage-change-me"

# Sets FLY_BIN to flyctl: `flyctl` or `fly` on PATH (flyctl first: another
# tool is also called `fly`), else the installer's default place.
fly_find() {
    local candidate
    for candidate in flyctl fly; do
        if command -v "$candidate" >/dev/null 2>&1; then
            FLY_BIN="$(command -v "$candidate")"
            return 0
        fi
    done
    candidate="${FLYCTL_INSTALL:-${HOME:-/nonexistent}/.fly}/bin/flyctl"
    if [[ -x "$candidate" ]]; then
        FLY_BIN="$candidate"
        return 0
    fi
    return 1
}

# Prints "$@" as one shell-quoted line, quoting only the words that need it.
fly_quote() {
    local out="" word
    for word in "$@"; do
        if [[ "$word" =~ ^[A-Za-z0-9_./:=@,+%-]+$ ]]; then
            out+="$word "
        else
            out+="${word@Q} "
        fi
    done
    printf '%s\n' "${out% }"
}

# Shows a flyctl command: on stdout in a dry run, on stderr otherwise.
fly_show() {
    if ((FLY_DRY_RUN)); then
        printf '+ %s\n' "$(fly_quote fly "$@")" >&"$FLY_STDOUT"
    else
        printf '[%s] + %s\n' "$CT_LOG_TAG" "$(fly_quote fly "$@")" >&2
    fi
}

# Runs flyctl with "$@" (stdin closed, so flyctl never waits on a prompt).
fly_run() {
    fly_show "$@"
    ((FLY_DRY_RUN)) && return 0
    "$FLY_BIN" "$@" </dev/null
}

# Runs flyctl with "$@" reading our stdin (e.g. `secrets import`).
# $1 describes what goes in on stdin; the data itself is never shown.
fly_run_stdin() {
    local what="$1"
    shift
    if ((FLY_DRY_RUN)); then
        printf '+ %s  < (%s)\n' "$(fly_quote fly "$@")" "$what" >&"$FLY_STDOUT"
        cat >/dev/null
        return 0
    fi
    printf '[%s] + %s  < (%s)\n' "$CT_LOG_TAG" "$(fly_quote fly "$@")" "$what" >&2
    "$FLY_BIN" "$@"
}

# Runs flyctl with "$@" and prints its stdout (for parsing). In a dry run it
# prints nothing and succeeds, as if Fly had nothing to list.
fly_capture() {
    fly_show "$@"
    ((FLY_DRY_RUN)) && return 0
    "$FLY_BIN" "$@" </dev/null
}

# Creates the Fly app $1 (in the organisation $2 when given) unless it exists.
fly_ensure_app() {
    local app="$1" org="$2" apps
    local org_args=()
    apps="$(fly_capture apps list)" || ct_die "could not list your Fly apps"
    if awk -v app="$app" '$1 == app { found = 1 } END { exit !found }' <<<"$apps"; then
        ct_log "app $app exists already; using it"
    else
        if [[ -n "$org" ]]; then org_args=(--org "$org"); fi
        fly_run apps create "$app" "${org_args[@]}"
    fi
}

# Checks that flyctl is installed and logged in; dies with what to do if not.
# In a dry run it only shows the login check.
fly_require() {
    if ((FLY_DRY_RUN)); then
        fly_show auth whoami
        return 0
    fi
    fly_find || ct_die "flyctl is not installed: neither 'flyctl' nor 'fly' is on PATH. Install it with 'curl -L https://fly.io/install.sh | sh' (https://fly.io/docs/flyctl/install/), then run 'fly auth login'"
    local who rc=0
    fly_show auth whoami
    who="$("$FLY_BIN" auth whoami </dev/null 2>&1)" || rc=$?
    if ((rc != 0)) || [[ -z "$who" ]]; then
        ct_die "flyctl is not logged in to Fly.io ('fly auth whoami' said: ${who:-nothing}). Run 'fly auth login' (or set FLY_API_TOKEN) and try again"
    fi
    ct_log "logged in to Fly.io as ${who%%$'\n'*}"
}

# Checks a Fly app name: lowercase letters, digits and dashes, starting with
# a letter, not ending with a dash, at most 63 characters.
fly_valid_app_name() {
    [[ "$1" =~ ^[a-z][a-z0-9-]*[a-z0-9]$ && ${#1} -le 63 && "$1" != *--* ]]
}

# Prints the value of the first `key = "value"` (or `key = value`) line for
# key $1 in fly.toml ($2, default ./fly.toml); nothing when absent.
fly_toml_get() {
    local key="$1" file="${2:-fly.toml}"
    [[ -f "$file" ]] || return 0
    awk -v key="$key" '
        $0 ~ "^[[:space:]]*" key "[[:space:]]*=" {
            sub("^[^=]*=[[:space:]]*", "")
            sub("[[:space:]]*#.*$", "")
            gsub("\"", "")
            print
            exit
        }' "$file"
}

# Prints the app to act on: $1 (from -a/--app) when given, else $FLY_APP,
# else the app in fly.toml. Dies when that is the placeholder.
fly_resolve_app() {
    local app="${1:-${FLY_APP:-}}"
    if [[ -z "$app" ]]; then
        app="$(fly_toml_get app fly.toml)"
    fi
    [[ -n "$app" ]] || ct_die "no Fly app named: pass -a APP (or set FLY_APP, or 'app' in fly.toml)"
    if [[ "$app" == "$FLY_PLACEHOLDER_APP" ]]; then
        ct_die "fly.toml still names the placeholder app '$FLY_PLACEHOLDER_APP': pass -a YOUR-APP (or set FLY_APP, or edit 'app' in fly.toml)"
    fi
    fly_valid_app_name "$app" || ct_die "'$app' is not a valid Fly app name (lowercase letters, digits and dashes, starting with a letter)"
    printf '%s\n' "$app"
}

# Converts a fly.toml memory value ("1gb", "512mb", "2048") to megabytes.
fly_memory_mb() {
    local v="${1,,}"
    case "$v" in
        *gb) printf '%s\n' "$((${v%gb} * 1024))" ;;
        *mb) printf '%s\n' "${v%mb}" ;;
        *[!0-9]* | "") return 1 ;;
        *) printf '%s\n' "$v" ;;
    esac
}
