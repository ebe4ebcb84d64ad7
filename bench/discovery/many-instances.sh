#!/usr/bin/env bash
# 10,000 service instances on one agent, each with a TCP check every 5 s. Targets: the agent
# stays under 25% of one core and 60 MB resident once they all pass.
#
# One voter (a one-node cluster), so every check result, registration and report goes through the
# same Raft log a cluster uses. The instances all point at one listener (a `vigil fake-service`),
# so every check really connects. Registration time is reported too (one client, keep-alive).
#
# Usage: bench/discovery/many-instances.sh
# Needs: python3, target/release/vigil (cargo build --release -p vigil).
# Env: INSTANCES=10000 INTERVAL=5s CPU_SECS=30 KEEP_TMP=1
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

INSTANCES="${INSTANCES:-10000}"
INTERVAL="${INTERVAL:-5s}"
CPU_SECS="${CPU_SECS:-30}"
CPU_TARGET=25   # percent of one core
RSS_TARGET=60   # MB

need python3 getconf
[[ -x "$VIGIL_BIN" ]] || die "$VIGIL_BIN missing (cargo build --release -p vigil)"
bench_init

API="$(free_port)"
GOSSIP="$(free_port)"
TARGET="$(free_port)"
HZ="$(getconf CLK_TCK)"
cat >"$BENCH_TMP/vigil.toml" <<TOML
[node]
id = "v1"
[api]
bind = "127.0.0.1:$API"
token = "bench-token"
[cluster]
bind = "127.0.0.1:$GOSSIP"
role = "voter"
voters = ["v1"]
data_dir = "$BENCH_TMP/raft"
TOML
"$VIGIL_BIN" fake-service --port "$TARGET" >/dev/null 2>&1 &
BENCH_PIDS+=("$!")
(cd "$BENCH_TMP" && exec "$VIGIL_BIN" agent -c vigil.toml) >"$BENCH_TMP/agent.log" 2>&1 &
PID=$!
BENCH_PIDS+=("$PID")
wait_http "http://127.0.0.1:$API/health/live" 30

log "registering $INSTANCES instances, each checked over TCP every $INTERVAL"
python3 - "$API" "$INSTANCES" "$TARGET" "$INTERVAL" <<'PY'
import http.client, json, sys, time
api, n, target, interval = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
conn = http.client.HTTPConnection("127.0.0.1", api, timeout=30)
headers = {"Authorization": "Bearer bench-token", "Content-Type": "application/json"}
deadline = time.monotonic() + 30
while True:
    conn.request("GET", "/v1/leader"); body = json.loads(conn.getresponse().read())
    if body.get("is_leader"): break
    if time.monotonic() > deadline: sys.exit("no leader")
    time.sleep(0.1)
start = time.monotonic()
for i in range(n):
    body = {"name": f"svc-{i % 100}", "id": f"i-{i}", "address": "127.0.0.1", "port": target,
            "checks": [{"name": "tcp", "probe": f"tcp://127.0.0.1:{target}", "interval": interval}]}
    conn.request("POST", "/v1/services", body=json.dumps(body), headers=headers)
    r = conn.getresponse(); r.read()
    if r.status not in (200, 201): sys.exit(f"registration {i}: {r.status}")
took = time.monotonic() - start
print(f"registered {n} in {took:.1f}s ({n / took:.0f}/s)", file=sys.stderr)
PY

log "waiting until every instance passes"
deadline=$(( $(date +%s) + 300 ))
while :; do
    passing="$(curl -s "http://127.0.0.1:$API/metrics" | awk '/^vigil_service_instances\{.*state="passing"\}/ {s += $2} END {print s + 0}')"
    [[ "$passing" -ge "$INSTANCES" ]] && break
    (( $(date +%s) < deadline )) || die "only $passing of $INSTANCES pass after 300s"
    sleep 1
done
# One whole check interval in their steady rhythm before measuring.
sleep 6

t0="$(cpu_ticks "$PID")"
sleep "$CPU_SECS"
t1="$(cpu_ticks "$PID")"
cpu="$(awk -v a="$t0" -v b="$t1" -v hz="$HZ" -v s="$CPU_SECS" 'BEGIN { printf "%.1f", (b - a) / hz / s * 100 }')"
rss_kb="$(awk '/^VmRSS:/ {print $2}' "/proc/$PID/status")"
rss="$(awk -v k="$rss_kb" 'BEGIN { printf "%.1f", k / 1024 }')"

echo "| measurement | target | measured |"
echo "| --- | --- | --- |"
echo "| CPU of the agent, $INSTANCES instances with TCP checks every $INTERVAL (${CPU_SECS}s) | < ${CPU_TARGET}% of a core | ${cpu}% |"
echo "| resident memory | < ${RSS_TARGET} MB | ${rss} MB |"
awk -v c="$cpu" -v r="$rss" -v ct="$CPU_TARGET" -v rt="$RSS_TARGET" 'BEGIN { exit !(c < ct && r < rt) }' \
    || { log "target missed"; exit 1; }
