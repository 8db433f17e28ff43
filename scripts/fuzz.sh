#!/usr/bin/env bash
# Fuzzes the diff parser, the webhook payload parser, the capped reader of `git diff` output and
# the `Link` header handling for a bounded time each (cargo-fuzz, libFuzzer), with corpora
# seeded from the shared PR set, the committed webhook payloads and GitHub-shaped Link headers.
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

# `git diff` output as the mirror reads it: three bytes of reader settings (cap, chunk size)
# in front of a whole file diff built from the seeded patches.
seed_git_diffs() {
    local out=corpus/git_diff_stream
    mkdir -p "$out"
    python3 - corpus/diff_parser "$out" <<'PY'
import os, sys
src, out = sys.argv[1], sys.argv[2]
for i, name in enumerate(sorted(os.listdir(src))[:500]):
    with open(os.path.join(src, name), "rb") as f:
        patch = f.read()
    head = b"diff --git a/f%d b/f%d\n--- a/f%d\n+++ b/f%d\n" % (i, i, i, i)
    settings = bytes([i % 256, (i * 7) % 64, i % 97])
    with open(os.path.join(out, name), "wb") as o:
        o.write(settings + head + patch + b"\n")
PY
}

seed_links() {
    local out=corpus/link_header
    mkdir -p "$out"
    printf '%s' '<https://api.github.com/repositories/1300192/pulls?state=open&per_page=100&page=2>; rel="next", <https://api.github.com/repositories/1300192/pulls?state=open&per_page=100&page=34>; rel="last"' >"$out/github"
    printf '%s' '<https://api.github.com/repositories/1/pulls?page=1>; rel="prev", <https://evil.example/x>; rel="next"' >"$out/elsewhere"
    printf '%s' '<@evil.example/x>; rel=next' >"$out/relative"
}

seed_diffs
seed_webhooks
seed_git_diffs
seed_links
export RUSTC_BOOTSTRAP=1
for target in diff_parser webhook_payload git_diff_stream link_header; do
    echo "[fuzz] $target for ${SECS}s"
    cargo fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
done
echo "[fuzz] no crash, no hang"
