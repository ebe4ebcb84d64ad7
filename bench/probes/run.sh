#!/usr/bin/env bash
# Probe costs, side by side in one run:
#   1. process time of `vigil probe grpc://…` vs Python's grpcio health client (one Check each),
#   2. process time of `vigil probe http://…` vs `curl -fsS`,
#   3. grpc.health.v1 Check calls per second served by `vigil agent` (target ≥ 20,000/s).
# Targets: vigil probe no slower than curl; Check ≥ 20,000/s. Exit 1 when one is missed.
#
# Knobs: RUNS (hyperfine runs per command, 200), WARMUP (10), DURATION (Check load, 10s),
# CONNECTIONS (4), CONCURRENCY (64 calls in flight per connection), NO_BUILD=1.
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

RUNS="${RUNS:-200}"
WARMUP="${WARMUP:-10}"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-4}"
CONCURRENCY="${CONCURRENCY:-64}"
LOAD_BIN="$TARGET_DIR/release/examples/grpc_check_load"
PY_CLIENT="$REPO_DIR/crates/vigil/tests/python/health_client.py"

need curl hyperfine jq python3
python3 -c "import grpc, grpc_health.v1.health" 2>/dev/null \
    || die "python3 needs grpcio and grpcio-health-checking (pip install grpcio grpcio-health-checking)"
if [[ -z "${NO_BUILD:-}" ]]; then
    log "building release vigil and the grpc_check_load example"
    (cd "$REPO_DIR" && cargo build --release -q -p vigil --bin vigil \
        && cargo build --release -q -p vigil-api --example grpc_check_load)
fi
[[ -x "$VIGIL_BIN" && -x "$LOAD_BIN" ]] || die "missing $VIGIL_BIN or $LOAD_BIN (run without NO_BUILD)"

bench_init
api_port="$(free_port)"
grpc_port="$(free_port)"
cat >"$BENCH_TMP/vigil.toml" <<TOML
[node]
id = "bench-probes"
[api]
bind = "127.0.0.1:$api_port"
[grpc]
bind = "127.0.0.1:$grpc_port"
[[checks]]
name = "self"
probe = "tcp://127.0.0.1:$api_port"
interval = "1s"
critical = true
TOML
"$VIGIL_BIN" agent -c "$BENCH_TMP/vigil.toml" 2>"$BENCH_TMP/agent.log" &
BENCH_PIDS+=("$!")
agent_pid="$!"
wait_http "http://127.0.0.1:$api_port/health/live" 20
timeout 20 bash -c "until curl -fs -o /dev/null http://127.0.0.1:$api_port/health/ready; do sleep 0.2; done" \
    || die "the agent did not turn ready"
"$VIGIL_BIN" probe "grpc://127.0.0.1:$grpc_port" >/dev/null || die "vigil probe grpc failed"
python3 "$PY_CLIENT" check "127.0.0.1:$grpc_port" "" | grep -qx SERVING || die "python client failed"

grpc_vigil="$VIGIL_BIN probe grpc://127.0.0.1:$grpc_port"
grpc_python="python3 $PY_CLIENT check 127.0.0.1:$grpc_port ''"
http_url="http://127.0.0.1:$api_port/health/ready"
http_vigil="$VIGIL_BIN probe $http_url"
http_curl="curl -fsS -o /dev/null $http_url"

wait_quiet 30 60
log "process time: gRPC probes ($RUNS runs each)"
hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$BENCH_TMP/grpc.json" \
    -n "vigil probe grpc://" "$grpc_vigil" -n "python grpcio health client" "$grpc_python" >&2
wait_quiet 30 60
log "process time: HTTP probes ($RUNS runs each)"
hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$BENCH_TMP/http.json" \
    -n "vigil probe http://" "$http_vigil" -n "curl -fsS" "$http_curl" >&2

# mean ms, stddev ms, user ms, system ms of command N in a hyperfine JSON.
stats() {
    jq -r --argjson n "$2" '.results[$n] | [.mean, .stddev, .user, .system] | map(. * 1000 | . * 100 | round / 100) | @tsv' "$1"
}

wait_quiet 30 60
log "Check throughput: $CONNECTIONS connections x $CONCURRENCY in flight, $DURATION"
ticks0="$(cpu_ticks "$agent_pid")"
load="$("$LOAD_BIN" --addr "127.0.0.1:$grpc_port" --connections "$CONNECTIONS" \
    --concurrency "$CONCURRENCY" --duration "$DURATION")" || die "load run failed: $load"
ticks1="$(cpu_ticks "$agent_pid")"
rate="$(sed 's/.*rate=//' <<<"$load")"
seconds="$(sed 's/.*seconds=\([0-9.]*\).*/\1/' <<<"$load")"
calls="$(sed 's/^calls=\([0-9]*\).*/\1/' <<<"$load")"
server_cpu="$(awk -v t="$(( ticks1 - ticks0 ))" -v hz="$(getconf CLK_TCK)" -v s="$seconds" \
    'BEGIN { printf "%.2f", t / hz / s }')"
per_cpu_second="$(awk -v c="$calls" -v t="$(( ticks1 - ticks0 ))" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.0f", c / (t / hz) }')"

read -r gv_mean gv_sd gv_user gv_sys < <(stats "$BENCH_TMP/grpc.json" 0)
read -r gp_mean gp_sd gp_user gp_sys < <(stats "$BENCH_TMP/grpc.json" 1)
read -r hv_mean hv_sd hv_user hv_sys < <(stats "$BENCH_TMP/http.json" 0)
read -r hc_mean hc_sd hc_user hc_sys < <(stats "$BENCH_TMP/http.json" 1)

echo "## Probe costs ($(date -u +%Y-%m-%dT%H:%MZ))"
echo
echo "Machine: $(machine_line)"
echo
echo "| command | wall mean ± sd (ms) | user (ms) | system (ms) |"
echo "| --- | --- | --- | --- |"
echo "| \`vigil probe grpc://…\` | $gv_mean ± $gv_sd | $gv_user | $gv_sys |"
echo "| python grpcio health client | $gp_mean ± $gp_sd | $gp_user | $gp_sys |"
echo "| \`vigil probe http://…\` | $hv_mean ± $hv_sd | $hv_user | $hv_sys |"
echo "| \`curl -fsS\` | $hc_mean ± $hc_sd | $hc_user | $hc_sys |"
echo
echo "Check throughput: $rate calls/s ($calls calls in ${seconds}s, $CONNECTIONS connections x $CONCURRENCY in flight, no errors);"
echo "the agent used $server_cpu cores, $per_cpu_second calls per CPU-second (load generator on the same 2 cores)."

missed=0
if awk -v v="$hv_mean" -v c="$hc_mean" 'BEGIN { exit !(v > c) }'; then
    log "MISSED: vigil probe http:// ($hv_mean ms) slower than curl ($hc_mean ms)"
    missed=1
fi
if awk -v r="$rate" 'BEGIN { exit !(r < 20000) }'; then
    log "MISSED: $rate Check calls/s < 20,000"
    missed=1
fi
exit "$missed"
