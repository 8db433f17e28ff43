#!/usr/bin/env bash
# Runs ClawTriage past one machine on Fly.io: `web` and `worker` process groups
# of the same image (fly.scale-out.toml) over a managed Postgres and a managed
# Redis.
#
#   scripts/scale-out-fly.sh --app APP --workers N [--web M] [--region R]
#                            [--org ORG] [--dry-run]
#
# Steps (each one skipped when already done, so it can be run again, e.g. with
# another --workers):
#   1. checks that flyctl is installed and logged in;
#   2. fly apps create APP [--org ORG] unless it exists;
#   3. sets the app's DATABASE_URL and REDIS_URL secrets with
#      `fly secrets import --stage` (values on stdin only, never on a command
#      line or on screen). Both come from the environment, else a silent prompt
#      (when stdin is a terminal); without them nothing is deployed. Make them
#      with Fly's managed services, e.g.
#        fly mpg create --name APP-db --region R --plan basic
#          (then `fly mpg status` shows the connection string; add
#          ?sslmode=require when the provider says TLS)
#        fly redis create   (Upstash; choose a fixed-price plan: the workers
#          poll their queues, and pay-as-you-go bills per command)
#      or any provider's postgres:// and redis:// (rediss:// for TLS) URLs.
#      OPS_TRIGGER_TOKEN, DASHBOARD_TOKEN and the other settings are set as for
#      one machine (scripts/setup-fly.sh, or `fly secrets set`);
#   4. fly deploy --config fly.scale-out.toml --remote-only -a APP;
#   5. fly scale count web=M worker=N (M defaults to 1);
#   6. prints what the layout costs per month on Fly (machines only; add the
#      managed Postgres and Redis plans, see README "Scaling past one machine").
# R defaults to primary_region in fly.scale-out.toml. --dry-run prints every
# command and runs none (no prompts).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
CT_LOG_TAG=scale-out-fly
# shellcheck source=scripts/lib.sh
source "$SCRIPT_DIR/lib.sh"
# shellcheck source=scripts/fly-lib.sh
source "$SCRIPT_DIR/fly-lib.sh"

CONFIG=fly.scale-out.toml
# Always-on monthly price of one shared-cpu-1x Machine with 1 GB, in cents:
# Fly's cost-management page gives three such Machines in sjc as $20.37/month.
MACHINE_CENTS=679
MAX_WORKERS=64

app=""
region=""
org=""
workers=""
web=1
while (($#)); do
    case "$1" in
        --app | --region | --org | --workers | --web)
            [[ $# -ge 2 ]] || ct_die "$1 needs a value"
            case "$1" in
                --app) app="$2" ;;
                --region) region="$2" ;;
                --org) org="$2" ;;
                --workers) workers="$2" ;;
                --web) web="$2" ;;
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

[[ -n "$app" ]] || ct_die "--app is required (the Fly app that runs the web and worker groups)"
fly_valid_app_name "$app" || ct_die "--app '$app' is not a valid Fly app name (lowercase letters, digits and dashes, starting with a letter)"
[[ "$app" != "$FLY_PLACEHOLDER_APP" ]] || ct_die "--app: '$app' is the placeholder; name your own app"
# True when $1 is a whole number from 1 to MAX_WORKERS.
machine_count() {
    [[ "$1" =~ ^[0-9]{1,3}$ ]] && (($1 >= 1 && $1 <= MAX_WORKERS))
}
if ! machine_count "$workers"; then
    ct_die "--workers: a number of worker machines from 1 to $MAX_WORKERS, got '${workers:-nothing}'"
fi
if ! machine_count "$web"; then
    ct_die "--web: a number of web machines from 1 to $MAX_WORKERS, got '$web'"
fi

cd "$REPO_ROOT"
[[ -f "$CONFIG" ]] || ct_die "no $CONFIG in $REPO_ROOT"
region="${region:-$(fly_toml_get primary_region "$CONFIG")}"
[[ "$region" =~ ^[a-z]{3}$ ]] || ct_die "--region '$region' is not a Fly region code (e.g. fra, iad, ord)"

fly_require

# --- 1. the app ---------------------------------------------------------------
fly_ensure_app "$app" "$org"

# --- 2. the managed servers' URLs -----------------------------------------------
# A URL: the environment, else a silent prompt (it holds a password).
server_url() {
    local name="$1" what="$2" value
    value="${!name:-}"
    if [[ -z "$value" && -t 0 ]]; then
        read -r -s -p "$name ($what): " value
        printf '\n' >&2
    fi
    printf '%s' "$value"
}

if ((FLY_DRY_RUN)); then
    printf '%s' "" | fly_run_stdin "NAME=VALUE lines of DATABASE_URL REDIS_URL" secrets import --stage -a "$app"
else
    database_url="$(server_url DATABASE_URL "managed Postgres, postgres://USER:PASSWORD@HOST:PORT/DB[?sslmode=require]")"
    redis_url="$(server_url REDIS_URL "managed Redis, redis:// or rediss://[USER]:PASSWORD@HOST:PORT")"
    [[ "$database_url" == postgres://* || "$database_url" == postgresql://* ]] \
        || ct_die "DATABASE_URL: a postgres:// URL of the managed Postgres is needed (e.g. from 'fly mpg create'); nothing was deployed"
    [[ "$redis_url" == redis://* || "$redis_url" == rediss://* ]] \
        || ct_die "REDIS_URL: a redis:// or rediss:// URL of the managed Redis is needed (e.g. from 'fly redis create'); nothing was deployed"
    # --stage: stored now, applied by the deploy below.
    printf 'DATABASE_URL=%s\nREDIS_URL=%s\n' "$database_url" "$redis_url" \
        | fly_run_stdin "NAME=VALUE lines of DATABASE_URL REDIS_URL" secrets import --stage -a "$app"
fi

# --- 3. deploy both groups, then size them ---------------------------------------
fly_run deploy --config "$CONFIG" --remote-only --region "$region" -a "$app"
fly_run scale count "web=$web" "worker=$workers" --config "$CONFIG" --region "$region" --yes -a "$app"

# --- 4. what it costs -------------------------------------------------------------
machines=$((web + workers))
cents=$((machines * MACHINE_CENTS))
if ((FLY_DRY_RUN)); then
    headline="Dry run: nothing was changed. After a real run, $app would run:"
else
    headline="$app runs:"
fi
cat <<EOF

$headline
  web:      $web machine(s), shared-cpu-1x 1 GB (API, dashboard, webhooks, trigger)
  worker:   $workers machine(s), shared-cpu-1x 1 GB (scans, analyses, check runs, schedule)
  machines: about \$$((cents / 100)).$(printf '%02d' $((cents % 100)))/month always on (Fly: \$20.37/month for three shared-1x 1 GB)
  plus the managed Postgres and Redis plans (Fly Managed Postgres Basic: \$38/month
  + \$0.28 per provisioned GB; see README "Scaling past one machine")
  health:   https://$app.fly.dev/api/health  (its "workers" field sees the worker group)
  more or fewer workers: scripts/scale-out-fly.sh --app $app --workers N
EOF
