"""What the dashboard shows, from values the master already has (pure): minions with their pods,
controllers (desired vs running), services (endpoints up or down) and the latest events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from cluster_pilot.host.inspect import ContainerStatus, restarts
from cluster_pilot.host.observe import Observation
from cluster_pilot.host.podformat import INFRA
from cluster_pilot.model import Node, ReplicationController, Service, selector_matches
from cluster_pilot.quantity import format_bytes, format_cpu
from cluster_pilot.store.events import Event


@dataclass(frozen=True)
class Board:
    minions: list[dict[str, Any]]
    controllers: list[dict[str, Any]]
    services: list[dict[str, Any]]
    events: list[Event]


def board(nodes: Sequence[Node], seen: Observation | None, controllers: Sequence[ReplicationController],
          services: Sequence[Service], statuses: Mapping[str, ContainerStatus], events: Sequence[Event]) -> Board:
    seen = seen or Observation({})
    current = sorted(seen.current().values(), key=lambda p: p.name)
    minions = []
    for n in nodes:
        view = seen.hosts.get(n.name)
        here = [p for p in current if p.node == n.name]
        minions.append({
            "name": n.name, "address": n.address, "ready": bool(view and (view.reachable or view.stale)),
            "error": view.error if view else "not observed yet",
            "capacity": f"cpu {format_cpu(n.capacity.cpu_millis)}, memory {format_bytes(n.capacity.memory_bytes)}, "
                        f"{n.capacity.pods} pods",
            "used": f"cpu {format_cpu(sum(p.cpu_millis for p in here))}, "
                    f"memory {format_bytes(sum(p.memory_bytes for p in here))}, {len(here)} pods",
            "pods": [{"name": p.name, "status": p.status, "restarts": restarts(p, statuses),
                      "images": ", ".join(c.image for c in p.containers if c.container != INFRA),
                      "controller": p.controller or ""} for p in here]})
    rcs = [{"name": rc.meta.name, "desired": rc.replicas,
            "running": sum(1 for p in current if p.controller == rc.meta.name and p.status == "Running")}
           for rc in controllers]
    addresses = ", ".join(n.address for n in nodes)
    svcs = []
    for s in services:
        members = [p for p in current if selector_matches(s.selector, p.labels)]
        svcs.append({"name": s.meta.name, "ports": ", ".join(str(p.port) for p in s.ports), "addresses": addresses,
                     "endpoints": [{"pod": p.name, "node": p.node, "up": p.status == "Running"} for p in members]})
    return Board(minions, rcs, svcs, list(reversed(events)))
