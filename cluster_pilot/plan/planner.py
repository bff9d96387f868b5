"""The smallest set of actions that turns what runs (observation) into what is wanted (schedule). Pure.

A pod version is identified by its name and a hash of its spec: a pod whose hash changed is replaced by a
new version (new containers beside the old, then the old removed, so a service always has a backend),
except when the old version holds host ports the new one needs, which must be freed first.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Collection, Iterable, Mapping, Sequence

from cluster_pilot.manifests.network import ServiceNetwork
from cluster_pilot.model import Pod, Service, spec_document
from cluster_pilot.host.observed import ObservedPod, Observation
from cluster_pilot.host.podformat import BINDS_VERSION, LABEL_PROBES, RUNTIME_VERSION, Published
from cluster_pilot.plan.proxy import (Endpoint, agent_key, document_hash, endpoints, free_port, proxied,
                                     proxy_document)
from cluster_pilot.scheduler import Placement, RunningPod, Schedule, Unschedulable


def spec_hash(pod: Pod, controller: str | None) -> str:
    """Changes when anything that needs new containers changes: the spec, the pod's labels, its owner."""
    doc = {"spec": spec_document(pod.spec), "labels": dict(pod.meta.labels), "controller": controller,
           "runtime": RUNTIME_VERSION}
    if any(v.kind == "hostDir" for v in pod.spec.volumes):
        doc["binds"] = BINDS_VERSION
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Create:
    node: str
    pod: Pod
    controller: str | None
    spec_hash: str
    ports: tuple[Published, ...] = ()  # every declared port, hostPort or a dynamic one chosen here

    @property
    def name(self) -> str:
        return self.pod.meta.name


@dataclass(frozen=True)
class Remove:
    node: str
    pod: str
    spec_hash: str
    container_ids: tuple[str, ...]
    reason: str
    first: bool = False  # before the creations on its host (it holds host ports a new version needs)


ACTIONS = ("create", "replace", "remove", "proxy", "record")


@dataclass(frozen=True)
class Change:
    """One line of what a plan does, as a person reads it: a create and a remove of the same pod on the same
    host is one ``replace``; ``proxy`` is a minion whose service proxy is switched, ``record`` one whose object
    records are rewritten (``pod`` is "")."""

    action: str  # one of ACTIONS
    pod: str
    node: str
    controller: str | None = None  # create and replace
    images: tuple[str, ...] = ()  # create and replace
    reason: str = ""  # remove


@dataclass(frozen=True)
class Plan:
    creates: tuple[Create, ...] = ()
    removes: tuple[Remove, ...] = ()
    kept: tuple[Placement, ...] = ()
    unschedulable: tuple[Unschedulable, ...] = ()
    proxy: str = ""  # the proxy document every minion must serve (see ``proxy``)
    proxy_nodes: tuple[str, ...] = ()  # minions whose proxy differs from it
    drain: str = ""  # proxy document to switch to before pods that must stop first do (see ``_proxies``)
    records: str = ""  # the object records document every minion must keep (see ``host.records``)
    records_nodes: tuple[str, ...] = ()  # minions whose copy differs from it

    @property
    def empty(self) -> bool:
        return not self.creates and not self.removes and not self.proxy_nodes and not self.records_nodes

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(sorted({a.node for a in (*self.creates, *self.removes)} | set(self.proxy_nodes)
                            | set(self.records_nodes)))

    def changes(self) -> tuple[Change, ...]:
        """For ``plan``, progress and metrics; worked out once per plan."""
        return self._changes

    @cached_property
    def _changes(self) -> tuple[Change, ...]:
        replaced = {(r.node, r.pod) for r in self.removes} & {(c.node, c.name) for c in self.creates}
        out = [Change("replace" if (c.node, c.name) in replaced else "create", c.name, c.node, c.controller,
                      tuple(k.image for k in c.pod.spec.containers)) for c in self.creates]
        out += [Change("remove", r.pod, r.node, reason=r.reason)
                for r in self.removes if (r.node, r.pod) not in replaced]
        out += [Change("proxy", "", n) for n in self.proxy_nodes]
        out += [Change("record", "", n) for n in self.records_nodes]
        return tuple(sorted(out, key=lambda c: (c.action in ("proxy", "record"), c.pod, c.node, c.action)))


def running_pods(observation: Observation) -> list[RunningPod]:
    """The scheduler's view: one entry per pod name per host (the newest version when a replace was cut)."""
    out: dict[tuple[str, str], RunningPod] = {}
    for p in observation.pods:
        host = observation.hosts[p.node]
        out[(p.node, p.name)] = RunningPod(
            name=p.name, node=p.node, labels=dict(p.labels), controller=p.controller, cpu_millis=p.cpu_millis,
            memory_bytes=p.memory_bytes, host_ports=p.host_ports, ready=(host.reachable or host.stale) and p.complete,
            spec_hash=p.spec_hash)
    return list(out.values())


def plan(schedule: Schedule, observation: Observation, *, services: Sequence[Service] = (),
         addresses: Mapping[str, str] | None = None, prune_applyset: str | None = None,
         deleting: Iterable[tuple[str, str]] = (), evict: Iterable[str] = (), roll: bool = True,
         network: ServiceNetwork | None = None, hold: Collection[tuple[str, str]] = frozenset()) -> Plan:
    """Actions per host, and the proxy configuration every minion must serve once new pods run.

    ``services``: every service that should exist (not only those in the inputs); ``addresses``: where
    each minion is reached, for backends.
    ``prune_applyset``: remove running pods labelled with that apply set whose objects the inputs no longer
    name. ``deleting``: (kind, name) of objects being deleted; their pods are removed wherever they run.
    ``evict``: names of pods to remove wherever they run, whoever owns them (a pod deleted through the
    API, the pods of a lost minion when it comes back); a controller replaces them under new names.
    ``roll``: a controller pod whose template changed is replaced (``apply``); without it, as in the seed
    era, running pods keep the spec they were made with and only new replicas get the new template (the
    master: ``kubecfg rollingupdate`` replaces them one at a time by deleting them).
    ``network``: the service network, which every minion's proxy makes local and its DNS server serves.
    ``hold``: (pod, spec hash) of versions that failed to start and wait for their next try (``master.backoff``):
    such a pod gets no action at all, whatever runs of it, until it is no longer held or its spec changes.
    Hosts that did not answer get no action: what runs there is unknown until they come back.
    """
    reachable = {name for name, view in observation.hosts.items() if view.reachable}
    versions: dict[str, list[ObservedPod]] = {}
    for p in observation.pods:
        if p.node in reachable:
            versions.setdefault(p.name, []).append(p)

    creates: list[Create] = []
    removes: list[Remove] = []
    kept: list[Placement] = []
    wanted = {p.name for p in schedule.placements}
    for placement in schedule.placements:
        if placement.node not in reachable:
            kept.append(placement)  # a bare pod on a minion that does not answer: lost, not moved
            continue
        h = spec_hash(placement.pod, placement.controller)
        here = [v for v in versions.get(placement.name, ()) if v.node == placement.node]
        elsewhere = [v for v in versions.get(placement.name, ()) if v.node != placement.node]
        good = next((v for v in here if v.spec_hash == h and v.complete), None)
        if good is None and not roll and placement.controller:
            good = next((v for v in here if v.complete), None)
        if good is None and (placement.name, h) in hold:
            kept.append(placement)  # backing off: neither a new try nor the removal of what its last try left
            continue
        if good is None:
            creates.append(Create(placement.node, placement.pod, placement.controller, h))
            ports = set(placement.pod.spec.host_ports)
            # a broken copy of the very same version holds the container names the new one needs
            removes += [_remove(v, "replaced", first=v.spec_hash == h or bool(ports & set(v.host_ports)))
                        for v in here]
        else:
            kept.append(placement)
            removes += [_remove(v, "stale version") for v in here if v is not good]
        removes += [_remove(v, f"moved to {placement.node}") for v in elsewhere]

    for gone in schedule.removals:
        removes += [_remove(v, "surplus" if gone.ready else "node lost")
                    for v in versions.get(gone.name, ()) if v.node == gone.node]
    doomed = set(deleting)
    evicted = set(evict)
    for name, vs in versions.items():
        if name in wanted:
            continue
        for v in vs:
            if (v.kind, v.controller or v.name) in doomed or name in evicted:
                removes.append(_remove(v, "deleted" if name not in evicted else "evicted"))
            elif prune_applyset is not None and v.applyset == prune_applyset:
                removes.append(_remove(v, "pruned"))
    removes = _free_ports_first(_dedupe(removes), creates, versions)
    creates = _publish(creates, removes, observation, services)
    document, proxy_nodes, drain = _proxies(creates, removes, observation, services, addresses or {}, network)
    return Plan(tuple(creates), tuple(removes), tuple(kept), schedule.unschedulable, document, proxy_nodes, drain)


def _free_ports_first(removes: list[Remove], creates: Sequence[Create],
                      versions: Mapping[str, list[ObservedPod]]) -> list[Remove]:
    """A pod going away that holds a host port a new pod on its minion needs must go before it starts."""
    needed: dict[str, set[tuple[int, str]]] = {}
    for c in creates:
        needed.setdefault(c.node, set()).update(c.pod.spec.host_ports)
    held = {(v.node, v.name, v.spec_hash): set(v.host_ports) for vs in versions.values() for v in vs}
    return [replace(r, first=True) if not r.first and held.get((r.node, r.pod, r.spec_hash), set()) &
            needed.get(r.node, set()) else r for r in removes]


def _publish(creates: list[Create], removes: Sequence[Remove], observation: Observation,
             services: Sequence[Service]) -> list[Create]:
    """Give every declared port a host port: its hostPort, or a port of the dynamic range.

    A pod whose old version on the same minion goes first (a broken copy, or one holding host ports) takes
    over that version's dynamic ports: the proxies then need no change at all, which keeps healing fast.
    Otherwise the lowest free port: not bound on that minion by any pod version (old versions still hold
    theirs until removed), nor by a service (each listens on every minion), nor by a pod of this plan.
    """
    reserved = {sp.port for svc in services for sp in svc.ports} | {p for svc in services for p, _ in svc.host_ports}
    first = {(r.node, r.pod, r.spec_hash) for r in removes if r.first}
    inherited: dict[tuple[str, str], dict[tuple[str, int, str], int]] = {}
    used: dict[str, set[int]] = {}
    for p in observation.pods:
        if (p.node, p.name, p.spec_hash) in first:
            inherited.setdefault((p.node, p.name), {}).update(
                {(q.container, q.container_port, q.protocol): q.host_port for q in p.ports})
        used.setdefault(p.node, set(reserved)).update(port for port, _ in p.host_ports)
    for c in creates:
        used.setdefault(c.node, set(reserved)).update(port for port, _ in c.pod.spec.host_ports)
    out = []
    for c in sorted(creates, key=lambda c: (c.node, c.name)):
        before = inherited.get((c.node, c.name), {})

        def port_for(container: str, p) -> int:
            return p.host_port or before.get((container, p.container_port, p.protocol)) or free_port(used[c.node])

        ports = tuple(Published(k.name, p.container_port, p.protocol, port_for(k.name, p), p.name)
                      for k in c.pod.spec.containers for p in k.ports)
        out.append(replace(c, ports=ports))
    return out


def _proxies(creates: Sequence[Create], removes: Sequence[Remove], observation: Observation,
             services: Sequence[Service], addresses: Mapping[str, str],
             network: ServiceNetwork | None = None) -> tuple[str, tuple[str, ...], str]:
    """Backends = pods that run and stay, plus pods being created; pods being removed are drained first.

    Also the drain document: when a pod must stop before its replacement starts (it holds a host port the
    replacement needs), every proxy first loses that backend, before anything stops; "" when none must.
    """
    backends = endpoints(observation, addresses, {(r.node, r.pod, r.spec_hash) for r in removes})
    backends += [Endpoint(c.name, c.node, addresses.get(c.node, c.node), c.pod.meta.labels, c.ports,
                          agent_key(c.name, c.spec_hash) if _gated(c.pod) else "") for c in creates]
    document = proxy_document(proxied(services, backends), network)
    wanted = document_hash(document)
    # with a network, a minion with pods needs its DNS server (they resolve through it), services or not
    hosting = {p.node for p in observation.pods} | {c.node for c in creates} if network is not None else set()
    # a minion with probed pods needs cp-health, which the proxy role keeps running
    hosting |= {p.node for p in observation.pods if any(LABEL_PROBES in k.labels for k in p.containers)}
    hosting |= {c.node for c in creates if _probed(c.pod)}
    stale = tuple(sorted(n for n, v in observation.hosts.items()
                         if v.reachable and v.proxy != wanted and (services or n in hosting or v.proxy is not None)))
    serving = {(p.node, p.name, p.spec_hash) for p in observation.pods if p.complete}
    first = {(r.node, r.pod, r.spec_hash) for r in removes if r.first} & serving  # a broken pod serves nothing
    drain = proxy_document(proxied(services, endpoints(observation, addresses, first)), network) \
        if first and services else ""
    return document, stale, drain


def _gated(pod: Pod) -> bool:
    """Whether the proxies ask cp-health about the pod before sending it requests."""
    return any(k.readiness_probe or k.startup_probe for k in pod.spec.containers)


def _probed(pod: Pod) -> bool:
    """Whether cp-health runs probes of the pod (what ``podformat.probes_label`` writes onto its containers)."""
    return _gated(pod) or any(k.liveness_probe for k in pod.spec.containers)


def _remove(v: ObservedPod, reason: str, first: bool = False) -> Remove:
    return Remove(v.node, v.name, v.spec_hash, tuple(c.id for c in v.containers), reason, first)


def _dedupe(removes: Sequence[Remove]) -> list[Remove]:
    seen: dict[tuple[str, str, str], Remove] = {}
    for r in removes:
        key = (r.node, r.pod, r.spec_hash)
        if key not in seen or (r.first and not seen[key].first):
            seen[key] = r
    return sorted(seen.values(), key=lambda r: (r.node, r.pod, r.spec_hash))


def by_node(actions: Iterable[Create | Remove]) -> Mapping[str, list]:
    out: dict[str, list] = {}
    for a in actions:
        out.setdefault(a.node, []).append(a)
    return out
