"""A Consul client library against a vigil agent, as a Consul user would use it: python-consul
(Debian's python3-consul 0.7) or py-consul (PyPI), whichever `import consul` finds.

Usage: consul_client.py HOST PORT TOKEN PORT_A PORT_B. Registers web-0 and web-1 (TCP checks of
127.0.0.1:PORT_A and :PORT_B) and job-1 (a TTL check) through the agent API, then prints one JSON
line per step; after "blocking" it waits for a line on stdin (the test kills web-0's process
then) while a blocking query of the healthy instances is open. It ends with web-1 in maintenance
and deregistered, and the agent's whole node in maintenance and out again.
"""

import json
import sys
import threading
import time

import consul

host, port, token = sys.argv[1], int(sys.argv[2]), sys.argv[3]
port_a, port_b = int(sys.argv[4]), int(sys.argv[5])
c = consul.Consul(host=host, port=port, token=token)
# python-consul 0.7 sends the token (as ?token=) with registrations and reads but leaves it out of
# TTL updates and deregistrations; its HTTP session carries it on every request, as users of a
# Consul with ACLs set it.
if hasattr(c.http, "session"):
    c.http.session.headers["X-Consul-Token"] = token


def say(**fields):
    print(json.dumps(fields), flush=True)


def healthy(name):
    _, nodes = c.health.service(name, passing=True)
    return sorted(e["Service"]["ID"] for e in nodes)


def wait_until(what, probe, seen=lambda: "", limit=20):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(0.1)
    raise SystemExit(f"not within {limit} s: {what}; {seen()}")


registered = [
    c.agent.service.register("web", service_id="web-0", address="127.0.0.1", port=port_a,
                             tags=["v1"], check=consul.Check.tcp("127.0.0.1", port_a, "200ms")),
    c.agent.service.register("web", service_id="web-1", address="127.0.0.1", port=port_b,
                             tags=["v1"], check=consul.Check.tcp("127.0.0.1", port_b, "200ms")),
    c.agent.service.register("job", service_id="job-1", port=9, check=consul.Check.ttl("120s")),
]
passed = c.agent.check.ttl_pass("service:job-1", "batch done")
wait_until("web-0, web-1 and job-1 pass",
           lambda: healthy("web") == ["web-0", "web-1"] and healthy("job") == ["job-1"],
           lambda: f"web {c.health.service('web')[1]}, job {c.health.service('job')[1]}")

leader = c.status.leader()
peers = c.status.peers()
members = c.agent.members()
me = c.agent.self()
index, services = c.catalog.services()
_, catalog = c.catalog.service("web")
_, everything = c.health.service("web")
agent_services = c.agent.services()
agent_checks = c.agent.checks()
index, now_healthy = c.health.service("web", passing=True)
say(
    step="read",
    registered=registered,
    passed=passed,
    leader=leader,
    peers=len(peers),
    members=sorted(m["Name"] for m in members),
    datacenter=me["Config"]["Datacenter"],
    services=services,
    catalog=sorted(s["ServiceID"] for s in catalog),
    healthy=sorted(e["Service"]["ID"] for e in now_healthy),
    checks=sorted({chk["CheckID"]: chk["Status"] for e in everything for chk in e["Checks"]}.items()),
    index=int(index),
    agent_services=sorted(agent_services),
    agent_checks=sorted((k, v["Status"]) for k, v in agent_checks.items()),
)

# A blocking query on the healthy instances, open before the change it waits for.
result = {}


def block():
    new_index, nodes = c.health.service("web", passing=True, index=index, wait="20s")
    result.update(index=int(new_index), healthy=sorted(e["Service"]["ID"] for e in nodes))


waiter = threading.Thread(target=block)
waiter.start()
say(step="blocking")
sys.stdin.readline()
waiter.join()
say(step="changed", **result)

c.agent.service.maintenance("web-1", True, "kernel upgrade")
wait_until("web-1 leaves the healthy list in maintenance", lambda: healthy("web") == [])
_, entries = c.health.service("web")
maintenance = sorted(chk["CheckID"] for e in entries for chk in e["Checks"]
                     if chk["CheckID"].startswith("_service_maintenance"))
deregistered = c.agent.service.deregister("web-1")
wait_until("web-1 leaves the catalog",
           lambda: [s["ServiceID"] for s in c.catalog.service("web")[1]] == ["web-0"])

# The whole node in maintenance: its instances leave the healthy lists, and come back after.
node = me["Config"]["NodeName"]
c.agent.maintenance(True, "rack move")
wait_until("job-1 leaves the healthy list with its node in maintenance",
           lambda: healthy("job") == [])
node_checks = sorted((chk["CheckID"], chk["Status"], chk["Notes"]) for chk in c.health.node(node)[1]
                     if chk["ServiceID"] in ("", "job-1"))
agent_maintenance = [k for k in c.agent.checks() if k.startswith("_node_maintenance")]
c.agent.maintenance(False)
wait_until("job-1 back in the healthy list", lambda: healthy("job") == ["job-1"])
say(step="done", maintenance=maintenance, deregistered=deregistered, node=node,
    node_checks=node_checks, agent_maintenance=agent_maintenance)
