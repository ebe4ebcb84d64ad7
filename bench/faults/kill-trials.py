#!/usr/bin/env python3
"""`docker kill` of a member of the demo compose cluster, many times over: how long until every
other node reports it dead, as a distribution rather than the fault suite's single figure.

The cluster must be up (bench/faults/kill.sh brings it up and down). Each trial watches every
other node's GET /v1/members from its own thread (a request every 10 ms), kills the member's
container, waits until all report it `dead` (at most --limit seconds), then starts it again and
waits until all report it `alive` before the next trial. Times count from the moment `docker
kill` returned, as the fault suite's do; when the kill call itself started is printed beside.

  kill-trials.py --net 10.213.77 --container ID --victim m3 --trials 20 --out FILE.json
"""

import argparse
import json
import random
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

# The compose file's nodes and the last octet of each one's address.
NODES = {"v1": 11, "v2": 12, "v3": 13, "m1": 21, "m2": 22, "m3": 23}


def state_of(base, victim):
    """The state `base` gives `victim`, or None when it does not answer or does not list it."""
    try:
        with urllib.request.urlopen(f"{base}/v1/members", timeout=0.5) as reply:
            body = json.load(reply)
    except (OSError, ValueError):
        return None
    for member in body.get("members", []):
        if member.get("id") == victim:
            return member.get("state")
    return None


def watch_until(bases, victim, wanted, limit):
    """Polls every base until each reports `wanted`; the first time each reported each state,
    in seconds since the call, plus the time each first reported `wanted` (None: not in time)."""
    start = time.monotonic()
    seen = {}

    def watch(name, base):
        states = {}
        while time.monotonic() - start < limit:
            state = state_of(base, victim)
            if state is not None and state not in states:
                states[state] = round(time.monotonic() - start, 3)
            if state == wanted:
                break
            time.sleep(0.01)
        seen[name] = states

    threads = [threading.Thread(target=watch, args=item) for item in bases.items()]
    for thread in threads:
        thread.start()
    return start, threads, seen


def main():
    args = argparse.ArgumentParser()
    args.add_argument("--net", required=True, help="the first three octets of the cluster network")
    args.add_argument("--container", required=True, help="the victim's container")
    args.add_argument("--victim", default="m3")
    args.add_argument("--trials", type=int, default=20)
    args.add_argument("--limit", type=float, default=15)
    args.add_argument("--seed", type=int, default=1)
    args.add_argument("--out", required=True)
    opts = args.parse_args()

    container = opts.container
    bases = {
        name: f"http://{opts.net}.{octet}:8081"
        for name, octet in NODES.items()
        if name != opts.victim
    }
    rng = random.Random(opts.seed)
    trials = []
    for trial in range(1, opts.trials + 1):
        start, threads, seen = watch_until(bases, opts.victim, "dead", opts.limit)
        called = time.monotonic()
        subprocess.run(["docker", "kill", container], check=True, capture_output=True)
        returned = time.monotonic()
        for thread in threads:
            thread.join()
        dead = [states.get("dead") for states in seen.values()]
        if any(d is None for d in dead):
            sys.exit(f"trial {trial}: not every node reported {opts.victim} dead: {seen}")
        last = round(max(dead) - (returned - start), 3)
        suspect_views = sum(1 for states in seen.values() if "suspect" in states)
        trials.append({
            "trial": trial,
            "kill_call_s": round(returned - called, 3),
            "last_dead_s": last,
            "first_dead_s": round(min(dead) - (returned - start), 3),
            "views_showing_suspect": suspect_views,
        })
        print(f"trial {trial}: every node reports it dead {last:.3f} s after `docker kill` "
              f"returned (the call took {returned - called:.3f} s); {suspect_views} view(s) "
              "showed it suspect first", flush=True)
        subprocess.run(["docker", "start", container], check=True, capture_output=True)
        _, threads, seen = watch_until(bases, opts.victim, "alive", opts.limit)
        for thread in threads:
            thread.join()
        if any("alive" not in states for states in seen.values()):
            sys.exit(f"trial {trial}: {opts.victim} not back alive everywhere: {seen}")
        # Every observer's detector hears a few heartbeats of the new process before the next
        # kill, which lands anywhere in the heartbeat period: the detection time depends on it.
        time.sleep(6 + rng.random())

    last = sorted(t["last_dead_s"] for t in trials)
    summary = {
        "trials": len(trials),
        "median_s": statistics.median(last),
        "p90_s": last[min(len(last) - 1, int(0.9 * len(last)))],
        "max_s": last[-1],
        "min_s": last[0],
        "over_2s": sum(1 for t in last if t > 2.0),
    }
    with open(opts.out, "w") as out:
        json.dump({"summary": summary, "trials": trials}, out, indent=2)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
