#!/usr/bin/env bash
# Leader-election failover for users' services: ZooKeeper, etcd and vigil side by side (driver.py),
# each as 3 nodes on 127.0.0.1 with two candidates campaigning in one election, each candidate
# talking to a different node. A trial SIGKILLs (`kill9`) or SIGSTOPs (`sigstop`) the leading
# candidate's process group, or, vigil only, fails the health check of the service instance the
# leader is bound to (`critical`), and times how long until the other candidate holds the role
# (its holder.py child started; CLOCK_MONOTONIC on both ends). Prints p50/p99 per system, timeout
# and scenario, and writes results.json and report.md to bench/elections/results/<UTC stamp>/.
# Exits 1 if a trial failed (no failover within TRIAL_TIMEOUT_S).
#
# Usage: bench/elections/run.sh
#        SYSTEMS="zookeeper etcd" TRIALS=20 bench/elections/run.sh   # the peers alone
#
# Needs: apt-get install -y zookeeperd python3-kazoo etcd-server etcd-client (Debian 12: ZooKeeper
#        3.8.0, kazoo 2.8.0, etcd 3.4.23; java from zookeeperd's dependencies); for vigil,
#        target/release/vigil with `vigil elect` (cargo build --release -p vigil).
#        The driver runs with Debian's /usr/bin/python3, where python3-kazoo is installed; PYTHON
#        picks another interpreter (it then needs `pip install kazoo`). The packages' own
#        zookeeper/etcd services are not used (and not left running); every server here is started
#        by the driver on free loopback ports with its data in a mktemp directory.
#
# Timeouts. Each peer runs at the smallest session/lease timeout it accepts, and again at vigil's
# TTL where it accepts that one:
# - ZooKeeper grants sessions from minSessionTimeout = 2 × tickTime. ZK_TICK_MS=100 (Debian's 2000)
#   puts that floor at 200 ms and makes session expiry, which runs in tick steps, 100 ms fine: the
#   ensemble heartbeats at etcd's heartbeat interval, and neither the floor nor the rounding is what
#   limits ZooKeeper here. The client is what does: kazoo pings after a random 0–400 ms idle time
#   whatever the timeout, so on this machine sessions of 200 and 300 ms expired several times a
#   second and 400 ms twice a minute while the client was healthy; 500 ms and 600 ms held for 120 s.
#   ZK_SESSION_MS=500 is therefore the smallest session a kazoo candidate keeps, and the `min` rows
#   use it; the driver also shows what the servers grant a 50 ms request.
# - etcd grants leases of whole seconds, at least 1.5 × its election timeout rounded up (3.4's
#   lessor): 2 s at its default 1000 ms election timeout, 1 s from 700 ms down. ETCD_ELECTION_MS=500
#   (vigil's Raft election timeout; heartbeat 100 ms, etcd's default) gets the absolute floor of
#   1 s, which is also vigil's default TTL, so etcd has one row per scenario. The candidates print
#   the TTL each grant returned; the report lists it.
# - vigil: `vigil elect --ttl VIGIL_TTL` (1s).
#
# Env: SYSTEMS ("zookeeper etcd vigil"), TRIALS (20), TRIAL_TIMEOUT_S (30), VIGIL_BIN, VIGIL_TTL
#      (1s), ZK_TICK_MS (100), ZK_SESSION_MS (500), ETCD_BIN,
#      ETCD_ELECTION_MS (500), ETCD_HEARTBEAT_MS (100), PYTHON (/usr/bin/python3), QUIET_MAX_PCT
#      (50) and QUIET_WAIT_S (300): wait at most that long for the machine to be at most that busy
#      before starting, KEEP_TMP=1.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../lib.sh
source "$HERE/../lib.sh"
SYSTEMS="${SYSTEMS:-zookeeper etcd vigil}"
TRIALS="${TRIALS:-20}"
TRIAL_TIMEOUT_S="${TRIAL_TIMEOUT_S:-30}"
VIGIL_TTL="${VIGIL_TTL:-1s}"
ZK_TICK_MS="${ZK_TICK_MS:-100}"
ZK_SESSION_MS="${ZK_SESSION_MS:-500}"
ETCD_BIN="${ETCD_BIN:-$(command -v etcd || true)}"
ETCD_ELECTION_MS="${ETCD_ELECTION_MS:-500}"
ETCD_HEARTBEAT_MS="${ETCD_HEARTBEAT_MS:-100}"
PYTHON="${PYTHON:-/usr/bin/python3}"

[[ -x "$PYTHON" ]] || die "$PYTHON not found (set PYTHON)"
for system in $SYSTEMS; do
    case "$system" in
        zookeeper)
            command -v java >/dev/null 2>&1 || die "java not found (apt-get install -y zookeeperd)"
            [[ -f /usr/share/java/zookeeper.jar ]] || die "ZooKeeper jars not found (apt-get install -y zookeeperd)"
            "$PYTHON" -c "import kazoo" 2>/dev/null || die "kazoo not importable by $PYTHON (apt-get install -y python3-kazoo)"
            ;;
        etcd)
            [[ -n "$ETCD_BIN" && -x "$ETCD_BIN" ]] || die "etcd not found (apt-get install -y etcd-server)"
            ;;
        vigil)
            "$VIGIL_BIN" elect --help >/dev/null 2>&1 || die "vigil elect not available in $VIGIL_BIN"
            ;;
        *) die "unknown system $system (zookeeper, etcd, vigil)" ;;
    esac
done

WORK="$(mktemp -d /tmp/vigil-elections.XXXXXX)"
PIDFILE="$WORK/pids"      # servers and agents
PGFILE="$WORK/pgids"      # candidates, each the leader of its own process group
HOLDERS="$WORK/holders"   # "<candidate> <pid>" of every holder.py
: >"$PIDFILE"
: >"$PGFILE"
: >"$HOLDERS"

# Kills, by PID, what the driver started, should it not have done so itself: the members of each
# candidate's process group, each holder, then the servers and agents; each only while that PID
# still runs one of the programs started here.
cleanup() {
    stop_driver 100
    local pgid
    while read -r pgid; do
        [[ -n "$pgid" ]] && pgrep -g "$pgid" || true
    done <"$PGFILE" >"$WORK/group-pids"
    kill_recorded "$WORK/group-pids" cmdline 'vigil|python'
    awk '{print $2}' "$HOLDERS" >"$WORK/holder-pids"
    kill_recorded "$WORK/holder-pids" cmdline 'holder\.py'
    kill_recorded "$PIDFILE" cmdline 'vigil|java|etcd'
    [[ -n "${KEEP_TMP:-}" ]] || rm -rf "$WORK"
    # A run that did not finish leaves no results directory.
    if [[ -n "${OUT:-}" && ! -s "$OUT/report.md" ]]; then rm -rf "$OUT"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
OUT="$HERE/results/$STAMP"
mkdir -p "$OUT"
log "systems: $SYSTEMS; $TRIALS trials per row; $(machine_line); load average $(cut -d' ' -f1-3 /proc/loadavg); work dir $WORK"

# Other workloads share this machine: start once it is mostly idle (bounded; the report gives
# the load average either way).
wait_quiet "${QUIET_MAX_PCT:-50}" "${QUIET_WAIT_S:-300}"
rc=0
run_driver "$PYTHON" "$HERE/driver.py" bench --systems "$SYSTEMS" --work "$WORK" \
    --pidfile "$PIDFILE" --pgfile "$PGFILE" --out "$OUT" --trials "$TRIALS" \
    --trial-timeout "$TRIAL_TIMEOUT_S" --vigil "$VIGIL_BIN" --vigil-ttl "$VIGIL_TTL" \
    --etcd "${ETCD_BIN:-etcd}" --etcd-election-ms "$ETCD_ELECTION_MS" \
    --etcd-heartbeat-ms "$ETCD_HEARTBEAT_MS" --zk-tick-ms "$ZK_TICK_MS" --zk-session-ms "$ZK_SESSION_MS" \
    --machine "$(machine_line)" || rc=$?
exit "$rc"
