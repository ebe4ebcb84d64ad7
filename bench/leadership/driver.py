#!/usr/bin/env python3
"""Leadership failover, vigil and etcd side by side, both as 3 voters on 127.0.0.1.

Failover trial: wait until the voters agree on one leader, kill -9 it, then write to the
survivors (alternating, one attempt at a time, 200 ms timeout each by default) until one write is acknowledged;
the time from the kill to that acknowledgement is the failover time. The killed voter is then
restarted on its data and the cluster settles before the next trial.

Health trial (vigil only): fail the leader's critical TTL check through its API, then write to a
follower until a write is acknowledged (an unhealthy leader refuses writes, so the first
acknowledgement comes from its successor); then pass the check again.

Writes: vigil `POST /v1/services`; etcd `POST /v3/kv/put` (its JSON gateway), the same HTTP/1.1
client for both. Every process this script starts is recorded in --pidfile and killed by PID.
"""

import argparse
import base64
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from vigil_voters import write_configs  # noqa: E402

TOKEN = "bench-token"


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Per-attempt bound of the writes timed during failover: short, so that an attempt stuck on a
# dead leader is abandoned and the next one tried (the same for both systems). It is the
# resolution of a system whose writes hang while it has no leader (etcd's do). --write-timeout-ms.
WRITE_TIMEOUT = 0.2


def request(port, method, path, body=None, headers=None, timeout=1.0):
    """(status, parsed JSON or None); (0, None) when the connection fails."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        payload = json.dumps(body) if body is not None else None
        conn.request(method, path, body=payload, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        try:
            return resp.status, json.loads(data) if data else None
        except ValueError:
            return resp.status, None
    except (OSError, http.client.HTTPException):
        return 0, None


def percentile(values, p):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


class Proc:
    def __init__(self, argv, log_path, pidfile, cwd=None):
        self.argv, self.log_path, self.pidfile, self.cwd = argv, log_path, pidfile, cwd
        self.p = None

    def start(self):
        out = open(self.log_path, "ab")
        self.p = subprocess.Popen(self.argv, stdout=out, stderr=out, cwd=self.cwd)
        with open(self.pidfile, "a") as f:
            f.write(f"{self.p.pid}\n")

    def kill9(self):
        if self.p and self.p.poll() is None:
            self.p.send_signal(signal.SIGKILL)
            self.p.wait()

    def signal(self, sig):
        if self.p and self.p.poll() is None:
            self.p.send_signal(sig)

    def stop(self):
        if self.p and self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def wait_until(what, limit, probe):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = probe()
        if value is not None:
            return value
        time.sleep(0.02)
    raise SystemExit(f"timed out after {limit}s waiting for {what}")


class Voters:
    """Three voters of one system, each a node {"id", "api" port, "proc"} in `nodes`. A system
    says how to start its nodes, when one answers, whom they agree leads and how to write."""

    name = None

    def __init__(self):
        self.nodes = []
        self.n = 0  # writes made, to name each one

    def launch(self, i):
        self.nodes[i]["proc"].start()

    def kill(self, i):
        self.nodes[i]["proc"].kill9()

    def pause(self, i):
        self.nodes[i]["proc"].signal(signal.SIGSTOP)

    def resume(self, i):
        self.nodes[i]["proc"].signal(signal.SIGCONT)

    def stop_all(self):
        for node in self.nodes:
            node["proc"].stop()


class Vigil(Voters):
    name = "vigil"

    def __init__(self, binary, work, pidfile):
        super().__init__()
        for node_id, home, api, path in write_configs(os.path.join(work, "vigil"), TOKEN):
            proc = Proc([binary, "agent", "-c", path], os.path.join(home, "agent.log"), pidfile, cwd=home)
            self.nodes.append({"id": node_id, "api": api, "proc": proc})

    def ready(self, i):
        node = self.nodes[i]
        wait_until(f"{node['id']} to answer", 30, lambda: request(node["api"], "GET", "/health/live")[0] or None)
        self.check(i, "pass")

    def check(self, i, verdict):
        request(self.nodes[i]["api"], "PUT", f"/v1/checks/heart/{verdict}", None,
                {"Authorization": f"Bearer {TOKEN}"}, timeout=5)

    def leader(self, alive):
        """Index of the leader all of `alive` agree on (with quorum), or None."""
        seen = set()
        leading = []
        for i in alive:
            status, body = request(self.nodes[i]["api"], "GET", "/v1/leader")
            if status != 200 or not body or not body.get("leader_id") or not body.get("has_quorum"):
                return None
            seen.add((body["leader_id"], body["term"]))
            if body.get("is_leader"):
                leading.append(i)
        if len(seen) == 1 and len(leading) == 1:
            return leading[0]
        return None

    def write(self, i):
        self.n += 1
        body = {"name": "bench", "id": f"w{self.n}", "address": "10.0.0.1", "port": 80}
        status, _ = request(self.nodes[i]["api"], "POST", "/v1/services", body,
                            {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
                            timeout=WRITE_TIMEOUT)
        return status in (200, 201)


class Etcd(Voters):
    name = "etcd"

    def __init__(self, binary, work, pidfile, election_ms, heartbeat_ms):
        super().__init__()
        peers = [free_port() for _ in range(3)]
        cluster = ",".join(f"e{i + 1}=http://127.0.0.1:{peers[i]}" for i in range(3))
        for i in range(3):
            name = f"e{i + 1}"
            home = os.path.join(work, "etcd", name)
            os.makedirs(home, exist_ok=True)
            client = free_port()
            argv = [binary, "--name", name, "--data-dir", os.path.join(home, "data"),
                    "--listen-client-urls", f"http://127.0.0.1:{client}",
                    "--advertise-client-urls", f"http://127.0.0.1:{client}",
                    "--listen-peer-urls", f"http://127.0.0.1:{peers[i]}",
                    "--initial-advertise-peer-urls", f"http://127.0.0.1:{peers[i]}",
                    "--initial-cluster", cluster, "--initial-cluster-state", "new",
                    "--initial-cluster-token", "vigil-bench",
                    "--election-timeout", str(election_ms), "--heartbeat-interval", str(heartbeat_ms),
                    "--log-level", "warn"]
            proc = Proc(argv, os.path.join(home, "etcd.log"), pidfile)
            self.nodes.append({"id": name, "api": client, "proc": proc})

    def ready(self, i):
        # A new etcd cluster answers once its members have found each other.
        node = self.nodes[i]
        wait_until(f"{node['id']} to answer", 30,
                   lambda: request(node["api"], "POST", "/v3/maintenance/status", {})[0] or None)

    def leader(self, alive):
        leaders = set()
        members = {}
        for i in alive:
            status, body = request(self.nodes[i]["api"], "POST", "/v3/maintenance/status", {})
            if status != 200 or not body or not body.get("leader"):
                return None
            leaders.add(body["leader"])
            members[body["header"]["member_id"]] = i
        if len(leaders) == 1:
            leader = leaders.pop()
            return members.get(leader)
        return None

    def write(self, i):
        self.n += 1
        key = base64.b64encode(f"bench/w{self.n}".encode()).decode()
        status, body = request(self.nodes[i]["api"], "POST", "/v3/kv/put", {"key": key, "value": key},
                               timeout=WRITE_TIMEOUT)
        return status == 200 and body is not None and "header" in body and "error" not in body


def settled_leader(system, alive):
    """The leader all of `alive` agree on, once it has acknowledged a write."""
    leader = wait_until(f"{system.name}: one leader", 60, lambda: system.leader(alive))
    wait_until(f"{system.name}: a write", 30, lambda: system.write(leader) or None)
    return leader


def start_all(system):
    for i in range(3):
        system.launch(i)
    for i in range(3):
        system.ready(i)


def failover_trials(system, trials, fault):
    """`fault` is "kill" (kill -9 of the leader, restarted on its data after the trial) or
    "pause" (SIGSTOP of the leader, SIGCONT after the trial)."""
    times = []
    alive = [0, 1, 2]
    for trial in range(trials):
        leader = settled_leader(system, alive)
        survivors = [i for i in alive if i != leader]
        if fault == "kill":
            system.kill(leader)
        else:
            system.pause(leader)
        t0 = time.monotonic()
        attempt = 0
        while not system.write(survivors[attempt % 2]):
            attempt += 1
            if time.monotonic() - t0 > 30:
                raise SystemExit(f"{system.name}: no write acknowledged within 30 s of the {fault}")
        elapsed = time.monotonic() - t0
        times.append(elapsed)
        log(f"{system.name} {fault} trial {trial + 1}: {elapsed * 1000:.0f} ms ({attempt + 1} attempts)")
        if fault == "kill":
            system.launch(leader)
        else:
            system.resume(leader)
        system.ready(leader)
    return times


def handover_trials(system, trials):
    times = []
    alive = [0, 1, 2]
    for trial in range(trials):
        leader = settled_leader(system, alive)
        follower = (leader + 1) % 3
        system.check(leader, "fail")
        t0 = time.monotonic()
        old_id = system.nodes[leader]["id"]
        while True:
            if time.monotonic() - t0 > 30:
                raise SystemExit("vigil: no write acknowledged within 30 s of the leader turning unhealthy")
            # A write may slip in before the failed check has reached Raft: only one
            # acknowledged under a new leader counts.
            if system.write(follower):
                elapsed = time.monotonic() - t0
                _, body = request(system.nodes[follower]["api"], "GET", "/v1/leader")
                if body and body.get("leader_id") not in (None, old_id):
                    break
        new = wait_until("vigil: the new leader", 30, lambda: system.leader(alive))
        if new == leader:
            raise SystemExit("vigil: the unhealthy leader kept leading")
        times.append(elapsed)
        log(f"vigil health handover trial {trial + 1}: {elapsed * 1000:.0f} ms")
        system.check(leader, "pass")
    return times


def summary(key, name, times):
    ms = [t * 1000 for t in times]
    return {"key": key, "system": name, "trials": len(ms), "p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99),
            "min_ms": min(ms), "max_ms": max(ms), "all_ms": [round(t) for t in ms]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vigil", required=True)
    ap.add_argument("--etcd", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--pidfile", required=True)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--etcd-election-ms", type=int, default=1000)
    ap.add_argument("--etcd-heartbeat-ms", type=int, default=100)
    ap.add_argument("--out", required=True)
    ap.add_argument("--write-timeout-ms", type=int, default=200)
    args = ap.parse_args()
    global WRITE_TIMEOUT
    WRITE_TIMEOUT = args.write_timeout_ms / 1000

    results = []
    vigil = Vigil(args.vigil, args.work, args.pidfile)
    try:
        start_all(vigil)
        results.append(summary("vigil_kill", "vigil failover (kill -9 leader → first acknowledged write)",
                               failover_trials(vigil, args.trials, "kill")))
        results.append(summary("vigil_pause", "vigil failover (SIGSTOP leader → first acknowledged write)",
                               failover_trials(vigil, args.trials, "pause")))
        results.append(summary("vigil_handover",
                               "vigil health handover (leader's critical check fails → first acknowledged write)",
                               handover_trials(vigil, args.trials)))
    finally:
        vigil.stop_all()
    etcd = Etcd(args.etcd, args.work, args.pidfile, args.etcd_election_ms, args.etcd_heartbeat_ms)
    timings = f"election {args.etcd_election_ms} ms, heartbeat {args.etcd_heartbeat_ms} ms"
    try:
        start_all(etcd)
        results.append(summary("etcd_kill", f"etcd failover (kill -9 leader; {timings})",
                               failover_trials(etcd, args.trials, "kill")))
        results.append(summary("etcd_pause", f"etcd failover (SIGSTOP leader; {timings})",
                               failover_trials(etcd, args.trials, "pause")))
    finally:
        etcd.stop_all()
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
    for r in results:
        print(f"| {r['system']} | {r['trials']} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['min_ms']:.0f} | {r['max_ms']:.0f} |")


if __name__ == "__main__":
    main()
