"""The three vigil voters the Python bench drivers start on 127.0.0.1: one config file each, with
its API on a free port and a passing-to-be critical TTL check (`heart`) that keeps every voter
eligible to lead the Raft group. Imported by bench/leadership/driver.py and
bench/elections/driver.py."""

import os
import socket


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_configs(work, token):
    """Writes v1..v3's configs under `work`/v1.. and returns, for each voter, its id, home
    directory, API port and config path."""
    gossip = [free_port() for _ in range(3)]
    seeds = ", ".join(f'"127.0.0.1:{p}"' for p in gossip)
    voters = []
    for i in range(3):
        node_id = f"v{i + 1}"
        home = os.path.join(work, node_id)
        os.makedirs(home, exist_ok=True)
        api = free_port()
        config = f"""[node]
id = "{node_id}"
[api]
bind = "127.0.0.1:{api}"
token = "{token}"
[[checks]]
name = "heart"
probe = "ttl"
ttl = "1h"
critical = true
[cluster]
bind = "127.0.0.1:{gossip[i]}"
seeds = [{seeds}]
role = "voter"
voters = ["v1", "v2", "v3"]
data_dir = "{home}/raft"
raft_bind = "127.0.0.1:{free_port()}"
"""
        path = os.path.join(home, "vigil.toml")
        with open(path, "w") as f:
            f.write(config)
        voters.append((node_id, home, api, path))
    return voters
