"""What the dashboard shows, read off the master's registry (pure): minions with their pods, controllers
(desired vs running), services (endpoints up or down) and the latest events. Objects a CLI apply set manages
are shown with their owner, read-only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from cluster_pilot.host.inspect import ContainerStatus, restarts
from cluster_pilot.host.podformat import INFRA
from cluster_pilot.master.registry import Registry, managed_by
from cluster_pilot.model import selector_matches
from cluster_pilot.quantity import format_bytes, format_cpu
from cluster_pilot.store.events import Event


@dataclass(frozen=True)
class Board:
    minions: list[dict[str, Any]]
    controllers: list[dict[str, Any]]
    services: list[dict[str, Any]]
    events: list[Event]


def board(registry: Registry, statuses: Mapping[str, ContainerStatus], events: Sequence[Event]) -> Board:
    running = [e for e in registry.pods if e.observed is not None]
    minions = []
    for m in registry.minions():
        here = [e.observed for e in running if e.host == m.node.name]
        cap = m.node.capacity
        minions.append({
            "name": m.node.name, "address": m.node.address, "ready": m.ready,
            "error": m.view.error if m.view else "not observed yet",
            "capacity": f"cpu {format_cpu(cap.cpu_millis)}, memory {format_bytes(cap.memory_bytes)}, {cap.pods} pods",
            "used": f"cpu {format_cpu(sum(p.cpu_millis for p in here))}, "
                    f"memory {format_bytes(sum(p.memory_bytes for p in here))}, {len(here)} pods",
            "pods": [{"name": p.name, "status": p.status, "restarts": restarts(p, statuses),
                      "images": ", ".join(c.image for c in p.containers if c.container != INFRA),
                      "controller": p.controller or ""} for p in here]})
    rcs = [{"name": c.name, "desired": c.controller.replicas,
            "running": sum(1 for e in c.pods if e.status == "Running"), "owner": managed_by(c.record)}
           for c in registry.controllers() if c.controller is not None]
    addresses = ", ".join(n.address for n in registry.nodes)
    svcs = [{"name": s.service.meta.name, "owner": managed_by(s.record), "ports": ", ".join(str(p.port) for p in s.service.ports),
             "addresses": addresses,
             "endpoints": [{"pod": e.name, "node": e.host, "up": e.status == "Running"} for e in running
                           if selector_matches(s.service.selector, e.observed.labels)]}
            for s in registry.services()]
    return Board(minions, rcs, svcs, list(reversed(events)))
