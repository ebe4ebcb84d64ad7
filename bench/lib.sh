# Shared helpers of the bench scripts. Sourced, not run.
# shellcheck shell=bash

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_DIR/target}"
VIGIL_BIN="${VIGIL_BIN:-$TARGET_DIR/release/vigil}"
SYNTH_BIN="${SYNTH_BIN:-$TARGET_DIR/release/examples/synthetic_agent}"

# PIDs this script started; killed (only these) on exit.
BENCH_PIDS=()
BENCH_TMP=""

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

bench_cleanup() {
    local pid
    for pid in "${BENCH_PIDS[@]:-}"; do
        [[ -n "$pid" ]] || continue
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    for pid in "${BENCH_PIDS[@]:-}"; do
        [[ -n "$pid" ]] || continue
        # Bounded wait, then KILL what is left.
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    if [[ -n "$BENCH_TMP" && -d "$BENCH_TMP" && -z "${KEEP_TMP:-}" ]]; then
        rm -rf "$BENCH_TMP"
    fi
}

# bench_init: temp dir + trap. Sets BENCH_TMP.
bench_init() {
    BENCH_TMP="$(mktemp -d /tmp/vigil-bench.XXXXXX)"
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

need() {
    local cmd
    for cmd in "$@"; do
        command -v "$cmd" >/dev/null 2>&1 || die "$cmd not found (see bench/README.md, Requirements)"
    done
}

# free_port: a TCP port nobody listens on now, from the ephemeral-free range 20000-32000.
free_port() {
    local port used
    used="$(ss -Htan | awk '{print $4}' | sed 's/.*://' | sort -u)"
    for _ in $(seq 1 200); do
        port=$((20000 + RANDOM % 12000))
        if ! grep -qx "$port" <<<"$used"; then
            echo "$port"
            return 0
        fi
    done
    die "no free port found"
}

# wait_http URL SECONDS: until URL answers anything (any status).
wait_http() {
    local url="$1" secs="$2"
    timeout "$secs" bash -c "until curl -s -o /dev/null --max-time 1 '$url'; do sleep 0.2; done" \
        || die "$url did not answer within ${secs}s"
}

# wait_all_reported BASE_URL SECONDS: until /health/summary says no check is unknown.
wait_all_reported() {
    local base="$1" secs="$2" deadline unknown
    deadline=$(( $(date +%s) + secs ))
    while :; do
        unknown="$(curl -s --max-time 5 "$base/health/summary" | jq -r '.key_metrics.checks_unknown // empty' 2>/dev/null || true)"
        if [[ "$unknown" == "0" ]]; then
            return 0
        fi
        (( $(date +%s) < deadline )) || die "checks still unknown after ${secs}s: ${unknown:-no answer}"
        sleep 0.5
    done
}

# cpu_ticks PID: utime+stime of the process (all threads), in clock ticks.
cpu_ticks() {
    # Fields after the ")" closing comm: state is field 3, utime 14, stime 15.
    local rest
    rest="$(sed 's/^.*) //' "/proc/$1/stat")"
    awk '{print $12 + $13}' <<<"$rest"
}

# wrk_parse FILE: "rps p50 p99 non2xx errors" from wrk --latency output (p50/p99 in ms).
wrk_parse() {
    awk '
        function ms(v) {
            if (v ~ /us$/) { sub(/us$/, "", v); return v / 1000 }
            if (v ~ /ms$/) { sub(/ms$/, "", v); return v + 0 }
            if (v ~ /m$/)  { sub(/m$/, "", v);  return v * 60000 }
            if (v ~ /s$/)  { sub(/s$/, "", v);  return v * 1000 }
            return v + 0
        }
        /^Requests\/sec:/ { rps = $2 }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        /Non-2xx or 3xx responses:/ { non2xx = $NF }
        /Socket errors:/ { gsub(/,/, ""); errors = $4 + $6 + $8 + $10 }
        END { printf "%.0f %.3f %.3f %d %d\n", rps, p50, p99, non2xx, errors }
    ' "$1"
}

# cpu_stat: "busy total steal" ticks of the whole machine (all CPUs) from /proc/stat.
cpu_stat() {
    awk '$1 == "cpu" {
        total = 0; for (i = 2; i <= 9; i++) total += $i
        print total - $5 - $6, total, $9
    }' /proc/stat
}

# timed_wrk OUT_FILE WRK_ARGS...: runs wrk (bounded), its output to OUT_FILE, and prints the CPU
# wrk itself used, in clock ticks (user+sys, from the shell's `time`).
timed_wrk() {
    local out="$1"; shift
    local tf secs
    tf="$(mktemp "$BENCH_TMP/time.XXXXXX")"
    local TIMEFORMAT='%3U %3S'
    { time timeout 300 wrk "$@" >"$out"; } 2>"$tf" || die "wrk $* failed: $(cat "$out")"
    secs="$(tail -1 "$tf")"
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.0f\n", ($1 + $2) * hz }' <<<"$secs"
}

machine_line() {
    local model cores mem
    model="$(awk -F: '/model name/ {gsub(/^ +/, "", $2); print $2; exit}' /proc/cpuinfo)"
    cores="$(nproc)"
    mem="$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
    echo "$cores cores ($model), $mem RAM, Linux $(uname -r)"
}

# wait_quiet MAX_PCT SECONDS: waits (at most SECONDS) until the whole machine is at most MAX_PCT
# busy over a 2 s window, so a measurement does not start while another workload's build runs on
# this shared VM. Returns 0 either way; logs when it gave up waiting.
wait_quiet() {
    local max="$1" secs="$2" deadline b0 t0 s0 b1 t1 s1 pct
    deadline=$(( $(date +%s) + secs ))
    while :; do
        read -r b0 t0 s0 < <(cpu_stat)
        sleep 2
        read -r b1 t1 s1 < <(cpu_stat)
        pct=$(( (b1 - b0) * 100 / (t1 - t0 > 0 ? t1 - t0 : 1) ))
        (( pct <= max )) && return 0
        if (( $(date +%s) >= deadline )); then
            log "  machine still ${pct}% busy after waiting ${secs}s; measuring anyway"
            return 0
        fi
        log "  machine ${pct}% busy (others); waiting for <= ${max}%"
    done
}

# The driver process of a script that runs one (bench/leadership, bench/membership); empty while
# none runs.
DRIVER_PID=""

# run_driver CMD...: runs CMD in the background as DRIVER_PID, so that a cleanup on a signal can
# stop it, and waits for it; returns its exit status.
run_driver() {
    local rc=0
    "$@" &
    DRIVER_PID=$!
    wait "$DRIVER_PID" || rc=$?
    DRIVER_PID=""
    return "$rc"
}

# stop_driver TENTHS: TERMs the running driver, gives it TENTHS tenths of a second to stop what it
# started, then KILLs it.
stop_driver() {
    if [[ -n "$DRIVER_PID" ]] && kill -0 "$DRIVER_PID" 2>/dev/null; then
        kill -TERM "$DRIVER_PID" 2>/dev/null || true
        for _ in $(seq 1 "$1"); do kill -0 "$DRIVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$DRIVER_PID" 2>/dev/null || true
    fi
}

# kill_recorded PIDFILE PROC_FILE PATTERN: KILLs each PID listed in PIDFILE (one a line) whose
# /proc/PID/PROC_FILE (comm or cmdline) still matches PATTERN, so that a PID reused by another
# process is left alone. A stopped process is continued first.
kill_recorded() {
    local pid
    while read -r pid; do
        [[ -n "$pid" ]] || continue
        if kill -0 "$pid" 2>/dev/null && grep -qaE "$3" "/proc/$pid/$2" 2>/dev/null; then
            kill -CONT "$pid" 2>/dev/null || true
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done <"$1"
}
