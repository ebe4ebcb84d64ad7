#!/usr/bin/env bash
# Leadership failover: vigil's Raft voters against etcd, 3 members each on 127.0.0.1, same run,
# same client (driver.py). Prints a table of p50/p99 failover times (kill -9, and SIGSTOP, of the
# leader → first acknowledged write) for both, and vigil's health-triggered handover time; writes
# the raw JSON and the table to bench/leadership/results/<UTC stamp>/. Exits 1 if a target is
# missed: vigil kill -9 failover p50 ≤ 150 ms, p99 ≤ 300 ms and p50 ≤ etcd's; SIGSTOP failover
# p50 ≤ 0.5 × etcd's; health handover p50 < 1 s.
#
# Usage: bench/leadership/run.sh
# Needs: python3, etcd (Debian `etcd-server`), target/release/vigil (cargo build --release -p vigil).
# Env: TRIALS (20), VIGIL_BIN, ETCD_BIN, ETCD_ELECTION_MS (1000, etcd's default),
#      ETCD_HEARTBEAT_MS (100, etcd's default), WRITE_TIMEOUT_MS (200: each timed write attempt's
#      bound, the resolution for etcd, whose writes hang while it has no leader), KEEP_TMP=1.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../lib.sh
source "$HERE/../lib.sh"
ETCD_BIN="${ETCD_BIN:-$(command -v etcd || true)}"
TRIALS="${TRIALS:-20}"
ETCD_ELECTION_MS="${ETCD_ELECTION_MS:-1000}"
ETCD_HEARTBEAT_MS="${ETCD_HEARTBEAT_MS:-100}"
WRITE_TIMEOUT_MS="${WRITE_TIMEOUT_MS:-200}"

command -v python3 >/dev/null 2>&1 || die "python3 not found"
[[ -n "$ETCD_BIN" && -x "$ETCD_BIN" ]] || die "etcd not found (apt-get install -y etcd-server etcd-client)"
[[ -x "$VIGIL_BIN" ]] || die "$VIGIL_BIN missing (cargo build --release -p vigil)"

WORK="$(mktemp -d /tmp/vigil-leadership.XXXXXX)"
PIDFILE="$WORK/pids"
: >"$PIDFILE"

# Kills, by PID, what this script started: the driver, then every process it recorded (only if
# that PID is still a vigil or etcd process).
cleanup() {
    stop_driver 50
    kill_recorded "$PIDFILE" comm 'vigil|etcd'
    [[ -n "${KEEP_TMP:-}" ]] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
OUT="$HERE/results/$STAMP"
mkdir -p "$OUT"
log "vigil $("$VIGIL_BIN" --version), $("$ETCD_BIN" --version | head -1); $TRIALS trials each; work dir $WORK"

run_driver python3 "$HERE/driver.py" --vigil "$VIGIL_BIN" --etcd "$ETCD_BIN" --work "$WORK" \
    --pidfile "$PIDFILE" --trials "$TRIALS" --etcd-election-ms "$ETCD_ELECTION_MS" \
    --etcd-heartbeat-ms "$ETCD_HEARTBEAT_MS" --write-timeout-ms "$WRITE_TIMEOUT_MS" \
    --out "$OUT/results.json" >"$OUT/rows.md"

{
    echo "| measurement | trials | p50 ms | p99 ms | min ms | max ms |"
    echo "| --- | --- | --- | --- | --- | --- |"
    cat "$OUT/rows.md"
} | tee "$OUT/report.md"
rm -f "$OUT/rows.md"

python3 - "$OUT/results.json" <<'PY'
import json, sys
r = {row["key"]: row for row in json.load(open(sys.argv[1]))}
kill, pause, handover = r["vigil_kill"], r["vigil_pause"], r["vigil_handover"]
etcd_kill, etcd_pause = r["etcd_kill"], r["etcd_pause"]
missed = []
if kill["p50_ms"] > 150: missed.append(f"vigil kill -9 failover p50 {kill['p50_ms']:.0f} ms > 150 ms")
if kill["p99_ms"] > 300: missed.append(f"vigil kill -9 failover p99 {kill['p99_ms']:.0f} ms > 300 ms")
if kill["p50_ms"] > etcd_kill["p50_ms"]: missed.append(f"vigil kill -9 failover p50 {kill['p50_ms']:.0f} ms > etcd {etcd_kill['p50_ms']:.0f} ms")
if pause["p50_ms"] > 0.5 * etcd_pause["p50_ms"]:
    missed.append(f"vigil SIGSTOP failover p50 {pause['p50_ms']:.0f} ms > 0.5 × etcd {etcd_pause['p50_ms']:.0f} ms")
if handover["p50_ms"] >= 1000: missed.append(f"health handover p50 {handover['p50_ms']:.0f} ms ≥ 1000 ms")
for m in missed: print("target missed:", m, file=sys.stderr)
sys.exit(1 if missed else 0)
PY
