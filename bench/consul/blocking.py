"""Many clients waiting on one server for a change: vigil's Consul-compatible blocking query
(`GET /v1/health/service/NAME?index=N&wait=60s`, one connection each) or etcd's watch over its
HTTP gateway (`POST /v3/watch`, one stream each, as a client without gRPC watches).

Opens CLIENTS connections, waits until the server holds every one of them (etcd: each stream
said `created`; vigil: the connections are established and none has been answered after a
settle period), reads the server's RSS, makes one change (vigil: registers an instance; etcd:
puts the watched key) and times, for every client, the first bytes of its answer after the
change was acknowledged. One epoll loop watches every socket and only notes the time and the
bytes as they come, so the client's own cost per answer stays a few microseconds and the times
are the server's. Prints one JSON object.

Usage: blocking.py vigil|etcd HOST PORT SERVER_PID [--clients N] [--token T]
"""

import argparse
import base64
import json
import selectors
import socket
import time

SERVICE = "api"
KEY = b"vigil-bench/blocking"


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit(f"no VmRSS for pid {pid}")


def request(method, path, host, body=b"", token=None, close=True):
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    if close:
        lines.append("Connection: close")
    if token:
        lines.append(f"Authorization: Bearer {token}")
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def exchange(host, port, data):
    """One request on a connection of its own, read to its end: status, headers, body."""
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(data)
        received = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status, headers = parse_head(head)
    return status, headers, body


def parse_head(head):
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return status, headers


def established(port):
    """Established TCP connections whose local port is `port` (the server's side)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as rows:
                next(rows)
                for row in rows:
                    fields = row.split()
                    if fields[3] == "01" and int(fields[1].split(":")[1], 16) == port:
                        count += 1
        except FileNotFoundError:
            pass
    return count


class Clients:
    """CLIENTS sockets, each with the bytes it received and when they first came after `mark`."""

    def __init__(self, host, port, count, data):
        self.selector = selectors.DefaultSelector()
        self.received = {}
        self.first = {}
        for _ in range(count):
            sock = socket.create_connection((host, port), timeout=30)
            sock.sendall(data)
            sock.setblocking(False)
            self.received[sock] = b""
            self.selector.register(sock, selectors.EVENT_READ)

    def poll(self, until, done, mark=None):
        """Reads whatever comes until every socket is `done(bytes)` or the time `until`."""
        waiting = {s for s, data in self.received.items() if not done(data)}
        while waiting and time.monotonic() < until:
            for key, _ in self.selector.select(timeout=max(0.0, until - time.monotonic())):
                sock = key.fileobj
                now = time.monotonic()
                try:
                    chunk = sock.recv(65536)
                except BlockingIOError:
                    continue
                if mark is not None and sock not in self.first:
                    self.first[sock] = now
                self.received[sock] += chunk
                if done(self.received[sock]) or not chunk:
                    waiting.discard(sock)
                    self.selector.unregister(sock)
        return len(waiting)

    def close(self):
        for sock in self.received:
            sock.close()


def vigil(args):
    host, port = args.host, args.port
    path = f"/v1/health/service/{SERVICE}"
    status, headers, _ = exchange(host, port, request("GET", path, host))
    if status != 200:
        raise SystemExit(f"vigil answered {status} to {path}")
    index = int(headers["x-consul-index"])
    rss_before = rss_kb(args.pid)
    clients = Clients(host, port, args.clients,
                      request("GET", f"{path}?index={index}&wait=60s", host))
    deadline = time.monotonic() + 30
    while established(port) < args.clients:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {established(port)} of {args.clients} connections established")
        time.sleep(0.05)
    # Every request is written and every connection accepted; give the server a moment to have
    # read them all, then check none was answered early (which would be a wrong answer).
    time.sleep(1.0)
    if clients.selector.select(timeout=0):
        raise SystemExit("blocking queries answered before any change")
    rss_holding = rss_kb(args.pid)
    body = json.dumps({"name": SERVICE, "id": "api-new", "address": "127.0.0.1", "port": 9,
                       "checks": []}).encode()
    sent = time.monotonic()
    status, _, text = exchange(host, port, request("POST", "/v1/services", host, body, args.token))
    acked = time.monotonic()
    if status not in (200, 201):
        raise SystemExit(f"registration answered {status}: {text!r}")

    def complete(data):
        head, found, body = data.partition(b"\r\n\r\n")
        if not found:
            return False
        return len(body) >= int(parse_head(head)[1].get("content-length", "0"))

    left = clients.poll(time.monotonic() + 30, complete, mark=sent)
    wrong = 0
    for data in clients.received.values():
        head, _, body = data.partition(b"\r\n\r\n")
        status, headers = parse_head(head) if head else (0, {})
        if status != 200 or int(headers.get("x-consul-index", "0")) <= index or b"api-new" not in body:
            wrong += 1
    times = list(clients.first.values())
    clients.close()
    return summary(args, sent, acked, times, rss_before, rss_holding, wrong, left)


def etcd(args):
    host, port = args.host, args.port
    key = base64.b64encode(KEY).decode()
    put = "/v3/kv/put"
    status, _, _ = exchange(host, port, request(
        "POST", put, host, json.dumps({"key": key, "value": "MA=="}).encode()))
    if status != 200:
        raise SystemExit(f"etcd answered {status} to a put")
    rss_before = rss_kb(args.pid)
    clients = Clients(host, port, args.clients, request(
        "POST", "/v3/watch", host, json.dumps({"create_request": {"key": key}}).encode(),
        close=False))
    left = clients.poll(time.monotonic() + 60, lambda data: b'"created":true' in data)
    if left:
        raise SystemExit(f"{left} watches not created within 60 s")
    for sock in clients.received:
        clients.received[sock] = b""
        clients.selector.register(sock, selectors.EVENT_READ)
    rss_holding = rss_kb(args.pid)
    sent = time.monotonic()
    status, _, text = exchange(host, port, request(
        "POST", put, host, json.dumps({"key": key, "value": "MQ=="}).encode()))
    acked = time.monotonic()
    if status != 200:
        raise SystemExit(f"etcd answered {status} to the put: {text!r}")
    left = clients.poll(time.monotonic() + 30, lambda data: b'"events"' in data, mark=sent)
    times = list(clients.first.values())
    clients.close()
    return summary(args, sent, acked, times, rss_before, rss_holding, 0, left)


def summary(args, sent, acked, times, rss_before, rss_holding, wrong, left):
    after_ack = sorted((t - acked) * 1000 for t in times) or [float("nan")]
    after_send = sorted((t - sent) * 1000 for t in times) or [float("nan")]

    def pct(values, p):
        return round(values[min(len(values) - 1, int(p / 100 * len(values)))], 1)

    return {
        "system": args.system,
        "clients": args.clients,
        "answered": args.clients - left,
        "wrong": wrong,
        "write_ms": round((acked - sent) * 1000, 1),
        "after_ack_ms": {"p50": pct(after_ack, 50), "p99": pct(after_ack, 99),
                         "max": round(after_ack[-1], 1)},
        "after_send_ms": {"p50": pct(after_send, 50), "p99": pct(after_send, 99),
                          "max": round(after_send[-1], 1)},
        "rss_before_kb": rss_before,
        "rss_holding_kb": rss_holding,
        "rss_growth_kb": rss_holding - rss_before,
        "rss_after_kb": rss_kb(args.pid),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("system", choices=["vigil", "etcd"])
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("pid", type=int)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--token")
    args = parser.parse_args()
    run = vigil if args.system == "vigil" else etcd
    print(json.dumps(run(args)), flush=True)


main()
