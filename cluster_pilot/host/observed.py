"""What an observation of the hosts is, and how a host's answer is read (pure): the types every stage downstream
of observation takes (the scheduler's and the proxies' views, the planner, render, the master's registry and
events), in a module that opens no connection, so the pure core stays pure by construction.

The hosts are the truth. Every managed container carries ``io.cluster-pilot.*`` labels, and the container that
owns a pod's network namespace also carries the pod's labels, requests and ports, so one host's answer
(``probe.PROBE``'s document, however it came) rebuilds the whole picture of that host.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from typing import Mapping, Sequence

from cluster_pilot.model import Node
from cluster_pilot.host.podformat import (INFRA, LABEL_CONTAINERS, LABEL_POD_LABELS, LABEL_PORTS,
                                          LABEL_PREFIX, Member, Published, holds_record, read_member, read_record,
                                          readiness_gated)


@dataclass(frozen=True)
class LockSeen:
    """The lock as observation read it on the lock host: whether it was held, its parent's mtime (ns) and
    how long before that read the parent last changed (by the lock host's clock)."""

    held: bool
    stamp: int
    idle: float


@dataclass(frozen=True)
class ObservedContainer:
    id: str
    name: str
    pod: str
    container: str
    spec_hash: str
    state: str  # Docker's: created, running, restarting, exited, paused, dead
    image: str
    labels: Mapping[str, str] = field(default_factory=dict, compare=False)
    exit_code: int | None = None  # of an exited container
    # as cp-health last said, for a container with a readiness or startup probe; not part of what a pass compares
    ready: bool | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ObservedPod:
    """The containers of one pod version (pod name + spec hash) on one host."""

    name: str
    node: str
    spec_hash: str
    controller: str | None
    kind: str
    labels: Mapping[str, str]
    containers: tuple[ObservedContainer, ...]
    expected: tuple[str, ...]  # container names the pod was created with
    cpu_millis: int = 0
    memory_bytes: int = 0
    ports: tuple[Published, ...] = ()
    applyset: str = ""
    restart_policy: str = ""  # "" on bare pods made before the label existed: an exited container is final
    owner: str = INFRA  # the container owning the pod's network namespace (podformat.network_owner); "" if gone

    @property
    def host_ports(self) -> tuple[tuple[int, str], ...]:
        return tuple((p.host_port, p.protocol) for p in self.ports)

    @property
    def complete(self) -> bool:
        """The namespace's owner is there (an infra container also up) and every container exists and was
        started: dockerd restarts a crashed one itself (a crash loop is the pod's own business, not a reason
        to recreate it); a container never started, dead, or an infra container that is down (its network
        namespace gone) makes the pod broken. So does a container that exited which its restart policy says
        should run: dockerd does not bring it back (a host that rebooted starts the infra containers, while
        the others, joining a namespace not yet there, fail once and stay down)."""
        names = {c.container for c in self.containers}
        owner = next((c for c in self.containers if self.owner and c.container == self.owner), None)
        owner_up = owner is not None and (owner.container != INFRA or owner.state in ("running", "restarting"))
        return owner_up and set(self.expected) <= names and not any(
            c.state in ("created", "dead", "removing") or self._left_down(c) for c in self.containers)

    def _left_down(self, c: ObservedContainer) -> bool:
        if c.state != "exited":
            return False
        return self.restart_policy == "Always" or (self.restart_policy == "OnFailure" and c.exit_code != 0)

    @property
    def ready(self) -> bool:
        """Running, and every container with a readiness (or startup) probe passed it."""
        return self.status == "Running" and all(c.ready is not False for c in self.containers)

    @property
    def status(self) -> str:
        """Seed-era pod status: Running, Waiting or Terminated."""
        states = {c.state for c in self.containers}
        if not self.complete:
            return "Terminated" if states & {"exited", "dead"} else "Waiting"
        return "Running" if states == {"running"} else "Waiting"


@dataclass(frozen=True)
class HostView:
    node: str
    reachable: bool
    pods: tuple[ObservedPod, ...] = ()
    error: str = ""
    proxy: str | None = None  # hash of the proxy document the host serves, None when it has none
    stale: bool = False  # not answering now, but within its grace period: pods as last seen, still ready
    records: str | None = None  # the object records document the host keeps (see host.records)
    warnings: tuple[str, ...] = ()  # containers whose labels could not be read, named
    lock: LockSeen | None = None  # the fleet lock as this host keeps it (only the lock host's matters)


@dataclass(frozen=True)
class Observation:
    hosts: Mapping[str, HostView]
    # from asking the first host to the last answer, when one look made it all (see lock.unchanged_since)
    seconds: float | None = field(default=None, compare=False)

    @property
    def pods(self) -> tuple[ObservedPod, ...]:
        return tuple(p for h in self.hosts.values() for p in h.pods)

    @property
    def unreachable(self) -> dict[str, str]:
        """Hosts that did not answer, with why."""
        return {n: v.error for n, v in self.hosts.items() if not v.reachable}

    def current(self) -> dict[str, ObservedPod]:
        """One version per pod name, a complete one where there is (what listings show)."""
        out: dict[str, ObservedPod] = {}
        for p in self.pods:
            if p.name not in out or (p.complete and not out[p.name].complete):
                out[p.name] = p
        return out

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(w for h in self.hosts.values() for w in h.warnings)

    def with_nodes(self, nodes: Sequence[Node]) -> list[Node]:
        """Nodes with readiness as observed: a host that did not answer (and is not in grace) is not ready."""
        return [replace(n, ready=self.hosts[n.name].reachable or self.hosts[n.name].stale) if n.name in self.hosts
                else n for n in nodes]


def group_pods(node: str, containers: Sequence[Mapping]) -> tuple[ObservedPod, ...]:
    """Docker's container list -> pods, keyed by pod name and spec hash; the namespace's owner first."""
    return read_pods(node, containers)[0]


def read_pods(node: str, containers: Sequence[Mapping],
              ready: Mapping[str, bool] | None = None) -> tuple[tuple[ObservedPod, ...], tuple[str, ...]]:
    """``group_pods``, and a warning per container whose ``io.cluster-pilot.*`` labels cannot be read
    (damaged, or another tool's): such a pod is skipped, never a reason to fail a plan or a master pass.
    ``ready``: cp-health's readiness by container id; a gated container it does not name is not ready."""
    groups: dict[tuple[str, str], list[ObservedContainer]] = {}
    warnings: list[str] = []
    for c in containers:
        labels = c.get("Labels") or {}
        member = read_member(labels)
        if member is None:
            continue
        oc = ObservedContainer(
            id=str(c.get("Id", "")), name=(c.get("Names") or ["/?"])[0].lstrip("/"), pod=member.pod,
            container=member.container, spec_hash=member.spec_hash, state=c.get("State", ""),
            image=c.get("Image", ""), labels=labels, exit_code=_exit_code(c.get("Status", "")),
            ready=(ready or {}).get(str(c.get("Id", "")), False) if readiness_gated(labels) else None)
        groups.setdefault((oc.pod, oc.spec_hash), []).append(oc)
    pods = []
    for (name, spec_hash), members in sorted(groups.items()):
        members.sort(key=lambda m: (m.container != INFRA, not _owns(m), m.container))
        try:
            pods.append(_pod(node, name, spec_hash, members))
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            warnings.append(f"{node}: container {members[0].name}: unreadable {LABEL_PREFIX}* labels ({exc}); "
                            f"pod {name!r} ignored")
    return tuple(pods), tuple(warnings)


def _pod(node: str, name: str, spec_hash: str, members: list[ObservedContainer]) -> ObservedPod:
    labels = members[0].labels  # the namespace owner's, or what is left when it is gone
    for key in (LABEL_POD_LABELS, LABEL_CONTAINERS, LABEL_PORTS):
        if labels.get(key):
            json.loads(labels[key])  # read_record is lenient; a label that is not JSON at all is damage
    record = read_record(labels)
    if not isinstance(record.labels, dict) or not all(isinstance(v, str) for v in record.labels.values()):
        raise ValueError(f"{LABEL_POD_LABELS} is not an object of strings")
    if not all(isinstance(v, str) for v in record.containers):
        raise ValueError(f"{LABEL_CONTAINERS} is not a list of names")
    return ObservedPod(
        name=name, node=node, spec_hash=spec_hash, controller=record.controller, kind=record.kind,
        labels=record.labels, containers=tuple(members), expected=record.containers,
        cpu_millis=record.cpu_millis, memory_bytes=record.memory_bytes, ports=record.ports,
        applyset=record.applyset, restart_policy=record.restart_policy,
        owner=members[0].container if _owns(members[0]) else "")


def _owns(c: ObservedContainer) -> bool:
    return holds_record(Member(c.pod, c.container, c.spec_hash), c.labels)


def _exit_code(status: str) -> int | None:
    """From Docker's status text: "Exited (143) 3 seconds ago" -> 143, "Restarting (3) 1 second ago" -> 3."""
    m = re.match(r"(?:Exited|Restarting) \((-?\d+)\)", status)
    return int(m.group(1)) if m else None


def read_view(name: str, doc: Mapping) -> HostView:
    """One host's ``PROBE`` document, however it came (an SSH exec, or the master's watch session)."""
    if "error" in doc:
        return HostView(name, False, error=str(doc["error"]))
    if not isinstance(doc.get("containers"), list):
        return HostView(name, False, error="its answer names no containers")
    pods, warnings = read_pods(name, doc["containers"], health_readiness(doc.get("health")))
    return HostView(name, True, pods, proxy=doc.get("proxy"), records=doc.get("records"), warnings=warnings,
                    lock=_lock(doc.get("lock")))


def health_readiness(text: object) -> dict[str, bool]:
    """Container id -> ready, from cp-health's state file as the probe read it ({} when there is none)."""
    try:
        ready = json.loads(text).get("ready", {}) if isinstance(text, str) else {}
        return {str(k): v for k, v in ready.items() if isinstance(v, bool)}
    except (ValueError, AttributeError):
        return {}


def health_restarts(text: str) -> dict[str, int]:
    """Container id -> restarts cp-health made (liveness), from the same file; {} when there is none."""
    try:
        doc = json.loads(text or "{}")
        return {str(k): int(v["count"]) for k, v in doc.get("restarts", {}).items()}
    except (ValueError, TypeError, KeyError, AttributeError):
        return {}


def _lock(seen: object) -> LockSeen | None:
    try:
        held, stamp, idle = seen  # type: ignore[misc]
        return LockSeen(bool(held), int(stamp), float(idle))
    except (TypeError, ValueError):
        return None
