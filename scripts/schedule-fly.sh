#!/usr/bin/env bash
# Schedules a recurring public scan of one repository on Fly.io.
#
#   scripts/schedule-fly.sh --every hourly|daily|weekly|monthly --owner O --repo R
#                           [-a|--app APP] [--region R] [--url BASE] [--image IMG] [--dry-run]
#
# Creates a scheduled Fly Machine in the appliance's own app that runs a small
# curl image and POSTs /api/ops/public-scan for O/R. One such Machine exists
# per repository, named `scan-cron-<owner>-<repo>`: running the script again
# destroys the old one and creates the new one (use it to change the
# interval, or after rotating OPS_TRIGGER_TOKEN).
#
# - The bearer token is the app secret OPS_TRIGGER_TOKEN. Fly gives every
#   Machine of the app its secrets as environment variables at boot, so the
#   token is never put on a command line, in --env or in the Machine's config;
#   the shell inside the Machine reads it. Set it first:
#   `fly secrets set OPS_TRIGGER_TOKEN=...` or scripts/setup-fly.sh.
# - Each run sends a snapshot id: the UTC period of the schedule, computed in
#   the Machine at run time (hourly 2026-11-22T14, daily 2026-11-22, weekly
#   2026-W47, monthly 2026-11). Triggering one snapshot twice scans once, so a
#   retried or repeated run in the same period is not a second scan.
# - Restart policy `no`: a failed run is not retried by Fly (curl itself
#   retries 3 times); the next period's run tries again.
# - Fly schedules know exactly four intervals, hourly, daily, weekly and
#   monthly, with approximate timing, counted from when the Machine is
#   created; the Machine also runs once right away. For any other cadence
#   (e.g. every 15 minutes, or 03:00 sharp) use the appliance's in-process
#   schedule instead: SCAN_SCHEDULE (a cron expression) and SCAN_REPOS.
# - The appliance only scans repositories listed in PUBLIC_SCAN_ALLOWED_REPOS.
#
# --url is the appliance's base URL (default https://APP.fly.dev); --image the
# curl image (default curlimages/curl:8.11.1). --dry-run prints the commands
# and runs none.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
CT_LOG_TAG=schedule-fly
# shellcheck source=scripts/lib.sh
source "$SCRIPT_DIR/lib.sh"
# shellcheck source=scripts/fly-lib.sh
source "$SCRIPT_DIR/fly-lib.sh"

every=""
owner=""
repo=""
app=""
region=""
base_url=""
image="curlimages/curl:8.11.1"
while (($#)); do
    case "$1" in
        --every | --owner | --repo | -a | --app | --region | --url | --image)
            [[ $# -ge 2 ]] || ct_die "$1 needs a value"
            case "$1" in
                --every) every="$2" ;;
                --owner) owner="$2" ;;
                --repo) repo="$2" ;;
                -a | --app) app="$2" ;;
                --region) region="$2" ;;
                --url) base_url="$2" ;;
                --image) image="$2" ;;
            esac
            shift 2
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

case "$every" in
    hourly | daily | weekly | monthly) ;;
    "") ct_die "--every is required: hourly, daily, weekly or monthly" ;;
    *) ct_die "--every $every: Fly schedules only know hourly, daily, weekly and monthly; for any other cadence set SCAN_SCHEDULE (a cron expression) and SCAN_REPOS on the appliance instead" ;;
esac
[[ -n "$owner" && -n "$repo" ]] || ct_die "--owner and --repo are required"
# GitHub's own character sets; they also keep the JSON body below well-formed.
[[ "$owner" =~ ^[A-Za-z0-9][A-Za-z0-9-]{0,38}$ ]] || ct_die "--owner '$owner' is not a GitHub user or organisation name"
[[ "$repo" =~ ^[A-Za-z0-9._-]{1,100}$ && "$repo" != . && "$repo" != .. ]] || ct_die "--repo '$repo' is not a GitHub repository name"
[[ -z "$region" || "$region" =~ ^[a-z]{3}$ ]] || ct_die "--region '$region' is not a Fly region code (e.g. fra, iad)"

cd "$REPO_ROOT"
app="$(fly_resolve_app "$app")"
base_url="${base_url:-https://$app.fly.dev}"
[[ "$base_url" =~ ^https?://[^[:space:]\"]+$ ]] || ct_die "--url '$base_url' is not an http(s) URL"
trigger_url="${base_url%/}/api/ops/public-scan"

# One scheduled Machine per repository: the name is the key.
name="scan-cron-${owner,,}-${repo,,}"
name="${name//[^a-z0-9-]/-}"

# What the Machine runs (POSIX sh in the curl image). The token reaches curl
# as a header on stdin (-H @-), so it is not in any argv even in the Machine.
# shellcheck disable=SC2016  # expanded by the shell inside the Machine
machine_script='set -eu; '\
'[ -n "${OPS_TRIGGER_TOKEN:-}" ] || { echo "OPS_TRIGGER_TOKEN is not set: run fly secrets set OPS_TRIGGER_TOKEN=... on this app" >&2; exit 1; }; '\
'case "$SCAN_EVERY" in hourly) f=%Y-%m-%dT%H ;; daily) f=%Y-%m-%d ;; weekly) f=%G-W%V ;; *) f=%Y-%m ;; esac; '\
'snapshot="$(date -u +"$f")"; '\
'echo "POST $TRIGGER_URL $SCAN_OWNER/$SCAN_REPO snapshot $snapshot"; '\
'printf "Authorization: Bearer %s\n" "$OPS_TRIGGER_TOKEN" | '\
'curl -fsS --retry 3 --retry-all-errors --max-time 60 -X POST -H @- '\
'-H "Content-Type: application/json" -H "X-Trigger-Actor: fly-schedule" '\
'--data "{\"owner\":\"$SCAN_OWNER\",\"repo\":\"$SCAN_REPO\",\"snapshot\":\"$snapshot\"}" "$TRIGGER_URL"; echo'

fly_require

# Replace: destroy every Machine that carries the name (there should be at most one).
listing="$(fly_capture machine list -a "$app")" || ct_die "could not list the Machines of $app"
old_ids=()
while read -r id machine_name _; do
    if [[ "$machine_name" == "$name" && "$id" =~ ^[0-9a-f]{8,}$ ]]; then
        old_ids+=("$id")
    fi
done <<<"$listing"
if ((FLY_DRY_RUN)); then
    printf '+ # for each Machine listed as %s: fly machine destroy ID --force -a %s\n' "$name" "$app"
fi
for id in "${old_ids[@]}"; do
    ct_log "replacing the scheduled Machine $id ($name)"
    fly_run machine destroy "$id" --force -a "$app"
done

region_args=()
if [[ -n "$region" ]]; then region_args=(--region "$region"); fi

fly_run machine run "$image" -a "$app" \
    --name "$name" \
    --schedule "$every" \
    --restart no \
    --vm-memory 256 \
    "${region_args[@]}" \
    --metadata clawtriage-role=scheduled-scan \
    --metadata "clawtriage-repo=$owner/$repo" \
    --env "TRIGGER_URL=$trigger_url" \
    --env "SCAN_OWNER=$owner" \
    --env "SCAN_REPO=$repo" \
    --env "SCAN_EVERY=$every" \
    --entrypoint "/bin/sh -c" \
    "$machine_script"

if ((!FLY_DRY_RUN)); then
    ct_log "scheduled: $owner/$repo $every on $app (Machine $name; it ran once now). List with 'fly machine list -a $app'; stop with 'fly machine destroy <id> --force -a $app'"
fi
