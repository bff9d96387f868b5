"""Why a pod fits nowhere, counted per node the way Kubernetes users know it.

``0/3 minions are available for web-7f3: 2 insufficient cpu, 1 hostPort 8080 in use``. A node that is not
ready, not the pinned host or not matching the nodeSelector is counted for that alone; a node that passes
those filters is counted for every resource it lacks, so the counts may add up to more than the nodes.
"""

from __future__ import annotations

from collections import Counter

from cluster_pilot.model import UDP
from cluster_pilot.scheduler.fleet import Fleet, Shape, labels_match


def reasons(fleet: Fleet, shape: Shape) -> tuple[str, ...]:
    """``("2 insufficient cpu", "1 hostPort 8080 in use")``: most frequent first, then alphabetical."""
    if shape.duplicate_ports:
        return tuple(f"the pod asks twice for hostPort {_port(p)}" for p in shape.duplicate_ports)
    if not fleet.names:
        return ("no minions in the inventory",)
    counts: Counter[str] = Counter()
    for i, name in enumerate(fleet.names):
        if not fleet.ready[i]:
            counts["not ready"] += 1
        elif shape.host is not None and name != shape.host:
            counts[f"not the pinned host {shape.host}"] += 1
        elif not labels_match(shape.selector, fleet.nodes[i].labels):
            counts["not matching nodeSelector " + ",".join(f"{k}={v}" for k, v in shape.selector)] += 1
        else:
            if fleet.used_cpu[i] + shape.cpu > fleet.cap_cpu[i]:
                counts["insufficient cpu"] += 1
            if fleet.used_mem[i] + shape.memory > fleet.cap_mem[i]:
                counts["insufficient memory"] += 1
            if fleet.used_pods[i] >= fleet.cap_pods[i]:
                counts["too many pods"] += 1
            for port in sorted(shape.ports & fleet.ports[i]):
                counts[f"hostPort {_port(port)} in use"] += 1
    return tuple(f"{n} {cause}" for cause, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def message(fleet: Fleet, shape: Shape, pod: str, why: tuple[str, ...]) -> str:
    text = f"0/{len(fleet.names)} minions are available for {pod}: {', '.join(why)}"
    if shape.host is not None and shape.host not in fleet.index:
        text += f" ({shape.host} is not in the inventory)"
    return text


def _port(port: tuple[int, str]) -> str:
    number, protocol = port
    return f"{number}/{UDP}" if protocol == UDP else str(number)
