#!/usr/bin/env bash
# Discovery of a dead instance: vigil against ZooKeeper, same run, both on 127.0.0.1 (driver.py).
# vigil: 10 agents, an instance checked over TCP every 1 s, its process killed -9 → gone from
# `GET /v1/services/api?healthy` at the last agent. ZooKeeper: a 3-server ensemble, an ephemeral
# node held by a kazoo client at the smallest session timeout the servers allow (2 × tickTime,
# Debian's tickTime 2000 ms), the holder killed -9 → the node gone for a watcher.
# Prints p50/p99 of both and writes the raw JSON and the table to bench/discovery/results/<stamp>/.
# Exits 1 if a target is missed: vigil p99 ≤ interval + 500 ms, and vigil p50 ≤ 0.5 × ZooKeeper's.
#
# Usage: bench/discovery/run.sh
# Needs: python3 with kazoo (pip install kazoo), java and the Debian `zookeeper` jars
#        (apt-get install -y zookeeperd), target/release/vigil (cargo build --release -p vigil).
# Env: TRIALS (20), INTERVAL_MS (1000), ZK_TICK_MS (2000), KEEP_TMP=1.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../lib.sh
source "$HERE/../lib.sh"
TRIALS="${TRIALS:-20}"
INTERVAL_MS="${INTERVAL_MS:-1000}"
ZK_TICK_MS="${ZK_TICK_MS:-2000}"

command -v java >/dev/null 2>&1 || die "java not found (apt-get install -y zookeeperd)"
[[ -f /usr/share/java/zookeeper.jar ]] || die "ZooKeeper jars not found (apt-get install -y zookeeperd)"
python3 -c "import kazoo" 2>/dev/null || die "kazoo not found (pip install kazoo)"
[[ -x "$VIGIL_BIN" ]] || die "$VIGIL_BIN missing (cargo build --release -p vigil)"

WORK="$(mktemp -d /tmp/vigil-discovery.XXXXXX)"
PIDFILE="$WORK/pids"
: >"$PIDFILE"

cleanup() {
    stop_driver 50
    kill_recorded "$PIDFILE" cmdline 'vigil|java|python'
    [[ -n "${KEEP_TMP:-}" ]] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
OUT="$HERE/results/$STAMP"
mkdir -p "$OUT"
log "vigil $("$VIGIL_BIN" --version), ZooKeeper $(basename "$(readlink -f /usr/share/java/zookeeper.jar)" .jar); $TRIALS trials each; work dir $WORK"

run_driver python3 "$HERE/driver.py" --vigil "$VIGIL_BIN" --work "$WORK" --pidfile "$PIDFILE" \
    --trials "$TRIALS" --interval-ms "$INTERVAL_MS" --zk-tick-ms "$ZK_TICK_MS" \
    --out "$OUT/results.json" >"$OUT/rows.md"

{
    echo "| measurement | trials | p50 ms | p99 ms | min ms | max ms |"
    echo "| --- | --- | --- | --- | --- | --- |"
    cat "$OUT/rows.md"
} | tee "$OUT/report.md"
rm -f "$OUT/rows.md"

python3 - "$OUT/results.json" "$INTERVAL_MS" <<'PY'
import json, sys
vigil, zk = json.load(open(sys.argv[1]))
interval = int(sys.argv[2])
missed = []
if vigil["p99_ms"] > interval + 500: missed.append(f"vigil p99 {vigil['p99_ms']:.0f} ms > {interval + 500} ms")
if vigil["p50_ms"] > 0.5 * zk["p50_ms"]: missed.append(f"vigil p50 {vigil['p50_ms']:.0f} ms > 0.5 × ZooKeeper {zk['p50_ms']:.0f} ms")
print(f"vigil/ZooKeeper p50: {vigil['p50_ms'] / zk['p50_ms']:.2f}×", file=sys.stderr)
for m in missed: print("target missed:", m, file=sys.stderr)
sys.exit(1 if missed else 0)
PY
