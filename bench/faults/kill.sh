#!/usr/bin/env bash
# `docker kill` of a member of the demo compose cluster, TRIALS times (default 20): the time until
# every other node reports it dead, as a distribution (median, p90, max, how many over 2 s).
# Builds the image from VIGIL_BIN (default target/release/vigil), brings the cluster up under a
# project and a /24 of its own, and takes it down on exit. Writes
# bench/faults/results/<UTC stamp>-kill/{trials.json,trials.txt}.
#
# Usage: bench/faults/kill.sh [TRIALS]
# Needs: docker, docker compose (v1 or v2), python3, a built vigil.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../lib.sh
source "$HERE/../lib.sh"
TRIALS="${1:-20}"
[[ -x "$VIGIL_BIN" ]] || die "$VIGIL_BIN missing (cargo build --release -p vigil)"
if docker-compose version >/dev/null 2>&1; then COMPOSE=(docker-compose); else COMPOSE=(docker compose); fi

OUT="$HERE/results/$(date -u +%Y%m%dT%H%M%SZ)-kill"
mkdir -p "$OUT"
export VIGIL_NET="10.213.$((100 + $$ % 100))"
export VIGIL_IMAGE="vigil:bench-kill"
PROJECT="vigilkill$$"
FILE="$REPO_DIR/deploy/compose/docker-compose.yml"

BINARY="$VIGIL_BIN" "$REPO_DIR/deploy/docker/build-image.sh" "$VIGIL_IMAGE" >/dev/null
down() { "${COMPOSE[@]}" -p "$PROJECT" -f "$FILE" down -t 2 >/dev/null 2>&1 || true; }
trap down EXIT
"${COMPOSE[@]}" -p "$PROJECT" -f "$FILE" up -d >/dev/null 2>&1
log "cluster $PROJECT up on $VIGIL_NET.0/24; waiting until every node sees the other five alive"
for octet in 11 12 13 21 22 23; do
    for _ in $(seq 1 120); do
        alive="$(curl -s --max-time 1 "http://$VIGIL_NET.$octet:8081/v1/members" \
            | jq '[.members[] | select(.state == "alive")] | length' 2>/dev/null || echo 0)"
        [[ "$alive" -ge 6 ]] && break
        sleep 0.5
    done
    [[ "$alive" -ge 6 ]] || die "node .$octet does not see all six alive"
done
VICTIM="$("${COMPOSE[@]}" -p "$PROJECT" -f "$FILE" ps -q m3)"
[[ -n "$VICTIM" ]] || die "no container for m3"
# Every detector hears a few heartbeats before the first kill.
sleep 10
{
    echo "vigil $(sha256sum "$VIGIL_BIN" | cut -c1-12), $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p')), $(date -u +%Y-%m-%dT%H:%MZ)"
    python3 "$HERE/kill-trials.py" --net "$VIGIL_NET" --container "$VICTIM" --trials "$TRIALS" \
        --out "$OUT/trials.json"
} | tee "$OUT/trials.txt"
