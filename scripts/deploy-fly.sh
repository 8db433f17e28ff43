#!/usr/bin/env bash
# Deploys this checkout to an existing Fly.io app, as one Machine, and checks
# what it deployed.
#
#   scripts/deploy-fly.sh [-a APP] [--dry-run]
#
# Runs, from the repository root (so fly.toml and the Dockerfile are used):
#   fly deploy --ha=false --remote-only   build the image on Fly's builder (no
#                                         local Docker needed) and roll it out;
#                                         no spare Machine
#   fly scale count 1 --yes               --ha=false never removes a second
#                                         Machine made earlier
#   fly machine list --json               then checks that exactly one Machine
#                                         runs the appliance (scheduled scan
#                                         Machines from schedule-fly.sh do not
#                                         count), that it is started and that
#                                         its health checks pass, and says so
# The check polls for up to $VERIFY_WAIT_SECS seconds (default 180, every
# $VERIFY_POLL_SECS, default 5) for the Machine to become healthy. A second
# Machine is an error at once: two appliances would each have their own
# volume, database and queue. The message names the command that removes the
# extra one (the oldest Machine holds the data and is kept). Needs jq.
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
    # flyctl resolves the app itself (FLY_APP, fly.toml); this only checks it is a real name.
    app="$(fly_resolve_app "")"
fi
VERIFY_WAIT_SECS="${VERIFY_WAIT_SECS:-180}"
VERIFY_POLL_SECS="${VERIFY_POLL_SECS:-5}"
[[ "$VERIFY_WAIT_SECS" =~ ^[0-9]+$ ]] || ct_die "VERIFY_WAIT_SECS must be a number of seconds, got '$VERIFY_WAIT_SECS'"
[[ "$VERIFY_POLL_SECS" =~ ^[0-9]+([.][0-9]+)?$ ]] || ct_die "VERIFY_POLL_SECS must be a number of seconds, got '$VERIFY_POLL_SECS'"

fly_require
if ((!FLY_DRY_RUN)); then
    command -v jq >/dev/null 2>&1 || ct_die "jq is needed to check the deployed Machines ('fly machine list --json'): install it (Debian: apt-get install jq; macOS: brew install jq)"
fi
fly_run deploy --ha=false --remote-only "${app_args[@]}"
fly_run scale count 1 --yes "${app_args[@]}"

# --- verify: exactly one Machine runs the appliance, started, checks passing ---
# The appliance's Machines: every Machine of the app except the scheduled scan
# Machines (schedule-fly.sh tags them) and those being destroyed.
APPLIANCE_MACHINES='[.[]
    | select((.config.metadata["clawtriage-role"] // "") != "scheduled-scan")
    | select(.state != "destroyed" and .state != "destroying")]'
if ((FLY_DRY_RUN)); then
    fly_show machine list --json "${app_args[@]}"
    printf '+ # check: exactly one Machine (scheduled scan Machines aside), started, health checks passing; up to %ss\n' "$VERIFY_WAIT_SECS"
    exit 0
fi
deadline=$((SECONDS + VERIFY_WAIT_SECS))
while :; do
    listing="$(fly_capture machine list --json "${app_args[@]}")" \
        || ct_die "could not list the Machines of $app ('fly machine list --json' failed)"
    machines="$(jq -c "$APPLIANCE_MACHINES" <<<"$listing" 2>/dev/null)" \
        || ct_die "'fly machine list --json' did not answer a JSON list of Machines"
    count="$(jq 'length' <<<"$machines")"
    if ((count > 1)); then
        # The oldest Machine is the one whose volume holds the data.
        keep="$(jq -r 'sort_by(.created_at) | .[0].id' <<<"$machines")"
        table="$(jq -r '.[] | "  \(.id)  \(.state)  \(.region)  created \(.created_at)"' <<<"$machines")"
        fixes="$(jq -r --arg keep "$keep" --arg app "$app" \
            'sort_by(.created_at) | .[] | select(.id != $keep) | "  fly machine destroy \(.id) --force -a \($app)"' <<<"$machines")"
        ct_die "$count Machines run the appliance on $app, but it must run on exactly one (each would have its own volume, database and queue):
$table
Keep the oldest ($keep, whose volume holds the data) and remove the rest:
$fixes
then run scripts/deploy-fly.sh again."
    fi
    if ((count == 1)); then
        id="$(jq -r '.[0].id' <<<"$machines")"
        state="$(jq -r '.[0].state' <<<"$machines")"
        region="$(jq -r '.[0].region' <<<"$machines")"
        checks="$(jq -r '[.[0].checks // [] | .[] | "\(.name)=\(.status)"] | join(", ")' <<<"$machines")"
        passing="$(jq -r '(.[0].checks // []) as $c | ($c | length) > 0 and ($c | all(.status == "passing"))' <<<"$machines")"
        if [[ "$state" == started && "$passing" == true ]]; then
            ct_log "verified: exactly one Machine ($id, $region) runs the appliance; it is started and its health checks pass ($checks)"
            ct_log "deployed"
            exit 0
        fi
    fi
    if ((SECONDS >= deadline)); then
        if ((count == 0)); then
            ct_die "no Machine runs the appliance on $app after the deploy. See 'fly status -a $app' and 'fly logs -a $app'"
        fi
        ct_die "Machine $id on $app is not healthy after ${VERIFY_WAIT_SECS}s: state $state, health checks: ${checks:-none reported}. See 'fly logs -a $app' and 'fly machine status $id -a $app'; a first start runs initdb and migrations (raise VERIFY_WAIT_SECS)"
    fi
    sleep "$VERIFY_POLL_SECS"
done
