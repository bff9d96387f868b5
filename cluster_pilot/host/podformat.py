"""The pod format on a host: how a pod becomes named, labelled containers, and how they are read back.

One module writes and reads it: render encodes a pod into container names and labels, observation decodes
the labels back, so a change to the format is one edit here. The hosts' labels are the truth of what runs,
so names and values must stay readable on pods made by earlier versions. The ``cp_pods`` module on the host
gets its constants from a stdlib-only copy, ``roles/cp_pods/module_utils/cp_podformat.py``, that a unit test
holds equal to this one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from cluster_pilot.host.paths import LABEL_POD, LABEL_PREFIX
from cluster_pilot.model import POD, Container

# Part of every pod's spec hash: bump it when the way a pod becomes containers changes, so pods are replaced.
RUNTIME_VERSION = 3  # 3: one container per single-container pod; the minions' DNS and service addresses

INFRA = "POD"  # the container name of a pod's infra container, as the seed-era kubelet called it
POD_DIR = "/var/lib/cluster-pilot/pods"  # per pod and spec hash: its emptyDir volumes
# per pod and spec hash: its host paths, each bound here once checked (``cp_pods``), on a tmpfs of its own, so a
# reboot leaves none behind and a container dockerd restarts then fails to start instead of getting another
BIND_DIR = "/run/cluster-pilot/binds"
# a pod with a host path is made anew once binds became anchored (``BIND_DIR``), which the runtime did not have
BINDS_VERSION = "anchored"

# On every managed container: whose it is.
LABEL_CONTROLLER = LABEL_PREFIX + "controller"  # "" for a bare pod
LABEL_CONTAINER = LABEL_PREFIX + "container"
LABEL_SPEC_HASH = LABEL_PREFIX + "spec-hash"
# On the container that owns the pod's network namespace only (``network_owner``): the rest of what observation
# needs to know about the pod.
LABEL_KIND = LABEL_PREFIX + "kind"  # kind of the object that owns the pod: Pod or ReplicationController
LABEL_POD_LABELS = LABEL_PREFIX + "pod-labels"  # JSON object, keys sorted
LABEL_REQUESTS = LABEL_PREFIX + "requests"  # "cpu_millis,memory_bytes"
LABEL_PORTS = LABEL_PREFIX + "ports"  # JSON [[container, containerPort, protocol, hostPort, name], ...]
LABEL_CONTAINERS = LABEL_PREFIX + "containers"  # JSON list of the pod's container names
LABEL_APPLYSET = LABEL_PREFIX + "applyset"
LABEL_RESTART = LABEL_PREFIX + "restart-policy"  # the pod's: Always, OnFailure or Never ("" on older pods)
# On each container with probes: what cp-health (on the minion) runs, as ``probes_label`` writes it.
LABEL_PROBES = LABEL_PREFIX + "probes"
# On a container with runAsNonRoot and no user of its own: cp_pods refuses to start it if its image runs as root.
LABEL_NON_ROOT = LABEL_PREFIX + "run-as-non-root"


@dataclass(frozen=True)
class Published:
    """One container port of a pod and where the minion publishes it."""

    container: str
    container_port: int
    protocol: str
    host_port: int
    name: str | None = None


@dataclass(frozen=True)
class Member:
    """Which pod version a container belongs to, as its labels say."""

    pod: str
    container: str
    spec_hash: str


@dataclass(frozen=True)
class PodRecord:
    """What a pod's infra container says about the pod: everything observation needs besides states."""

    pod: str
    spec_hash: str
    controller: str | None = None
    kind: str = POD  # of the object that owns the pod
    labels: Mapping[str, str] = field(default_factory=dict)
    containers: tuple[str, ...] = ()
    cpu_millis: int = 0
    memory_bytes: int = 0
    ports: tuple[Published, ...] = ()
    applyset: str = ""
    restart_policy: str = ""


def container_name(pod: str, container: str, spec_hash: str) -> str:
    """Docker accepts every character of a v1beta1 id ([A-Za-z0-9_.-]), so the pod name is kept as written."""
    return f"cp_{pod}_{container}_{spec_hash}"


def pod_dir(pod: str, spec_hash: str) -> str:
    return f"{POD_DIR}/{pod}/{spec_hash}"


def bind_dir(pod: str, spec_hash: str) -> str:
    return f"{BIND_DIR}/{pod}/{spec_hash}"


def anchor(pod: str, spec_hash: str, volume: str) -> str:
    """Where a pod version's host path volume is bound once checked: the source its containers' mounts name."""
    return f"{bind_dir(pod, spec_hash)}/{volume}"


def volume_dir(pod: str, spec_hash: str, volume: str) -> str:
    """Where an emptyDir volume of a pod version lives on the host."""
    return f"{pod_dir(pod, spec_hash)}/volumes/{volume}"


def probes_label(c: Container) -> str | None:
    """``{"readiness"|"liveness"|"startup": {...}}`` as cp-health reads it: a port name resolved to its number."""
    named = {p.name: p.container_port for p in c.ports if p.name}
    probes = {kind: {"action": p.action, "port": named.get(p.port, 0) if isinstance(p.port, str) else p.port,
                     "path": p.path, "scheme": p.scheme, "headers": [list(h) for h in p.headers],
                     "command": list(p.command), "initial": p.initial_delay_seconds, "period": p.period_seconds,
                     "timeout": p.timeout_seconds, "success": p.success_threshold, "failure": p.failure_threshold}
              for kind, p in (("readiness", c.readiness_probe), ("liveness", c.liveness_probe),
                              ("startup", c.startup_probe)) if p is not None}
    return json.dumps(probes, sort_keys=True, separators=(",", ":")) if probes else None


def readiness_gated(labels: Mapping[str, str]) -> bool:
    """Whether a container's readiness is cp-health's to tell (a readiness or startup probe): the proxies ask."""
    try:
        probes = json.loads(labels.get(LABEL_PROBES) or "{}")
    except ValueError:
        return False
    return isinstance(probes, dict) and bool({"readiness", "startup"} & set(probes))


def member_labels(pod: str, controller: str | None, container: str, spec_hash: str) -> dict[str, str]:
    return {LABEL_POD: pod, LABEL_CONTROLLER: controller or "", LABEL_CONTAINER: container,
            LABEL_SPEC_HASH: spec_hash}


def network_owner(containers: Sequence[str]) -> str:
    """The container that owns a pod's network namespace, so its published ports, and carries its record.

    A pod of several containers has an infra container that the others join (they share localhost, and the
    namespace outlives any of them). A pod of one container owns its namespace itself: dockerd keeps its port
    bindings and restart policy across restarts, so an infra container would only double the Docker work.
    """
    return containers[0] if len(containers) == 1 else INFRA


def owner_labels(record: PodRecord) -> dict[str, str]:
    """The labels of the pod's ``network_owner``: its membership and the whole record."""
    return member_labels(record.pod, record.controller, network_owner(record.containers), record.spec_hash) | {
        LABEL_KIND: record.kind,
        LABEL_POD_LABELS: json.dumps(dict(record.labels), sort_keys=True),
        LABEL_REQUESTS: f"{record.cpu_millis},{record.memory_bytes}",
        LABEL_PORTS: json.dumps([[p.container, p.container_port, p.protocol, p.host_port, p.name]
                                 for p in record.ports]),
        LABEL_CONTAINERS: json.dumps(list(record.containers)),
        LABEL_APPLYSET: record.applyset,
        LABEL_RESTART: record.restart_policy,
    }


def read_member(labels: Mapping[str, str]) -> Member | None:
    """None for a container that is not part of a pod."""
    if LABEL_POD not in labels:
        return None
    return Member(labels[LABEL_POD], labels.get(LABEL_CONTAINER, ""), labels.get(LABEL_SPEC_HASH, ""))


def holds_record(member: Member, labels: Mapping[str, str]) -> bool:
    """Whether this container owns its pod's namespace: an infra container (also one made by an earlier
    version, whatever its labels), or a single-container pod's container, which carries the record."""
    return member.container == INFRA or LABEL_CONTAINERS in labels


def read_record(labels: Mapping[str, str]) -> PodRecord:
    """The inverse of ``owner_labels``, lenient: a missing or unreadable label reads as its empty value, so a
    pod made by an earlier version (or one whose owner container is gone, read from another container's
    labels) is still seen."""
    cpu, _, memory = labels.get(LABEL_REQUESTS, "0,0").partition(",")
    controller = labels.get(LABEL_CONTROLLER) or None
    return PodRecord(
        pod=labels.get(LABEL_POD, ""), spec_hash=labels.get(LABEL_SPEC_HASH, ""), controller=controller,
        kind=labels.get(LABEL_KIND, POD), labels=_json(labels.get(LABEL_POD_LABELS), {}),
        containers=tuple(_json(labels.get(LABEL_CONTAINERS), [])),
        cpu_millis=_int(cpu), memory_bytes=_int(memory),
        ports=tuple(Published(str(c), int(cp), str(proto), int(hp), n)
                    for c, cp, proto, hp, n in _json(labels.get(LABEL_PORTS), [])),
        applyset=labels.get(LABEL_APPLYSET, ""),
        # a controller's pods always restart, also those made before the label existed
        restart_policy=labels.get(LABEL_RESTART) or ("Always" if controller else ""))


def _json(text: str | None, default):
    try:
        return json.loads(text) if text else default
    except ValueError:
        return default


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0
