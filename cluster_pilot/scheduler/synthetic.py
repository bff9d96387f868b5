"""A synthetic fleet and workload shaped like a real one, for the scheduler benchmark.

Four machine types, four zones, some ``disk=ssd`` and ``gpu=true`` nodes; controllers of 1 to 40 replicas
and bare pods with mixed requests (some none at all, as most seed-era manifests), a few hostPorts and
nodeSelectors, and services over about half of them. The same seed gives the same input.
"""

from __future__ import annotations

import random

from cluster_pilot.model import (
    Container,
    Meta,
    Node,
    Object,
    Pod,
    PodSpec,
    PodTemplate,
    Port,
    ReplicationController,
    Resources,
    Service,
    ServicePort,
)

_MACHINES = (  # (cpu millis, memory GiB, pods), weight
    ((2000, 4, 110), 3),
    ((4000, 16, 110), 4),
    ((8000, 32, 110), 2),
    ((16000, 64, 250), 1),
)
_CPU = (0, 50, 100, 100, 250, 250, 500, 1000)
_MEMORY_MI = (0, 64, 128, 128, 256, 512, 1024)
_ZONES = ("zone-a", "zone-b", "zone-c", "zone-d")


def fleet(count: int, seed: int = 0) -> list[Node]:
    rng = random.Random(seed)
    machines = [m for m, _ in _MACHINES]
    weights = [w for _, w in _MACHINES]
    nodes = []
    for n in range(count):
        cpu, gib, pods = rng.choices(machines, weights)[0]
        labels = {"zone": _ZONES[n % len(_ZONES)], "disk": "ssd" if rng.random() < 0.5 else "hdd"}
        if rng.random() < 0.1:
            labels["gpu"] = "true"
        address = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
        nodes.append(Node(f"minion-{n:05d}", address, Resources(cpu, gib << 30, pods), labels))
    return nodes


def workload(pods: int, seed: int = 0) -> list[Object]:
    """Objects asking for exactly ``pods`` pods: about 85% in controllers, the rest bare."""
    rng = random.Random(seed + 1)
    objects: list[Object] = []
    left = pods
    bare = pods * 15 // 100
    n = 0
    while left > bare:
        replicas = min(rng.randint(1, 40), left - bare)
        name = f"app-{n:05d}"
        labels = {"app": name, "tier": rng.choice(("web", "api", "worker", "cache"))}
        template = PodTemplate(labels, _spec(rng, name))
        objects.append(ReplicationController(Meta(name), replicas, {"app": name}, template))
        if rng.random() < 0.5:
            objects.append(Service(Meta(name), (ServicePort(80 + n % 1000),), {"app": name}))
        left -= replicas
        n += 1
    for k in range(left):
        name = f"solo-{k:05d}"
        objects.append(Pod(Meta(name, {"tier": rng.choice(("batch", "job"))}), _spec(rng, name, bare=True)))
    objects.append(Service(Meta("batch"), (ServicePort(9000),), {"tier": "batch"}))
    return objects


def _spec(rng: random.Random, name: str, bare: bool = False) -> PodSpec:
    ports: tuple[Port, ...] = ()
    if rng.random() < 0.05:
        ports = (Port(8080, host_port=8000 + rng.randrange(40), protocol=rng.choice(("TCP", "TCP", "UDP"))),)
    selector: dict[str, str] = {}
    roll = rng.random()
    if roll < 0.1:
        selector = {"disk": "ssd"}
    elif roll < 0.13:
        selector = {"gpu": "true"}
    elif roll < 0.15 and not bare:
        selector = {"zone": rng.choice(_ZONES)}
    container = Container(
        name=name,
        image=f"registry.example/{name}:1",
        ports=ports,
        cpu_millis=rng.choice(_CPU),
        memory_bytes=rng.choice(_MEMORY_MI) << 20,
    )
    return PodSpec(containers=(container,), node_selector=selector)
