"""Replica counts: which running pods a controller counts, which it gives up, and the names of new ones."""

from __future__ import annotations

import hashlib
from heapq import heapify, heappop, heappush
from typing import Mapping, Sequence

from cluster_pilot.model import Meta, Pod, ReplicationController, selector_matches
from cluster_pilot.scheduler.fleet import Fleet, Shape
from cluster_pilot.scheduler.predicates import hold
from cluster_pilot.scheduler.types import RunningPod


def owner(pod: RunningPod, bare: Mapping[str, Pod], controllers: Mapping[str, ReplicationController]) -> str | None:
    """``"pod"``, a controller's name, or None when the pod is no business of this schedule.

    A pod without a controller label whose name is a wanted bare pod is that pod. A pod labelled with a
    controller this schedule does not name stays that controller's (applying one file must not take pods
    from another's controllers). Otherwise the controller the pod names counts it while its selector still
    matches; failing that, the first controller by name whose selector matches adopts it, as the seed's
    replication manager counted any matching pod.
    ``controllers`` is in name order.
    """
    if pod.controller is None and pod.name in bare:
        return "pod"
    if pod.controller is not None and pod.controller not in controllers:
        return None  # another controller's pod, not named in this schedule: never taken from it
    own = controllers.get(pod.controller) if pod.controller is not None else None
    if own is not None and selector_matches(own.selector, pod.labels):
        return own.meta.name
    for name, rc in controllers.items():
        if selector_matches(rc.selector, pod.labels):
            return name
    return None


def surplus(pods: Sequence[RunningPod], excess: int, fleet: Fleet) -> list[RunningPod]:
    """The ``excess`` pods a controller gives up: not ready ones first, then from its most loaded nodes.

    Nodes are ranked by cpu + memory fraction, then by the controller's pods there, then by name; the
    ranking is redone after each removal, so the surplus comes off the fullest nodes evenly.
    """
    if excess <= 0:
        return []
    ordered = sorted(pods, key=lambda p: (p.ready, p.name))
    victims = [p for p in ordered if not p.ready][:excess]
    by_node: dict[int, list[RunningPod]] = {}
    for p in ordered:
        if p.ready:
            by_node.setdefault(fleet.index[p.node], []).append(p)
    heap = [(-fleet.load(i), -len(ps), -i) for i, ps in by_node.items()]
    heapify(heap)
    while len(victims) < excess and heap:
        i = -heappop(heap)[2]
        victim = by_node[i].pop()
        victims.append(victim)
        hold(fleet, i, Shape.held_by(victim), delta=-1)
        if by_node[i]:
            heappush(heap, (-fleet.load(i), -len(by_node[i]), -i))
    for p in victims:
        if not p.ready:
            hold(fleet, fleet.index[p.node], Shape.held_by(p), delta=-1)
    return victims


def replica_names(controller: str, count: int, taken: set[str]) -> list[str]:
    """``web-3f2a1``: deterministic, so that two plans of the same input name the same pods; never a taken name."""
    names: list[str] = []
    n = 0
    while len(names) < count:
        digest = hashlib.sha256(f"{controller}#{n}".encode()).hexdigest()
        name = f"{controller}-{digest[:5]}" if n < 16**5 else f"{controller}-{digest[:10]}"
        n += 1
        if name not in taken:
            taken.add(name)
            names.append(name)
    return names


def replica(rc: ReplicationController, name: str) -> Pod:
    """A controller's pod: its template, under its own name, in the controller's namespace."""
    meta = Meta(
        name=name,
        labels=rc.template.labels,
        namespace=rc.meta.namespace,
        api_version=rc.meta.api_version,
        source=rc.meta.source,
    )
    return Pod(meta=meta, spec=rc.template.spec)
