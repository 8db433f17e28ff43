#!/usr/bin/env bash
# Fuzzes the diff parser and the webhook payload parser for a bounded time each (cargo-fuzz,
# libFuzzer), with corpora seeded from the shared PR set and the committed webhook payloads.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]      (default 60)
#
# Installs cargo-fuzz when missing. cargo-fuzz needs nightly-only compiler flags; the stable
# toolchain accepts them with RUSTC_BOOTSTRAP=1, which this script sets for the fuzz build only.
# Exits non-zero when a target crashes or hangs (libFuzzer's own timeout, 10 s per input).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
SECS="${1:-60}"
DATASET="${CLAWTRIAGE_DATASET_DIR:-$REPO_ROOT/../shared/datasets/playwright-1k}"

cd "$REPO_ROOT/fuzz"
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "[fuzz] installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

seed_diffs() {
    local out=corpus/diff_parser
    mkdir -p "$out"
    local src="$DATASET/prs.jsonl.gz"
    [[ -f "$src" ]] || src="$REPO_ROOT/tests/fixtures/datasets/playwright-slice/prs.jsonl.gz"
    python3 - "$src" "$out" <<'PY'
import gzip, hashlib, json, os, sys
src, out = sys.argv[1], sys.argv[2]
n = 0
with gzip.open(src, "rt") as f:
    for line in f:
        for fc in json.loads(line).get("files", []):
            p = fc.get("patch")
            if not p or len(p) > 20000:
                continue
            h = hashlib.sha1(p.encode()).hexdigest()[:16]
            with open(os.path.join(out, h), "w") as o:
                o.write(p)
            n += 1
            if n >= 2000:
                sys.exit(0)
PY
}

seed_webhooks() {
    local out=corpus/webhook_payload
    mkdir -p "$out"
    cp "$REPO_ROOT"/tests/fixtures/webhooks/*.json "$out"/
}

seed_diffs
seed_webhooks
export RUSTC_BOOTSTRAP=1
for target in diff_parser webhook_payload; do
    echo "[fuzz] $target for ${SECS}s"
    cargo fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
done
echo "[fuzz] no crash, no hang"
