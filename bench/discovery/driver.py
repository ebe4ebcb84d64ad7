#!/usr/bin/env python3
"""Discovery of a dead instance: vigil against ZooKeeper, side by side, on 127.0.0.1.

vigil: 10 agents (3 voters, 7 members). One instance of `api`, a `vigil fake-service` process,
is registered on member m1 with a TCP check every --interval. A trial waits until every agent's
`GET /v1/services/api?healthy` lists it, opens a blocking query on each agent (`?healthy&index=N`),
kills the process with SIGKILL at a random phase of the check interval, and takes the time until
the last agent's answer no longer lists it. The process is then started again and the next trial
waits until it is back everywhere.

ZooKeeper: a 3-server ensemble (the Debian zookeeper jars), a holder process that creates an
ephemeral node with kazoo at the smallest session timeout the servers allow (2 × tickTime), and a
watcher in this process with an `exists` watch on it. A trial kills the holder with SIGKILL and
takes the time until the watcher is told the node is gone.

Prints one markdown row per system to stdout, writes the raw figures to --out. Every process
this script starts is recorded in --pidfile and killed by PID.
"""

import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time

TOKEN = "bench-token"


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, method, path, body=None, timeout=2.0):
    """(status, headers dict, parsed JSON or None); status 0 when the connection fails."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = None
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, parsed
    except (OSError, http.client.HTTPException):
        return 0, {}, None


def percentile(values, p):
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def wait_until(what, limit, probe):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = probe()
        if value is not None:
            return value
        time.sleep(0.02)
    raise SystemExit(f"timed out after {limit}s waiting for {what}")


class Proc:
    def __init__(self, argv, log_path, pidfile, cwd=None, stdout=None):
        out = open(log_path, "ab")
        self.p = subprocess.Popen(argv, stdout=stdout or out, stderr=out, cwd=cwd)
        with open(pidfile, "a") as f:
            f.write(f"{self.p.pid}\n")

    def kill9(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGKILL)
            self.p.wait()


def vigil_trials(args):
    work = os.path.join(args.work, "vigil")
    gossip = [free_port() for _ in range(10)]
    ids = [f"v{i + 1}" for i in range(3)] + [f"m{i + 1}" for i in range(7)]
    apis = []
    for i, node in enumerate(ids):
        home = os.path.join(work, node)
        os.makedirs(home, exist_ok=True)
        api = free_port()
        apis.append(api)
        seeds = ", ".join(f'"127.0.0.1:{p}"' for p in gossip[:3])
        role = "voter" if node.startswith("v") else "member"
        config = f"""[node]
id = "{node}"
[api]
bind = "127.0.0.1:{api}"
token = "{TOKEN}"
[cluster]
bind = "127.0.0.1:{gossip[i]}"
seeds = [{seeds}]
role = "{role}"
voters = ["v1", "v2", "v3"]
data_dir = "{home}/raft"
"""
        path = os.path.join(home, "vigil.toml")
        with open(path, "w") as f:
            f.write(config)
        Proc([args.vigil, "agent", "-c", path], os.path.join(home, "agent.log"), args.pidfile, cwd=home)
    for api in apis:
        wait_until("an agent to answer", 30, lambda: request(api, "GET", "/health/live")[0] or None)
    wait_until("a leader", 30, lambda: (request(apis[0], "GET", "/v1/leader")[2] or {}).get("leader_id"))

    port = free_port()
    member = apis[3]
    body = {"name": "api", "id": "api-1", "address": "127.0.0.1", "port": port,
            "checks": [{"name": "tcp", "probe": f"tcp://127.0.0.1:{port}", "interval": f"{args.interval_ms}ms"}]}
    wait_until("the registration", 30, lambda: request(member, "POST", "/v1/services", body)[0] in (200, 201) or None)

    def listed(api):
        status, headers, answer = request(api, "GET", "/v1/services/api?healthy")
        if status != 200 or not answer:
            return None
        return int(headers.get("x-vigil-index", "0")), [i["id"] for i in answer["instances"]]

    times = []
    for trial in range(args.trials):
        service = Proc([args.vigil, "fake-service", "--port", str(port)],
                       os.path.join(work, "service.log"), args.pidfile)
        indexes = []
        for api in apis:
            index, _ = wait_until("the instance to pass everywhere", 30,
                                  lambda: (lambda l: l if l and l[1] == ["api-1"] else None)(listed(api)))
            indexes.append(index)
        gone_at = [None] * len(apis)

        def follow(k, api, index):
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                status, headers, answer = request(api, "GET", f"/v1/services/api?healthy&index={index}&wait=20s", timeout=25)
                if status == 200 and answer is not None:
                    if "api-1" not in [i["id"] for i in answer["instances"]]:
                        gone_at[k] = time.monotonic()
                        return
                    index = int(headers.get("x-vigil-index", index))

        threads = [threading.Thread(target=follow, args=(k, api, indexes[k])) for k, api in enumerate(apis)]
        for t in threads:
            t.start()
        time.sleep(0.2 + random.random() * args.interval_ms / 1000)
        killed = time.monotonic()
        service.kill9()
        for t in threads:
            t.join()
        if None in gone_at:
            raise SystemExit(f"trial {trial}: an agent never dropped the instance")
        last = (max(gone_at) - killed) * 1000
        first = (min(gone_at) - killed) * 1000
        times.append(last)
        log(f"vigil trial {trial + 1}: gone at the first agent after {first:.0f} ms, at the last after {last:.0f} ms")
    return times


HOLDER = """
import sys, time
from kazoo.client import KazooClient
zk = KazooClient(hosts=sys.argv[1], timeout=float(sys.argv[3]))
zk.start(timeout=30)
zk.create(sys.argv[2], b"x", ephemeral=True, makepath=True)
print("ready", flush=True)
time.sleep(3600)
"""


def zookeeper_trials(args):
    from kazoo.client import KazooClient

    work = os.path.join(args.work, "zookeeper")
    client_ports = [free_port() for _ in range(3)]
    peers = [(free_port(), free_port()) for _ in range(3)]
    for i in range(3):
        home = os.path.join(work, f"zk{i + 1}")
        os.makedirs(os.path.join(home, "data"), exist_ok=True)
        with open(os.path.join(home, "data", "myid"), "w") as f:
            f.write(f"{i + 1}\n")
        servers = "\n".join(f"server.{j + 1}=127.0.0.1:{peers[j][0]}:{peers[j][1]}" for j in range(3))
        cfg = os.path.join(home, "zoo.cfg")
        with open(cfg, "w") as f:
            f.write(f"tickTime={args.zk_tick_ms}\ninitLimit=10\nsyncLimit=5\n"
                    f"dataDir={home}/data\nclientPort={client_ports[i]}\nclientPortAddress=127.0.0.1\n"
                    f"admin.enableServer=false\n{servers}\n")
        Proc(["java", "-cp", f"/etc/zookeeper/conf:{args.zk_classpath}",
              "-Dzookeeper.log.dir=" + home, "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg],
             os.path.join(home, "zk.log"), args.pidfile)
    hosts = ",".join(f"127.0.0.1:{p}" for p in client_ports)
    watcher = KazooClient(hosts=hosts, timeout=10)
    deadline = time.monotonic() + 60
    while True:
        try:
            watcher.start(timeout=5)
            watcher.ensure_path("/bench")
            break
        except Exception as e:  # the ensemble still electing
            if time.monotonic() > deadline:
                raise SystemExit(f"ZooKeeper did not start: {e}")
            time.sleep(0.5)
    session = 2 * args.zk_tick_ms / 1000
    times = []
    for trial in range(args.trials):
        path = f"/bench/holder-{trial}"
        holder = Proc([sys.executable, "-c", HOLDER, hosts, path, str(session)],
                      os.path.join(work, "holder.log"), args.pidfile, stdout=subprocess.PIPE)
        line = holder.p.stdout.readline()
        if b"ready" not in line:
            raise SystemExit("the ZooKeeper holder did not start")
        gone = threading.Event()

        def watch(event):
            if event.type == "DELETED":
                gone.set()

        if watcher.exists(path, watch=watch) is None:
            raise SystemExit("the ephemeral node is missing")
        time.sleep(random.random())
        killed = time.monotonic()
        holder.kill9()
        if not gone.wait(60):
            raise SystemExit(f"trial {trial}: the node never went")
        took = (time.monotonic() - killed) * 1000
        times.append(took)
        log(f"zookeeper trial {trial + 1}: node gone for the watcher after {took:.0f} ms")
    watcher.stop()
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vigil", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--pidfile", required=True)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--interval-ms", type=int, default=1000)
    ap.add_argument("--zk-tick-ms", type=int, default=2000)
    ap.add_argument("--zk-classpath", default="/usr/share/java/zookeeper.jar")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

    results = []
    for name, run in (("vigil", vigil_trials), ("zookeeper", zookeeper_trials)):
        log(f"{name}: {args.trials} trials")
        times = run(args)
        results.append({"system": name, "trials": len(times), "p50_ms": percentile(times, 50),
                        "p99_ms": percentile(times, 99), "min_ms": min(times), "max_ms": max(times),
                        "times_ms": times})
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    labels = {"vigil": f"vigil: instance process killed → gone from `?healthy` at the last of 10 agents ({args.interval_ms} ms TCP check)",
              "zookeeper": f"ZooKeeper: holder killed → ephemeral node gone for a watcher (session {2 * args.zk_tick_ms} ms)"}
    for r in results:
        print(f"| {labels[r['system']]} | {r['trials']} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['min_ms']:.0f} | {r['max_ms']:.0f} |")


if __name__ == "__main__":
    main()
