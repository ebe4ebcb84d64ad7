#!/usr/bin/env bash
# vigil's DNS interface under dnsperf, side by side in the same run with dnsmasq and Knot DNS
# (knotd) on the same machine. vigil: one agent (a single-voter cluster) with `api` registered as
# 10 passing instances (127.0.1.1-10, no checks), answering api.service.vigil from its catalog;
# dnsmasq: the same 10 A records from a hosts file; knotd: the same 10 A records from a zone file.
# Every server answers with TTL 0 and shuffles (dnsmasq, vigil) or not (knot); the query file is
# the one line "api.service.vigil A" for all three.
# Method: per round and per server (order rotating each round), a warm-up, then a throughput run
# (dnsperf -c CLIENTS -q OUTSTANDING -l DURATION: queries/s at saturation and the average
# latency), then a latency run at a fixed offered load (dnsperf -Q LAT_QPS -l LAT_DURATION -v:
# p50 and p99 from every query's latency). Lost queries and non-NOERROR codes are reported.
# Target: vigil's queries/s >= TARGET x dnsmasq's in every round; vigil / knot reported beside it.
#
# Usage: bench/dns-vs-dnsmasq.sh          (needs target/release/vigil: cargo build --release -p vigil)
# Env:   ROUNDS=3 DURATION=10 WARMUP=2 CLIENTS=8 OUTSTANDING=100 LAT_QPS=5000 LAT_DURATION=5
#        INSTANCES=10 TARGET=1.0 VIGIL_BIN=... KEEP_TMP=1
# Report: stdout, and bench/results/<UTC date>-dns-vs-dnsmasq.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-10}"        # seconds of each throughput run
WARMUP="${WARMUP:-2}"             # seconds
CLIENTS="${CLIENTS:-8}"
OUTSTANDING="${OUTSTANDING:-100}"
LAT_QPS="${LAT_QPS:-5000}"        # offered load of the latency runs
LAT_DURATION="${LAT_DURATION:-5}" # seconds
INSTANCES="${INSTANCES:-10}"
TARGET="${TARGET:-1.0}"
NAME="api.service.vigil"

need dnsperf dnsmasq knotd dig curl jq ss timeout
[[ -x "$VIGIL_BIN" ]] || die "$VIGIL_BIN missing: cargo build --release -p vigil"
bench_init
REPORT="$BENCH_DIR/results/$(date -u +%Y%m%dT%H%MZ)-dns-vs-dnsmasq.md"

ports=()
while (( ${#ports[@]} < 5 )); do
    p="$(free_port)"
    [[ " ${ports[*]} " == *" $p "* ]] || ports+=("$p")
done
API="${ports[0]}" GOSSIP="${ports[1]}" VPORT="${ports[2]}" DPORT="${ports[3]}" KPORT="${ports[4]}"
declare -A PORT=([vigil]="$VPORT" [dnsmasq]="$DPORT" [knot]="$KPORT")
declare -A PID=()

addresses() { for i in $(seq 1 "$INSTANCES"); do echo "127.0.1.$i"; done; }

# --- vigil: a single voter with DNS on, and the instances registered with no checks (passing).
mkdir -p "$BENCH_TMP/vigil"
cat >"$BENCH_TMP/vigil/vigil.toml" <<EOF
[node]
id = "bench"
[api]
bind = "127.0.0.1:$API"
[shutdown]
drain = "0s"
timeout = "2s"
[cluster]
bind = "127.0.0.1:$GOSSIP"
role = "voter"
voters = ["bench"]
data_dir = "$BENCH_TMP/vigil/raft"
[dns]
bind = "127.0.0.1:$VPORT"
EOF
log "starting vigil agent (API $API, DNS $VPORT)"
RUST_LOG="${RUST_LOG:-warn}" "$VIGIL_BIN" agent -c "$BENCH_TMP/vigil/vigil.toml" >"$BENCH_TMP/vigil/agent.log" 2>&1 &
PID[vigil]=$!
BENCH_PIDS+=("${PID[vigil]}")
wait_http "http://127.0.0.1:$API/health/live" 20
i=0
for addr in $(addresses); do
    i=$((i + 1))
    body="{\"name\": \"api\", \"id\": \"api-$i\", \"address\": \"$addr\", \"port\": 8080, \"checks\": []}"
    timeout 30 bash -c "until curl -sf -o /dev/null -X POST --max-time 2 -d '$body' http://127.0.0.1:$API/v1/services; do sleep 0.2; done" \
        || die "vigil did not take instance api-$i"
done

# --- dnsmasq: the same records from a hosts file, nothing forwarded.
mkdir -p "$BENCH_TMP/dnsmasq"
for addr in $(addresses); do echo "$addr $NAME"; done >"$BENCH_TMP/dnsmasq/hosts"
log "starting dnsmasq (port $DPORT)"
dnsmasq --no-daemon --conf-file=/dev/null --port="$DPORT" --listen-address=127.0.0.1 --bind-interfaces \
    --no-resolv --no-hosts --addn-hosts="$BENCH_TMP/dnsmasq/hosts" --local-ttl=0 --pid-file= --user=root \
    >"$BENCH_TMP/dnsmasq/log" 2>&1 &
PID[dnsmasq]=$!
BENCH_PIDS+=("${PID[dnsmasq]}")

# --- knotd: the same records in a zone file.
K="$BENCH_TMP/knot"
mkdir -p "$K/db"
{
    echo "\$ORIGIN vigil."
    echo "\$TTL 0"
    echo "@ SOA ns.vigil. hostmaster.vigil. 1 3600 600 86400 0"
    echo "@ NS ns.vigil."
    echo "ns A 127.0.0.1"
    for addr in $(addresses); do echo "api.service A $addr"; done
} >"$K/vigil.zone"
cat >"$K/knot.conf" <<EOF
server:
    listen: 127.0.0.1@$KPORT
    rundir: "$K"
database:
    storage: "$K/db"
template:
  - id: default
    storage: "$K"
    file: "%s.zone"
zone:
  - domain: vigil
log:
  - target: stderr
    any: warning
EOF
log "starting knotd (port $KPORT)"
knotd -c "$K/knot.conf" -s "$K/knot.sock" >"$K/log" 2>&1 &
PID[knot]=$!
BENCH_PIDS+=("${PID[knot]}")

# --- every server answers the same 10 addresses.
want="$(addresses | sort)"
for server in vigil dnsmasq knot; do
    got=""
    for _ in $(seq 1 100); do
        got="$(dig @127.0.0.1 -p "${PORT[$server]}" "$NAME" A +short +time=1 +tries=1 2>/dev/null | sort || true)"
        [[ "$got" == "$want" ]] && break
        sleep 0.2
    done
    [[ "$got" == "$want" ]] || die "$server answers [$got] for $NAME, not the $INSTANCES addresses"
done
echo "$NAME A" >"$BENCH_TMP/queries"

# perf_parse FILE: "qps avg_ms lost noerror_pct" from dnsperf's statistics.
perf_parse() {
    awk '
        /Queries per second:/ { qps = $4 }
        /Average Latency \(s\):/ { avg = $4 * 1000 }
        /Queries lost:/ { lost = $3 }
        /Response codes:/ { for (i = 3; i <= NF; i++) if ($i == "NOERROR") { ok = $(i + 2); gsub(/[(%)]/, "", ok) } }
        END { printf "%.0f %.3f %d %s\n", qps, avg, lost, (ok == "" ? "0" : ok) }
    ' "$1"
}
# lat_parse FILE: "p50_ms p99_ms" from dnsperf -v's per-query lines ("> CODE name type seconds").
lat_parse() {
    awk '$1 == ">" { print $NF * 1000 }' "$1" | sort -g | awk '
        { v[NR] = $1 }
        END { if (NR == 0) { print "nan nan"; exit }
              i50 = int(NR * 0.50); if (i50 < 1) i50 = 1
              i99 = int(NR * 0.99); if (i99 < 1) i99 = 1
              printf "%.3f %.3f\n", v[i50], v[i99] }'
}

RESULTS="$BENCH_TMP/results"
: >"$RESULTS"
bench_one() { # server round
    local server="$1" round="$2" port out lat
    port="${PORT[$server]}"
    out="$BENCH_TMP/perf.$round.$server"
    lat="$BENCH_TMP/lat.$round.$server"
    timeout 60 dnsperf -s 127.0.0.1 -p "$port" -d "$BENCH_TMP/queries" -c "$CLIENTS" -q "$OUTSTANDING" -l "$WARMUP" >/dev/null 2>&1
    log "round $round: $server: dnsperf -c $CLIENTS -q $OUTSTANDING -l $DURATION"
    timeout $((DURATION + 60)) dnsperf -s 127.0.0.1 -p "$port" -d "$BENCH_TMP/queries" -c "$CLIENTS" -q "$OUTSTANDING" -l "$DURATION" >"$out" 2>&1 \
        || die "dnsperf against $server failed: $(tail -5 "$out")"
    log "round $round: $server: dnsperf -Q $LAT_QPS -l $LAT_DURATION -v (latency)"
    timeout $((LAT_DURATION + 60)) dnsperf -s 127.0.0.1 -p "$port" -d "$BENCH_TMP/queries" -c "$CLIENTS" -Q "$LAT_QPS" -l "$LAT_DURATION" -v >"$lat" 2>&1 \
        || die "dnsperf -v against $server failed"
    echo "$round $server $(perf_parse "$out") $(lat_parse "$lat")" >>"$RESULTS"
}
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
servers=(vigil dnsmasq knot)
for round in $(seq 1 "$ROUNDS"); do
    for k in 0 1 2; do bench_one "${servers[$(( (k + round - 1) % 3 ))]}" "$round"; done
done
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
vigil_rss_kb="$(awk '/^VmRSS:/ {print $2}' "/proc/${PID[vigil]}/status")"

median() { sort -g | awk -v f="$1\n" '{ v[NR] = $1 } END { if (NR % 2) m = v[(NR + 1) / 2]; else m = (v[NR / 2] + v[NR / 2 + 1]) / 2; printf f, m }'; }
col() { awk -v s="$1" -v c="$2" '$2 == s { print $c }' "$RESULTS"; }
ratio() { awk -v r="$1" -v a="$2" -v b="$3" '$1 == r { q[$2] = $3 } END { printf "%.2f", q[a] / q[b] }' "$RESULTS"; }

{
echo "## dns-vs-dnsmasq: $(date -u +%Y-%m-%dT%H:%MZ), $(machine_line)"
echo "$NAME A ($INSTANCES A records, TTL 0) from vigil $("$VIGIL_BIN" --version 2>/dev/null | head -1), $(dnsmasq --version | head -1 | cut -d' ' -f1-3), $(knotd --version);"
echo "throughput: dnsperf -c $CLIENTS -q $OUTSTANDING -l $DURATION (warm-up ${WARMUP}s); latency: dnsperf -c $CLIENTS -Q $LAT_QPS -l $LAT_DURATION -v;"
echo "$ROUNDS round(s), the order rotating; load average before $load_before, after $load_after; vigil RSS after: $((vigil_rss_kb / 1024)) MB."
echo
echo "| round | server | queries/s | avg ms | lost | NOERROR % | p50 ms at $LAT_QPS q/s | p99 ms at $LAT_QPS q/s |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
while read -r round server qps avg lost ok p50 p99; do
    echo "| $round | $server | $qps | $avg | $lost | $ok | $p50 | $p99 |"
done <"$RESULTS"
echo
echo "Medians over $ROUNDS round(s); target: vigil >= ${TARGET}x dnsmasq in queries/s in every round."
echo
echo "| server | queries/s | p99 ms | vigil / server (per round) |"
echo "| --- | ---: | ---: | --- |"
for server in "${servers[@]}"; do
    per=""
    [[ $server == vigil ]] || for round in $(seq 1 "$ROUNDS"); do per+="$(ratio "$round" vigil "$server") "; done
    echo "| $server | $(col "$server" 3 | median %.0f) | $(col "$server" 8 | median %.3f) | ${per:--} |"
done
} | tee "$REPORT"
lowest="$(for round in $(seq 1 "$ROUNDS"); do ratio "$round" vigil dnsmasq; echo; done | sort -g | head -n 1)"
verdict="$(awk -v l="$lowest" -v t="$TARGET" 'BEGIN { print (l >= t) ? "met" : "MISSED" }')"
echo | tee -a "$REPORT"
echo "vigil / dnsmasq lowest per round: $lowest (target $TARGET): $verdict" | tee -a "$REPORT"
log "report: $REPORT"
[[ $verdict == met ]]
