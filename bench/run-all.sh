#!/usr/bin/env bash
# Builds the release agent and the synthetic agent once, then runs the three benchmarks.
# Each benchmark's report (markdown tables) goes to stdout and to bench/results/<date>.md;
# progress and raw wrk output go to stderr. Exits 1 if any target was missed.
#
# Usage: bench/run-all.sh [--no-build]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ "${1:-}" != "--no-build" ]]; then
    log "building release: vigil and the synthetic_agent example (one cargo invocation)"
    (cd "$REPO_DIR" && timeout 1800 cargo build --release -p vigil -p vigil-api --bin vigil --example synthetic_agent) >&2
fi
[[ -x "$VIGIL_BIN" && -x "$SYNTH_BIN" ]] || die "release binaries missing; run without --no-build"

mkdir -p "$BENCH_DIR/results"
REPORT="$BENCH_DIR/results/$(date -u +%Y%m%dT%H%MZ).md"
{
    echo "# vigil bench run $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "Machine: $(machine_line)"
    echo "Commit: $(cd "$REPO_DIR" && git rev-parse --short HEAD 2>/dev/null || echo unknown) (working tree may differ)"
} | tee "$REPORT"

failed=()
for script in http-vs-nginx.sh many-checks.sh rss.sh; do
    log "=== $script"
    if ! "$BENCH_DIR/$script" | tee -a "$REPORT"; then
        failed+=("$script")
    fi
    echo | tee -a "$REPORT"
done
log "report written to $REPORT"
if (( ${#failed[@]} )); then
    log "targets missed (or errors) in: ${failed[*]}"
    exit 1
fi
log "all targets met"
