#!/usr/bin/env bash
# Membership benchmark: N vigil agents and N Serf agents on loopback, same scenario, same machine.
# For each N: vigil, then Serf (one system at a time), each through driver.py:
#   join convergence; idle CPU, bytes/s (nftables counters) and RSS; three 2 s SIGSTOP pauses;
#   kill -9 (process gone: its port refuses connections) and SIGSTOP for good (hung: silent),
#   each with the time until the first and the last live member report the failure.
# Prints one table per N and a summary (also written to bench/membership/results/<stamp>/report.md,
# with the raw JSON of each run). Exits 1 if a target was missed.
#
# Usage: bench/membership/run.sh [N...]          (default: 10 30 100)
# Needs: root (nftables), python3, nft, serf (Debian package `serf`), target/release/vigil
#        (cargo build --release -p vigil). Env: VIGIL_BIN, SERF_BIN, SEED (1), ORDER ("vigil serf"),
#        KEEP_LOGS=1 (copy every agent's timestamped log into the results dir), KEEP_TMP=1,
#        DRIVER_ARGS (extra driver.py run options, e.g. "--idle-window 20").
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../lib.sh
source "$HERE/../lib.sh"
SERF_BIN="${SERF_BIN:-$(command -v serf || true)}"
ORDER="${ORDER:-vigil serf}"
SEED="${SEED:-1}"
NFT_TABLE="vigil_bench_membership_$$"

for cmd in python3 nft timeout; do
    command -v "$cmd" >/dev/null 2>&1 || die "$cmd not found"
done
[[ -n "$SERF_BIN" && -x "$SERF_BIN" ]] || die "serf not found (apt-get install -y serf)"
[[ -x "$VIGIL_BIN" ]] || die "$VIGIL_BIN missing (cargo build --release -p vigil)"
[[ "$(id -u)" == 0 ]] || die "needs root for the nftables byte counters"

WORK="$(mktemp -d /tmp/vigil-membership.XXXXXX)"
PIDFILE="$WORK/pids"
: >"$PIDFILE"

# Kills, by PID, what this script started: the driver, then every agent the driver recorded in
# $PIDFILE (only if that PID is still a vigil or serf process), then removes the nftables table.
cleanup() {
    stop_driver 150
    kill_recorded "$PIDFILE" cmdline 'vigil|serf'
    nft delete table inet "$NFT_TABLE" 2>/dev/null || true
    if [[ -z "${KEEP_TMP:-}" ]]; then rm -rf "$WORK"; else log "kept $WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Private copies: another build may replace target/release/vigil while this runs.
VIGIL_SRC="$VIGIL_BIN"
cp "$VIGIL_BIN" "$WORK/vigil"
VIGIL_SHA="$(sha256sum "$WORK/vigil" | cut -c1-12)"
VIGIL_BUILT="$(date -u -r "$VIGIL_BIN" +%Y-%m-%dT%H:%MZ)"
VIGIL_BIN="$WORK/vigil"
cp "$HERE/driver.py" "$WORK/driver.py"
DRIVER="$WORK/driver.py"

NS=("$@")
(( ${#NS[@]} )) || NS=(10 30 100)

STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
OUT="$HERE/results/$STAMP"
mkdir -p "$OUT"

{
    # Which sources the binary reflects: compare its time with the last change under crates/.
    bin_t="$(stat -c %Y "$VIGIL_SRC")"
    src_t="$(cd "$REPO_DIR" && git log -1 --format=%ct -- crates Cargo.toml Cargo.lock 2>/dev/null || echo 0)"
    newer="$(cd "$REPO_DIR" && find crates Cargo.toml Cargo.lock -newer "$VIGIL_SRC" -type f \
        ! -path '*/fuzz/*' ! -path '*/examples/*' ! -path '*/tests/*' 2>/dev/null | head -3 | tr '\n' ' ')"
    if (( bin_t < src_t )) || [[ -n "$newer" ]]; then
        dirty=" — WARNING: the binary is older than the sources (last commit under crates/ at $(date -u -d "@$src_t" +%H:%MZ)${newer:+; changed since: $newer}); rebuild"
    else
        dirty=", no change under crates/ since it was built"
    fi
    echo "## Membership run $STAMP"
    echo
    echo "Machine: $(machine_line). Command: \`bench/membership/run.sh ${NS[*]}\` (seed $SEED)."
    echo "vigil $("$VIGIL_BIN" --version | awk '{print $2}') (binary built $VIGIL_BUILT, sha256 $VIGIL_SHA…; HEAD $(cd "$REPO_DIR" && git rev-parse --short HEAD 2>/dev/null || echo '?')$dirty);" \
        "Serf $("$SERF_BIN" version | head -1) (Debian package serf $(dpkg-query -W -f '${Version}' serf 2>/dev/null || echo '?'))," \
        "LAN profile. No encryption for either."
} >"$OUT/header.md"

for n in "${NS[@]}"; do
    for system in $ORDER; do
        bin="$VIGIL_BIN"; [[ "$system" == serf ]] && bin="$SERF_BIN"
        log "=== $system N=$n"
        # Upper bound of one run: quiet wait 120 + convergence 120 + idle 40 + pauses 3 x 17
        # + kills 3 x 99 + start/stop; generous.
        # shellcheck disable=SC2086
        run_driver timeout --kill-after=15 1200 python3 "$DRIVER" run --system "$system" --n "$n" \
            --work "$WORK" --pidfile "$PIDFILE" --out "$OUT/$system-$n.json" --binary "$bin" \
            --nft-table "$NFT_TABLE" --seed "$SEED" ${DRIVER_ARGS:-} \
            || log "$system N=$n failed (exit $?)"
        if [[ -n "${KEEP_LOGS:-}" && -d "$WORK/$system-$n" ]]; then
            mkdir -p "$OUT/logs/$n/$system"
            cp -r "$WORK/$system-$n"/. "$OUT/logs/$n/$system/" 2>/dev/null || true
        fi
        rm -rf "${WORK:?}/$system-$n"
    done
done

compgen -G "$OUT/*.json" >/dev/null || die "no run produced results"
if { cat "$OUT/header.md"; python3 "$DRIVER" report "$OUT"/*.json; } | tee "$OUT/report.md"; then
    rc=0
else
    rc=1
fi
log "report: $OUT/report.md"
exit "$rc"
