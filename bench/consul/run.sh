#!/usr/bin/env bash
# Many clients blocked on one agent, waiting for a change: CLIENTS Consul blocking queries
# (`GET /v1/health/service/api?index=N&wait=60s`, one connection each) held open on a one-voter
# vigil agent, beside etcd in the same run with as many watches over its HTTP gateway
# (`POST /v3/watch`, one stream each), the way a client without gRPC waits on etcd. Each round
# opens the clients, reads the server's RSS while it holds them all, makes one change (vigil:
# registers an instance; etcd: puts the watched key) and times every client's answer from the
# moment the change was acknowledged (blocking.py).
# Targets (vigil): RSS growth while holding the clients < 20 MB; every client answered, with the
# change, within 100 ms of the acknowledgement, in every round. Exits 1 if one is missed.
#
# Usage: bench/consul/run.sh   (needs target/release/vigil: cargo build --release -p vigil)
# Needs: python3, etcd (apt-get install -y etcd-server) unless SYSTEMS=vigil.
# Env:   CLIENTS (1000), ROUNDS (3), SYSTEMS ("vigil etcd"), KEEP_TMP=1.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../lib.sh
source "$HERE/../lib.sh"
CLIENTS="${CLIENTS:-1000}"
ROUNDS="${ROUNDS:-3}"
SYSTEMS="${SYSTEMS:-vigil etcd}"
TOKEN="bench-token"

need python3 curl jq ss
[[ -x "$VIGIL_BIN" ]] || die "$VIGIL_BIN missing: cargo build --release -p vigil"
[[ " $SYSTEMS " != *" etcd "* ]] || need etcd
# Each client is a socket on both sides.
ulimit -n "$(( CLIENTS * 2 + 1024 ))" 2>/dev/null || die "cannot raise the descriptor limit to $(( CLIENTS * 2 + 1024 ))"
bench_init
STAMP="$(date -u +%Y%m%dT%H%MZ)"
OUT="$HERE/results/$STAMP"
mkdir -p "$OUT"

start_vigil() {
    local api gossip
    api="$(free_port)"; gossip="$(free_port)"
    while [[ "$gossip" == "$api" ]]; do gossip="$(free_port)"; done
    mkdir -p "$BENCH_TMP/vigil"
    cat >"$BENCH_TMP/vigil/vigil.toml" <<EOF
[node]
id = "bench"
[api]
bind = "127.0.0.1:$api"
token = "$TOKEN"
max_connections = $(( CLIENTS + 256 ))
[shutdown]
drain = "0s"
timeout = "2s"
[cluster]
bind = "127.0.0.1:$gossip"
role = "voter"
voters = ["bench"]
data_dir = "$BENCH_TMP/vigil/raft"
EOF
    RUST_LOG="${RUST_LOG:-warn}" "$VIGIL_BIN" agent -c "$BENCH_TMP/vigil/vigil.toml" >"$BENCH_TMP/vigil/agent.log" 2>&1 &
    SERVER_PID=$!
    BENCH_PIDS+=("$SERVER_PID")
    PORT="$api"
    wait_http "http://127.0.0.1:$api/health/live" 20
    local body='{"name": "api", "id": "api-0", "address": "127.0.0.1", "port": 9, "checks": []}'
    timeout 30 bash -c "until curl -sf -o /dev/null -X POST --max-time 2 -H 'Authorization: Bearer $TOKEN' \
        -H 'Content-Type: application/json' -d '$body' http://127.0.0.1:$api/v1/services; do sleep 0.2; done" \
        || die "vigil did not take the first instance"
}

start_etcd() {
    local client peer
    client="$(free_port)"; peer="$(free_port)"
    while [[ "$peer" == "$client" ]]; do peer="$(free_port)"; done
    etcd --name bench --data-dir "$BENCH_TMP/etcd" \
        --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
        --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
        --initial-cluster "bench=http://127.0.0.1:$peer" >"$BENCH_TMP/etcd.log" 2>&1 &
    SERVER_PID=$!
    BENCH_PIDS+=("$SERVER_PID")
    PORT="$client"
    wait_http "http://127.0.0.1:$client/health" 20
}

stop_server() {
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
}

for system in $SYSTEMS; do
    case "$system" in
        vigil) start_vigil; version="vigil $(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo '?')" ;;
        etcd) start_etcd; version="$(etcd --version | head -n 1)" ;;
        *) die "unknown system $system (vigil, etcd)" ;;
    esac
    log "$version: $CLIENTS clients, $ROUNDS rounds"
    for round in $(seq 1 "$ROUNDS"); do
        if [[ $system == vigil && $round -gt 1 ]]; then
            # Each round waits for a change to the same service; the previous round's instance
            # goes first, so every round registers it anew.
            curl -sf -o /dev/null -X DELETE -H "Authorization: Bearer $TOKEN" \
                "http://127.0.0.1:$PORT/v1/services/api/api-new" || die "could not deregister api-new"
        fi
        python3 "$HERE/blocking.py" "$system" 127.0.0.1 "$PORT" "$SERVER_PID" --clients "$CLIENTS" \
            --token "$TOKEN" | jq -c --arg v "$version" --argjson r "$round" '. + {version: $v, round: $r}' \
            >>"$OUT/results.jsonl"
        tail -n 1 "$OUT/results.jsonl" >&2
    done
    stop_server
done

status=0
{
echo "## consul blocking queries: $STAMP, $(machine_line)"
echo "$CLIENTS clients, each on its own connection, waiting for one change; times from the change's"
echo "acknowledgement to each client's answer. Targets (vigil): RSS growth < 20 MB, max <= 100 ms, all answered."
echo
echo "| system | round | answered | wrong | write ms | after ack p50 / p99 / max ms | RSS before MB | RSS growth MB | verdict |"
echo "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |"
while read -r line; do
    verdict="$(jq -r --argjson n "$CLIENTS" 'if .system != "vigil" then "peer"
        elif .answered == $n and .wrong == 0 and .after_ack_ms.max <= 100 and .rss_growth_kb < 20480
        then "met" else "MISSED" end' <<<"$line")"
    [[ $verdict != MISSED ]] || status=1
    jq -r --arg v "$verdict" '"| \(.version) | \(.round) | \(.answered) | \(.wrong) | \(.write_ms) | \(.after_ack_ms.p50) / \(.after_ack_ms.p99) / \(.after_ack_ms.max) | \(.rss_before_kb / 1024 | . * 10 | round / 10) | \(.rss_growth_kb / 1024 | . * 10 | round / 10) | \($v) |"' <<<"$line"
done <"$OUT/results.jsonl"
} | tee "$OUT/report.md"
exit "$status"
