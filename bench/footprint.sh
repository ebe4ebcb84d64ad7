#!/usr/bin/env bash
# Footprint: the release binary's size (stripped, as shipped) and the idle memory of a member
# agent with 5 checks, for each binary given, side by side.
#
# The agent is a gossip member (not a voter) with a memory, a disk, a tcp and two http checks,
# every 1 s; it runs RUN_SECS (20) after every check reported, then VmRSS, RssAnon (heap,
# stacks) and RssFile (the binary and libraries mapped in) are read from /proc/PID/status.
# Targets: a binary ≤ 12 MiB, VmRSS ≤ 10 MiB. Exit status 1 when the last binary misses one.
#
# Usage: bench/footprint.sh [BINARY...]     (default: target/release/vigil)
#        e.g. bench/footprint.sh /tmp/vigil-before target/release/vigil
# Env:   RUN_SECS=20 KEEP_TMP=1
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUN_SECS="${RUN_SECS:-20}"
TARGET_BINARY_MB=12
TARGET_RSS_MB=10

need curl jq ss timeout strip size
(( $# > 0 )) || set -- "$VIGIL_BIN"
for bin in "$@"; do
    [[ -x "$bin" ]] || die "$bin missing: cargo build --release -p vigil"
done
bench_init

mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

# One member agent of `$1`: prints "size text_bytes rss_kb anon_kb file_kb".
measure() {
    local bin="$1" api gossip conf stripped pid
    stripped="$BENCH_TMP/stripped"
    strip -o "$stripped" "$bin"
    api="$(free_port)"
    gossip="$(free_port)"
    conf="$BENCH_TMP/member.toml"
    cat >"$conf" <<EOF
[node]
id = "footprint"

[api]
bind = "127.0.0.1:$api"

[cluster]
bind = "127.0.0.1:$gossip"
role = "member"

[shutdown]
drain = "0s"
timeout = "2s"

[[checks]]
name = "memory"
probe = "memory"
max_used = 0.99
interval = "1s"

[[checks]]
name = "disk"
probe = "disk:/"
max_used = 0.99
interval = "1s"

[[checks]]
name = "tcp"
probe = "tcp://127.0.0.1:$api"
interval = "1s"

[[checks]]
name = "live"
probe = "http://127.0.0.1:$api/health/live"
interval = "1s"

[[checks]]
name = "livez"
probe = "http://127.0.0.1:$api/livez"
interval = "1s"
EOF
    RUST_LOG="${RUST_LOG:-warn}" "$bin" agent -c "$conf" >"$BENCH_TMP/agent.log" 2>&1 &
    pid=$!
    BENCH_PIDS+=("$pid")
    wait_http "http://127.0.0.1:$api/health/live" 20
    wait_all_reported "http://127.0.0.1:$api" 30
    sleep "$RUN_SECS"
    kill -0 "$pid" 2>/dev/null || die "agent exited: $(tail -5 "$BENCH_TMP/agent.log")"
    field() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$pid/status"; }
    echo "$(stat -c %s "$stripped") $(size -A "$stripped" | awk '$1 == ".text" {print $2}') \
$(field VmRSS) $(field RssAnon) $(field RssFile)"
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

echo "## footprint: $(date -u +%Y-%m-%dT%H:%MZ), $(uname -r), $(machine_line)"
echo "a member agent with 5 checks every 1 s, read ${RUN_SECS}s after every check reported"
echo
echo "| binary | stripped size | .text | VmRSS | RssAnon | RssFile |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
last=""
for bin in "$@"; do
    log "measuring $bin"
    measure "$bin" >"$BENCH_TMP/row"
    read -r bytes text rss anon file <"$BENCH_TMP/row"
    echo "| \`$bin\` | $(mb "$bytes") MiB | $(mb "$text") MiB | $(mb $((rss * 1024))) MiB | $(mb $((anon * 1024))) MiB | $(mb $((file * 1024))) MiB |"
    last="$bytes $rss"
done
read -r bytes rss <<<"$last"
echo
echo "targets: binary ≤ ${TARGET_BINARY_MB} MiB ($(mb "$bytes") MiB), VmRSS ≤ ${TARGET_RSS_MB} MiB ($(mb $((rss * 1024))) MiB)"
awk -v b="$bytes" -v r="$rss" -v tb="$TARGET_BINARY_MB" -v tr="$TARGET_RSS_MB" \
    'BEGIN { exit (b / 1048576 <= tb && r / 1024 <= tr) ? 0 : 1 }'
