#!/usr/bin/env python3
"""Membership benchmark driver: N vigil agents, then N Serf agents, on loopback, same scenario.

Run through bench/membership/run.sh, which owns the temp dir, the PID file and the cleanup trap.

  driver.py run --system vigil|serf --n N --work DIR --out FILE.json [options]
  driver.py report FILE.json...      markdown tables (per N) and a summary, to stdout

Observation: this process starts every agent with its stdout+stderr on a pipe and one thread
reads all pipes (selectors), stamping each line with time.time() when it arrives. Membership
changes are taken from the lines each agent logs at the moment its view changes:

  vigil  `INFO member_up|member_suspect|member_alive|member_down|member_left id=X`
         (logged by vigil-cluster's driver right before the same event goes to /v1/events)
  Serf   `[INFO] serf: EventMemberJoin|EventMemberFailed|EventMemberLeave: X`
         (logged by serf when memberlist tells it, i.e. when `serf members` changes), plus
         `[INFO] agent: Received event: member-failed`, the moment the agent hands the
         (coalesced) event to event handlers and RPC streams, and memberlist's
         `Suspect X has failed, no acks received` / `Refuting a suspect message`.

Nothing polls: no CLI process or HTTP request runs during the timed phases. The member lists
are read once per agent after convergence (vigil GET /v1/members, `serf members -format json`)
to check that the logged view is the real one.
"""

import argparse
import datetime
import json
import math
import os
import random
import re
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Ports

def _free(port):
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def port_block(count, lo=20000, hi=32000):
    """First port of `count` consecutive ports free for TCP and UDP, below the ephemeral range."""
    for _ in range(200):
        base = random.randrange(lo, hi - count)
        if all(_free(p) for p in range(base, base + count)):
            return base
    raise SystemExit(f"no block of {count} free ports in {lo}-{hi}")


# ---------------------------------------------------------------------------------------------
# nftables counters: bytes the agents send on lo, by gossip port range

class Counters:
    """An nftables table counting loopback packets of the gossip ports [lo, hi].

    Every membership packet is sent by exactly one agent: UDP datagrams leave from the sender's
    gossip port (sport in range); on a TCP push-pull connection the acceptor's packets have its
    gossip port as sport and the dialer's packets come from an ephemeral port to the acceptor's
    gossip port (dport in range, sport not). The three counters together are therefore all the
    bytes the N agents sent (IP length: headers, TCP handshakes and ACKs included), and their sum
    divided by N is the mean per agent. A fourth counter (UDP to the range from outside it) should
    stay 0 and is reported as a check.
    """

    def __init__(self, name, lo, hi):
        self.name = name
        rng = f"{lo}-{hi}"
        rules = f"""
table inet {name} {{
    counter udp_out {{ }}
    counter tcp_acceptor {{ }}
    counter tcp_dialer {{ }}
    counter udp_foreign {{ }}
    chain out {{
        type filter hook output priority -150; policy accept;
        oifname "lo" udp sport {rng} counter name udp_out
        oifname "lo" udp dport {rng} udp sport != {rng} counter name udp_foreign
        oifname "lo" tcp sport {rng} counter name tcp_acceptor
        oifname "lo" tcp dport {rng} tcp sport != {rng} counter name tcp_dialer
    }}
}}
"""
        self.delete()
        subprocess.run(["nft", "-f", "-"], input=rules.encode(), check=True, timeout=10)

    def read(self):
        out = subprocess.run(["nft", "-j", "list", "counters", "table", "inet", self.name],
                             capture_output=True, check=True, timeout=10).stdout
        res = {}
        for item in json.loads(out)["nftables"]:
            c = item.get("counter")
            if c:
                res[c["name"]] = (c["packets"], c["bytes"])
        return res

    def delete(self):
        subprocess.run(["nft", "delete", "table", "inet", self.name],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)


# ---------------------------------------------------------------------------------------------
# /proc

def proc_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])  # utime, stime (fields 14, 15)


def proc_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def proc_threads(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


def machine_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    total = sum(v)
    idle = v[3] + v[4]
    return total - idle, total, v[7]  # busy, total, steal


def busy_since(m0):
    """Whole-machine busy time since machine_ticks() returned m0, in % of one core."""
    b0, t0, _ = m0
    b1, t1, _ = machine_ticks()
    return round(100.0 * (b1 - b0) / max(1, t1 - t0) * os.cpu_count(), 1)


def wait_quiet(max_pct, secs):
    """Waits (bounded) until the whole machine is at most max_pct busy over 2 s."""
    deadline = time.time() + secs
    while True:
        b0, t0, _ = machine_ticks()
        time.sleep(2)
        b1, t1, _ = machine_ticks()
        pct = 100.0 * (b1 - b0) / max(1, t1 - t0)
        if pct <= max_pct:
            return pct
        if time.time() >= deadline:
            log(f"  machine still {pct:.0f}% busy after {secs}s; measuring anyway")
            return pct
        log(f"  machine {pct:.0f}% busy (other workloads); waiting for <= {max_pct}%")


# ---------------------------------------------------------------------------------------------
# Log parsing

VIGIL_RE = re.compile(r"\bINFO (member_up|member_suspect|member_alive|member_down|member_left) id=(\S+)")
VIGIL_REFUTE = re.compile(r"refuted a suspicion of this node")
VIGIL_RUNNING = re.compile(r"cluster membership running")
SERF_RE = re.compile(r"serf: EventMember(Join|Failed|Leave|Reap): (\S+)")
SERF_SUSPECT = re.compile(r"memberlist: Suspect (\S+) has failed")
SERF_REFUTE = re.compile(r"memberlist: Refuting a suspect message")
SERF_AGENT_FAILED = re.compile(r"agent: Received event: member-failed")
SERF_RUNNING = re.compile(r"Serf agent running!")

VIGIL_STATE = {"member_up": "alive", "member_alive": "alive", "member_suspect": "suspect",
               "member_down": "dead", "member_left": "left"}
SERF_STATE = {"Join": "alive", "Failed": "dead", "Leave": "left", "Reap": "gone"}


class Observer(threading.Thread):
    """Reads every agent's output; keeps each agent's view and a list of timestamped events.

    events: (t, observer index, kind, member name) with kind in
      alive, suspect, dead, left   view changes (vigil member_*, Serf EventMember*)
      suspect_probe                Serf only: memberlist at this agent started a suspicion
      refute                       this agent refuted a suspicion of itself
      agent_failed                 Serf only: the agent delivered a member-failed event
      running                      the agent is up (gossip listening)
    """

    def __init__(self, system, names, logdir):
        super().__init__(daemon=True)
        self.system = system
        self.names = names
        self.logdir = logdir
        self.sel = selectors.DefaultSelector()
        self.lock = threading.Condition()
        self.events = []
        self.views = [dict() for _ in names]
        self.bufs = {}
        self.files = {}
        self.stop = False
        self.wake_r, self.wake_w = os.pipe()
        self.sel.register(self.wake_r, selectors.EVENT_READ, None)
        self.pending = []
        # vigil stamps its lines itself (µs): observer time minus that stamp is how late this
        # reader saw the line, keyed by (observer time, agent index)
        self.lag = {}

    def add(self, idx, fd):
        f = open(os.path.join(self.logdir, f"{self.system}-{self.names[idx]}.log"), "a")
        with self.lock:
            self.pending.append((idx, fd, f))
        os.write(self.wake_w, b"x")

    def run(self):
        while not self.stop:
            for key, _ in self.sel.select(timeout=0.5):
                if key.data is None:
                    os.read(self.wake_r, 4096)
                    with self.lock:
                        pend, self.pending = self.pending, []
                    for idx, fd, f in pend:
                        os.set_blocking(fd, False)
                        self.bufs[fd] = b""
                        self.files[fd] = f
                        self.sel.register(fd, selectors.EVENT_READ, idx)
                    continue
                fd, idx = key.fd, key.data
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                t = time.time()
                if not chunk:
                    self.sel.unregister(fd)
                    self.files[fd].close()
                    continue
                data = self.bufs[fd] + chunk
                *lines, self.bufs[fd] = data.split(b"\n")
                f = self.files[fd]
                for raw in lines:
                    line = raw.decode("utf-8", "replace")
                    f.write(f"{t:.6f} {line}\n")
                    self._parse(t, idx, line)
                f.flush()

    def _parse(self, t, idx, line):
        ev = None
        if self.system == "vigil":
            m = VIGIL_RE.search(line)
            if m:
                ev = (VIGIL_STATE[m.group(1)], m.group(2))
            elif VIGIL_REFUTE.search(line):
                ev = ("refute", self.names[idx])
            elif VIGIL_RUNNING.search(line):
                ev = ("running", self.names[idx])
        else:
            m = SERF_RE.search(line)
            if m:
                ev = (SERF_STATE[m.group(1)], m.group(2))
            else:
                m = SERF_SUSPECT.search(line)
                if m:
                    ev = ("suspect_probe", m.group(1))
                elif SERF_REFUTE.search(line):
                    ev = ("refute", self.names[idx])
                elif SERF_AGENT_FAILED.search(line):
                    ev = ("agent_failed", None)
                elif SERF_RUNNING.search(line):
                    ev = ("running", self.names[idx])
        if ev is None:
            return
        kind, member = ev
        if self.system == "vigil" and line[:4].isdigit():
            try:
                stamp = datetime.datetime.fromisoformat(line.split(" ", 1)[0]).timestamp()
                self.lag[(t, idx)] = t - stamp
            except ValueError:
                pass
        with self.lock:
            self.events.append((t, idx, kind, member))
            if kind in ("alive", "suspect", "dead", "left") and member != self.names[idx]:
                self.views[idx][member] = kind
            elif kind == "gone":
                self.views[idx].pop(member, None)
            self.lock.notify_all()

    def wait_for(self, pred, timeout):
        """Waits until pred() (called under the lock) is true; returns it, or False on timeout."""
        deadline = time.time() + timeout
        with self.lock:
            while True:
                r = pred()
                if r:
                    return r
                left = deadline - time.time()
                if left <= 0:
                    return False
                self.lock.wait(min(left, 0.5))

    def since(self, t0):
        with self.lock:
            return [e for e in self.events if e[0] >= t0]

    def shutdown(self):
        self.stop = True
        os.write(self.wake_w, b"x")
        self.join(timeout=5)


# ---------------------------------------------------------------------------------------------
# Agents

class Cluster:
    def __init__(self, system, n, work, pidfile, binary, tag, vigil_extra=()):
        self.system = system
        self.vigil_extra = list(vigil_extra)
        self.n = n
        self.tag = tag
        self.work = os.path.join(work, f"{system}-{n}", tag)
        os.makedirs(self.work, exist_ok=True)
        self.pidfile = pidfile
        self.binary = binary
        self.names = [f"n{i}" for i in range(n)]
        base = port_block(2 * n)
        self.gossip = [base + i for i in range(n)]
        self.api = [base + n + i for i in range(n)]  # vigil API / Serf RPC
        self.procs = [None] * n
        self.obs = Observer(system, self.names, self.work)
        self.obs.start()
        self.spawned_at = [None] * n
        self.others = {i: set(self.names) - {self.names[i]} for i in range(n)}
        self.converged_at = None

    def converged(self):
        """Every agent lists every other one alive (call under self.obs.lock)."""
        for i in range(self.n):
            v = self.obs.views[i]
            if any(v.get(m) != "alive" for m in self.others[i]):
                return False
        return True

    def _cmd(self, i):
        if self.system == "vigil":
            cfg = os.path.join(self.work, f"{self.names[i]}.toml")
            seeds = "[]" if i == 0 else f'["127.0.0.1:{self.gossip[0]}"]'
            with open(cfg, "w") as f:
                f.write(f'[node]\nid = "{self.names[i]}"\n\n'
                        f'[api]\nbind = "127.0.0.1:{self.api[i]}"\n\n'
                        f'[cluster]\nbind = "127.0.0.1:{self.gossip[i]}"\nseeds = {seeds}\n'
                        + "".join(f"{kv}\n" for kv in self.vigil_extra))
            return [self.binary, "agent", "-c", cfg]
        cmd = [self.binary, "agent", f"-node={self.names[i]}",
               f"-bind=127.0.0.1:{self.gossip[i]}", f"-rpc-addr=127.0.0.1:{self.api[i]}",
               "-log-level=info"]
        if i > 0:
            # -join makes an agent exit when its first attempt fails (a seed too busy to answer
            # in time, as at 250 agents on two cores); vigil re-dials its seeds every 5 s.
            cmd += [f"-retry-join=127.0.0.1:{self.gossip[0]}", "-retry-interval=5s"]
        return cmd

    def spawn(self, i):
        env = dict(os.environ)
        env.pop("VIGIL_LOG", None)
        p = subprocess.Popen(self._cmd(i), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, env=env, cwd=self.work)
        self.spawned_at[i] = time.time()
        with open(self.pidfile, "a") as f:
            f.write(f"{p.pid}\n")
        self.procs[i] = p
        self.obs.add(i, p.stdout.fileno())
        return p

    def alive_idx(self):
        return [i for i, p in enumerate(self.procs) if p is not None and p.poll() is None]

    def stop_all(self):
        for p in self.procs:
            if p is not None and p.poll() is None:
                try:
                    p.send_signal(signal.SIGCONT)
                    p.terminate()
                except ProcessLookupError:
                    pass
        deadline = time.time() + 10
        for p in self.procs:
            if p is None:
                continue
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        self.obs.shutdown()

    # -- member lists, read once after convergence (not timed) --------------------------------
    def member_list(self, i):
        if self.system == "vigil":
            with urllib.request.urlopen(f"http://127.0.0.1:{self.api[i]}/v1/members", timeout=5) as r:
                js = json.load(r)
            return {m["id"]: m["state"] for m in js["members"]}
        out = subprocess.run([self.binary, "members", f"-rpc-addr=127.0.0.1:{self.api[i]}",
                              "-format=json"], capture_output=True, timeout=10, check=True).stdout
        return {m["name"]: m["status"] for m in json.loads(out)["members"]}

    def vigil_metrics(self, i):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.api[i]}/metrics", timeout=5) as r:
            text = r.read().decode()
        res = {}
        for line in text.splitlines():
            if line.startswith("vigil_cluster_") and not line.startswith("#"):
                k, _, v = line.rpartition(" ")
                try:
                    res[k] = float(v)
                except ValueError:
                    pass
        return res


# ---------------------------------------------------------------------------------------------
# Scenario

def start_and_converge(c, args):
    """Starts the seed, then the N-1 others at once; returns the convergence record."""
    n, obs = c.n, c.obs
    rec = {}
    log(f"{c.system} N={n} ({c.tag}): starting the seed")
    c.spawn(0)
    if not obs.wait_for(lambda: any(e[2] == "running" and e[1] == 0 for e in obs.events), 20):
        raise SystemExit("seed did not start within 20 s")
    t_first = time.time()
    for i in range(1, n):
        c.spawn(i)
    t_last = c.spawned_at[n - 1]
    ok = obs.wait_for(c.converged, args.converge_timeout)
    c.converged_at = time.time()
    others = c.others
    if ok:
        # the moment the last agent logged its last missing member
        with obs.lock:
            t_conv = max(max(t for t, i, k, m in obs.events
                             if i == idx and k == "alive" and m in others[idx])
                         for idx in range(n))
        rec["converge_s"] = round(t_conv - t_last, 3)
        rec["converge_from_first_s"] = round(t_conv - t_first, 3)
        rec["spawn_spread_s"] = round(t_last - t_first, 3)
        log(f"  converged {rec['converge_s']:.3f} s after the last agent started "
            f"(starting the {n - 1} took {rec['spawn_spread_s']:.3f} s)")
    else:
        rec["converge_s"] = None
        missing = sum(1 for i in range(n) for m in others[i] if obs.views[i].get(m) != "alive")
        rec["converge_missing"] = missing
        log(f"  NOT converged within {args.converge_timeout} s ({missing} member views missing)")
        # Every figure after this would be of a cluster that never formed.
        raise SystemExit(f"{args.system} N={n}: not converged within {args.converge_timeout} s "
                         f"({missing} of {n * (n - 1)} member views missing)")
    dead_early = [i for i, p in enumerate(c.procs) if p.poll() is not None]
    if dead_early:
        raise SystemExit(f"agents exited: {dead_early}")
    # verify against the real member lists (one read per agent, outside timed phases)
    bad = 0
    for i in range(n):
        try:
            lst = c.member_list(i)
        except (OSError, ValueError, subprocess.SubprocessError) as e:
            # An agent too busy to answer within the read's timeout has not shown its list.
            log(f"  agent {i}: no member list ({type(e).__name__})")
            bad += 1
            continue
        if len(lst) != n or any(st != "alive" for st in lst.values()):
            bad += 1
    rec["verified"] = n - bad
    log(f"  member lists: {n - bad}/{n} agents list all {n} alive")
    return rec


def push_pull_period(system, n):
    """Seconds between one agent's full state exchanges, with each system's default of 30 s.

    vigil (vigil-gossip Node::push_pull_interval): 30 s × max(1, n / 32).
    Serf (memberlist pushPullScale): 30 s × (ceil(log2(n) − log2(32)) + 1) above 32 members.
    Every agent's exchanges are periodic, and their phases bunch (they are staggered when the
    cluster is small and the period is 30 s, then the period stretches), so bytes and CPU are
    only comparable over whole periods: a 60 s window at 100 members can hold almost none
    of them or twice the average.
    """
    if system == "vigil":
        return 30.0 * max(1.0, n / 32.0)
    if n <= 32:
        return 30.0
    return 30.0 * (math.ceil(math.log2(n) - math.log2(32)) + 1)


def measure_idle(c, obs, counters, args):
    """CPU and bytes of every agent over args.idle_window seconds, then RSS."""
    n = c.n
    res = {}
    m0 = None
    if c.system == "vigil":
        m0 = [c.vigil_metrics(i) for i in range(n)]
        tm0 = time.time()
    pids = [p.pid for p in c.procs]
    k0 = counters.read()
    ticks0 = [proc_ticks(p) for p in pids]
    mb0, mt0, ms0 = machine_ticks()
    self_t0 = os.times()
    tw0 = time.time()
    events_before = len(obs.events)
    time.sleep(args.idle_window or max(60.0, 2 * push_pull_period(c.system, n)))
    tw1 = time.time()
    ticks1 = [proc_ticks(p) for p in pids]
    mb1, mt1, ms1 = machine_ticks()
    self_t1 = os.times()
    k1 = counters.read()
    if m0 is not None:
        m1 = [c.vigil_metrics(i) for i in range(n)]
        tm1 = time.time()
    win = tw1 - tw0
    cpu = [100.0 * (b - a) / CLK_TCK / win for a, b in zip(ticks0, ticks1)]
    res["idle_window_s"] = round(win, 2)
    res["cpu_pct_mean"] = round(statistics.mean(cpu), 3)
    res["cpu_pct_max"] = round(max(cpu), 3)
    res["cpu_pct_all_agents"] = round(sum(cpu), 2)
    ncpu = os.cpu_count()
    machine_pct = 100.0 * (mb1 - mb0) / max(1, mt1 - mt0) * ncpu  # % of one core
    self_pct = 100.0 * ((self_t1.user + self_t1.system) - (self_t0.user + self_t0.system)) / win
    res["machine_pct_one_core"] = round(machine_pct, 1)
    res["other_pct_one_core"] = round(machine_pct - sum(cpu) - self_pct, 1)
    res["steal_pct_one_core"] = round(100.0 * (ms1 - ms0) / max(1, mt1 - mt0) * ncpu, 1)
    res["idle_events"] = len(obs.events) - events_before
    d = {k: (k1[k][0] - k0[k][0], k1[k][1] - k0[k][1]) for k in k1}
    total_bytes = sum(v[1] for k, v in d.items() if k != "udp_foreign")
    total_pkts = sum(v[0] for k, v in d.items() if k != "udp_foreign")
    res["bytes_per_s_agent"] = round(total_bytes / win / n, 1)
    res["packets_per_s_agent"] = round(total_pkts / win / n, 2)
    res["bytes_breakdown_per_s_agent"] = {k: round(v[1] / win / n, 1) for k, v in d.items()}
    if m0 is not None:
        key = "vigil_cluster_bytes_sent_total"
        sent = sum(b.get(key, 0) - a.get(key, 0) for a, b in zip(m0, m1))
        res["vigil_metric_payload_bytes_per_s_agent"] = round(sent / (tm1 - tm0) / n, 1)
    rss = [proc_rss_kb(p) for p in pids]
    res["rss_mb_mean"] = round(statistics.mean(rss) / 1024, 2)
    res["rss_mb_max"] = round(max(rss) / 1024, 2)
    res["threads_mean"] = round(statistics.mean(proc_threads(p) for p in pids), 1)
    res["idle_s_at_rss"] = round(time.time() - c.converged_at, 1)
    return res


def fail_and_restart(c, obs, args, v, how, converged):
    """Fails member `v` (`kill`: kill -9; `freeze`: SIGSTOP until everyone reports it failed),
    measures when the first and the last live member report it failed, then restarts it under
    the same name and address and waits until everyone lists everyone alive again."""
    name = c.names[v]
    live = [i for i in c.alive_idx() if i != v]
    live_set = set(live)
    m0 = machine_ticks()
    t0 = time.time()
    if how == "kill":
        c.procs[v].kill()
        c.procs[v].wait(timeout=5)
    else:
        os.kill(c.procs[v].pid, signal.SIGSTOP)

    def all_dead():
        got = {e[1] for e in obs.events if e[0] >= t0 and e[3] == name and e[2] == "dead"}
        return live_set <= got

    done = obs.wait_for(all_dead, args.kill_timeout)
    busy = busy_since(m0)
    if how == "freeze":
        os.kill(c.procs[v].pid, signal.SIGKILL)
        os.kill(c.procs[v].pid, signal.SIGCONT)
        c.procs[v].wait(timeout=5)
    evs = obs.since(t0)
    dead_t = {}
    for t, i, k, m in evs:
        if k == "dead" and m == name and i in live_set and i not in dead_t:
            dead_t[i] = t - t0
    susp_t = [t - t0 for t, i, k, m in evs if m == name and k in ("suspect", "suspect_probe")]
    suspectors = {i for t, i, k, m in evs if m == name and k in ("suspect", "suspect_probe")}
    lags = [obs.lag[(t, i)] for t, i, k, m in evs
            if k == "dead" and m == name and (t, i) in obs.lag]
    rec = {"member": name, "how": how, "live": len(live), "reported": len(dead_t),
           "observer_lag_max_s": round(max(lags), 3) if lags else None,
           "first_s": round(min(dead_t.values()), 3) if dead_t else None,
           "last_s": round(max(dead_t.values()), 3) if done else None,
           "first_suspect_s": round(min(susp_t), 3) if susp_t else None,
           "suspected_at": len(suspectors), "machine_busy_pct": busy}
    # The three members that reported it last, and how many reported it after 2 s: a straggler
    # is a member news missed, not a slow detector.
    late = sorted(dead_t.items(), key=lambda item: item[1])[-3:]
    rec["last_reporters"] = [[c.names[i], round(t, 3)] for i, t in late]
    rec["reported_after_2s"] = sum(1 for t in dead_t.values() if t > 2.0)
    if args.system == "serf":
        # the coalesced member-failed event as handlers and RPC streams get it
        time.sleep(args.coalesce_wait)
        agent_t = {}
        for t, i, k, m in obs.since(t0):
            if k == "agent_failed" and i in live_set and i not in agent_t:
                agent_t[i] = t - t0
        rec["handler_first_s"] = round(min(agent_t.values()), 3) if agent_t else None
        rec["handler_last_s"] = (round(max(agent_t.values()), 3)
                                 if len(agent_t) == len(live) else None)
    log(f"  {how} {name}: first {rec['first_s']} s, last {rec['last_s']} s "
        f"({len(dead_t)}/{len(live)} reported)")
    # restart it under the same name and address; wait until everyone lists everyone
    time.sleep(args.kill_gap)
    with obs.lock:
        obs.views[v] = {}
    t_re = time.time()
    c.spawn(v)
    rejoined = obs.wait_for(converged, args.converge_timeout)
    rec["rejoin_s"] = round(time.time() - t_re, 3) if rejoined else None
    log(f"  restarted {name}: everyone lists everyone alive after {rec['rejoin_s']} s")
    time.sleep(args.kill_gap)
    return rec


def run(args):
    scenario = random.Random(args.seed)  # the same paused and killed members for both systems
    n = args.n
    if n < args.pauses + args.kills + 2:
        raise SystemExit(f"N must be at least {args.pauses + args.kills + 2} "
                         "(a seed, distinct paused and killed members, one survivor)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    res = {"system": args.system, "n": n, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "settings": {k: getattr(args, k) for k in ("idle_settle", "idle_window", "pauses",
                                                      "pause", "kills", "seed", "joins",
                                                      "vigil_cluster")}}
    res["quiet_before_pct"] = round(wait_quiet(args.quiet_pct, args.quiet_wait), 1)
    counters = None
    # ---- 1. join convergence, `joins` times (fresh agents and ports each time); the last
    #         cluster goes on to the other phases ----------------------------------------------
    joins = []
    c = None
    hogs = []
    try:
        for j in range(args.joins):
            if c is not None:
                c.stop_all()
                time.sleep(2)
            c = Cluster(args.system, n, args.work, args.pidfile, args.binary, tag=f"j{j + 1}",
                        vigil_extra=args.vigil_cluster)
            joins.append(start_and_converge(c, args))
        obs = c.obs
        converged = c.converged
        res["ports"] = {"gossip": [c.gossip[0], c.gossip[-1]], "api_or_rpc": [c.api[0], c.api[-1]]}
        res["joins"] = joins
        times = [j["converge_s"] for j in joins]
        res["converge_s"] = None if None in times else round(statistics.median(times), 3)
        res["verified_agents_with_full_list"] = min(j["verified"] for j in joins)

        # ---- 2. idle: CPU, bytes, RSS -----------------------------------------------------
        time.sleep(args.idle_settle)
        counters = Counters(args.nft_table, c.gossip[0], c.gossip[-1])
        attempts = []
        for attempt in range(1, args.idle_tries + 1):
            idle = measure_idle(c, obs, counters, args)
            idle["idle_tries"] = attempt
            attempts.append({k: idle[k] for k in ("cpu_pct_mean", "bytes_per_s_agent",
                                                  "other_pct_one_core", "bytes_breakdown_per_s_agent")})
            idle["idle_attempts"] = attempts
            log(f"  idle: cpu {idle['cpu_pct_mean']:.3f}%/agent, {idle['bytes_per_s_agent']:.0f} B/s/agent, "
                f"rss {idle['rss_mb_mean']:.1f} MB (other load {idle['other_pct_one_core']}% of a core)")
            if idle["other_pct_one_core"] <= args.max_other_pct or attempt == args.idle_tries:
                break
            log(f"  other workloads used more than {args.max_other_pct}% of a core: measuring again")
            wait_quiet(args.quiet_pct, args.quiet_wait)
        res.update(idle)
        counters.delete()
        counters = None

        # ---- 3. SIGSTOP for `pause` seconds -----------------------------------------------
        # From here on, `--hog` busy loops compete with the agents for the CPU (pauses, kills,
        # freezes): a loaded machine must not turn a pause into a false failure.
        hogs = start_hogs(args.hog)
        res["hog"] = args.hog
        candidates = list(range(1, n))
        scenario.shuffle(candidates)
        paused = candidates[:args.pauses]
        victims = candidates[args.pauses:args.pauses + args.kills]
        pauses = []
        for v in paused:
            name = c.names[v]
            m0 = machine_ticks()
            t0 = time.time()
            os.kill(c.procs[v].pid, signal.SIGSTOP)
            time.sleep(args.pause)
            os.kill(c.procs[v].pid, signal.SIGCONT)
            t1 = time.time()
            time.sleep(args.pause_watch)
            evs = [e for e in obs.since(t0) if e[3] == name]
            susp_by = sorted({e[1] for e in evs if e[2] in ("suspect", "suspect_probe")})
            dead_by = sorted({e[1] for e in evs if e[2] == "dead"})
            refuted = any(e[2] == "refute" and e[1] == v for e in evs)
            first_susp = min((e[0] for e in evs if e[2] in ("suspect", "suspect_probe")), default=None)
            pauses.append({"member": name, "paused_s": round(t1 - t0, 3),
                           "suspected_by": len(susp_by), "declared_dead_by": len(dead_by),
                           "refuted": refuted,
                           "first_suspect_after_s": round(first_susp - t0, 3) if first_susp else None,
                           "machine_busy_pct": busy_since(m0)})
            log(f"  pause {name} {t1 - t0:.2f}s: suspected by {len(susp_by)}, dead by {len(dead_by)}, "
                f"refuted {refuted}")
        res["pauses"] = pauses

        # ---- 4. kill -9, then restart the member so that every kill happens at full size ----
        # ---- 5. SIGSTOP for good (a hung process or a host gone silent: no connection is
        #         refused, nothing answers), then kill and restart it the same way ----
        res["kills"] = [fail_and_restart(c, obs, args, v, "kill", converged) for v in victims]
        res["freezes"] = [fail_and_restart(c, obs, args, v, "freeze", converged)
                          for v in victims[:args.freezes]]

        # any paused member ever declared dead, at any time until now?
        with obs.lock:
            paused_names = {c.names[v] for v in paused}
            late = sorted({m for t, i, k, m in obs.events if k == "dead" and m in paused_names})
        res["paused_ever_dead"] = late
        if args.system == "vigil":
            res["metrics_end"] = {k: v for k, v in c.vigil_metrics(0).items()
                                  if "bucket" not in k}
    finally:
        stop_hogs(hogs)
        if counters is not None:
            counters.delete()
        if c is not None:
            c.stop_all()
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)
    log(f"{args.system} N={n}: done -> {args.out}")


def start_hogs(count):
    """`count` busy loops at the agents' priority; stopped by stop_hogs (by PID)."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def stop_hogs(hogs):
    for h in hogs:
        h.kill()
        h.wait()


# ---------------------------------------------------------------------------------------------
# Report

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, unit="", nd=2):
    if x is None:
        return "—"
    return f"{x:.{nd}f}{unit}"


def summarize(r):
    kills = r.get("kills", [])
    s = {
        "converge": r.get("converge_s"),
        "first": med([k["first_s"] for k in kills]),
        "last": med([k["last_s"] for k in kills]),
        "last_all": [k["last_s"] for k in kills],
        "first_all": [k["first_s"] for k in kills],
        "undetected": sum(1 for k in kills if k["last_s"] is None),
        "handler_first": med([k.get("handler_first_s") for k in kills]),
        "freezes": len(r.get("freezes", [])),
        "freeze_first": med([k["first_s"] for k in r.get("freezes", [])]),
        "freeze_last": med([k["last_s"] for k in r.get("freezes", [])]),
        "freeze_last_all": [k["last_s"] for k in r.get("freezes", [])],
        "handler_last": med([k.get("handler_last_s") for k in kills]),
        "pauses": len(r.get("pauses", [])),
        "pause_dead": sum(1 for p in r.get("pauses", []) if p["declared_dead_by"] > 0),
        "ever_dead": len(r.get("paused_ever_dead", [])),
        "pause_susp": sum(1 for p in r.get("pauses", []) if p["suspected_by"] > 0),
        "rss": r.get("rss_mb_mean"),
        "cpu": r.get("cpu_pct_mean"),
        "bytes": r.get("bytes_per_s_agent"),
    }
    return s


def report(files):
    runs = []
    for f in files:
        with open(f) as fh:
            runs.append(json.load(fh))
    by_n = {}
    for r in runs:
        by_n.setdefault(r["n"], {})[r["system"]] = r
    missed = 0
    summary = []
    for n in sorted(by_n):
        v, s = by_n[n].get("vigil"), by_n[n].get("serf")
        if not v or not s:
            print(f"\nN={n}: incomplete (vigil {'ok' if v else 'missing'}, serf {'ok' if s else 'missing'})")
            missed += 1
            continue
        a, b = summarize(v), summarize(s)
        rows = []

        def row(name, va, vb, target, ok, unit="", nd=2):
            nonlocal missed
            if ok is None:
                verdict = "—"
            else:
                verdict = "met" if ok else "MISSED"
                missed += 0 if ok else 1
            rows.append(f"| {name} | {va} | {vb} | {target} | {verdict} |")

        def lt(x, y, f=1.0):
            return None if x is None or y is None else x <= f * y

        nj = len(v.get("joins", [])) or 1
        row(f"join convergence, s after the last agent started (median of {nj} joins)",
            fmt(a["converge"], nd=3), fmt(b["converge"], nd=3), "vigil ≤ Serf (5 % tolerance)",
            lt(a["converge"], b["converge"], 1.05))
        row("join convergence, each join, s",
            " / ".join(fmt(j["converge_s"], nd=3) for j in v.get("joins", [])),
            " / ".join(fmt(j["converge_s"], nd=3) for j in s.get("joins", [])), "—", None)
        row(f"kill -9, first member reports it failed, s (median of {len(v['kills'])})",
            fmt(a["first"]), fmt(b["first"]), "—", None)
        row(f"kill -9, last member reports it failed, s (median of {len(v['kills'])})",
            fmt(a["last"]), fmt(b["last"]), "vigil ≤ ½ Serf",
            None if a["undetected"] or b["last"] is None else lt(a["last"], b["last"], 0.5))
        row("kill -9, per kill: last member, s", " / ".join(fmt(x) for x in a["last_all"]),
            " / ".join(fmt(x) for x in b["last_all"]), "—", None)
        row("kill -9: members that suspected it (vigil: member_suspect; Serf: memberlist prober), median",
            fmt(med([k.get("suspected_at") for k in v["kills"]]), nd=0),
            fmt(med([k.get("suspected_at") for k in s["kills"]]), nd=0), "—", None)
        if a["freezes"] and b["freezes"]:
            row(f"SIGSTOP for good (hung process: silent, no connection refused), first / last "
                f"member reports it failed, s (median of {a['freezes']})",
                f"{fmt(a['freeze_first'])} / {fmt(a['freeze_last'])}",
                f"{fmt(b['freeze_first'])} / {fmt(b['freeze_last'])}", "—", None)
            row("SIGSTOP for good, per member: last member, s",
                " / ".join(fmt(x) for x in a["freeze_last_all"]),
                " / ".join(fmt(x) for x in b["freeze_last_all"]), "—", None)
        row("restarted member listed alive by everyone again, s (median)",
            fmt(med([k.get("rejoin_s") for k in v["kills"]])),
            fmt(med([k.get("rejoin_s") for k in s["kills"]])), "—", None)
        row("Serf: member-failed handed to handlers/RPC (coalesced), first / last, s", "n/a",
            f"{fmt(b['handler_first'])} / {fmt(b['handler_last'])}", "—", None)
        row(f"SIGSTOP {v['settings']['pause']:g} s: paused member ever declared failed",
            f"{a['ever_dead']}/{a['pauses']}", f"{b['ever_dead']}/{b['pauses']}", "vigil 0",
            a["ever_dead"] == 0 and a["pauses"] > 0)
        row("SIGSTOP: paused member suspected (Serf: memberlist log)",
            f"{a['pause_susp']}/{a['pauses']}", f"{b['pause_susp']}/{b['pauses']}", "—", None)
        row("RSS per agent, MB (mean)", fmt(a["rss"], nd=1), fmt(b["rss"], nd=1), "vigil ≤ Serf",
            lt(a["rss"], b["rss"]))
        row("idle CPU per agent, % of one core (mean)", fmt(a["cpu"], nd=3), fmt(b["cpu"], nd=3),
            "vigil ≤ Serf", lt(a["cpu"], b["cpu"]))
        row("idle bytes sent per agent, B/s (mean)", fmt(a["bytes"], nd=0), fmt(b["bytes"], nd=0),
            "vigil ≤ Serf", lt(a["bytes"], b["bytes"]))
        hog = v.get("hog", 0)
        print(f"\n### N = {n}" + (f", {hog} busy loops beside the agents from the pauses on" if hog else "") + "\n")
        print(f"vigil run {v['date']}, Serf run {s['date']}; idle window {v['idle_window_s']} s / "
              f"{s['idle_window_s']} s; other load during it {v['other_pct_one_core']}% / "
              f"{s['other_pct_one_core']}% of one core; member lists checked: "
              f"{v['verified_agents_with_full_list']}/{n} / {s['verified_agents_with_full_list']}/{n}.\n")
        if v["settings"].get("vigil_cluster"):
            print("**What-if run, not the defaults:** vigil `[cluster]` "
                  + ", ".join(f"`{kv}`" for kv in v["settings"]["vigil_cluster"]) + ".\n")
        print("| measure | vigil | Serf | target | |")
        print("| --- | ---: | ---: | --- | --- |")
        print("\n".join(rows))
        extra = []
        extra.append(f"packets/s per agent {v['packets_per_s_agent']} / {s['packets_per_s_agent']}")
        if "vigil_metric_payload_bytes_per_s_agent" in v:
            extra.append(f"vigil's own vigil_cluster_bytes_sent_total: "
                         f"{v['vigil_metric_payload_bytes_per_s_agent']:.0f} B/s/agent (payload)")
        extra.append(f"threads {v['threads_mean']} / {s['threads_mean']}")
        extra.append(f"CPU of all {n} agents {v['cpu_pct_all_agents']}% / {s['cpu_pct_all_agents']}% of one core")
        extra.append("machine busy during kills (max) "
                     f"{max(k.get('machine_busy_pct', 0) for k in v['kills'])}% / "
                     f"{max(k.get('machine_busy_pct', 0) for k in s['kills'])}% of one core")
        extra.append(f"RSS max {v['rss_mb_max']} / {s['rss_mb_max']} MB")
        lag = [k.get("observer_lag_max_s") for k in v["kills"] if k.get("observer_lag_max_s") is not None]
        if lag:
            extra.append(f"how late the observer read vigil's member_down lines (vigil's own µs "
                         f"stamps), worst per kill: {' / '.join(f'{x * 1000:.0f}' for x in lag)} ms")
        extra.append(f"first suspicion after kill (median) "
                     f"{fmt(med([k['first_suspect_s'] for k in v['kills']]))} / "
                     f"{fmt(med([k['first_suspect_s'] for k in s['kills']]))} s")
        print("\n" + "; ".join(extra) + ".")
        summary.append((n, a, b))
    print("\n### Summary\n")
    print("| N | convergence s vigil / Serf | kill -9: last-member detection s vigil / Serf (ratio) | "
          "hung (SIGSTOP): last-member detection s vigil / Serf (ratio) | "
          "paused declared failed vigil / Serf | RSS MB | CPU % | B/s |")
    print("| ---: | --- | --- | --- | --- | --- | --- | --- |")
    for n, a, b in summary:
        ratio = (a["last"] / b["last"]) if a["last"] and b["last"] else None
        hung = (a["freeze_last"] / b["freeze_last"]) if a["freeze_last"] and b["freeze_last"] else None
        print(f"| {n} | {fmt(a['converge'], nd=3)} / {fmt(b['converge'], nd=3)} | "
              f"{fmt(a['last'])} / {fmt(b['last'])} ({fmt(ratio)}) | "
              f"{fmt(a['freeze_last'])} / {fmt(b['freeze_last'])} ({fmt(hung)}) | "
              f"{a['ever_dead']}/{a['pauses']} / {b['ever_dead']}/{b['pauses']} | "
              f"{fmt(a['rss'], nd=1)} / {fmt(b['rss'], nd=1)} | {fmt(a['cpu'], nd=3)} / "
              f"{fmt(b['cpu'], nd=3)} | {fmt(a['bytes'], nd=0)} / {fmt(b['bytes'], nd=0)} |")
    print(f"\ntargets missed: {missed}")
    return 1 if missed else 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--system", choices=["vigil", "serf"], required=True)
    r.add_argument("--n", type=int, required=True)
    r.add_argument("--work", required=True)
    r.add_argument("--pidfile", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--binary", required=True)
    r.add_argument("--nft-table", default="vigil_bench_membership")
    r.add_argument("--seed", type=int, default=1)
    r.add_argument("--converge-timeout", type=float, default=120)
    r.add_argument("--joins", type=int, default=5)
    r.add_argument("--vigil-cluster", action="append", default=[], metavar="KEY=VALUE",
                   help='extra [cluster] line for vigil, e.g. \'heartbeat_interval = "500ms"\' '
                        "(what-if runs only; the comparison uses the defaults)")
    r.add_argument("--idle-settle", type=float, default=10)
    r.add_argument("--idle-window", type=float, default=0,
                   help="seconds; 0 (default) = two push-pull periods of the system at this N, "
                        "at least 60")
    r.add_argument("--pauses", type=int, default=3)
    r.add_argument("--hog", type=int, default=0,
                   help="busy loops (nice 0) beside the agents from the pause scenario on")
    r.add_argument("--pause", type=float, default=2.0)
    r.add_argument("--pause-watch", type=float, default=15)
    r.add_argument("--kills", type=int, default=5)
    r.add_argument("--freezes", type=int, default=3)
    r.add_argument("--kill-timeout", type=float, default=90)
    r.add_argument("--kill-gap", type=float, default=5)
    r.add_argument("--coalesce-wait", type=float, default=4)
    r.add_argument("--quiet-pct", type=float, default=15)
    r.add_argument("--quiet-wait", type=float, default=60)
    r.add_argument("--max-other-pct", type=float, default=20)
    r.add_argument("--idle-tries", type=int, default=2)
    p = sub.add_parser("report")
    p.add_argument("files", nargs="+")
    args = ap.parse_args()
    if args.cmd == "run":
        run(args)
        return 0
    return report(args.files)


if __name__ == "__main__":
    sys.exit(main())
