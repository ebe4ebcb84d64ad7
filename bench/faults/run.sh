#!/usr/bin/env bash
# Containers and faults: the release image's size, then the fault-injection suite on the demo
# compose cluster, with its figures (detection times, write counts) picked out of the test output.
# Writes both to bench/faults/results/<UTC stamp>/. Exits 1 if the image is 25 MB or more or the
# suite fails.
#
# Usage: bench/faults/run.sh
# Needs: docker, docker compose (v1 or v2), cargo.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
OUT="$HERE/results/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"

tag="$("$REPO/deploy/docker/build-image.sh" vigil:release)"
bytes="$(docker image inspect -f '{{.Size}}' "$tag")"
awk -v t="$tag" -v b="$bytes" 'BEGIN { printf "image %s: %d bytes (%.1f MB)\n", t, b, b / 1e6 }' | tee "$OUT/image.txt"

status=0
(cd "$REPO" && cargo test -p vigil --test faults -- --nocapture) >"$OUT/suite.log" 2>&1 || status=$?
grep '^FIGURE' "$OUT/suite.log" | tee "$OUT/figures.txt"
grep -E '^test result|finished in' "$OUT/suite.log" | tail -n 1

[[ "$bytes" -lt 25000000 ]] || { echo "image is not under 25 MB" >&2; exit 1; }
exit "$status"
