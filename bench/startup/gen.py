#!/usr/bin/env python3
"""Writes the MooseNG benchmark stack with seeded random readiness delays, three ways.

Usage: gen.py SEED OUTDIR BASE_PORT IMAGE [HEALTH_INTERVAL]

OUTDIR/stack.toml    the stack for `vigil up` (local `vigil fake-service` processes)
OUTDIR/compose.yml   the same stack for docker compose and `vigil up --compose`
OUTDIR/ideal.json    the readiness delays, and the critical path and wave schedule they imply

The dependencies are those of examples/mooseng.toml: master-2 and master-3 join master-1; chunk
servers, metalogger and cli need a master quorum (2 of 3 healthy); clients need 2 of the 3 chunk
servers; grafana needs prometheus. Compose cannot express a quorum, so its `depends_on` lists every
member of the group; vigil reads the groups from `x-vigil-groups` / `x-vigil-depends_on`.
"""
import json
import random
import sys

seed, outdir, base_port, image = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
# The compose healthcheck interval: how often docker itself looks (compose waits on it).
health_interval = sys.argv[5] if len(sys.argv) > 5 else "500ms"
rng = random.Random(seed)

groups = {
    "masters": (["master-1", "master-2", "master-3"], "quorum", 2),
    "chunkservers": (["chunkserver-1", "chunkserver-2", "chunkserver-3"], "{ min_healthy = 2 }", 2),
}
deps = {
    "master-1": [],
    "master-2": ["master-1"],
    "master-3": ["master-1"],
    "chunkserver-1": ["masters"],
    "chunkserver-2": ["masters"],
    "chunkserver-3": ["masters"],
    "metalogger": ["masters"],
    "cli": ["masters"],
    "client-1": ["chunkservers"],
    "client-2": ["chunkservers"],
    "client-3": ["chunkservers"],
    "prometheus": [],
    "grafana": ["prometheus"],
}
names = list(deps)
# Whole 100 ms steps between 0.5 s and 4 s.
delay = {name: rng.randint(5, 40) / 10 for name in names}
port = {name: base_port + i for i, name in enumerate(names)}


def members(dep):
    return groups[dep][0] if dep in groups else [dep]


finish, level = {}, {}
for name in names:  # dependencies come first in this order
    start = 0.0
    for dep in deps[name]:
        if dep in groups:
            need = groups[dep][2]
            start = max(start, sorted(finish[m] for m in groups[dep][0])[need - 1])
        else:
            start = max(start, finish[dep])
    finish[name] = start + delay[name]
    level[name] = 1 + max((level[m] for d in deps[name] for m in members(d)), default=-1)
waves = [max(delay[n] for n in names if level[n] == l) for l in range(max(level.values()) + 1)]

with open(f"{outdir}/stack.toml", "w") as f:
    for group, (group_members, policy, _) in groups.items():
        quoted = ", ".join(f'"{m}"' for m in group_members)
        policy = policy if policy.startswith("{") else f'"{policy}"'
        f.write(f"[groups.{group}]\nmembers = [{quoted}]\npolicy = {policy}\n\n")
    for name in names:
        d = ", ".join(f'{dep} = "healthy"' for dep in deps[name])
        f.write(
            f"[services.{name}]\n"
            f'command = ["vigil", "fake-service", "--port", "{port[name]}", "--ready-after", "{round(delay[name] * 1000)}ms"]\n'
            f"depends_on = {{ {d} }}\n"
            f'health = {{ probe = "http://127.0.0.1:{port[name]}/health", start_interval = "100ms" }}\n'
            f'stop_grace = "2s"\n\n'
        )

with open(f"{outdir}/compose.yml", "w") as f:
    f.write("x-vigil-groups:\n")
    for group, (group_members, policy, need) in groups.items():
        policy = "quorum" if policy == "quorum" else f"{{ min_healthy: {need} }}"
        f.write(f"  {group}: {{ members: [{', '.join(group_members)}], policy: {policy} }}\n")
    f.write("services:\n")
    for name in names:
        f.write(
            f"  {name}:\n"
            f"    image: {image}\n"
            f'    command: ["fake-service", "--host", "0.0.0.0", "--port", "8080", "--ready-after", "{round(delay[name] * 1000)}ms"]\n'
            f'    ports: ["127.0.0.1:{port[name]}:8080"]\n'
            f'    x-vigil-probe: "http://127.0.0.1:{port[name]}/health"\n'
            f"    stop_grace_period: 2s\n"
            f"    healthcheck:\n"
            f'      test: ["CMD", "/vigil", "probe", "http://127.0.0.1:8080/health"]\n'
            f"      interval: {health_interval}\n"
            f"      timeout: 1s\n"
            f"      retries: 60\n"
        )
        if deps[name]:
            f.write("    depends_on:\n")
            for dep in deps[name]:
                for member in members(dep):
                    f.write(f"      {member}: {{ condition: service_healthy }}\n")
            f.write("    x-vigil-depends_on:\n")
            for dep in deps[name]:
                f.write(f"      {dep}: {{ condition: service_healthy }}\n")

with open(f"{outdir}/ideal.json", "w") as f:
    json.dump(
        {
            "delays": delay,
            "critical_path_s": round(max(finish.values()), 3),
            "waves_s": round(sum(waves), 3),
        },
        f,
        indent=2,
    )
