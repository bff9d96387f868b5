"""``schedule``: wanted objects, nodes and running pods in; the desired placements, removals and reasons out."""

from __future__ import annotations

import gc
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Callable, Iterable, Iterator, Mapping, Sequence

from cluster_pilot.model import Node, Object, Pod, PodSpec, ReplicationController, Service, selector_matches
from cluster_pilot.scheduler import explain
from cluster_pilot.scheduler.fleet import Fleet, Shape, SpreadKey, labels_match
from cluster_pilot.scheduler.placement import place
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


def _schedule(objects: Sequence[Object], nodes: Sequence[Node], running: Sequence[RunningPod], retired: Iterable[str] = ()) -> Schedule:
    bare = {p.meta.name: p for p in sorted((o for o in objects if isinstance(o, Pod)), key=lambda o: o.meta.name)}
    controllers = {
        rc.meta.name: rc
        for rc in sorted((o for o in objects if isinstance(o, ReplicationController)), key=lambda o: o.meta.name)
    }
    services = sorted((o for o in objects if isinstance(o, Service)), key=lambda o: o.meta.name)
    specs = [p.spec for p in bare.values()] + [rc.template.spec for rc in controllers.values()]
    fleet = Fleet(nodes, {tuple(sorted(spec.node_selector.items())) for spec in specs})
    service_keys = _ServiceKeys(services)

    def keys_of(who: str | None, labels: Mapping[str, str]) -> tuple[SpreadKey, ...]:
        own: tuple[SpreadKey, ...] = (("rc", who),) if who else ()
        return own + service_keys(labels)

    removals: list[RunningPod] = []
    kept_bare: dict[str, RunningPod] = {}
    kept: dict[str, list[RunningPod]] = {name: [] for name in controllers}
    staying: list[tuple[RunningPod, int, tuple[SpreadKey, ...]]] = []
    seen: set[str] = set()
    for pod in sorted(running, key=lambda p: (p.name, not p.ready, p.node)):
        i = fleet.index.get(pod.node)
        if i is not None and not fleet.ready[i]:
            i = None  # a node that is not ready counts as gone: it holds nothing and keeps nothing
        who = owner(pod, bare, controllers)
        if who is None:
            if i is not None:
                staying.append((pod, i, service_keys(pod.labels)))
            continue
        spec, labels = (
            (bare[pod.name].spec, bare[pod.name].meta.labels)
            if who == "pod"
            else (controllers[who].template.spec, controllers[who].template.labels)
        )
        if (who == "pod" and i is None and pod.node in fleet.index and pod.name not in seen
                and _allowed(spec, fleet, fleet.index[pod.node])):
            seen.add(pod.name)  # seed era: a bare pod is bound to its minion, lost with it, never moved
            kept_bare[pod.name] = pod
            continue
        if i is None or pod.name in seen or not _allowed(spec, fleet, i):
            removals.append(pod)
            continue
        seen.add(pod.name)
        if who == "pod":
            kept_bare[pod.name] = pod
            staying.append((pod, i, keys_of(None, labels)))
        else:
            kept[who].append(pod)
            staying.append((pod, i, keys_of(who, labels)))

    for pod, i, _ in staying:
        fleet.hold(i, pod.cpu_millis, pod.memory_bytes)
    gone: set[int] = set()
    for name, rc in controllers.items():
        victims = surplus(kept[name], len(kept[name]) - max(rc.replicas, 0), fleet)
        removals.extend(victims)
        gone.update(id(v) for v in victims)
        kept[name] = [p for p in kept[name] if id(p) not in gone]
    for pod, i, keys in staying:
        if id(pod) not in gone:
            fleet.ports[i].update((port, protocol.upper()) for port, protocol in pod.host_ports)
            fleet.count(i, keys)
    fleet.build_indexes()

    placements = [Placement(bare[name], pod.node, existing=True) for name, pod in kept_bare.items()]
    placements += [
        Placement(replica(controllers[name], p.name), p.node, controller=name, existing=True)
        for name, pods in kept.items()
        for p in pods
    ]

    batches = _bare_batches([p for name, p in bare.items() if name not in kept_bare], keys_of)
    taken = {p.name for p in running} | set(bare) | set(retired)
    for name, rc in controllers.items():
        missing = max(rc.replicas, 0) - len(kept[name])
        if missing > 0:
            names = replica_names(name, missing, taken)
            batches.append(
                _Batch(Shape.of(rc.template.spec), keys_of(name, rc.template.labels), name, names, partial(replica, rc))
            )

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

    return Schedule(
        placements=tuple(sorted(placements, key=lambda p: (p.pod.meta.name, p.node))),
        removals=tuple(sorted(removals, key=lambda p: (p.node, p.name))),
        unschedulable=tuple(sorted(unschedulable, key=lambda u: u.pod)),
    )


def _allowed(spec: PodSpec, fleet: Fleet, i: int) -> bool:
    """Whether a running pod may stay where it is under the pin and nodeSelector wanted now."""
    return (spec.host is None or spec.host == fleet.names[i]) and labels_match(
        spec.node_selector.items(), fleet.nodes[i].labels
    )


def _bare_batches(
    pods: list[Pod], keys_of: Callable[[str | None, Mapping[str, str]], tuple[SpreadKey, ...]]
) -> list[_Batch]:
    """Bare pods to place, those alike in shape and spread keys sharing a batch (in name order)."""
    groups: dict[tuple[Shape, tuple[SpreadKey, ...]], list[Pod]] = {}
    for pod in pods:
        groups.setdefault((Shape.of(pod.spec), keys_of(None, pod.meta.labels)), []).append(pod)
    batches = []
    for (shape, keys), group in groups.items():
        by_name = {p.meta.name: p for p in group}
        batches.append(_Batch(shape, keys, None, list(by_name), by_name.__getitem__))
    return batches


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
