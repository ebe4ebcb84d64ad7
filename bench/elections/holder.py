"""The work a candidate does while it leads: record when it took the role, then hold it.

Usage: holder.py CANDIDATE_ID LINES_FILE PIDS_FILE, with the fencing token of the grant in
VIGIL_FENCING_TOKEN. Appends "<candidate-id> <fencing-token or -> <CLOCK_MONOTONIC ns>" to
LINES_FILE, "<candidate-id> <pid>" to PIDS_FILE, then sleeps until it is stopped; stopped by
SIGTERM, it appends "<candidate-id> <CLOCK_MONOTONIC ns>" to LINES_FILE.stops and exits, so the
driver knows to the microsecond when a holder gave the role up.

Every system runs this same program as the child it starts on winning (vigil as `vigil elect --
CMD`, the ZooKeeper and etcd candidates of driver.py from their leader callbacks), so the cost of
starting it is in every figure alike. It is run with `python3 -S` and imports only the standard
library, to keep that cost small; driver.py measures it and reports it beside the results.
"""

import os
import signal
import sys
import time

# Taken first: the moment this process holds the role. CLOCK_MONOTONIC is one clock for the whole
# machine, so the driver compares it with the time it sent its signal.
NOW = time.clock_gettime_ns(time.CLOCK_MONOTONIC)

cid, lines, pids = sys.argv[1:4]
token = os.environ.get("VIGIL_FENCING_TOKEN") or "-"


def append(path, text):
    # One write() on an O_APPEND descriptor: lines of concurrent holders never interleave.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


# The PID first, so that the driver knows it by the time it reads the line.
append(pids, f"{cid} {os.getpid()}\n")
append(lines, f"{cid} {token} {NOW}\n")


def stopped(_signum, _frame):
    append(lines + ".stops", f"{cid} {time.clock_gettime_ns(time.CLOCK_MONOTONIC)}\n")
    os._exit(0)


signal.signal(signal.SIGTERM, stopped)
while True:
    time.sleep(3600)
