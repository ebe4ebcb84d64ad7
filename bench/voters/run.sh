#!/usr/bin/env bash
# Replacing a voter with a populated registry: vigil (`POST /v1/voters/v4`: learner, caught up,
# promoted) and etcd (`member add --learner`, then `member promote` until accepted) side by side,
# 3 voters each on 127.0.0.1, RECORDS entries each, a writer on the leader throughout
# (replace.py). Prints the time from asking to add to a promoted voter, and the writes' p50/p99
# before and during it; writes the JSON to bench/voters/results/<UTC stamp>/.
#
# Usage: bench/voters/run.sh
# Needs: python3, target/release/vigil (cargo build --release -p vigil); etcd (Debian
#        `etcd-server`) for the side-by-side figures (without it, vigil's alone, said so).
# Env: RECORDS (10000), WRITE_EVERY_MS (20), VIGIL_BIN, ETCD_BIN, KEEP_TMP=1.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../lib.sh
source "$HERE/../lib.sh"
ETCD_BIN="${ETCD_BIN:-$(command -v etcd || true)}"
RECORDS="${RECORDS:-10000}"
WRITE_EVERY_MS="${WRITE_EVERY_MS:-20}"

command -v python3 >/dev/null 2>&1 || die "python3 not found"
[[ -x "$VIGIL_BIN" ]] || die "$VIGIL_BIN missing (cargo build --release -p vigil)"
etcd_args=()
if [[ -n "$ETCD_BIN" && -x "$ETCD_BIN" ]]; then
    etcd_args=(--etcd "$ETCD_BIN")
else
    log "etcd not found (apt-get install -y etcd-server): vigil's figures alone"
fi

WORK="$(mktemp -d /tmp/vigil-voters.XXXXXX)"
PIDFILE="$WORK/pids"
: >"$PIDFILE"
cleanup() {
    stop_driver 50
    kill_recorded "$PIDFILE" comm 'vigil|etcd'
    [[ -n "${KEEP_TMP:-}" ]] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

OUT="$HERE/results/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
log "vigil $("$VIGIL_BIN" --version); $RECORDS records; work dir $WORK"
run_driver python3 "$HERE/replace.py" --vigil "$VIGIL_BIN" "${etcd_args[@]}" --work "$WORK" \
    --pidfile "$PIDFILE" --records "$RECORDS" --write-every-ms "$WRITE_EVERY_MS" >"$OUT/results.json"
machine_line >"$OUT/machine.txt"
cat "$OUT/results.json"
