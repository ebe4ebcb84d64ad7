#!/usr/bin/env bash
# Supervisor idle cost: a stack of SERVICES (50) `vigil fake-service` processes, each probed over
# HTTP every INTERVAL (5s, the default) once healthy, started with `vigil up -d`; then the
# background supervisor's CPU over WINDOW (60) seconds, from utime+stime in /proc/PID/stat, and
# its resident memory (VmRSS, with its anonymous and file-backed parts), with the stack left
# alone. Targets: under 1% of one core, under 20 MB. Prints a markdown table; exits 1 when a
# target is missed.
#
# Usage: bench/startup/supervisor.sh
# Env:   VIGIL_BIN (target/release/vigil), SERVICES, WINDOW, INTERVAL, KEEP_TMP=1
# Needs: python3, ss.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../lib.sh
source "$HERE/../lib.sh"

SERVICES="${SERVICES:-50}"
WINDOW="${WINDOW:-60}"
INTERVAL="${INTERVAL:-5s}"
need python3 ss
[[ -x "$VIGIL_BIN" ]] || die "$VIGIL_BIN missing (cargo build --release -p vigil, or set VIGIL_BIN)"

bench_init
down() { (cd "$BENCH_TMP" && "$VIGIL_BIN" down -f stack.toml >/dev/null 2>&1) || true; }
trap 'down; bench_cleanup' EXIT

# Ten independent roots, the others each depending on one service five places before it.
for i in $(seq 1 "$SERVICES"); do
    port="$(free_port)"
    deps=""
    if (( i > 10 )); then deps="s$(( i - 5 )) = \"healthy\""; fi
    cat >>"$BENCH_TMP/stack.toml" <<TOML
[services.s$i]
command = ["$VIGIL_BIN", "fake-service", "--port", "$port", "--ready-after", "200ms"]
depends_on = { $deps }
health = { probe = "http://127.0.0.1:$port/health", interval = "$INTERVAL", start_interval = "100ms" }
TOML
done

log "starting $SERVICES services with vigil up -d"
(cd "$BENCH_TMP" && "$VIGIL_BIN" up -d -f stack.toml --report report.json >/dev/null)
pid="$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['supervisor']['pid'])" \
    "$BENCH_TMP/.vigil/stack.toml/state.json")"
total="$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['total_s'])" "$BENCH_TMP/report.json")"

# ticks PID: utime + stime of a process, in clock ticks.
ticks() { python3 -c "import sys; f=open('/proc/'+sys.argv[1]+'/stat').read().rsplit(')',1)[1].split(); print(int(f[11])+int(f[12]))" "$1"; }
# kb FIELD PID: a memory figure of /proc/PID/status, in kB.
kb() { awk -v f="$1:" '$1 == f {print $2}' "/proc/$2/status"; }

# A few seconds for the start's own work to end before measuring.
sleep 5
log "measuring supervisor pid $pid for ${WINDOW}s"
t0="$(ticks "$pid")"
sleep "$WINDOW"
t1="$(ticks "$pid")"
rss="$(kb VmRSS "$pid")"
anon="$(kb RssAnon "$pid")"
file="$(kb RssFile "$pid")"
hz="$(getconf CLK_TCK)"
restarts="$(cd "$BENCH_TMP" && "$VIGIL_BIN" ps -f stack.toml --json \
    | python3 -c "import json,sys; print(sum(s['restarts'] for s in json.load(sys.stdin)['services']))")"

python3 - "$t0" "$t1" "$hz" "$WINDOW" "$rss" "$SERVICES" "$anon" "$file" "$INTERVAL" "$total" "$restarts" "$VIGIL_BIN" <<'PY'
import sys
t0, t1, hz, window, rss_kb, services, anon_kb, file_kb = (int(x) for x in sys.argv[1:9])
interval, total, restarts, binary = sys.argv[9], float(sys.argv[10]), sys.argv[11], sys.argv[12]
cpu = (t1 - t0) / hz / window * 100
rss = rss_kb / 1024
mark = lambda ok: "met" if ok else "MISSED"
print(f"{services} services probed every {interval}; started in {total:.2f} s; {restarts} restarts "
      f"while measured; binary {binary}")
print()
print("| measure | target | measured | verdict |")
print("| --- | --- | --- | --- |")
print(f"| supervisor CPU, idle, over {window} s | < 1% of a core | {cpu:.2f}% ({t1 - t0} ticks) | {mark(cpu < 1)} |")
print(f"| supervisor RSS | < 20 MB | {rss:.1f} MB (anonymous {anon_kb / 1024:.1f}, file {file_kb / 1024:.1f}) | {mark(rss < 20)} |")
sys.exit(0 if cpu < 1 and rss < 20 else 1)
PY
