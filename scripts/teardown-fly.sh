#!/usr/bin/env bash
# Removes a ClawTriage appliance made by scripts/setup-fly.sh from Fly.io.
#
#   scripts/teardown-fly.sh --prefix P [--yes] [--dry-run]
#
# Destroys the app P-clawtriage with everything in it: its Machines (the
# appliance and any scheduled scans), its volume with all data, and its
# secrets. This cannot be undone. It asks you to type `yes` on stdin and
# refuses otherwise; --yes skips the question. An app that does not exist
# (anymore) counts as removed. --dry-run prints the commands and runs none.
# Tokens that setup-fly.sh generated stay in ~/.config/clawtriage/APP.env.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CT_LOG_TAG=teardown-fly
# shellcheck source=scripts/lib.sh
source "$SCRIPT_DIR/lib.sh"
# shellcheck source=scripts/fly-lib.sh
source "$SCRIPT_DIR/fly-lib.sh"

prefix=""
assume_yes=0
while (($#)); do
    case "$1" in
        --prefix)
            [[ $# -ge 2 ]] || ct_die "$1 needs a value"
            prefix="$2"
            shift 2
            ;;
        --yes | -y)
            assume_yes=1
            shift
            ;;
        --dry-run)
            FLY_DRY_RUN=1
            shift
            ;;
        -h | --help)
            fly_usage "${BASH_SOURCE[0]}"
            exit 0
            ;;
        *) ct_die "unknown argument '$1' (see --help)" ;;
    esac
done

[[ -n "$prefix" ]] || ct_die "--prefix is required (the P of P-clawtriage)"
app="$prefix-clawtriage"
fly_valid_app_name "$app" || ct_die "--prefix '$prefix' does not make a valid Fly app name ('$app')"

fly_require

if ((!FLY_DRY_RUN && !assume_yes)); then
    printf 'This destroys the Fly app %s: its Machines, its volume with all the data, its secrets.\nType yes to continue: ' "$app" >&2
    answer=""
    read -r answer || true
    if [[ ! -t 0 ]]; then printf '\n' >&2; fi
    [[ "$answer" == yes ]] || ct_die "not confirmed (expected 'yes'); nothing was destroyed"
fi

if ((FLY_DRY_RUN)); then
    fly_run apps destroy "$app" --yes
    exit 0
fi

fly_show apps destroy "$app" --yes
rc=0
output="$("$FLY_BIN" apps destroy "$app" --yes </dev/null 2>&1)" || rc=$?
if ((rc == 0)); then
    [[ -z "$output" ]] || printf '%s\n' "$output" >&2
    ct_log "destroyed $app"
elif grep -qiE 'not found|could not find|no such app|does not exist' <<<"$output"; then
    ct_log "app $app does not exist; nothing to destroy"
else
    printf '%s\n' "$output" >&2
    ct_die "'fly apps destroy $app' failed (status $rc)"
fi
