#!/usr/bin/env bash
# What TLS costs on the probe endpoint: /health/ready over TLS (the API, rustls) and over plain HTTP
# (the same agent's probe listener), and nginx serving the same body over TLS (OpenSSL, its static
# file setup with sendfile), in the same run, the order alternating per round. wrk keeps its
# connections, so this measures records, not handshakes, as a load balancer's polling does.
# Target: vigil over TLS >= TARGET x nginx over TLS, in req/s and in requests per server CPU-second,
# in every round.
#
# Usage: bench/tls/run.sh   (needs target/release/vigil: cargo build --release -p vigil)
# Needs: wrk, nginx, openssl, curl.
# Env:   THREADS=2 CONNS=64 DURATION=10s WARMUP=2s ROUNDS=3 TARGET=1.0 VIGIL_BIN=... KEEP_TMP=1
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

THREADS="${THREADS:-2}"
CONNS="${CONNS:-64}"
DURATION="${DURATION:-10s}"
WARMUP="${WARMUP:-2s}"
ROUNDS="${ROUNDS:-3}"
TARGET="${TARGET:-1.0}"
PATH_="/health/ready"

need wrk nginx openssl curl jq
[[ -x "$VIGIL_BIN" ]] || die "$VIGIL_BIN missing: cargo build --release -p vigil"
bench_init
OUT="$BENCH_DIR/tls/results/$(date -u +%Y%m%dT%H%MZ)"
mkdir -p "$OUT"

# --- one CA, one server certificate for 127.0.0.1 (P-256), for both servers.
CERTS="$BENCH_TMP/certs"
mkdir -p "$CERTS"
ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
openssl req -x509 -days 1 -subj "/CN=bench CA" "${ec[@]}" -keyout "$CERTS/ca.key" -out "$CERTS/ca.crt" 2>/dev/null
openssl req -subj "/CN=127.0.0.1" "${ec[@]}" -keyout "$CERTS/server.key" -out "$CERTS/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$CERTS/server.ext"
openssl x509 -req -in "$CERTS/server.csr" -CA "$CERTS/ca.crt" -CAkey "$CERTS/ca.key" -CAcreateserial \
    -days 1 -extfile "$CERTS/server.ext" -out "$CERTS/server.crt" 2>/dev/null
chmod 755 "$BENCH_TMP" "$CERTS"
chmod 644 "$CERTS"/*

VPORT="$(free_port)"; PPORT="$(free_port)"; NPORT="$(free_port)"
VBASE="https://127.0.0.1:$VPORT"; PBASE="http://127.0.0.1:$PPORT"; NBASE="https://127.0.0.1:$NPORT"
CONF="$BENCH_TMP/vigil.toml"
cat >"$CONF" <<EOF
[node]
id = "bench"
[api]
bind = "127.0.0.1:$VPORT"
tls_cert = "$CERTS/server.crt"
tls_key = "$CERTS/server.key"
probe_bind = "127.0.0.1:$PPORT"
[shutdown]
drain = "0s"
timeout = "2s"
[[checks]]
name = "memory"
probe = "memory"
max_used = 0.99
interval = "2s"
EOF
log "starting vigil: TLS on $VBASE, plain probes on $PBASE"
RUST_LOG="${RUST_LOG:-warn}" "$VIGIL_BIN" agent -c "$CONF" >"$BENCH_TMP/vigil.log" 2>&1 &
VPID=$!
BENCH_PIDS+=("$VPID")
wait_http "$PBASE/health/live" 20
for _ in $(seq 1 50); do
    [[ "$(curl -s -o /dev/null -w '%{http_code}' "$PBASE$PATH_")" == 200 ]] && break
    sleep 0.2
done

NROOT="$BENCH_TMP/nginx"
mkdir -p "$NROOT/www" "$NROOT/logs"
curl -s --cacert "$CERTS/ca.crt" -o "$NROOT/www/ready" "$VBASE$PATH_"
chmod 755 "$NROOT" "$NROOT/www"; chmod 644 "$NROOT/www/ready"
cat >"$NROOT/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes auto;
pid $NROOT/nginx.pid;
error_log $NROOT/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65s;
    keepalive_requests 1000000;
    open_file_cache max=64 inactive=60s;
    server_tokens off;
    etag off;
    types { }
    default_type application/json;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:1m;
    client_body_temp_path $NROOT/tmp-body;
    proxy_temp_path $NROOT/tmp-proxy;
    fastcgi_temp_path $NROOT/tmp-fastcgi;
    uwsgi_temp_path $NROOT/tmp-uwsgi;
    scgi_temp_path $NROOT/tmp-scgi;
    server {
        listen 127.0.0.1:$NPORT ssl;
        ssl_certificate $CERTS/server.crt;
        ssl_certificate_key $CERTS/server.key;
        location = $PATH_ { alias $NROOT/www/ready; }
    }
}
EOF
log "starting nginx on $NBASE"
nginx -c "$NROOT/nginx.conf" -p "$NROOT" >"$NROOT/logs/stdout.log" 2>&1 &
NPID=$!
BENCH_PIDS+=("$NPID")
for _ in $(seq 1 50); do
    curl -s -o /dev/null --cacert "$CERTS/ca.crt" "$NBASE$PATH_" && break
    sleep 0.1
done
cmp -s <(curl -s --cacert "$CERTS/ca.crt" "$NBASE$PATH_") "$NROOT/www/ready" || die "nginx does not serve the agent's body"
# Both TLS servers negotiate the same protocol and cipher with wrk's OpenSSL.
for base in "$VBASE" "$NBASE"; do
    curl -s -o /dev/null --cacert "$CERTS/ca.crt" -w "$base: %{ssl_verify_result} " "$base$PATH_"
    openssl s_client -connect "${base#https://}" -CAfile "$CERTS/ca.crt" </dev/null 2>/dev/null \
        | awk '/^New, / {print $2, $NF}'
done | tee "$OUT/negotiated.txt" >&2

server_ticks() { # name -> CPU ticks of its processes
    local pid sum=0
    if [[ $1 == nginx ]]; then
        for pid in "$NPID" $(pgrep -P "$NPID"); do sum=$(( sum + $(cpu_ticks "$pid") )); done
        echo "$sum"
    else
        cpu_ticks "$VPID"
    fi
}
HZ="$(getconf CLK_TCK)"
: >"$OUT/runs.txt"
run_one() { # name base round
    local name="$1" base="$2" round="$3" s0 s1 line rps secs
    timeout 60 wrk -t"$THREADS" -c"$CONNS" -d"$WARMUP" "$base$PATH_" >/dev/null
    s0="$(server_ticks "$name")"
    timed_wrk "$BENCH_TMP/wrk.$name.$round" -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$base$PATH_" >/dev/null
    s1="$(server_ticks "$name")"
    line="$(wrk_parse "$BENCH_TMP/wrk.$name.$round")"
    rps="${line%% *}"
    secs="$(awk -v t=$(( s1 - s0 )) -v hz="$HZ" 'BEGIN { printf "%.3f", t / hz }')"
    echo "$round $name $line $secs" >>"$OUT/runs.txt"
    log "round $round $name: $rps req/s, server CPU ${secs}s"
}
for round in $(seq 1 "$ROUNDS"); do
    if (( round % 2 )); then order=(vigil-tls nginx-tls vigil-plain); else order=(nginx-tls vigil-plain vigil-tls); fi
    for name in "${order[@]}"; do
        case "$name" in
            vigil-tls) run_one vigil-tls "$VBASE" "$round" ;;
            vigil-plain) run_one vigil-plain "$PBASE" "$round" ;;
            nginx-tls) run_one nginx "$NBASE" "$round" ;;
        esac
    done
done

# round name rps p50 p99 non2xx errors server_secs
python3 - "$OUT/runs.txt" "$DURATION" "$TARGET" <<'EOF' | tee "$OUT/summary.txt"
import sys
runs, duration, target = sys.argv[1], float(sys.argv[2].rstrip("s")), float(sys.argv[3])
rows = {}
for line in open(runs):
    rnd, name, rps, p50, p99, non2xx, errors, secs = line.split()
    rows.setdefault(int(rnd), {})[name] = (float(rps), float(p99), float(secs), int(non2xx) + int(errors))
met = True
print("round  vigil-TLS req/s  vigil-plain req/s  nginx-TLS req/s  TLS/plain  vs nginx-TLS  per CPU-s vs nginx-TLS")
for rnd in sorted(rows):
    r = rows[rnd]
    v, p, n = r["vigil-tls"], r["vigil-plain"], r["nginx"]
    per_cpu = lambda x: x[0] * duration / x[2] if x[2] else float("inf")
    ratio, cpu_ratio = v[0] / n[0], per_cpu(v) / per_cpu(n)
    met &= ratio >= target and cpu_ratio >= target and v[3] == 0
    print(f"{rnd:>5}  {v[0]:>15.0f}  {p[0]:>17.0f}  {n[0]:>15.0f}  {v[0] / p[0]:>9.2f}  {ratio:>12.2f}  {cpu_ratio:>22.2f}")
print("target met" if met else f"target missed: vigil over TLS < {target} x nginx over TLS in some round")
sys.exit(0 if met else 1)
EOF
