#!/usr/bin/env bash
# Reloading a config with CHECKS checks: how long `POST /v1/reload` takes (the file read,
# validated whole, compared with the running config, one check changed), and whether the checks
# that did not change miss a run across the reloads.
# The agent runs CHECKS cheap checks (memory, disk, TCP to its own port) every INTERVAL; each of
# RELOADS rounds edits one check's interval (alternating) and reloads. Afterwards, the history of
# every unchanged check must show no gap longer than 1.5 × INTERVAL around the reloads.
# Targets: every reload under 100 ms; no missed run. Exits 1 if one is missed.
#
# Usage: bench/reload/run.sh   (needs target/release/vigil: cargo build --release -p vigil)
# Env:   CHECKS (1000), RELOADS (20), INTERVAL (1s), KEEP_TMP=1.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

CHECKS="${CHECKS:-1000}"
RELOADS="${RELOADS:-20}"
INTERVAL="${INTERVAL:-1s}"
TOKEN="bench-token"

need curl jq python3
[[ -x "$VIGIL_BIN" ]] || die "$VIGIL_BIN missing: cargo build --release -p vigil"
bench_init
OUT="$BENCH_DIR/reload/results/$(date -u +%Y%m%dT%H%MZ)"
mkdir -p "$OUT"

PORT="$(free_port)"
BASE="http://127.0.0.1:$PORT"
CONF="$BENCH_TMP/vigil.toml"
write_config() { # EDITED_INTERVAL
    {
        printf '[node]\nid = "bench"\n[api]\nbind = "127.0.0.1:%s"\ntoken = "%s"\n[health]\nmax_checks = %s\n' \
            "$PORT" "$TOKEN" "$(( CHECKS + 10 ))"
        printf '[[checks]]\nname = "edited"\nprobe = "memory"\nmax_used = 0.99\ninterval = "%s"\n' "$1"
        for i in $(seq 2 "$CHECKS"); do
            case $(( i % 3 )) in
                0) printf '[[checks]]\nname = "memory-%04d"\nprobe = "memory"\nmax_used = 0.99\ninterval = "%s"\n' "$i" "$INTERVAL" ;;
                1) printf '[[checks]]\nname = "disk-%04d"\nprobe = "disk:/"\nmax_used = 0.99\ninterval = "%s"\n' "$i" "$INTERVAL" ;;
                2) printf '[[checks]]\nname = "tcp-%04d"\nprobe = "tcp://127.0.0.1:%s"\ninterval = "%s"\n' "$i" "$PORT" "$INTERVAL" ;;
            esac
        done
    } >"$CONF"
}
write_config 2s
log "starting vigil agent with $CHECKS checks every $INTERVAL"
RUST_LOG="${RUST_LOG:-warn}" "$VIGIL_BIN" agent -c "$CONF" >"$BENCH_TMP/agent.log" 2>&1 &
VPID=$!
BENCH_PIDS+=("$VPID")
wait_http "$BASE/health/live" 30
wait_all_reported "$BASE" 60
start_ms="$(date +%s%3N)"

: >"$OUT/reloads.txt"
for round in $(seq 1 "$RELOADS"); do
    if (( round % 2 )); then write_config 3s; else write_config 2s; fi
    # One POST; curl's total time is the reload as a client sees it.
    line="$(curl -s -o "$BENCH_TMP/answer.json" -w '%{http_code} %{time_total}' -X POST \
        -H "Authorization: Bearer $TOKEN" "$BASE/v1/reload")"
    code="${line%% *}"
    [[ "$code" == 200 ]] || die "reload $round answered $code: $(cat "$BENCH_TMP/answer.json")"
    changed="$(jq -r '.changed | join(",")' "$BENCH_TMP/answer.json")"
    unchanged="$(jq -r '.unchanged' "$BENCH_TMP/answer.json")"
    [[ "$changed" == edited && "$unchanged" == $(( CHECKS - 1 )) ]] \
        || die "reload $round changed [$changed], kept $unchanged"
    echo "${line#* }" >>"$OUT/reloads.txt"
    sleep 0.5
done
end_ms="$(date +%s%3N)"

# The longest gap between two runs of each unchanged check while the reloads went on.
python3 - "$BASE" "$start_ms" "$end_ms" "$INTERVAL" "$CHECKS" >"$OUT/gaps.json" <<'EOF'
import json, re, sys, urllib.request
from datetime import datetime

def ms_of(stamp):
    # RFC 3339 with up to nine fractional digits; datetime takes six.
    stamp = re.sub(r"\.(\d{6})\d*", r".\1", stamp.replace("Z", "+00:00"))
    return datetime.fromisoformat(stamp).timestamp() * 1000

base, start_ms, end_ms, interval, checks = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
interval_ms = float(interval[:-1]) * (1000 if interval.endswith("s") and not interval.endswith("ms") else 1)
names = json.load(urllib.request.urlopen(f"{base}/health/checks"))["checks"].keys()
worst = (0, None)
for name in names:
    if name == "edited":
        continue
    detail = json.load(urllib.request.urlopen(f"{base}/v1/checks/{name}"))
    times = sorted(ms_of(r["timestamp"]) for r in detail["history"])
    times = [t for t in times if start_ms - interval_ms <= t <= end_ms + interval_ms]
    for a, b in zip(times, times[1:]):
        if b - a > worst[0]:
            worst = (b - a, name)
print(json.dumps({"worst_gap_ms": round(worst[0]), "check": worst[1], "interval_ms": interval_ms}))
EOF

python3 - "$OUT" "$CHECKS" "$RELOADS" <<'EOF'
import json, sys
out, checks, reloads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
times = sorted(float(l) * 1000 for l in open(f"{out}/reloads.txt"))
gap = json.load(open(f"{out}/gaps.json"))
p50 = times[len(times) // 2]
worst = times[-1]
ok_time = worst < 100
ok_gap = gap["worst_gap_ms"] <= 1.5 * gap["interval_ms"]
report = f"""## reload: {reloads} reloads of a config with {checks} checks (one changed each time)

| target | measured | verdict |
| --- | --- | --- |
| every reload under 100 ms | p50 {p50:.1f} ms, max {worst:.1f} ms | {"met" if ok_time else "MISSED"} |
| no missed run of an unchanged check (gap <= 1.5 x interval) | longest gap {gap["worst_gap_ms"]} ms ({gap["check"]}), interval {gap["interval_ms"]:.0f} ms | {"met" if ok_gap else "MISSED"} |
"""
open(f"{out}/report.md", "w").write(report)
print(report)
sys.exit(0 if ok_time and ok_gap else 1)
EOF
