#!/usr/bin/env bash
# vigil's discovery endpoint, `GET /v1/services/api?healthy` with INSTANCES passing instances
# (or, with SURFACE=consul, the Consul-compatible `GET /v1/health/service/api?passing`), under wrk, side by side in the same run with nginx serving the same body as a static file on the
# same machine. Same method and settings as http-vs-nginx.sh: per round and per server (order
# alternating per round) a warm-up, then the measured wrk run, redone when other processes took
# more than OTHER_MAX% of the machine during it.
#
# vigil: one agent, a single voter, so the registry it answers from is its own Raft state
# machine's. The instances are registered over `POST /v1/services`, with no checks (CHECK=none:
# passing at once) or each with a TCP check every CHECK_INTERVAL against a `vigil fake-service`
# (CHECK=tcp); the run starts once all of them pass. nginx: the agent's body, fetched then, as a
# static file at the same path, with the setup http-vs-nginx.sh gives it (sendfile,
# open_file_cache, keep-alive, no access log). Both are asked the same URL, query included.
# Target: in every round, vigil's requests/s >= TARGET x nginx's and vigil's requests per server
# CPU-second >= TARGET x nginx's.
#
# Usage: bench/discovery-vs-nginx.sh   (needs target/release/vigil: cargo build --release -p vigil)
# Env:   THREADS=2 CONNS=64 DURATION=15s WARMUP=3s ROUNDS=3 INSTANCES=10 CHECK=none CHECK_INTERVAL=10s
#        SURFACE=vigil QUERY=healthy (consul: passing) OTHER_MAX=10 ATTEMPTS=3 QUIET_WAIT=120 NGINX_SENDFILE=on TARGET=1.0
#        VIGIL_BIN=... KEEP_TMP=1
# Report: stdout, and bench/results/<UTC date>-discovery-vs-nginx.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

THREADS="${THREADS:-2}"
CONNS="${CONNS:-64}"
DURATION="${DURATION:-15s}"
WARMUP="${WARMUP:-3s}"
ROUNDS="${ROUNDS:-3}"
INSTANCES="${INSTANCES:-10}"
CHECK="${CHECK:-none}"               # none | tcp
CHECK_INTERVAL="${CHECK_INTERVAL:-10s}"
SURFACE="${SURFACE:-vigil}"           # vigil | consul
case "$SURFACE" in
    vigil) PREFIX="/v1/services"; QUERY="${QUERY:-healthy}"; COUNT='.instances | length'; INDEX_HEADER="x-vigil-index:" ;;
    consul) PREFIX="/v1/health/service"; QUERY="${QUERY:-passing}"; COUNT='length'; INDEX_HEADER="x-consul-index:" ;;
    *) echo "SURFACE must be vigil or consul, not $SURFACE" >&2; exit 2 ;;
esac
OTHER_MAX="${OTHER_MAX:-10}"         # percent of the machine used by others above which a run is redone
ATTEMPTS="${ATTEMPTS:-3}"            # at most this many tries per measured run
QUIET_WAIT="${QUIET_WAIT:-120}"      # seconds to wait at most for the machine to be quiet before a run
NGINX_SENDFILE="${NGINX_SENDFILE:-on}"
TARGET="${TARGET:-1.0}"
SERVICE="api"
PATH_Q="$PREFIX/$SERVICE?$QUERY"
TOKEN="bench-token"

need wrk nginx curl jq ss timeout
[[ $CHECK == none || $CHECK == tcp ]] || die "CHECK must be none or tcp, not $CHECK"
[[ -x "$VIGIL_BIN" ]] || die "$VIGIL_BIN missing: cargo build --release -p vigil"
bench_init
REPORT="$BENCH_DIR/results/$(date -u +%Y%m%dT%H%MZ)-discovery-vs-nginx$([[ $SURFACE == consul ]] && echo -consul).md"

ports=()
while (( ${#ports[@]} < 4 )); do
    p="$(free_port)"
    [[ " ${ports[*]} " == *" $p "* ]] || ports+=("$p")
done
VPORT="${ports[0]}" GOSSIP="${ports[1]}" NPORT="${ports[2]}" SPORT="${ports[3]}"
VBASE="http://127.0.0.1:$VPORT"
NBASE="http://127.0.0.1:$NPORT"

# --- vigil: a single voter.
mkdir -p "$BENCH_TMP/vigil"
cat >"$BENCH_TMP/vigil/vigil.toml" <<EOF
[node]
id = "bench"
[api]
bind = "127.0.0.1:$VPORT"
token = "$TOKEN"
[shutdown]
drain = "0s"
timeout = "2s"
[cluster]
bind = "127.0.0.1:$GOSSIP"
role = "voter"
voters = ["bench"]
data_dir = "$BENCH_TMP/vigil/raft"
EOF
if [[ $CHECK == tcp ]]; then
    log "starting vigil fake-service on port $SPORT (the instances' TCP check target)"
    "$VIGIL_BIN" fake-service --port "$SPORT" >"$BENCH_TMP/fake-service.log" 2>&1 &
    BENCH_PIDS+=("$!")
    checks="[{\"name\": \"tcp\", \"probe\": \"tcp://127.0.0.1:$SPORT\", \"interval\": \"$CHECK_INTERVAL\"}]"
else
    checks="[]"
fi
log "starting vigil agent on $VBASE"
RUST_LOG="${RUST_LOG:-warn}" "$VIGIL_BIN" agent -c "$BENCH_TMP/vigil/vigil.toml" >"$BENCH_TMP/vigil/agent.log" 2>&1 &
VPID=$!
BENCH_PIDS+=("$VPID")
wait_http "$VBASE/health/live" 20

log "registering $INSTANCES instances of $SERVICE (checks: $CHECK)"
for i in $(seq 1 "$INSTANCES"); do
    body="{\"name\": \"$SERVICE\", \"id\": \"$SERVICE-$i\", \"address\": \"127.0.1.$i\", \"port\": $SPORT, \"tags\": [\"bench\"], \"checks\": $checks}"
    # Retried until the voter has elected itself and takes writes.
    timeout 30 bash -c "until curl -sf -o /dev/null -X POST --max-time 2 -H 'Authorization: Bearer $TOKEN' \
        -H 'Content-Type: application/json' -d '$body' $VBASE/v1/services; do sleep 0.2; done" \
        || die "vigil did not take instance $SERVICE-$i"
done

log "waiting until all $INSTANCES instances pass"
deadline=$(( $(date +%s) + 60 ))
while :; do
    passing="$(curl -s --max-time 5 "$VBASE/v1/services/$SERVICE?healthy" | jq '.instances | length' 2>/dev/null || echo 0)"
    [[ "$passing" == "$INSTANCES" ]] && break
    (( $(date +%s) < deadline )) || die "only $passing of $INSTANCES instances pass after 60s"
    sleep 0.5
done
# The body must hold still for nginx's copy of it to be the same bytes: the node's own health
# report may still be committed after the registrations, so wait for two equal reads a second
# apart.
deadline=$(( $(date +%s) + 30 ))
curl -s "$VBASE$PATH_Q" >"$BENCH_TMP/body.1"
while :; do
    sleep 1
    curl -s "$VBASE$PATH_Q" >"$BENCH_TMP/body.2"
    cmp -s "$BENCH_TMP/body.1" "$BENCH_TMP/body.2" && break
    (( $(date +%s) < deadline )) || die "vigil's body still changes after 30s (registry writes)"
    mv "$BENCH_TMP/body.2" "$BENCH_TMP/body.1"
done

# --- nginx serving the agent's body, fetched now, as a static file at the same path.
NROOT="$BENCH_TMP/nginx"
mkdir -p "$NROOT/www" "$NROOT/logs"
code="$(curl -s -o "$NROOT/www/body" -w '%{http_code}' "$VBASE$PATH_Q")"
[[ "$code" == 200 ]] || die "vigil $PATH_Q answered $code, expected 200: $(cat "$NROOT/www/body")"
[[ "$(jq "$COUNT" "$NROOT/www/body")" == "$INSTANCES" ]] || die "vigil's body does not hold the $INSTANCES instances"
type="$(curl -s -o /dev/null -w '%{content_type}' "$VBASE$PATH_Q")"
chmod 755 "$BENCH_TMP" "$NROOT" "$NROOT/www"
chmod 644 "$NROOT/www/body"
cat >"$NROOT/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes auto;
pid $NROOT/nginx.pid;
error_log $NROOT/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile $NGINX_SENDFILE;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65s;
    keepalive_requests 1000000;
    open_file_cache max=64 inactive=60s;
    open_file_cache_valid 60s;
    server_tokens off;
    etag off;
    types { }
    default_type application/json;
    client_body_temp_path $NROOT/tmp-body;
    proxy_temp_path $NROOT/tmp-proxy;
    fastcgi_temp_path $NROOT/tmp-fastcgi;
    uwsgi_temp_path $NROOT/tmp-uwsgi;
    scgi_temp_path $NROOT/tmp-scgi;
    server {
        listen 127.0.0.1:$NPORT;
        location = $PREFIX/$SERVICE { alias $NROOT/www/body; default_type "$type"; }
    }
}
EOF
log "starting nginx on $NBASE"
nginx -c "$NROOT/nginx.conf" -p "$NROOT" >"$NROOT/logs/stdout.log" 2>&1 &
NPID=$!
BENCH_PIDS+=("$NPID")
wait_http "$NBASE$PREFIX/$SERVICE" 10
code="$(curl -s -o "$BENCH_TMP/n.body" -w '%{http_code}' "$NBASE$PATH_Q")"
[[ "$code" == 200 ]] && cmp -s "$BENCH_TMP/n.body" "$NROOT/www/body" || die "nginx $PATH_Q does not serve the agent's body"

workers_nginx=$(( $(pgrep -P "$NPID" | wc -l) ))
threads_vigil="$(awk '/^Threads:/ {print $2}' "/proc/$VPID/status")"
log "nginx: $workers_nginx worker processes; vigil: $threads_vigil threads (tokio workers = $(nproc) by default)"
head_bytes() { curl -s -o /dev/null -D - "$1$PATH_Q" | wc -c; }
vhead="$(head_bytes "$VBASE")"; nhead="$(head_bytes "$NBASE")"

# --- wrk, as http-vs-nginx.sh runs it.
HZ="$(getconf CLK_TCK)"
server_ticks() { # server -> CPU ticks of its processes (nginx: master + workers)
    local pid sum=0
    if [[ $1 == vigil ]]; then
        cpu_ticks "$VPID"
    else
        for pid in "$NPID" $(pgrep -P "$NPID"); do
            sum=$(( sum + $(cpu_ticks "$pid") ))
        done
        echo "$sum"
    fi
}
RESULTS="$BENCH_TMP/results"
: >"$RESULTS"
bench_one() { # server round
    local server="$1" round="$2" base bytes line out s0 s1 c0 c1 t0 t1 st0 st1 wrk_ticks cpu other attempt
    base="$VBASE"; [[ $server == nginx ]] && base="$NBASE"
    bytes="$(curl -s "$base$PATH_Q" | wc -c)"
    log "round $round: $server $PATH_Q ($bytes body bytes): warm-up $WARMUP"
    timeout 60 wrk -t"$THREADS" -c"$CONNS" -d"$WARMUP" "$base$PATH_Q" >/dev/null
    out="$BENCH_TMP/wrk.$round.$server"
    local best="" best_other=0
    for attempt in $(seq 1 "$ATTEMPTS"); do
        wait_quiet "$OTHER_MAX" "$QUIET_WAIT"
        log "round $round: $server: wrk -t$THREADS -c$CONNS -d$DURATION --latency (attempt $attempt)"
        s0="$(server_ticks "$server")"; read -r c0 t0 st0 < <(cpu_stat)
        wrk_ticks="$(timed_wrk "$out" -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$base$PATH_Q")"
        s1="$(server_ticks "$server")"; read -r c1 t1 st1 < <(cpu_stat)
        sed 's/^/    /' "$out" >&2
        line="$(wrk_parse "$out")"
        # Percent of the whole machine: server, wrk, other (busy minus both) plus steal, steal;
        # then requests per CPU-second of the server.
        cpu="$(awk -v s=$((s1 - s0)) -v w="$wrk_ticks" -v b=$((c1 - c0)) -v t=$((t1 - t0)) -v st=$((st1 - st0)) \
            -v hz="$HZ" -v ncpu="$(nproc)" -v rps="${line%% *}" \
            'BEGIN { o = b - s - w; if (o < 0) o = 0
                     secs = t / hz / ncpu
                     printf "%.0f %.0f %.0f %.0f %.0f", 100*s/t, 100*w/t, 100*(o+st)/t, 100*st/t, rps * secs / (s / hz) }')"
        other="$(cut -d' ' -f3 <<<"$cpu")"
        if [[ -z "$best" ]] || (( other < best_other )); then
            best="$bytes $line $cpu $attempt"; best_other="$other"
        fi
        (( other <= OTHER_MAX )) && break
        log "  other processes took ${other}% of the machine during this run (> ${OTHER_MAX}%): disturbed, measuring again"
    done
    echo "$round $server $best" >>"$RESULTS"
}
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$ROUNDS"); do
    if (( round % 2 == 1 )); then order="vigil nginx"; else order="nginx vigil"; fi
    for server in $order; do bench_one "$server" "$round"; done
done
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
vigil_rss_kb="$(awk '/^VmRSS:/ {print $2}' "/proc/$VPID/status")"
index_after="$(curl -s -D - -o /dev/null "$VBASE$PATH_Q" | awk -v h="$INDEX_HEADER" 'tolower($1) == h {print $2}' | tr -d '\r')"

median() { # FORMAT < values
    sort -g | awk -v f="$1\n" '{ v[NR] = $1 } END { if (NR % 2) m = v[(NR + 1) / 2]; else m = (v[NR / 2] + v[NR / 2 + 1]) / 2; printf f, m }'
}
col() { awk -v s="$1" -v c="$2" '$2 == s { print $c }' "$RESULTS"; }
ratio() { # ROUND COLUMN -> vigil / nginx
    awk -v r="$1" -v c="$2" '$1 == r { v[$2] = $c } END { printf "%.2f", v["vigil"] / v["nginx"] }' "$RESULTS"
}

rounds="" effs=""
for round in $(seq 1 "$ROUNDS"); do rounds+="$(ratio "$round" 4) "; effs+="$(ratio "$round" 13) "; done
v="$(col vigil 4 | median %.0f)"; n="$(col nginx 4 | median %.0f)"
{
echo "## discovery-vs-nginx: $(date -u +%Y-%m-%dT%H:%MZ), $(machine_line)"
echo "GET $PATH_Q, $INSTANCES passing instances (checks: $CHECK$([[ $CHECK == tcp ]] && echo ", every $CHECK_INTERVAL")), vigil $(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo "?") (one voter),"
echo "beside $(nginx -v 2>&1 | sed 's/^nginx version: //') serving the same body as a static file ($workers_nginx workers, sendfile $NGINX_SENDFILE);"
echo "wrk -t$THREADS -c$CONNS -d$DURATION --latency (warm-up $WARMUP) x $ROUNDS round(s), the order alternating;"
echo "response head bytes: vigil $vhead, nginx $nhead; vigil's index header after the runs: ${index_after:-?};"
echo "load average before $load_before, after $load_after; vigil RSS after: $((vigil_rss_kb / 1024)) MB."
echo "CPU columns: percent of the whole machine ($(nproc) cores = 100%) during the measured run; \"other\" is"
echo "everything but the server and wrk plus steal; a run with other > ${OTHER_MAX}% is redone (up to $ATTEMPTS tries;"
echo "the least disturbed one is kept, \"try\" says which). req/CPU-s: requests served per CPU-second the server used."
echo
echo "| round | server | body bytes | req/s | p50 ms | p99 ms | non-2xx | socket errors | CPU server | CPU wrk | CPU other | steal | req/CPU-s | try |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
while read -r round server bytes rps p50 p99 non2xx errs cs cw co cst eff tries; do
    echo "| $round | $server | $bytes | $rps | $p50 | $p99 | $non2xx | $errs | $cs% | $cw% | $co% | $cst% | $eff | $tries |"
done <"$RESULTS"
echo
echo "Medians over $ROUNDS round(s); target: vigil >= ${TARGET}x nginx in every round, in req/s and in req/CPU-s."
echo
echo "| vigil req/s | nginx req/s | vigil / nginx | vigil p50 / p99 ms | nginx p50 / p99 ms | per-round req/s ratio | vigil / nginx req/CPU-s | per-round req/CPU-s ratio |"
echo "| ---: | ---: | ---: | --- | --- | --- | --- | --- |"
echo "| $v | $n | $(awk -v v="$v" -v n="$n" 'BEGIN {printf "%.2f", v / n}') | $(col vigil 5 | median %.3f) / $(col vigil 6 | median %.3f) | $(col nginx 5 | median %.3f) / $(col nginx 6 | median %.3f) | ${rounds% } | $(col vigil 13 | median %.0f) / $(col nginx 13 | median %.0f) | ${effs% } |"
} | tee "$REPORT"
lowest="$(printf '%s\n' $rounds $effs | sort -g | head -n 1)"
verdict="$(awk -v l="$lowest" -v t="$TARGET" 'BEGIN { print (l >= t) ? "met" : "MISSED" }')"
echo | tee -a "$REPORT"
echo "vigil / nginx lowest per round (req/s and req/CPU-s): $lowest (target $TARGET): $verdict" | tee -a "$REPORT"
log "report: $REPORT"
[[ $verdict == met ]]
