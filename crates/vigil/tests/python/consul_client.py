"""python-consul (Debian's python3-consul) against a vigil agent, as a Consul user would use it.

Usage: consul_client.py HOST PORT TOKEN. Prints one JSON line per step; between the first and the
second it waits for a line on stdin (the test kills an instance then), while a blocking query of
the healthy instances is already open.
"""

import json
import sys
import threading

import consul

host, port, token = sys.argv[1], int(sys.argv[2]), sys.argv[3]
c = consul.Consul(host=host, port=port, token=token)


def say(**fields):
    print(json.dumps(fields), flush=True)


leader = c.status.leader()
peers = c.status.peers()
members = c.agent.members()
me = c.agent.self()
index, services = c.catalog.services()
_, catalog = c.catalog.service("web")
index, healthy = c.health.service("web", passing=True)
_, everything = c.health.service("web")
say(
    step="read",
    leader=leader,
    peers=len(peers),
    members=sorted(m["Name"] for m in members),
    datacenter=me["Config"]["Datacenter"],
    services=services,
    catalog=sorted(s["ServiceID"] for s in catalog),
    healthy=sorted(e["Service"]["ID"] for e in healthy),
    checks=sorted({chk["Status"] for e in everything for chk in e["Checks"]}),
    index=int(index),
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
