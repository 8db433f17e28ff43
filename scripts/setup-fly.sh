#!/usr/bin/env bash
# Provisions a new, self-hosted ClawTriage appliance on Fly.io.
#
#   scripts/setup-fly.sh --prefix P [--region R] [--org ORG] [--dry-run]
#
# Steps (each one skipped when already done, so it can be run again):
#   1. checks that flyctl is installed and logged in, and that P makes a valid
#      app name: the app is `P-clawtriage` (lowercase letters, digits, dashes);
#   2. fly apps create P-clawtriage [--org ORG];
#   3. fly volumes create data (3 GB, in region R, sized for fly.toml's [[vm]]);
#   4. sets the app's secrets with `fly secrets import --stage`, which reads
#      NAME=VALUE lines on stdin: values never appear on a command line or on
#      screen. Each comes from the environment, else a silent prompt (when
#      stdin is a terminal):
#        OPS_TRIGGER_TOKEN, DASHBOARD_TOKEN   required; an empty answer (or no
#            terminal) generates one and stores it, mode 600, in
#            $CLAWTRIAGE_SECRETS_FILE (default ~/.config/clawtriage/APP.env),
#            which later runs reuse;
#        GITHUB_TOKEN, PUBLIC_SCAN_ALLOWED_REPOS   optional (scans are refused
#            until PUBLIC_SCAN_ALLOWED_REPOS names the repositories);
#        GITHUB_MODE, GITHUB_APP_ID, GITHUB_PRIVATE_KEY_PEM,
#        GITHUB_WEBHOOK_SECRET, SCAN_SCHEDULE, SCAN_REPOS   from the environment only;
#   5. fly deploy --ha=false --remote-only --region R (built on Fly's builder: no
#      local Docker needed), then fly scale count 1 --yes;
#   6. polls https://APP.fly.dev/api/health until it answers 200, at most
#      $HEALTH_WAIT_SECS seconds (default 300; the URL is $CLAWTRIAGE_HEALTH_URL
#      when set), then prints the dashboard and webhook URLs.
# R defaults to primary_region in fly.toml. --dry-run prints every command
# and runs none (no prompts, nothing stored). Remove it all again with
# scripts/teardown-fly.sh --prefix P.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
CT_LOG_TAG=setup-fly
# shellcheck source=scripts/lib.sh
source "$SCRIPT_DIR/lib.sh"
# shellcheck source=scripts/fly-lib.sh
source "$SCRIPT_DIR/fly-lib.sh"

VOLUME_NAME=data
# GitHub App webhooks: the route `PATH` in src/api/webhooks.rs.
WEBHOOK_PATH=/webhooks/github
VOLUME_SIZE_GB=3

prefix=""
region=""
org=""
while (($#)); do
    case "$1" in
        --prefix | --region | --org)
            [[ $# -ge 2 ]] || ct_die "$1 needs a value"
            case "$1" in
                --prefix) prefix="$2" ;;
                --region) region="$2" ;;
                --org) org="$2" ;;
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

[[ -n "$prefix" ]] || ct_die "--prefix is required (e.g. --prefix yourname: the app becomes yourname-clawtriage)"
app="$prefix-clawtriage"
fly_valid_app_name "$app" \
    || ct_die "--prefix '$prefix' does not make a valid Fly app name ('$app'): use lowercase letters, digits and single dashes, start with a letter, at most 52 characters"

cd "$REPO_ROOT"
[[ -f fly.toml ]] || ct_die "no fly.toml in $REPO_ROOT"
region="${region:-$(fly_toml_get primary_region fly.toml)}"
[[ "$region" =~ ^[a-z]{3}$ ]] || ct_die "--region '$region' is not a Fly region code (e.g. fra, iad, ord)"

HEALTH_URL="${CLAWTRIAGE_HEALTH_URL:-https://$app.fly.dev/api/health}"
HEALTH_WAIT_SECS="${HEALTH_WAIT_SECS:-300}"
[[ "$HEALTH_WAIT_SECS" =~ ^[0-9]+$ ]] || ct_die "HEALTH_WAIT_SECS must be a number of seconds, got '$HEALTH_WAIT_SECS'"
SECRETS_FILE="${CLAWTRIAGE_SECRETS_FILE:-${HOME:-.}/.config/clawtriage/$app.env}"

fly_require
if ((!FLY_DRY_RUN)); then
    command -v curl >/dev/null 2>&1 || ct_die "curl is needed to wait for the appliance's health check; install it first"
fi

# --- 1. the app ---------------------------------------------------------------
fly_ensure_app "$app" "$org"

# --- 2. the volume -------------------------------------------------------------
volumes="$(fly_capture volumes list -a "$app")" || ct_die "could not list the volumes of $app"
if awk -v name="$VOLUME_NAME" '$1 ~ /^vol_/ && $3 == name { found = 1 } END { exit !found }' <<<"$volumes"; then
    ct_log "volume '$VOLUME_NAME' exists already; using it"
else
    # A compute hint, so the volume lands on a host with room for the Machine.
    vm_args=()
    vm_size="$(fly_toml_get size fly.toml)"
    vm_memory="$(fly_toml_get memory fly.toml)"
    if [[ -n "$vm_size" ]]; then vm_args+=(--vm-size "$vm_size"); fi
    if [[ -n "$vm_memory" ]] && vm_memory_mb="$(fly_memory_mb "$vm_memory")"; then
        vm_args+=(--vm-memory "$vm_memory_mb")
    fi
    fly_run volumes create "$VOLUME_NAME" --size "$VOLUME_SIZE_GB" --region "$region" "${vm_args[@]}" --yes -a "$app"
fi

# --- 3. secrets ----------------------------------------------------------------
secret_lines=""   # NAME=VALUE lines for `fly secrets import`
secret_names=()
generated=()

# Appends NAME=VALUE in the format `fly secrets import` reads (a value with
# line breaks, such as a PEM key, goes between triple quotes).
add_secret() {
    local name="$1" value="$2"
    if [[ "$value" == *$'\n'* ]]; then
        value="${value%$'\n'}"
        secret_lines+="$name=\"\"\"$value\"\"\""$'\n'
    else
        secret_lines+="$name=$value"$'\n'
    fi
    secret_names+=("$name")
}

# Prints the value stored for $1 in the secrets file, if any.
stored_secret() {
    [[ -r "$SECRETS_FILE" ]] || return 0
    sed -n "s/^$1=//p" "$SECRETS_FILE" | head -n 1
}

random_token() {
    od -An -tx1 -N32 /dev/urandom | tr -d ' \n'
}

# A required token: environment, secrets file, silent prompt, or a new one.
required_token() {
    local name="$1" what="$2" value
    value="${!name:-}"
    [[ -n "$value" ]] || value="$(stored_secret "$name")"
    if [[ -z "$value" && -t 0 ]]; then
        read -r -s -p "$name ($what; empty = generate one): " value
        printf '\n' >&2
    fi
    if [[ -z "$value" ]]; then
        value="$(random_token)"
        generated+=("$name=$value")
    fi
    # The appliance refuses shorter tokens at start-up; say so before deploying.
    ((${#value} >= 32)) || ct_die "$name: at least 32 characters (this one has ${#value}); leave it empty to generate one"
    add_secret "$name" "$value"
}

# An optional value: environment, else a prompt when stdin is a terminal
# (silent when $3 is "secret"); empty means "not set".
optional_value() {
    local name="$1" what="$2" kind="$3" value
    value="${!name:-}"
    if [[ -z "$value" && -t 0 ]]; then
        if [[ "$kind" == secret ]]; then
            read -r -s -p "$name ($what; empty = none): " value
            printf '\n' >&2
        else
            read -r -p "$name ($what; empty = none): " value
        fi
    fi
    if [[ -n "$value" ]]; then add_secret "$name" "$value"; fi
}

if ((FLY_DRY_RUN)); then
    secret_names=(OPS_TRIGGER_TOKEN DASHBOARD_TOKEN "(and any of GITHUB_TOKEN, PUBLIC_SCAN_ALLOWED_REPOS, GITHUB_* and SCAN_* set)")
else
    required_token OPS_TRIGGER_TOKEN "bearer token of POST /api/ops/public-scan and 'clawtriage trigger'"
    required_token DASHBOARD_TOKEN "bearer token of the dashboard"
    optional_value GITHUB_TOKEN "GitHub token for public mode, 5000 requests/h instead of 60" secret
    optional_value PUBLIC_SCAN_ALLOWED_REPOS "comma-separated owner/repo list that scans may target" plain
    if [[ " ${secret_names[*]} " != *" PUBLIC_SCAN_ALLOWED_REPOS "* ]]; then
        ct_log "PUBLIC_SCAN_ALLOWED_REPOS not given: unless the app has it already, every scan is refused; set it with 'fly secrets set PUBLIC_SCAN_ALLOWED_REPOS=owner/repo,... -a $app'"
    fi
    for name in GITHUB_MODE GITHUB_APP_ID GITHUB_PRIVATE_KEY_PEM GITHUB_WEBHOOK_SECRET SCAN_SCHEDULE SCAN_REPOS; do
        if [[ -n "${!name:-}" ]]; then add_secret "$name" "${!name}"; fi
    done
    if ((${#generated[@]})); then
        mkdir -p "$(dirname "$SECRETS_FILE")"
        (
            umask 077
            touch "$SECRETS_FILE"
            for line in "${generated[@]}"; do
                sed -i "/^${line%%=*}=/d" "$SECRETS_FILE"
                printf '%s\n' "$line" >>"$SECRETS_FILE"
            done
        )
        chmod 600 "$SECRETS_FILE"
        ct_log "generated ${#generated[@]} token(s); they are in $SECRETS_FILE (mode 600), not shown here"
    fi
fi
# --stage: stored now, applied by the deploy below (no restart of its own).
printf '%s' "$secret_lines" \
    | fly_run_stdin "NAME=VALUE lines of ${secret_names[*]}" secrets import --stage -a "$app"

# --- 4. deploy, one Machine ----------------------------------------------------
fly_run deploy --ha=false --remote-only --region "$region" -a "$app"
fly_run scale count 1 --yes -a "$app"

# --- 5. wait until healthy -----------------------------------------------------
if ((FLY_DRY_RUN)); then
    printf '+ %s\n' "$(fly_quote curl -fsS --max-time 5 "$HEALTH_URL")  (every 2 s, up to ${HEALTH_WAIT_SECS}s)"
else
    ct_log "waiting up to ${HEALTH_WAIT_SECS}s for $HEALTH_URL to answer 200"
    deadline=$((SECONDS + HEALTH_WAIT_SECS))
    last=""
    while :; do
        if last="$(curl -fsS --max-time 5 "$HEALTH_URL" 2>&1)"; then
            ct_log "healthy: $last"
            break
        fi
        if ((SECONDS >= deadline)); then
            ct_die "the appliance did not become healthy: $HEALTH_URL never answered 200 within ${HEALTH_WAIT_SECS}s (last error: ${last:-none}). See 'fly logs -a $app' and 'fly status -a $app'; a first start runs initdb and migrations, so try again in a minute (raise HEALTH_WAIT_SECS)"
        fi
        sleep 2
    done
fi

base="https://$app.fly.dev"
if ((FLY_DRY_RUN)); then
    headline="Dry run: nothing was changed. After a real run, $app would answer at:"
else
    headline="ClawTriage is set up on Fly.io as $app."
fi
cat <<EOF

$headline
  dashboard:    $base/
  webhook URL:  $base$WEBHOOK_PATH   (GitHub App mode; secret: GITHUB_WEBHOOK_SECRET)
  scan now:     OPS_TRIGGER_TOKEN=... clawtriage trigger --url $base --owner OWNER --repo REPO --wait
  schedule:     scripts/schedule-fly.sh --app $app --every daily --owner OWNER --repo REPO
  remove:       scripts/teardown-fly.sh --prefix $prefix
EOF
