"""What runs, read beside what was asked: the one view the master's API and ``cluster-pilot get`` both print. Pure.

A pod is listed once, in the version an observation calls current, described by the stored object that asks
for it (an older version of a controller's pod keeps its own images); a bare pod asked for and not running
yet is listed after them, and so is a controller's pod that never started. A pod backing off (``backoff``) is
listed with its reason (``ImagePullBackOff``, ``CreateContainerError``) as its status and dockerd's refusal as
its message. A controller counts the pods the scheduler counts for it (``replicas.owner``), so
its ``current`` is the number it acts on; pods naming a controller the store does not have are grouped under
that name. A minion is ready while it answers or is within its grace.

The master lists the whole fleet (``whole_fleet``): beside what its store holds, every object the minions'
records hold that a CLI apply set manages, read-only and marked with that owner (``managed_by``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Mapping, Sequence

from cluster_pilot.host.observed import HostView, ObservedPod, Observation
from cluster_pilot.host.podformat import INFRA
from cluster_pilot.host.records import Owner, fleet_records
from cluster_pilot.master.backoff import BackOff
from cluster_pilot.model import (POD, REPLICATION_CONTROLLER, SERVICE, Container, Meta, Node, Object, Pod, PodSpec,
                                 ReplicationController, Service, from_json)
from cluster_pilot.plan.proxy import Backend, endpoints, proxied
from cluster_pilot.scheduler import RunningPod
from cluster_pilot.scheduler.replicas import owner, replica
from cluster_pilot.store import Record


MASTER_APPLYSET = "master"  # what the master's own writes are stored under


def whole_fleet(stored: Sequence[Record], seen: Observation | None) -> list[Record]:
    """``stored``, then the objects the fleet's records hold that a CLI apply set manages and the store lacks,
    each under its apply set: what the master lists."""
    if seen is None:
        return list(stored)
    have = {(r.kind, r.name) for r in stored}
    return list(stored) + [Record(e.kind, e.name, dict(e.body or {}), e.version, e.owner.applyset)
                           for e in fleet_records(seen)[0].live()
                           if not e.owner.master and e.key not in have and e.owner.applyset not in ("", MASTER_APPLYSET)]


def managed_by(record: Record | None) -> str:
    """Who manages a listed object other than the master (``apply set 'default'``), or "": the master's."""
    if record is None or record.applyset in ("", MASTER_APPLYSET):
        return ""
    return Owner(record.applyset).describe()


@dataclass(frozen=True)
class PodEntry:
    name: str
    pod: Pod  # as its owner describes it, with the images it runs
    status: str  # Running, Waiting, Terminated; Unknown on a minion that neither answers nor is within its grace
    host_ip: str = ""
    observed: ObservedPod | None = None  # None: a bare pod asked for, not running yet
    record: Record | None = None  # the stored pod or controller that asks for it
    message: str = ""  # why it does not run: a back-off's reason and dockerd's words

    @property
    def host(self) -> str:
        return self.observed.node if self.observed else ""

    @property
    def controller(self) -> str | None:
        return self.observed.controller if self.observed else None


@dataclass(frozen=True)
class ControllerEntry:
    name: str
    controller: ReplicationController | None  # None: running pods name it, the store does not have it
    record: Record | None
    pods: tuple[PodEntry, ...]  # the running pods it counts


@dataclass(frozen=True)
class ServiceEntry:
    service: Service
    record: Record
    backends: Mapping[int, tuple[Backend, ...]]  # per service port


@dataclass(frozen=True)
class MinionEntry:
    node: Node
    view: HostView | None
    pods: tuple[ObservedPod, ...] = ()  # every version on it: what it holds

    @property
    def ready(self) -> bool:
        return bool(self.view and (self.view.reachable or self.view.stale))


class Registry:
    """One reading of the store beside one observation; each stored object is decoded once.

    ``leaving``: pods deleted through the API and not gone yet, which clients no longer see; ``waiting``: pods
    backing off after failed starts (the master's ``Reconciler.backoff``).
    """

    def __init__(self, records: Sequence[Record], nodes: Sequence[Node], seen: Observation | None,
                 leaving: frozenset[str] = frozenset(), waiting: Mapping[str, BackOff] | None = None) -> None:
        self.records, self.nodes, self.seen, self.leaving = records, nodes, seen, leaving
        self.waiting = dict(waiting or {})
        self._decoded: dict[tuple[str, str], Object] = {}

    def object(self, record: Record) -> Object:
        key = (record.kind, record.name)
        if key not in self._decoded:
            self._decoded[key] = from_json(record.body)
        return self._decoded[key]

    @cached_property
    def _by_key(self) -> dict[tuple[str, str], Record]:
        return {(r.kind, r.name): r for r in self.records}

    @cached_property
    def pods(self) -> tuple[PodEntry, ...]:
        """The pods the minions run, by name, then the bare pods asked for that do not run yet."""
        addresses = {n.name: n.address for n in self.nodes}
        out = []
        current = self.seen.current() if self.seen is not None else {}
        shown = set(current) - self.leaving
        for name in sorted(shown):
            p = current[name]
            view = self.seen.hosts.get(p.node)
            status = p.status if view is not None and (view.reachable or view.stale) else "Unknown"
            record = self._by_key.get((REPLICATION_CONTROLLER, p.controller) if p.controller else (POD, name))
            pod = described(p, self.object(record) if record is not None else None)
            b = self.waiting.get(name)
            if b is not None and status != "Unknown" and not p.complete:  # what its last try left
                status = b.reason
            out.append(PodEntry(name, pod, status, addresses.get(p.node, ""), p, record, _said(b)))
        for r in self.records:
            if r.kind == POD and r.name not in shown and r.name not in self.leaving:
                b = self.waiting.get(r.name)
                out.append(PodEntry(r.name, self.object(r), b.reason if b else "Waiting", record=r, message=_said(b)))
        for name, b in sorted(self.waiting.items()):
            record = self._by_key.get((REPLICATION_CONTROLLER, b.controller or ""))
            if name not in shown and name not in self.leaving and record is not None:
                rc = self.object(record)
                if isinstance(rc, ReplicationController):  # a controller's pod that never started
                    out.append(PodEntry(name, replica(rc, name), b.reason, record=record, message=_said(b)))
        return tuple(out)

    def controllers(self) -> list[ControllerEntry]:
        """Every stored controller with the pods it counts, and every controller only running pods name."""
        stored = {r.name: r for r in sorted(self.records, key=lambda r: r.name) if r.kind == REPLICATION_CONTROLLER}
        rcs = {name: self.object(r) for name, r in stored.items()}
        bare = {r.name: self.object(r) for r in self.records if r.kind == POD}
        counted: dict[str, list[PodEntry]] = {name: [] for name in stored}
        for e in self.pods:
            if e.observed is None:
                continue
            p = e.observed
            mine = owner(RunningPod(p.name, p.node, dict(p.labels), p.controller), bare, rcs)
            if mine is None and p.controller and p.controller not in stored:
                mine = p.controller
            if mine not in (None, "pod"):
                counted.setdefault(mine, []).append(e)
        return [ControllerEntry(name, rcs.get(name), stored.get(name), tuple(pods))
                for name, pods in sorted(counted.items())]

    def services(self) -> list[ServiceEntry]:
        """Every stored service with the backends its proxies balance over, per service port, and the address
        and node ports the fleet allocated it."""
        records = [r for r in self.records if r.kind == SERVICE]
        services = allocated([self.object(r) for r in records], self.seen)
        ready = endpoints(self.seen, {n.name: n.address for n in self.nodes}) if self.seen is not None else []
        backends = {(ps.name, ps.port): ps.backends for ps in proxied(services, ready)}
        return [ServiceEntry(svc, r, {sp.port: backends.get((svc.meta.name, sp.port), ()) for sp in svc.ports})
                for svc, r in zip(services, records)]

    def minions(self) -> list[MinionEntry]:
        hosts = self.seen.hosts if self.seen is not None else {}
        pods = self.seen.pods if self.seen is not None else ()
        return [MinionEntry(n, hosts.get(n.name), tuple(p for p in pods if p.node == n.name)) for n in self.nodes]


def _said(b: BackOff | None) -> str:
    return "" if b is None else f"{b.reason}: {b.message} (attempt {b.attempts})"


def allocated(services: Sequence[Service], seen: Observation | None) -> list[Service]:
    """``services`` with the address and node ports the fleet's records hold for them: a store keeps what
    was asked, the records what was allocated (see ``plan.addresses``)."""
    if seen is None:
        return list(services)
    recorded = {s.meta.name: s for s in fleet_records(seen)[0].objects(SERVICE)}
    out = []
    for svc in services:
        held = recorded.get(svc.meta.name)
        if held is not None:
            ports = {(p.port, p.protocol): p.node_port for p in held.ports}
            svc = replace(svc, cluster_ip=svc.cluster_ip or held.cluster_ip, ports=tuple(
                replace(p, node_port=p.node_port or ports.get((p.port, p.protocol))) for p in svc.ports))
        out.append(svc)
    return out


def described(p: ObservedPod, owner_object: Object | None) -> Pod:
    """The pod as its owner describes it, with the images it runs: an older version of a controller's pod
    (before ``rollingupdate`` reaches it) is listed with its own image, not the template's new one. A pod
    nobody stored is described from what runs."""
    running = {c.container: c.image for c in p.containers if c.container != INFRA and c.image}
    if isinstance(owner_object, (Pod, ReplicationController)):
        model = owner_object if isinstance(owner_object, Pod) else replica(owner_object, p.name)
        containers = tuple(replace(c, image=running.get(c.name, c.image)) for c in model.spec.containers)
        return model if containers == model.spec.containers else replace(
            model, spec=replace(model.spec, containers=containers))
    containers = tuple(Container(name, image) for name, image in running.items())
    return Pod(Meta(p.name, dict(p.labels)), PodSpec(containers or (Container("unknown", "unknown"),)))
