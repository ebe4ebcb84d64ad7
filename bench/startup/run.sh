#!/usr/bin/env bash
# Startup benchmark: the MooseNG stack (13 services, groups with quorum / min_healthy) with seeded
# random readiness delays (0.5-4 s), started four ways in the same run, for each seed:
#   1. vigil up            local fake-service processes, graph schedule
#   2. vigil up --schedule waves   same stack, level by level
#   3. docker-compose up -d, then waiting until every container is healthy (what `up --wait` does
#      in compose v2; this machine has compose v1, which has no --wait)
#   4. vigil up --compose  the same compose file, containers started by vigil
# and compares vigil's total with the critical path the delays imply.
#
# Usage: bench/startup/run.sh [--no-build]
# Env:   SEEDS ("1 2 3 4 5"), VIGIL_BIN (target/release/vigil), IMAGE (vigil:scratch), KEEP_TMP=1,
#        HEALTH_INTERVAL (500ms: the compose healthcheck interval docker compose waits on)
# Needs: docker, docker-compose (or docker compose), python3. Exits 1 when a target is missed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../lib.sh
source "$HERE/../lib.sh"

SEEDS="${SEEDS:-1 2 3 4 5}"
IMAGE="${IMAGE:-vigil:scratch}"
HEALTH_INTERVAL="${HEALTH_INTERVAL:-500ms}"
need python3 docker timeout

if [[ "${1:-}" != "--no-build" ]]; then
    log "building the release binary and the $IMAGE image"
    (cd "$REPO_DIR" && cargo build --release -p vigil --bin vigil >&2)
    PROFILE="${PROFILE:-dev}" "$REPO_DIR/deploy/docker/build-image.sh" "$IMAGE" >/dev/null
fi
[[ -x "$VIGIL_BIN" ]] || die "$VIGIL_BIN missing (cargo build --release -p vigil)"
if docker-compose version >/dev/null 2>&1; then
    COMPOSE=(docker-compose)
elif docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
else
    die "neither docker-compose nor docker compose found"
fi

bench_init
PROJECT="vigilbench$$"
compose_cleanup() {
    "${COMPOSE[@]}" -p "$PROJECT" -f "$BENCH_TMP/compose.yml" down -t 1 >/dev/null 2>&1 || true
}
trap 'compose_cleanup; bench_cleanup' EXIT

now() { date +%s.%N; }

# compose_up: seconds from `compose up -d` until every container is healthy.
compose_up() {
    local t0 ids deadline status
    t0="$(now)"
    "${COMPOSE[@]}" -p "$PROJECT" -f "$BENCH_TMP/compose.yml" up -d >/dev/null 2>&1
    ids="$("${COMPOSE[@]}" -p "$PROJECT" -f "$BENCH_TMP/compose.yml" ps -q)"
    deadline=$(( $(date +%s) + 120 ))
    while :; do
        # shellcheck disable=SC2086
        status="$(docker inspect -f '{{.State.Health.Status}}' $ids | sort -u | tr '\n' ' ')"
        [[ "$status" == "healthy " ]] && break
        (( $(date +%s) < deadline )) || die "compose stack not healthy within 120 s: $status"
        sleep 0.05
    done
    python3 -c "print(round($(now) - $t0, 3))"
}

# field FILE KEY: a top-level number of a JSON report.
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }

rows=()
missed=0
for seed in $SEEDS; do
    base="$(free_port)"
    python3 "$HERE/gen.py" "$seed" "$BENCH_TMP" "$base" "$IMAGE" "$HEALTH_INTERVAL"
    ideal="$(field "$BENCH_TMP/ideal.json" critical_path_s)"
    ideal_waves="$(field "$BENCH_TMP/ideal.json" waves_s)"
    cd "$BENCH_TMP"

    log "seed $seed: vigil up (graph)"
    "$VIGIL_BIN" up -d -f stack.toml --report graph.json --timeline "graph-$seed.svg" >/dev/null
    "$VIGIL_BIN" down -f stack.toml >/dev/null
    log "seed $seed: vigil up --schedule waves"
    "$VIGIL_BIN" up -d -f stack.toml --schedule waves --report waves.json >/dev/null
    "$VIGIL_BIN" down -f stack.toml >/dev/null
    log "seed $seed: docker-compose up + wait for healthy"
    compose_secs="$(compose_up)"
    compose_cleanup
    log "seed $seed: vigil up --compose"
    t0="$(now)"
    "$VIGIL_BIN" up -d --compose compose.yml --project "$PROJECT" --report vcompose.json >/dev/null
    vcompose_wall="$(python3 -c "print(round($(now) - $t0, 3))")"
    "$VIGIL_BIN" down --compose compose.yml >/dev/null
    compose_cleanup
    cd - >/dev/null

    total="$(field "$BENCH_TMP/graph.json" total_s)"
    bound="$(field "$BENCH_TMP/graph.json" critical_path_s)"
    waves="$(field "$BENCH_TMP/waves.json" total_s)"
    row="$(python3 - "$seed" "$ideal" "$ideal_waves" "$total" "$bound" "$waves" "$compose_secs" "$vcompose_wall" <<'PY'
import sys
seed, ideal, ideal_waves, total, bound, waves, compose, vcompose = sys.argv[1], *map(float, sys.argv[2:])
slack = max(0.05 * ideal, 0.3)
ok_cp = total - ideal <= slack
ok_waves = waves / total >= 1.3
ok_compose = compose / vcompose >= 1.5
mark = lambda ok: "met" if ok else "MISSED"
print(f"| {seed} | {ideal:.2f} | {total:.2f} (+{total - ideal:.2f}, {mark(ok_cp)}) | {bound:.2f} "
      f"| {ideal_waves:.2f} | {waves:.2f} (**{waves / total:.2f}×**, {mark(ok_waves)}) "
      f"| {compose:.2f} | {vcompose:.2f} (**{compose / vcompose:.2f}×**, {mark(ok_compose)}) "
      f"| {compose / total:.2f}× |")
print(int(not (ok_cp and ok_waves and ok_compose)))
PY
)"
    rows+=("$(head -1 <<<"$row")")
    missed=$(( missed + $(tail -1 <<<"$row") ))
    if [[ -n "${KEEP_TMP:-}" ]]; then cp "$BENCH_TMP/graph-$seed.svg" "$HERE/" 2>/dev/null || true; fi
done

cat <<EOF
| seed | critical path of the delays (s) | vigil up total (s) | vigil's measured bound (s) | waves of the delays (s) | vigil --schedule waves (s) | docker-compose up + wait (s) | vigil up --compose, wall (s) | compose ÷ vigil (processes) |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
EOF
printf '%s\n' "${rows[@]}"
exit $(( missed > 0 ))
