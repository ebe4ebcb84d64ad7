#!/usr/bin/env bash
# Target 3: the release `vigil agent` with 200 checks stays under 15 MB of RSS.
#
# 200 checks, a quarter each: memory, disk:/, tcp to the agent's own port, http to the agent's own
# /health/live, every INTERVAL (5 s). The agent runs RUN_SECS (30 s, so every check has run ~6 times
# and its history, score window and the HTTP client pools are populated), then VmRSS (now) and
# VmHWM (peak) are read from /proc/PID/status.
#
# Usage: bench/rss.sh            (needs target/release/vigil: cargo build --release -p vigil)
# Env:   CHECKS=200 INTERVAL=5s RUN_SECS=30 VIGIL_BIN=... KEEP_TMP=1
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CHECKS="${CHECKS:-200}"
INTERVAL="${INTERVAL:-5s}"
RUN_SECS="${RUN_SECS:-30}"
TARGET_MB=15

need curl jq ss timeout
[[ -x "$VIGIL_BIN" ]] || die "$VIGIL_BIN missing: cargo build --release -p vigil"
bench_init

PORT="$(free_port)"
BASE="http://127.0.0.1:$PORT"
CONF="$BENCH_TMP/vigil.toml"
{
    printf '[node]\nid = "rss"\n\n[api]\nbind = "127.0.0.1:%s"\n\n[shutdown]\ndrain = "0s"\ntimeout = "2s"\n\n' "$PORT"
    for i in $(seq 1 "$CHECKS"); do
        case $((i % 4)) in
            0) printf '[[checks]]\nname = "memory-%03d"\nprobe = "memory"\nmax_used = 0.99\n' "$i" ;;
            1) printf '[[checks]]\nname = "disk-%03d"\nprobe = "disk:/"\nmax_used = 0.99\n' "$i" ;;
            2) printf '[[checks]]\nname = "tcp-%03d"\nprobe = "tcp://127.0.0.1:%s"\n' "$i" "$PORT" ;;
            3) printf '[[checks]]\nname = "http-%03d"\nprobe = "http://127.0.0.1:%s/health/live"\n' "$i" "$PORT" ;;
        esac
        printf 'interval = "%s"\ntimeout = "2s"\ncomponent = "c%d"\n\n' "$INTERVAL" $((i % 4))
    done
} >"$CONF"

log "starting vigil agent on $BASE with $CHECKS checks every $INTERVAL"
START="$(date +%s)"
RUST_LOG="${RUST_LOG:-warn}" "$VIGIL_BIN" agent -c "$CONF" >"$BENCH_TMP/vigil.log" 2>&1 &
PID=$!
BENCH_PIDS+=("$PID")
wait_http "$BASE/health/live" 20
wait_all_reported "$BASE" 30
registered="$(curl -s "$BASE/health/summary" | jq '.key_metrics.checks_registered')"
[[ "$registered" == "$CHECKS" ]] || die "agent has $registered checks, expected $CHECKS"
left=$(( START + RUN_SECS - $(date +%s) ))
if (( left > 0 )); then
    log "running ${left}s more"
    sleep "$left"
fi
kill -0 "$PID" 2>/dev/null || die "agent exited: $(tail -5 "$BENCH_TMP/vigil.log")"

summary="$(curl -s "$BASE/health/summary")"
status_line="$(jq -r '"\(.status), \(.check_runs_total) results, \(.check_runs_failed) failed, \(.key_metrics.checks_passing) passing"' <<<"$summary")"
field() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$PID/status"; }
rss_kb="$(field VmRSS)"; hwm_kb="$(field VmHWM)"; anon_kb="$(field RssAnon)"; file_kb="$(field RssFile)"
threads="$(field Threads)"
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
verdict() { awk -v k="$1" -v t="$TARGET_MB" 'BEGIN { print (k / 1024 < t) ? "met" : "MISSED" }'; }

echo
echo "## rss: $(date -u +%Y-%m-%dT%H:%MZ), $(machine_line)"
echo "vigil agent, $CHECKS checks (memory, disk:/, tcp and http to itself) every $INTERVAL, read after $(( $(date +%s) - START ))s;"
echo "$status_line; $threads threads."
echo
echo "| measure | target | measured | |"
echo "| --- | --- | ---: | --- |"
echo "| VmRSS | < ${TARGET_MB} MB | $(mb "$rss_kb") MB | $(verdict "$rss_kb") |"
echo "| VmHWM (peak RSS) | < ${TARGET_MB} MB | $(mb "$hwm_kb") MB | $(verdict "$hwm_kb") |"
echo "| RssAnon / RssFile | — | $(mb "$anon_kb") / $(mb "$file_kb") MB | |"
[[ $(verdict "$hwm_kb") == met ]]
