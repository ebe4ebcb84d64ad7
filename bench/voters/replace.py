#!/usr/bin/env python3
"""Replacing a voter's machine with a populated registry, vigil and etcd side by side.

Each system starts as 3 voters on 127.0.0.1 and is filled with --records entries (vigil: service
instances through `POST /v1/services`; etcd: keys of about the same size through its JSON gateway).
A fourth node is then started and added the way each system documents it — vigil: `POST
/v1/voters/v4` (learner, caught up, promoted, in one call); etcd: `member add --learner`, start the
member, then `member promote` retried until etcd accepts it (it refuses a learner that is not in
sync). The figure is the time from asking to add to a promoted voter. A writer writes to the leader
every --write-every-ms throughout; its latencies before the addition (baseline) and during it are
reported as p50/p99, with every write that failed.

Every process this script starts is recorded in --pidfile and killed by PID.
"""

import argparse
import base64
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "leadership"))
import driver as leadership  # noqa: E402

TOKEN = leadership.TOKEN
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
log = leadership.log
request = leadership.request
wait_until = leadership.wait_until
percentile = leadership.percentile


class Writer:
    """Writes through `write()` (which answers (ok, what came back)) every `every` seconds on a
    thread, recording (start, latency, ok, what came back)."""

    def __init__(self, write, every):
        self.write, self.every = write, every
        self.samples = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stopping.is_set():
            start = time.monotonic()
            ok, answer = self.write()
            self.samples.append((start, time.monotonic() - start, ok, answer))
            time.sleep(max(0.0, self.every - (time.monotonic() - start)))

    def stop(self):
        self.stopping.set()
        self.thread.join()

    def figures(self, since, until):
        window = [(lat, ok, answer) for start, lat, ok, answer in self.samples if since <= start < until]
        latencies = [lat * 1000 for lat, ok, _ in window if ok]
        return {
            "writes": len(window),
            "failed": sum(1 for _, ok, _ in window if not ok),
            "failures": sorted({str(answer) for _, ok, answer in window if not ok}),
            "p50_ms": round(percentile(latencies, 50), 1),
            "p99_ms": round(percentile(latencies, 99), 1),
        }


def fill(count, put):
    with ThreadPoolExecutor(max_workers=8) as pool:
        failed = sum(1 for ok in pool.map(put, range(count)) if not ok)
    if failed:
        raise SystemExit(f"{failed} of {count} records were not written")


def leader_port(system):
    """Starts the three voters of `system`; the API port of the leader they settle on."""
    for i in range(3):
        system.launch(i)
    for i in range(3):
        system.ready(i)
    return system.nodes[leadership.settled_leader(system, [0, 1, 2])]["api"]


def measure(name, writer, baseline_s, add):
    """Baseline writes, then the addition timed, then a little after; the figures."""
    writer.thread.start()
    time.sleep(baseline_s)
    t0 = time.monotonic()
    add()
    t1 = time.monotonic()
    time.sleep(1.0)
    writer.stop()
    figures = {
        "add_to_voter_s": round(t1 - t0, 3),
        "baseline": writer.figures(t0 - baseline_s, t0),
        "during": writer.figures(t0, t1),
        "second_after": writer.figures(t1, t1 + 1.0),
    }
    log(f"{name}: promoted {figures['add_to_voter_s']} s after asking; writes during: {figures['during']}")
    return figures


def vigil_run(args):
    system = leadership.Vigil(args.vigil, args.work, args.pidfile)
    port = leader_port(system)

    def put(i):
        # Spread over the three nodes: one node holds at most 10,000 instances.
        body = {"name": f"svc-{i % 100}", "id": f"r{i}", "address": "10.0.0.1", "port": 1000 + i % 50000,
                "tags": ["bench"], "checks": [], "node": f"v{1 + i % 3}"}
        return request(port, "POST", "/v1/services", body, AUTH, timeout=10)[0] in (200, 201)

    started = time.monotonic()
    fill(args.records, put)
    log(f"vigil: {args.records} instances registered in {time.monotonic() - started:.1f} s")

    # The newcomer: v1's config with its own id, ports and store; a voter outside the bootstrap set.
    home = os.path.join(args.work, "vigil", "v4")
    os.makedirs(home, exist_ok=True)
    with open(os.path.join(args.work, "vigil", "v1", "vigil.toml")) as f:
        config = f.read()
    api = leadership.free_port()
    lines = []
    for line in config.splitlines():
        if line.startswith("id = "):
            line = 'id = "v4"'
        elif line.startswith("bind = \"127.0.0.1:") and "[api]" in "\n".join(lines[-1:]):
            line = f'bind = "127.0.0.1:{api}"'
        elif line.startswith("bind = "):
            line = f'bind = "127.0.0.1:{leadership.free_port()}"'
        elif line.startswith("data_dir = "):
            line = f'data_dir = "{home}/raft"'
        elif line.startswith("raft_bind = "):
            line = f'raft_bind = "127.0.0.1:{leadership.free_port()}"'
        lines.append(line)
    path = os.path.join(home, "vigil.toml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    newcomer = leadership.Proc([args.vigil, "agent", "-c", path], os.path.join(home, "agent.log"),
                               args.pidfile, cwd=home)
    newcomer.start()
    wait_until("v4 to answer", 30, lambda: request(api, "GET", "/health/live")[0] or None)
    wait_until("the leader to see v4", 30, lambda: any(
        m.get("id") == "v4" and m.get("state") == "alive"
        for m in (request(port, "GET", "/v1/members")[1] or {}).get("members", [])) or None)

    n = [0]

    def write():
        n[0] += 1
        body = {"name": "writes", "id": f"w{n[0]}", "address": "10.0.0.2", "port": 80, "checks": []}
        status, answer = request(port, "POST", "/v1/services", body, AUTH, timeout=5)
        return status in (200, 201), (status, (answer or {}).get("error"))

    def add():
        status, body = request(port, "POST", "/v1/voters/v4", None, AUTH, timeout=60)
        roles = {m["name"]: m["role"] for m in (body or {}).get("members", [])}
        if status != 200 or roles.get("v4") != "voter":
            raise SystemExit(f"vigil: adding v4 answered {status}: {body}")

    figures = measure("vigil", Writer(write, args.write_every_ms / 1000), args.baseline_s, add)

    def instances(port):
        body = request(port, "GET", "/v1/services", timeout=10)[1] or {}
        return sum(len(of) for of in body.get("services", {}).values())

    expected = instances(port)
    figures["newcomer_instances"] = wait_until(
        "v4 to hold every instance", 60, lambda: instances(api) if instances(api) == expected else None)
    newcomer.stop()
    system.stop_all()
    return figures


def etcd_run(args):
    system = leadership.Etcd(args.etcd, args.work, args.pidfile, 1000, 100)
    port = leader_port(system)
    value = base64.b64encode(b"x" * 160).decode()

    def put(i):
        key = base64.b64encode(f"registry/svc-{i % 100}/r{i}".encode()).decode()
        status, body = request(port, "POST", "/v3/kv/put", {"key": key, "value": value}, timeout=10)
        return status == 200 and body is not None and "error" not in body

    started = time.monotonic()
    fill(args.records, put)
    log(f"etcd: {args.records} keys written in {time.monotonic() - started:.1f} s")

    n = [0]

    def write():
        n[0] += 1
        key = base64.b64encode(f"writes/w{n[0]}".encode()).decode()
        status, body = request(port, "POST", "/v3/kv/put", {"key": key, "value": value}, timeout=5)
        ok = status == 200 and body is not None and "error" not in body
        return ok, (status, (body or {}).get("error"))

    peer = leadership.free_port()
    client = leadership.free_port()
    home = os.path.join(args.work, "etcd", "e4")
    os.makedirs(home, exist_ok=True)

    def add():
        status, body = request(port, "POST", "/v3/cluster/member/add",
                               {"peerURLs": [f"http://127.0.0.1:{peer}"], "isLearner": True}, timeout=10)
        if status != 200 or not body or "member" not in body:
            raise SystemExit(f"etcd: member add answered {status}: {body}")
        member_id = body["member"]["ID"]
        cluster = ",".join(
            f"{m.get('name') or 'e4'}={m['peerURLs'][0]}" for m in body["members"])
        argv = [args.etcd, "--name", "e4", "--data-dir", os.path.join(home, "data"),
                "--listen-client-urls", f"http://127.0.0.1:{client}",
                "--advertise-client-urls", f"http://127.0.0.1:{client}",
                "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                "--initial-cluster", cluster, "--initial-cluster-state", "existing",
                "--log-level", "warn"]
        leadership.Proc(argv, os.path.join(home, "etcd.log"), args.pidfile).start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status, body = request(port, "POST", "/v3/cluster/member/promote", {"ID": member_id}, timeout=10)
            if status == 200 and body and "error" not in body:
                return
            time.sleep(0.05)
        raise SystemExit(f"etcd: the learner was not promoted within 60 s: {body}")

    figures = measure("etcd", Writer(write, args.write_every_ms / 1000), args.baseline_s, add)
    system.stop_all()
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vigil", required=True)
    parser.add_argument("--etcd")
    parser.add_argument("--work", required=True)
    parser.add_argument("--pidfile", required=True)
    parser.add_argument("--records", type=int, default=10000)
    parser.add_argument("--write-every-ms", type=float, default=20)
    parser.add_argument("--baseline-s", type=float, default=3)
    args = parser.parse_args()
    results = {"records": args.records, "vigil": vigil_run(args)}
    if args.etcd:
        results["etcd"] = etcd_run(args)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
