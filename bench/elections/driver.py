#!/usr/bin/env python3
"""Leader-election failover for users' services: ZooKeeper (kazoo's Election recipe), etcd (its
election API through the JSON gateway) and vigil (`vigil elect`), side by side on 127.0.0.1.

Each system runs as 3 nodes. Two candidates campaign in one election, each talking to a different
node (slot 1 to node 1, slot 2 to node 2, as a service talks to its local agent), each in a
process group of its own. The candidate that wins starts holder.py, which appends
"<candidate> <fencing token> <CLOCK_MONOTONIC ns>" to the row's lines file and sleeps.

Scenarios, one row per system, timeout and scenario:
  kill9     SIGKILL the leading candidate's process group.
  sigstop   SIGSTOP it (a hung process whose connections stay open); SIGKILL it after the trial.
  critical  vigil only: fail the TTL check of the service instance the leader is bound to.
Failover = the first line of another candidate stamped after the driver's CLOCK_MONOTONIC reading
taken just before the signal (or the request), minus that reading. The old leader's slot is then
refilled by a new candidate (new id), and the next trial starts once a live candidate leads and
the other one campaigns. A trial that sees no failover within --trial-timeout fails, is reported,
and both candidates are replaced.

`bench` runs it all; `zk-candidate` and `etcd-candidate` are the peers' candidates. Every process
started is recorded (--pidfile: servers and agents; --pgfile: candidate process groups; the
holders file: holder PIDs) so that run.sh can kill them by PID if this process dies first.
"""

import argparse
import base64
import ctypes
import http.client
import itertools
import json
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from vigil_voters import write_configs  # noqa: E402

TOKEN = "bench-token"
HERE = os.path.dirname(os.path.abspath(__file__))
HOLDER = os.path.join(HERE, "holder.py")
SERVICE = "bench-head"  # the service whose instances the `critical` candidates are bound to
# Candidate ids, unique in the whole run: the holders file that maps them to PIDs is shared.
CANDIDATE_IDS = itertools.count(1)
LOG4J = "/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar"


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def mono_ns():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, method, path, body=None, headers=None, timeout=2.0):
    """(status, parsed JSON or None); (0, None) when the connection fails. timeout=None blocks."""
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
    """Nearest rank: with 20 values p99 is the largest."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def duration_ms(text):
    """"1s", "500ms", "1.5s", "2m" → milliseconds (vigil's duration syntax, the forms used here)."""
    for suffix, scale in (("ms", 1), ("s", 1000), ("m", 60000)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * scale
    raise SystemExit(f"cannot read the duration {text!r} (use e.g. 1s or 500ms)")


def b64(text):
    return base64.b64encode(text.encode()).decode()


def pid_alive(pid):
    """Running or stopped, not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def become_subreaper():
    # A holder outlives its candidate by a moment when the group is killed (or for good when the
    # candidate ran it outside its group); it is then reparented. PID 1 of this machine's
    # containers does not reap, so without this every trial would leave zombies behind.
    PR_SET_CHILD_SUBREAPER = 36
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def cpu_ticks():
    """(busy, total) ticks of the whole machine."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    total = sum(fields)
    return total - fields[3] - fields[4], total


# ---------------------------------------------------------------------------------------------
# The peers' candidates (subcommands). Both start the holder from their leader callback and stop
# it once leadership may be gone, as a careful user of each client would.


def start_holder(a, token):
    env = dict(os.environ, VIGIL_FENCING_TOKEN=str(token))
    return subprocess.Popen([sys.executable, "-S", HOLDER, a.id, a.lines, a.holders], env=env)


def report_status(a, key, value):
    with open(a.status, "a") as f:
        f.write(f"{a.id} {key} {value}\n")


class Leadership:
    """The leader callback's holder, and the moment the candidate stops (once leadership may be
    lost, or the campaign failed): the holder is then stopped and the process exits."""

    def __init__(self, a):
        self.a = a
        self.ended = threading.Event()
        self.lock = threading.Lock()
        self.holder = None
        self.reason = None

    def end(self, reason):
        if not self.ended.is_set():
            self.reason = reason
            self.ended.set()

    def won(self, token):
        with self.lock:
            if not self.ended.is_set():
                self.holder = start_holder(self.a, token)

    def wait_and_exit(self, close=None):
        self.ended.wait()
        with self.lock:
            if self.holder:
                self.holder.terminate()
                self.holder.wait()
        print(f"{self.a.id}: stopped: {self.reason}", file=sys.stderr, flush=True)
        if close:
            # Closing the session hands the role on at once; bounded, since it may hang when the
            # connection is what failed.
            t = threading.Thread(target=close, daemon=True)
            t.start()
            t.join(2)
        os._exit(1)


class NegotiatedTimeout(logging.Handler):
    """kazoo reports the session timeout the server granted only in a log record of its BLATHER
    level (5), "Session created ... negotiated session timeout: %s". Pass `.logger` to
    KazooClient(logger=...) to catch it."""

    def __init__(self):
        super().__init__(level=5)
        self.value = None
        self.logger = logging.getLogger(f"elections.kazoo.{id(self)}")
        self.logger.addHandler(self)
        self.logger.setLevel(5)

    def emit(self, record):
        if self.value is None and str(record.msg).startswith("Session created") and len(record.args) >= 3:
            self.value = record.args[2]

    def done(self):
        # BLATHER logs every ping: back to warnings once the session is there.
        self.logger.setLevel(logging.WARNING)
        return self.value


def zk_candidate(a):
    from kazoo.client import KazooClient, KazooState

    leadership = Leadership(a)
    leading = threading.Event()
    negotiated = NegotiatedTimeout()
    zk = KazooClient(hosts=a.hosts, timeout=a.session_ms / 1000, logger=negotiated.logger)

    def on_state(state):
        # SUSPENDED (connection lost, session maybe alive) ends a leader: it cannot tell whether
        # its session, and so its role, still exist. A standby only stops once the session is LOST.
        if state == KazooState.LOST or (state == KazooState.SUSPENDED and leading.is_set()):
            leadership.end(f"session {state}")

    zk.add_listener(on_state)
    zk.start(timeout=30)
    report_status(a, "session_ms", negotiated.done())
    election = zk.Election(a.path, a.id)

    def lead():
        leading.set()
        # The lock node is "<uuid>__lock__<10-digit sequence>": the sequence orders the
        # contenders and only grows, a fencing token.
        leadership.won(int(election.lock.node[-10:]))
        leadership.ended.wait()

    def campaign():
        try:
            election.run(lead)
        except Exception as e:  # noqa: BLE001 - any failure of the recipe ends the candidate
            leadership.end(f"election failed: {e!r}")
        leadership.end("leadership returned")

    threading.Thread(target=campaign, daemon=True).start()
    leadership.wait_and_exit(close=zk.stop)


def etcd_candidate(a):
    leadership = Leadership(a)
    status, body = request(a.port, "POST", "/v3/lease/grant", {"TTL": a.ttl}, timeout=10)
    if status != 200 or not body or "ID" not in body:
        raise SystemExit(f"{a.id}: lease grant failed: {status} {body}")
    lease, granted = body["ID"], int(body["TTL"])
    report_status(a, "lease_ttl_s", granted)

    def keepalive():
        # clientv3's cadence: a keepalive every TTL/3. One POST to the gateway's streaming
        # endpoint is one keepalive (the stream ends with the request body).
        last_ok = time.monotonic()
        while not leadership.ended.is_set():
            st, b = request(a.port, "POST", "/v3/lease/keepalive", {"ID": lease}, timeout=granted / 3)
            result = (b or {}).get("result")
            if st == 200 and result is not None:
                if int(result.get("TTL", 0)) <= 0:
                    leadership.end("lease expired")
                    return
                last_ok = time.monotonic()
            elif time.monotonic() - last_ok >= granted:
                leadership.end(f"no keepalive answered for {granted} s")
                return
            leadership.ended.wait(granted / 3)

    def campaign():
        # Blocks until this lease's key is the oldest under the election's prefix.
        st, b = request(a.port, "POST", "/v3/election/campaign",
                        {"name": b64(a.name), "lease": lease, "value": b64(a.id)}, timeout=None)
        if st != 200 or not b or "leader" not in b:
            leadership.end(f"campaign failed: {st} {b}")
            return
        # The leader key's creation revision: grows with every new leader, etcd's fencing token.
        leadership.won(int(b["leader"]["rev"]))

    threading.Thread(target=keepalive, daemon=True).start()
    threading.Thread(target=campaign, daemon=True).start()
    leadership.wait_and_exit(close=lambda: request(a.port, "POST", "/v3/lease/revoke", {"ID": lease}))


# ---------------------------------------------------------------------------------------------
# The benchmark.


class Registry:
    """Starts processes and records them for run.sh's cleanup."""

    def __init__(self, pidfile, pgfile, holders):
        self.pidfile, self.pgfile, self.holders = pidfile, pgfile, holders

    def server(self, argv, log_path, cwd=None):
        out = open(log_path, "ab")
        p = subprocess.Popen(argv, stdout=out, stderr=out, cwd=cwd)
        out.close()
        with open(self.pidfile, "a") as f:
            f.write(f"{p.pid}\n")
        return p

    def candidate(self, argv, log_path):
        out = open(log_path, "ab")
        p = subprocess.Popen(argv, stdout=out, stderr=out, start_new_session=True)
        out.close()
        with open(self.pgfile, "a") as f:
            f.write(f"{p.pid}\n")
        return p

    def holder_pid(self, cid):
        try:
            with open(self.holders) as f:
                for line in f:
                    c, pid = line.split()
                    if c == cid:
                        return int(pid)
        except OSError:
            pass
        return None


def stop_server(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def wait_for(limit, probe, interval=0.05):
    """probe()'s first value that is not None, or None after `limit` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = probe()
        if value is not None:
            return value
        time.sleep(interval)
    return None


class Config:
    """One timeout setting a system's candidates run with. `key` names it in the row ids."""

    def __init__(self, key, label, value, value_ms):
        self.key, self.label, self.value, self.value_ms = key, label, value, value_ms


class ZooKeeper:
    name = "zookeeper"
    scenarios = ("kill9", "sigstop")

    def __init__(self, args, reg):
        self.args, self.reg = args, reg
        self.work = os.path.join(args.work, "zookeeper")
        self.servers, self.ports, self.client = [], [], None
        self.info = {"tick_ms": args.zk_tick_ms}

    def start(self):
        from kazoo.client import KazooClient
        import kazoo.version

        self.ports = [free_port() for _ in range(3)]
        peers = [(free_port(), free_port()) for _ in range(3)]
        servers = "\n".join(f"server.{j + 1}=127.0.0.1:{peers[j][0]}:{peers[j][1]}" for j in range(3))
        tick = self.args.zk_tick_ms
        for i in range(3):
            home = os.path.join(self.work, f"zk{i + 1}")
            os.makedirs(os.path.join(home, "data"), exist_ok=True)
            with open(os.path.join(home, "data", "myid"), "w") as f:
                f.write(f"{i + 1}\n")
            cfg = os.path.join(home, "zoo.cfg")
            # initLimit/syncLimit (in ticks) only bound how long a follower may take to sync or
            # lag: generous (10 s, 2 s) so that a busy shared machine does not break the ensemble;
            # they do not enter session expiry. maxSessionTimeout lifted so that any vigil TTL fits.
            with open(cfg, "w") as f:
                f.write(f"tickTime={tick}\ninitLimit={10000 // tick}\nsyncLimit={2000 // tick}\n"
                        f"maxSessionTimeout=60000\n"
                        f"dataDir={home}/data\nclientPort={self.ports[i]}\nclientPortAddress=127.0.0.1\n"
                        f"admin.enableServer=false\n{servers}\n")
            # Debian's jar names no slf4j binding: without log4j's, the servers log nothing.
            self.servers.append(self.reg.server(
                ["java", "-cp", f"/etc/zookeeper/conf:{self.args.zk_classpath}:{LOG4J}",
                 f"-Dzookeeper.log.dir={home}", "-Dzookeeper.root.logger=WARN,CONSOLE",
                 "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg],
                os.path.join(home, "zk.log")))
        # Its warnings while the ensemble elects ("Connection refused") are expected: kept quiet.
        quiet = logging.getLogger("elections.kazoo.driver")
        quiet.setLevel(logging.ERROR)
        self.client = KazooClient(hosts=self.hosts(), timeout=10, logger=quiet)
        deadline = time.monotonic() + 90
        while True:
            try:
                self.client.start(timeout=5)
                self.client.ensure_path("/bench")
                break
            except Exception as e:  # noqa: BLE001 - the ensemble still electing
                if time.monotonic() > deadline:
                    raise SystemExit(f"ZooKeeper did not start: {e!r}")
                time.sleep(0.5)
        self.info["version"] = self.server_version()
        self.info["kazoo"] = kazoo.version.__version__
        # The server raises a smaller request to its floor. Not 1 ms: kazoo also uses the session
        # timeout as its connect timeout, and 1 ms is too short to connect at all.
        self.info["server_floor_ms"] = self.negotiated(50)
        log(f"zookeeper: ensemble up (tickTime {tick} ms); a 50 ms session request is granted "
            f"{self.info['server_floor_ms']} ms")

    @staticmethod
    def server_version():
        # The Debian package's version (the jar's manifest has none).
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "zookeeper"], capture_output=True, text=True)
        return out.stdout.strip() or "?"

    def describe(self):
        i = self.info
        return (f"ZooKeeper {i['version']} (Debian), kazoo {i['kazoo']}: tickTime {i['tick_ms']} ms; a 50 ms session "
                f"request is granted {i['server_floor_ms']} ms (minSessionTimeout = 2 × tickTime); the `min` rows "
                f"ask {self.args.zk_session_ms} ms, the smallest session a kazoo client keeps (it pings after a "
                f"random 0–400 ms idle time, whatever the timeout)")

    def negotiated(self, ms):
        """The session timeout the ensemble grants a client asking for `ms`."""
        from kazoo.client import KazooClient

        catch = NegotiatedTimeout()
        probe = KazooClient(hosts=f"127.0.0.1:{self.ports[0]}", timeout=ms / 1000, logger=catch.logger)
        try:
            probe.start(timeout=10)
            return catch.done()
        finally:
            catch.logger.setLevel(logging.ERROR)  # a session this short may drop while it closes
            probe.stop()
            probe.close()

    def hosts(self):
        return ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def stop(self):
        if self.client:
            self.client.stop()
            self.client.close()
        for p in self.servers:
            stop_server(p)

    def configs(self):
        smallest = self.args.zk_session_ms
        ttl = duration_ms(self.args.vigil_ttl)
        out = [Config("min", f"session {smallest} ms (min)", smallest, smallest)]
        if round(ttl) != smallest:
            out.append(Config("ttl", f"session {ttl:.0f} ms (= vigil TTL)", round(ttl), ttl))
        return out

    def candidate_argv(self, run, slot, cid):
        return [sys.executable, __file__, "zk-candidate", "--hosts", f"127.0.0.1:{self.ports[slot]}",
                "--path", f"/bench/{run.row}", "--session-ms", str(run.config.value)] + run.candidate_common(cid)

    def campaigning(self, run):
        try:
            return len(self.client.get_children(f"/bench/{run.row}")) == 2
        except Exception:  # noqa: BLE001 - no node yet
            return False


class Etcd:
    name = "etcd"
    scenarios = ("kill9", "sigstop")

    def __init__(self, args, reg):
        self.args, self.reg = args, reg
        self.work = os.path.join(args.work, "etcd")
        self.servers, self.ports = [], []
        self.info = {"election_ms": args.etcd_election_ms, "heartbeat_ms": args.etcd_heartbeat_ms}

    def start(self):
        peers = [free_port() for _ in range(3)]
        self.ports = [free_port() for _ in range(3)]
        cluster = ",".join(f"e{i + 1}=http://127.0.0.1:{peers[i]}" for i in range(3))
        for i in range(3):
            name = f"e{i + 1}"
            home = os.path.join(self.work, name)
            os.makedirs(home, exist_ok=True)
            client = f"http://127.0.0.1:{self.ports[i]}"
            self.servers.append(self.reg.server(
                [self.args.etcd, "--name", name, "--data-dir", os.path.join(home, "data"),
                 "--listen-client-urls", client, "--advertise-client-urls", client,
                 "--listen-peer-urls", f"http://127.0.0.1:{peers[i]}",
                 "--initial-advertise-peer-urls", f"http://127.0.0.1:{peers[i]}",
                 "--initial-cluster", cluster, "--initial-cluster-state", "new",
                 "--initial-cluster-token", "vigil-elections",
                 "--election-timeout", str(self.args.etcd_election_ms),
                 "--heartbeat-interval", str(self.args.etcd_heartbeat_ms), "--log-level", "warn"],
                os.path.join(home, "etcd.log")))

        def leader():
            leaders = set()
            for port in self.ports:
                status, body = request(port, "POST", "/v3/maintenance/status", {})
                if status != 200 or not body or not body.get("leader"):
                    return None
                leaders.add(body["leader"])
            return True if len(leaders) == 1 else None

        if not wait_for(60, leader, 0.2):
            raise SystemExit("etcd: no leader within 60 s")
        # What the cluster grants for the smallest TTL one can ask (leases are whole seconds).
        status, body = request(self.ports[0], "POST", "/v3/lease/grant", {"TTL": 1}, timeout=10)
        self.info["granted_for_1s_s"] = int(body["TTL"]) if status == 200 and body else None
        if body and "ID" in body:
            request(self.ports[0], "POST", "/v3/lease/revoke", {"ID": body["ID"]})
        version = subprocess.run([self.args.etcd, "--version"], capture_output=True, text=True).stdout
        self.info["version"] = version.split("\n")[0].replace("etcd Version: ", "")
        log(f"etcd: cluster up (election {self.args.etcd_election_ms} ms, heartbeat "
            f"{self.args.etcd_heartbeat_ms} ms); a 1 s lease request is granted {self.info['granted_for_1s_s']} s")

    def describe(self):
        i = self.info
        return (f"etcd {i['version']}: election timeout {i['election_ms']} ms, heartbeat {i['heartbeat_ms']} ms; "
                f"a 1 s lease request is granted {i['granted_for_1s_s']} s (leases are whole seconds, at least "
                f"1.5 × the election timeout rounded up)")

    def stop(self):
        for p in self.servers:
            stop_server(p)

    def configs(self):
        # A lease TTL is whole seconds; 1 s is the smallest one can ask, and the cluster raises
        # it to its floor (1.5 × election timeout, rounded up to seconds).
        floor = self.info.get("granted_for_1s_s") or 1
        out = [Config("min", f"lease {floor} s granted (min)", 1, floor * 1000)]
        ttl = duration_ms(self.args.vigil_ttl)
        if ttl % 1000 or ttl / 1000 < floor:
            log(f"etcd: cannot grant vigil's TTL {self.args.vigil_ttl} (whole seconds from {floor} s); no row at it")
        elif ttl / 1000 > floor:
            out.append(Config("ttl", f"lease {ttl / 1000:.0f} s (= vigil TTL)", int(ttl / 1000), ttl))
        else:
            out[0].label = f"lease {floor} s granted (min = vigil TTL)"
        return out

    def candidate_argv(self, run, slot, cid):
        return [sys.executable, __file__, "etcd-candidate", "--port", str(self.ports[slot]),
                "--name", run.row, "--ttl", str(run.config.value)] + run.candidate_common(cid)

    def campaigning(self, run):
        # Each campaigner's key is "<name>/<lease id>"; the prefix's range end is "<name>0".
        status, body = request(self.ports[0], "POST", "/v3/kv/range",
                               {"key": b64(run.row + "/"), "range_end": b64(run.row + "0"), "count_only": True})
        return status == 200 and body is not None and int(body.get("count", 0)) == 2


class Vigil:
    name = "vigil"
    scenarios = ("kill9", "sigstop", "critical")

    def __init__(self, args, reg):
        self.args, self.reg = args, reg
        self.work = os.path.join(args.work, "vigil")
        self.agents, self.apis = [], []
        self.info = {"ttl": args.vigil_ttl}

    @staticmethod
    def available(binary):
        try:
            return subprocess.run([binary, "elect", "--help"], capture_output=True, timeout=30).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False

    def start(self):
        self.info["version"] = subprocess.run([self.args.vigil, "--version"], capture_output=True,
                                              text=True).stdout.strip()
        # The voters of bench/leadership: 3 on 127.0.0.1, each with a passing critical TTL check
        # of its own so that every one stays eligible to lead the Raft group.
        for node_id, home, api, path in write_configs(self.work, TOKEN):
            self.agents.append(self.reg.server([self.args.vigil, "agent", "-c", path],
                                               os.path.join(home, "agent.log"), cwd=home))
            self.apis.append(api)
        for api in self.apis:
            if not wait_for(30, lambda: request(api, "GET", "/health/live")[0] or None):
                raise SystemExit("vigil: an agent did not answer within 30 s")
            self.api(api, "PUT", "/v1/checks/heart/pass")

        def leader():
            seen = set()
            for api in self.apis:
                status, body = request(api, "GET", "/v1/leader")
                if status != 200 or not body or not body.get("leader_id") or not body.get("has_quorum"):
                    return None
                seen.add((body["leader_id"], body["term"]))
            return True if len(seen) == 1 else None

        if not wait_for(60, leader, 0.2):
            raise SystemExit("vigil: the voters agreed on no leader within 60 s")
        log(f"vigil: {self.info['version']}, 3 voters up")

    def describe(self):
        return f"{self.info['version']}: `vigil elect --ttl {self.args.vigil_ttl}`"

    def api(self, port, method, path, body=None, timeout=5):
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        return request(port, method, path, body, headers, timeout=timeout)

    def stop(self):
        for p in self.agents:
            stop_server(p)

    def configs(self):
        ttl = self.args.vigil_ttl
        return [Config("ttl", f"ttl {ttl}", ttl, duration_ms(ttl))]

    def candidate_argv(self, run, slot, cid):
        argv = [self.args.vigil, "elect", run.row, "--id", cid, "--ttl", run.config.value,
                "--addr", f"http://127.0.0.1:{self.apis[slot]}", "--token", TOKEN]
        if run.scenario == "critical":
            argv += ["--instance", f"{SERVICE}/{cid}"]
        return argv + ["--"] + run.holder_argv(cid)

    def before_candidate(self, run, slot, cid):
        """For `critical`: the instance the candidate is bound to, registered on its agent and
        passing. Its TTL (1 h) outlasts any run: only the driver's `fail` makes it critical."""
        if run.scenario != "critical":
            return True
        body = {"name": SERVICE, "id": cid, "address": "127.0.0.1", "port": free_port(),
                "checks": [{"name": "alive", "probe": "ttl", "ttl": "1h"}]}
        api = self.apis[slot]
        ok = wait_for(30, lambda: self.api(api, "POST", "/v1/services", body)[0] in (200, 201) or None, 0.2)
        ok = ok and wait_for(30, lambda: self.api(api, "PUT", f"/v1/services/{SERVICE}/{cid}/pass")[0] in (200, 204) or None, 0.2)
        return bool(ok)

    def after_candidate(self, run, slot, cid):
        if run.scenario == "critical":
            self.api(self.apis[slot], "DELETE", f"/v1/services/{SERVICE}/{cid}")

    def fail_instance(self, slot, cid):
        """Sends the `fail`; returns the CLOCK_MONOTONIC reading taken just before, or None if it
        was refused."""
        t0 = mono_ns()
        status, _ = self.api(self.apis[slot], "PUT", f"/v1/services/{SERVICE}/{cid}/fail")
        return t0 if status in (200, 204) else None

    def campaigning(self, run):
        # Both candidates are in line once the election lists them (as any agent answers).
        status, body = request(self.apis[0], "GET", f"/v1/elections/{run.row}")
        if status != 200 or not body:
            return False
        listed = {c.get("id") for c in body.get("candidates", [])}
        return all(c.cid in listed for c in run.cands.values())


class Line:
    def __init__(self, text):
        cid, token, ns = text.split()
        self.cid, self.ns = cid, int(ns)
        self.token = int(token) if token.lstrip("-").isdigit() else token


class Lines:
    """Tails a holders' lines file."""

    def __init__(self, path):
        self.path, self.offset, self.partial = path, 0, ""
        open(path, "a").close()

    def poll(self):
        with open(self.path) as f:
            f.seek(self.offset)
            data = f.read()
            self.offset = f.tell()
        data = self.partial + data
        *complete, self.partial = data.split("\n")
        return [Line(t) for t in complete if t.strip()]


class Candidate:
    def __init__(self, cid, slot, proc):
        self.cid, self.slot, self.proc, self.started = cid, slot, proc, time.monotonic()


class Run:
    """One row: a system, a timeout setting and a scenario, with its two candidate slots."""

    def __init__(self, system, config, scenario, args, reg):
        self.system, self.config, self.scenario, self.args, self.reg = system, config, scenario, args, reg
        self.row = f"{system.name}-{config.key}-{scenario}"
        self.dir = os.path.join(args.work, "rows", self.row)
        os.makedirs(self.dir, exist_ok=True)
        self.lines = Lines(os.path.join(self.dir, "lines"))
        self.status = os.path.join(self.dir, "status")
        self.cands = {}
        self.leader = None
        self.times, self.failures, self.notes = [], [], []
        self.unprovoked = self.exits = self.orphans = self.fencing_violations = 0
        self.old_holder_exit_ms = []  # critical: fail → the old leader's holder gone
        self.overlap_ms = []  # critical: how long both holders ran at once

    def holder_argv(self, cid):
        return [sys.executable, "-S", HOLDER, cid, self.lines.path, self.reg.holders]

    def candidate_common(self, cid):
        return ["--id", cid, "--lines", self.lines.path, "--holders", self.reg.holders, "--status", self.status]

    def note(self, text):
        log(f"  {self.row}: {text}")
        self.notes.append(text)

    def spawn(self, slot):
        cid = f"c{next(CANDIDATE_IDS)}"
        if hasattr(self.system, "before_candidate") and not self.system.before_candidate(self, slot, cid):
            self.note(f"{cid}: its service instance could not be registered and passed")
        argv = self.system.candidate_argv(self, slot, cid)
        proc = self.reg.candidate(argv, os.path.join(self.dir, f"{cid}.log"))
        self.cands[slot] = Candidate(cid, slot, proc)

    def discard(self, slot):
        """SIGKILLs the slot's process group (stopped members die too), then its holder if that
        was outside the group, and forgets the candidate."""
        c = self.cands.pop(slot)
        try:
            os.killpg(c.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        c.proc.wait()
        self.kill_holder(c.cid)
        if hasattr(self.system, "after_candidate"):
            self.system.after_candidate(self, slot, c.cid)

    def kill_holder(self, cid):
        pid = self.reg.holder_pid(cid)
        if pid is None:
            return
        # A holder in the candidate's group is dead within moments of the group's SIGKILL.
        if wait_for(0.5, lambda: None if pid_alive(pid) else True, 0.01) is None:
            self.orphans += 1
            self.note(f"{cid}'s holder (pid {pid}) outlived its candidate's SIGKILL")
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            wait_for(2, lambda: None if pid_alive(pid) else True, 0.01)
        reap(pid)

    def slot_of(self, cid):
        for slot, c in self.cands.items():
            if c.cid == cid:
                return slot
        return None

    def take(self, line):
        if self.leader and line.cid != self.leader.cid:
            if isinstance(line.token, int) and isinstance(self.leader.token, int) and line.token <= self.leader.token:
                self.fencing_violations += 1
                self.note(f"fencing token went from {self.leader.token} ({self.leader.cid}) to {line.token} ({line.cid})")
        self.leader = line

    def settle(self):
        """Waits until a live candidate leads and the other campaigns; returns the leader's slot,
        or None after --trial-timeout. Candidates that exited are replaced; a leader change seen
        here was not provoked by the driver and is counted."""
        deadline = time.monotonic() + self.args.trial_timeout
        while time.monotonic() < deadline:
            for slot in (0, 1):
                c = self.cands[slot]
                if c.proc.poll() is not None:
                    self.exits += 1
                    self.note(f"{c.cid} exited by itself (status {c.proc.returncode}); replaced")
                    self.discard(slot)
                    self.spawn(slot)
            for line in self.lines.poll():
                if self.leader and line.cid != self.leader.cid:
                    self.unprovoked += 1
                    self.note(f"{line.cid} took over from {self.leader.cid} without a signal")
                self.take(line)
            slot = self.slot_of(self.leader.cid) if self.leader else None
            if slot is not None and self.system.campaigning(self):
                return slot
            time.sleep(0.02)
        return None

    def reset(self):
        for slot in list(self.cands):
            self.discard(slot)
        self.lines.poll()  # whatever the discarded ones wrote
        self.leader = None
        for slot in (0, 1):
            self.spawn(slot)

    def trial(self, k):
        slot = self.settle()
        if slot is None:
            return self.fail(k, f"no leader with a campaigning second candidate within {self.args.trial_timeout} s")
        old, cand = self.leader, self.cands[slot]
        other = self.cands[1 - slot]
        # A random phase against the candidates' keepalive/ping cadence.
        time.sleep(random.uniform(0, 0.5))
        if self.scenario == "critical":
            t0 = self.system.fail_instance(slot, cand.cid)
            if t0 is None:
                return self.fail(k, f"PUT .../{cand.cid}/fail was refused")
        else:
            sig = signal.SIGKILL if self.scenario == "kill9" else signal.SIGSTOP
            t0 = mono_ns()
            os.killpg(cand.proc.pid, sig)
        new = None
        deadline = time.monotonic() + self.args.trial_timeout
        while new is None and time.monotonic() < deadline:
            for line in self.lines.poll():
                if line.cid == old.cid:
                    continue
                if line.ns <= t0:
                    self.unprovoked += 1
                    self.note(f"{line.cid} took over from {old.cid} just before the signal")
                elif new is None:
                    new = line
                self.take(line)
            if new is None:
                time.sleep(0.01)
        if self.scenario == "critical" and new is not None:
            self.watch_old_holder(old, new, t0)
        self.discard(slot)
        self.spawn(slot)
        if new is None:
            return self.fail(k, f"no other candidate held within {self.args.trial_timeout} s")
        if new.cid != other.cid:
            self.note(f"trial {k}: {new.cid} took over, not the standby {other.cid}")
        ms = (new.ns - t0) / 1e6
        self.times.append(ms)
        log(f"  {self.row} trial {k}: {ms:.0f} ms ({old.cid} → {new.cid}, token {old.token} → {new.token})")

    def watch_old_holder(self, old, new, t0):
        """critical: the candidate that lost the role is alive; its holder must stop."""
        pid = self.reg.holder_pid(old.cid)
        if pid is None:
            return
        gone = wait_for(10, lambda: None if pid_alive(pid) else mono_ns(), 0.005)
        reap(pid)
        if gone is None:
            self.note(f"{old.cid}'s holder still ran 10 s after it lost the role")
            return
        # A holder stopped by SIGTERM wrote when: exact, where polling /proc is late by up to
        # a poll (5 ms and the scheduler's delay).
        try:
            with open(self.lines.path + ".stops") as f:
                stops = [line.split() for line in f]
        except FileNotFoundError:
            stops = []
        told = [int(ns) for c, ns in stops if c == old.cid and int(ns) > t0]
        if told:
            gone = min(gone, told[-1])
        self.old_holder_exit_ms.append((gone - t0) / 1e6)
        self.overlap_ms.append(max(0.0, (gone - new.ns) / 1e6))

    def fail(self, k, reason):
        self.failures.append(f"trial {k}: {reason}")
        log(f"  {self.row} trial {k}: FAILED: {reason}")
        self.reset()

    def execute(self, trials):
        load0, (b0, t0) = loadavg(), cpu_ticks()
        for slot in (0, 1):
            self.spawn(slot)
        try:
            for k in range(1, trials + 1):
                self.trial(k)
        finally:
            for slot in list(self.cands):
                self.discard(slot)
        b1, t1 = cpu_ticks()
        granted = set()
        if os.path.exists(self.status):
            with open(self.status) as f:
                # "<candidate> session_ms 500" → "500 ms"
                granted = {f"{v} {k.rsplit('_', 1)[1]}" for _, k, v in (line.split() for line in f)}
        return {
            "system": self.system.name, "scenario": self.scenario, "config": self.config.key,
            "timeout": self.config.label, "timeout_ms": self.config.value_ms,
            "granted": sorted(granted), "trials": trials, "ok": len(self.times),
            "p50_ms": percentile(self.times, 50), "p99_ms": percentile(self.times, 99),
            "min_ms": min(self.times, default=None), "max_ms": max(self.times, default=None),
            "times_ms": [round(t, 1) for t in self.times], "failures": self.failures,
            "unprovoked_handovers": self.unprovoked, "candidate_exits": self.exits,
            "orphan_holders": self.orphans, "fencing_violations": self.fencing_violations,
            "old_holder_exit_ms": [round(t, 1) for t in self.old_holder_exit_ms],
            "overlap_ms": [round(t, 1) for t in self.overlap_ms],
            "loadavg_start": load0, "loadavg_end": loadavg(),
            "machine_busy_pct": round(100 * (b1 - b0) / max(1, t1 - t0), 1), "notes": self.notes,
        }


def holder_start_cost(args, reg):
    """How long holder.py takes from Popen to its timestamp: a constant inside every figure."""
    path = os.path.join(args.work, "holder-probe.lines")
    lines = Lines(path)
    costs = []
    for i in range(10):
        t0 = mono_ns()
        p = subprocess.Popen([sys.executable, "-S", HOLDER, f"probe{i}", path, reg.holders])
        line = wait_for(5, lambda: (lines.poll() or [None])[0], 0.005)
        p.kill()
        p.wait()
        if line:
            costs.append((line.ns - t0) / 1e6)
    return {"p50_ms": percentile(costs, 50), "max_ms": max(costs, default=None), "all_ms": [round(c, 1) for c in costs]}


def fmt(ms):
    return "-" if ms is None else f"{ms:.0f}"


def ratios(rows):
    """For each vigil row: vigil's p50 and p99 over the faster peer's, at vigil's TTL and at the
    peers' smallest timeouts."""
    for r in rows:
        if r["system"] != "vigil" or r["p50_ms"] is None:
            continue
        for key, configs in (("same_ttl", ("ttl",)), ("peer_min", ("min",))):
            peers = [p for p in rows if p["system"] != "vigil" and p["scenario"] == r["scenario"]
                     and p["p50_ms"] is not None
                     and (p["config"] in configs or (key == "same_ttl" and p["timeout_ms"] == r["timeout_ms"]))]
            if peers:
                best = min(peers, key=lambda p: p["p50_ms"])
                r[f"vs_{key}"] = {"peer": f"{best['system']} {best['timeout']}",
                                  "p50": r["p50_ms"] / best["p50_ms"], "p99": r["p99_ms"] / best["p99_ms"]}


def report(results):
    rows = results["rows"]
    out = ["| system | scenario | timeout used | trials ok/total | p50 ms | p99 ms | "
           "vigil ÷ faster peer at vigil's TTL (p50, p99) | vigil ÷ faster peer at its min (p50, p99) | "
           "load avg 1m start→end, machine busy |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        vs = []
        for key in ("same_ttl", "peer_min"):
            v = r.get(f"vs_{key}")
            vs.append(f"{v['p50']:.2f}×, {v['p99']:.2f}× ({v['peer']})" if v else "-")
        out.append(f"| {r['system']} | {r['scenario']} | {r['timeout']} | {r['ok']}/{r['trials']} | "
                   f"{fmt(r['p50_ms'])} | {fmt(r['p99_ms'])} | {vs[0]} | {vs[1]} | "
                   f"{r['loadavg_start'][0]:.2f}→{r['loadavg_end'][0]:.2f}, {r['machine_busy_pct']:.0f}% |")
    out.append("")
    out.append("Failover: SIGKILL/SIGSTOP of the leading candidate's process group (or its instance's "
               "`fail`) → the other candidate's holder started, CLOCK_MONOTONIC on both ends. "
               "p99 is nearest-rank: with 20 trials, the largest.")
    h = results["holder_start"]
    out.append(f"- Included in every figure: starting holder.py (`python3 -S`), p50 {fmt(h['p50_ms'])} ms, "
               f"max {fmt(h['max_ms'])} ms.")
    out.append(f"- Machine: {results['machine']}; load average (1, 5, 15 min) "
               f"{' '.join(map(str, results['loadavg_start']))} at the start, "
               f"{' '.join(map(str, results['loadavg_end']))} at the end ({results['finished']}).")
    for info in results["systems"].values():
        out.append(f"- {info['description']}.")
    for r in rows:
        extra = []
        if r["granted"]:
            extra.append(f"granted to its candidates: {', '.join(r['granted'])}")
        for key, label in (("unprovoked_handovers", "leader changes nobody provoked"),
                           ("candidate_exits", "candidates that exited by themselves"),
                           ("orphan_holders", "holders that outlived their candidate's SIGKILL"),
                           ("fencing_violations", "fencing tokens that did not grow")):
            if r[key]:
                extra.append(f"{label}: {r[key]}")
        if r["old_holder_exit_ms"]:
            extra.append(f"old leader's holder stopped {fmt(percentile(r['old_holder_exit_ms'], 50))} ms "
                         f"after the fail (p50); both held for up to {fmt(max(r['overlap_ms']))} ms")
        extra += r["failures"]
        if extra:
            out.append(f"- {r['system']} {r['scenario']} ({r['timeout']}): " + "; ".join(extra))
    return "\n".join(out) + "\n"


def bench(args):
    kinds = {"zookeeper": ZooKeeper, "etcd": Etcd, "vigil": Vigil}
    unknown = [s for s in args.systems.split() if s not in kinds]
    if unknown:
        raise SystemExit(f"unknown system(s) {unknown}; choose from {sorted(kinds)}")
    # Before minutes of peer trials, not after.
    if "vigil" in args.systems.split() and not Vigil.available(args.vigil):
        raise SystemExit(f"vigil elect not available in {args.vigil}")
    become_subreaper()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    reg = Registry(args.pidfile, args.pgfile, os.path.join(args.work, "holders"))
    open(reg.holders, "a").close()
    results = {"machine": args.machine, "settings": {"trials": args.trials, "vigil_ttl": args.vigil_ttl, "zk_tick_ms": args.zk_tick_ms,
                            "zk_session_ms": args.zk_session_ms, "etcd_election_ms": args.etcd_election_ms,
                            "etcd_heartbeat_ms": args.etcd_heartbeat_ms, "trial_timeout_s": args.trial_timeout,
                            "python": sys.executable},
               "loadavg_start": loadavg(), "holder_start": holder_start_cost(args, reg),
               "systems": {}, "rows": []}
    log(f"holder.py starts in {fmt(results['holder_start']['p50_ms'])} ms (p50)")
    for name in args.systems.split():
        system = kinds[name](args, reg)
        try:
            system.start()
            results["systems"][name] = dict(system.info, description=system.describe())
            for config in system.configs():
                for scenario in system.scenarios:
                    log(f"{name}: {scenario}, {config.label}: {args.trials} trials")
                    results["rows"].append(Run(system, config, scenario, args, reg).execute(args.trials))
        finally:
            system.stop()
    results["loadavg_end"] = loadavg()
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    ratios(results["rows"])
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    text = report(results)
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write(text)
    print(text, end="")
    return 0 if all(r["ok"] == r["trials"] for r in results["rows"]) else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    b = sub.add_parser("bench")
    b.add_argument("--systems", default="zookeeper etcd vigil")
    b.add_argument("--machine", default="", help="a line describing the machine, for the report")
    b.add_argument("--work", required=True)
    b.add_argument("--pidfile", required=True)
    b.add_argument("--pgfile", required=True)
    b.add_argument("--out", required=True, help="directory for results.json and report.md")
    b.add_argument("--trials", type=int, default=20)
    b.add_argument("--trial-timeout", type=float, default=30)
    b.add_argument("--vigil", default="target/release/vigil")
    b.add_argument("--vigil-ttl", default="1s")
    b.add_argument("--etcd", default="etcd")
    b.add_argument("--etcd-election-ms", type=int, default=500)
    b.add_argument("--etcd-heartbeat-ms", type=int, default=100)
    b.add_argument("--zk-tick-ms", type=int, default=100)
    b.add_argument("--zk-session-ms", type=int, default=500)
    b.add_argument("--zk-classpath", default="/usr/share/java/zookeeper.jar")

    for name in ("zk-candidate", "etcd-candidate"):
        c = sub.add_parser(name)
        c.add_argument("--id", required=True)
        c.add_argument("--lines", required=True)
        c.add_argument("--holders", required=True)
        c.add_argument("--status", required=True)
        if name == "zk-candidate":
            c.add_argument("--hosts", required=True)
            c.add_argument("--path", required=True)
            c.add_argument("--session-ms", type=int, required=True)
        else:
            c.add_argument("--port", type=int, required=True)
            c.add_argument("--name", required=True)
            c.add_argument("--ttl", type=int, required=True)

    a = ap.parse_args()
    if a.cmd == "bench":
        sys.exit(bench(a))
    if a.cmd == "zk-candidate":
        zk_candidate(a)
    else:
        etcd_candidate(a)


if __name__ == "__main__":
    main()
