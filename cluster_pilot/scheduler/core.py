"""``schedule``: wanted objects, nodes and running pods in; the desired placements, removals and reasons out."""

from __future__ import annotations

import gc
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Callable, Iterable, Iterator, Mapping, Sequence

from cluster_pilot.model import Node, Object, Pod, ReplicationController, Service, selector_matches
from cluster_pilot.scheduler import explain
from cluster_pilot.scheduler.fleet import Fleet, Shape, SpreadKey
from cluster_pilot.scheduler.placement import place
from cluster_pilot.scheduler.predicates import STAY_FILTERS, hold
from cluster_pilot.scheduler.replicas import owner, replica, replica_names, surplus
from cluster_pilot.scheduler.types import Placement, RunningPod, Schedule, Unschedulable


@dataclass
class _Batch:
    """Pods to place one after the other: one shape, one set of spread keys."""

    shape: Shape
    keys: tuple[SpreadKey, ...]
    controller: str | None
    names: list[str]
    make: Callable[[str], Pod]

    @property
    def order(self) -> tuple:
        """Most constrained first (pinned, nodeSelector, hostPorts), then largest, then by name."""
        s = self.shape
        return (s.host is None, not s.selector, not s.ports, -s.cpu, -s.memory, self.names[0])


def schedule(objects: Sequence[Object], nodes: Sequence[Node], running: Sequence[RunningPod] = (),
             retired: Iterable[str] = ()) -> Schedule:
    """Place every wanted pod, keeping running ones where they are.

    ``retired``: names new replicas must not take (pods being evicted: their containers still exist).

    Pure and deterministic: the result depends on the inputs only, never on their order. Running pods stay
    on their node unless it is gone, not ready, or excluded by the pod's pin or nodeSelector; a controller
    counts the running pods its selector matches and gets new replicas for the missing ones. Every running
    pod on a ready node holds its resources, whoever owns it.
    """
    with _cyclic_gc_paused():
        return _schedule(objects, nodes, running, retired)


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Scheduling makes hundreds of thousands of small tuples and no reference cycles; with tens of thousands
    of pods alive, CPython's cycle collector would rescan them all again and again, up to half the time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass(frozen=True)
class _Wanted:
    """The wanted objects of one run, in name order, with their shapes and spread keys worked out once."""

    bare: dict[str, Pod]
    controllers: dict[str, ReplicationController]
    shapes: dict[str, Shape]  # a bare pod's by its name, a controller's by its name (as ("rc", name))
    service_keys: _ServiceKeys

    @classmethod
    def of(cls, objects: Sequence[Object]) -> _Wanted:
        pods = sorted((o for o in objects if isinstance(o, Pod)), key=lambda o: o.meta.name)
        rcs = sorted((o for o in objects if isinstance(o, ReplicationController)), key=lambda o: o.meta.name)
        services = sorted((o for o in objects if isinstance(o, Service)), key=lambda o: o.meta.name)
        bare = {p.meta.name: p for p in pods}
        controllers = {rc.meta.name: rc for rc in rcs}
        shapes = {name: Shape.of(p.spec) for name, p in bare.items()}
        shapes.update({f"rc/{name}": Shape.of(rc.template.spec) for name, rc in controllers.items()})
        return cls(bare, controllers, shapes, _ServiceKeys(services))

    def keys_of(self, who: str | None, labels: Mapping[str, str]) -> tuple[SpreadKey, ...]:
        own: tuple[SpreadKey, ...] = (("rc", who),) if who else ()
        return own + self.service_keys(labels)

    def shape_of(self, who: str, pod: str) -> Shape:
        """The wanted shape of ``pod`` (``who`` from ``owner``)."""
        return self.shapes[pod] if who == "pod" else self.shapes[f"rc/{who}"]

    def keys_of_owner(self, who: str, pod: str) -> tuple[SpreadKey, ...]:
        if who == "pod":
            return self.keys_of(None, self.bare[pod].meta.labels)
        return self.keys_of(who, self.controllers[who].template.labels)


@dataclass
class _Kept:
    """What becomes of the running pods: kept (bare by name, replicas by controller) or removed."""

    bare: dict[str, RunningPod]
    replicas: dict[str, list[RunningPod]]
    removals: list[RunningPod]
    # every running pod on a ready node that holds its room, with its node and spread keys
    staying: list[tuple[RunningPod, int, tuple[SpreadKey, ...]]]


def _schedule(
    objects: Sequence[Object], nodes: Sequence[Node], running: Sequence[RunningPod], retired: Iterable[str] = ()
) -> Schedule:
    wanted = _Wanted.of(objects)
    fleet = Fleet(nodes, {shape.selector for shape in wanted.shapes.values()})
    kept = _keep_or_remove(running, wanted, fleet)
    _hold_what_stays(kept, wanted, fleet)
    fleet.build_indexes()

    placements = [Placement(wanted.bare[name], pod.node, existing=True) for name, pod in kept.bare.items()]
    placements += [
        Placement(replica(wanted.controllers[name], p.name), p.node, controller=name, existing=True)
        for name, pods in kept.replicas.items()
        for p in pods
    ]
    taken = {p.name for p in running} | set(wanted.bare) | set(retired)
    new, unschedulable = _place_batches(fleet, _batches(wanted, kept, taken))
    return Schedule(
        placements=tuple(sorted(placements + new, key=lambda p: (p.pod.meta.name, p.node))),
        removals=tuple(sorted(kept.removals, key=lambda p: (p.node, p.name))),
        unschedulable=tuple(sorted(unschedulable, key=lambda u: u.pod)),
    )


def _keep_or_remove(running: Sequence[RunningPod], wanted: _Wanted, fleet: Fleet) -> _Kept:
    kept = _Kept({}, {name: [] for name in wanted.controllers}, [], [])
    seen: set[str] = set()
    for pod in sorted(running, key=lambda p: (p.name, not p.ready, p.node)):
        i = fleet.index.get(pod.node)
        if i is not None and not fleet.ready[i]:
            i = None  # a node that is not ready counts as gone: it holds nothing and keeps nothing
        who = owner(pod, wanted.bare, wanted.controllers)
        if who is None:
            if i is not None:
                kept.staying.append((pod, i, wanted.service_keys(pod.labels)))
            continue
        shape = wanted.shape_of(who, pod.name)
        if (who == "pod" and i is None and pod.node in fleet.index and pod.name not in seen
                and _allowed(shape, fleet, fleet.index[pod.node])):
            seen.add(pod.name)  # seed era: a bare pod is bound to its minion, lost with it, never moved
            kept.bare[pod.name] = pod
            continue
        if i is None or pod.name in seen or not _allowed(shape, fleet, i):
            kept.removals.append(pod)
            continue
        seen.add(pod.name)
        if who == "pod":
            kept.bare[pod.name] = pod
        else:
            kept.replicas[who].append(pod)
        kept.staying.append((pod, i, wanted.keys_of_owner(who, pod.name)))
    return kept


def _hold_what_stays(kept: _Kept, wanted: _Wanted, fleet: Fleet) -> None:
    """Count the room the staying pods hold, less each controller's surplus, and their spread."""
    for pod, i, _ in kept.staying:
        hold(fleet, i, Shape.held_by(pod))
    gone: set[int] = set()
    for name, rc in wanted.controllers.items():
        pods = kept.replicas[name]
        victims = surplus(pods, len(pods) - max(rc.replicas, 0), fleet)
        kept.removals.extend(victims)
        gone.update(id(v) for v in victims)
        kept.replicas[name] = [p for p in pods if id(p) not in gone]
    for pod, i, keys in kept.staying:
        if id(pod) not in gone:
            fleet.ports[i].update(Shape.held_by(pod).ports)
            fleet.count(i, keys)


def _batches(wanted: _Wanted, kept: _Kept, taken: set[str]) -> list[_Batch]:
    """The pods to create: bare pods alike in shape and spread keys share a batch, a controller's are one."""
    groups: dict[tuple[Shape, tuple[SpreadKey, ...]], dict[str, Pod]] = {}
    for name, pod in wanted.bare.items():
        if name not in kept.bare:
            group = (wanted.shapes[name], wanted.keys_of(None, pod.meta.labels))
            groups.setdefault(group, {})[name] = pod
    batches = [_Batch(shape, keys, None, list(pods), pods.__getitem__) for (shape, keys), pods in groups.items()]
    for name, rc in wanted.controllers.items():
        missing = max(rc.replicas, 0) - len(kept.replicas[name])
        if missing > 0:
            names = replica_names(name, missing, taken)
            keys = wanted.keys_of(name, rc.template.labels)
            batches.append(_Batch(wanted.shapes[f"rc/{name}"], keys, name, names, partial(replica, rc)))
    return batches


def _place_batches(fleet: Fleet, batches: list[_Batch]) -> tuple[list[Placement], list[Unschedulable]]:
    """Most constrained batch first; what fits nowhere is explained once per shape while the fleet stands."""
    placements: list[Placement] = []
    unschedulable: list[Unschedulable] = []
    # shape -> (fleet version, reasons): while no pod lands anywhere, a shape that fitted nowhere still does not
    fits_nowhere: dict[Shape, tuple[int, tuple[str, ...]]] = {}
    for batch in sorted(batches, key=lambda b: b.order):
        verdict = fits_nowhere.get(batch.shape)
        known_misfit = verdict is not None and verdict[0] == fleet.version
        placed = [] if known_misfit else place(fleet, batch.shape, batch.keys, len(batch.names))
        for name, i in zip(batch.names, placed):  # noqa: B905 - names beyond the placed ones are pending
            placements.append(Placement(batch.make(name), fleet.names[i], controller=batch.controller))
        rest = batch.names[len(placed):]
        if not rest:
            continue
        if verdict is None or verdict[0] != fleet.version:
            verdict = fits_nowhere[batch.shape] = (fleet.version, explain.reasons(fleet, batch.shape))
        why = verdict[1]
        unschedulable += [
            Unschedulable(name, batch.controller, why, explain.message(fleet, batch.shape, name, why)) for name in rest
        ]
    return placements, unschedulable


def _allowed(shape: Shape, fleet: Fleet, i: int) -> bool:
    """Whether a running pod may stay on node ``i`` under the pin and nodeSelector wanted now."""
    return all(predicate(fleet, i, shape) is None for predicate in STAY_FILTERS)


class _ServiceKeys:
    """The spread keys of the services whose selector matches a set of labels.

    Services are indexed by one pair of their selector, so a pod's labels are checked only against the
    services that could match; results are cached because replicas share their labels.
    """

    def __init__(self, services: Sequence[Service]) -> None:
        self._by_pair: dict[tuple[str, str], list[Service]] = {}
        for service in services:
            if service.selector:
                self._by_pair.setdefault(min(service.selector.items()), []).append(service)
        self._cache: dict[frozenset, tuple[SpreadKey, ...]] = {}

    def __call__(self, labels: Mapping[str, str]) -> tuple[SpreadKey, ...]:
        if not self._by_pair:
            return ()
        key = frozenset(labels.items())
        found = self._cache.get(key)
        if found is None:
            names = sorted(
                s.meta.name
                for pair in key
                for s in self._by_pair.get(pair, ())
                if selector_matches(s.selector, labels)
            )
            found = self._cache[key] = tuple(("svc", name) for name in names)
        return found
