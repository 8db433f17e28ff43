#!/usr/bin/env bash
# Deploys this checkout to an existing Fly.io app, as one Machine.
#
#   scripts/deploy-fly.sh [-a APP] [--dry-run]
#
# Runs, from the repository root (so fly.toml and the Dockerfile are used):
#   fly deploy --ha=false      build the image remotely and roll it out; no spare Machine
#   fly scale count 1 --yes    --ha=false never removes a second Machine made earlier
#   fly status                 show what runs now
# -a/--app is passed to each command; without it flyctl uses $FLY_APP or the
# app in fly.toml (the placeholder name there is refused). --dry-run prints
# the commands and runs none. Fails before doing anything when flyctl is
# missing or not logged in. A first-time setup (app, volume, secrets) is
# scripts/setup-fly.sh.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
CT_LOG_TAG=deploy-fly
# shellcheck source=scripts/lib.sh
source "$SCRIPT_DIR/lib.sh"
# shellcheck source=scripts/fly-lib.sh
source "$SCRIPT_DIR/fly-lib.sh"

app=""
while (($#)); do
    case "$1" in
        -a | --app)
            [[ $# -ge 2 ]] || ct_die "$1 needs an app name"
            app="$2"
            shift 2
            ;;
        --app=*)
            app="${1#--app=}"
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

cd "$REPO_ROOT"
[[ -f fly.toml ]] || ct_die "no fly.toml in $REPO_ROOT"

app_args=()
if [[ -n "$app" ]]; then
    app="$(fly_resolve_app "$app")"
    app_args=(-a "$app")
else
    # Only checks that flyctl will find a real app name; flyctl resolves it itself.
    fly_resolve_app "" >/dev/null
fi

fly_require
fly_run deploy --ha=false "${app_args[@]}"
fly_run scale count 1 --yes "${app_args[@]}"
fly_run status "${app_args[@]}"
if ((!FLY_DRY_RUN)); then
    ct_log "deployed"
fi
