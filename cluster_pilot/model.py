"""The typed model every stage speaks.

Manifests of both API styles (2014 ``v1beta1`` and today's ``v1``) normalise into these classes, so no stage
after loading ever looks at raw JSON. Resource amounts are integers (millicores, bytes) so that scheduling
arithmetic is exact. Instances are frozen: stages hand values to each other, never shared mutable state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

TCP = "TCP"
UDP = "UDP"

POD = "Pod"
REPLICATION_CONTROLLER = "ReplicationController"
SERVICE = "Service"
KINDS = (POD, REPLICATION_CONTROLLER, SERVICE)

# Docker labels on every managed container: a runner with no local state rebuilds the picture from these.
LABEL_PREFIX = "io.cluster-pilot."
LABEL_POD = LABEL_PREFIX + "pod"
LABEL_CONTROLLER = LABEL_PREFIX + "controller"
LABEL_CONTAINER = LABEL_PREFIX + "container"
LABEL_SPEC_HASH = LABEL_PREFIX + "spec-hash"


@dataclass(frozen=True)
class Source:
    """Where an object was defined, for messages that point a person at the right line."""

    file: str
    line: int = 0
    column: int = 0
    pointer: str = ""

    def __str__(self) -> str:
        place = self.file
        if self.line:
            place += f":{self.line}:{self.column or 1}"
        return place


@dataclass(frozen=True)
class Port:
    container_port: int
    host_port: int | None = None
    protocol: str = TCP
    name: str | None = None


@dataclass(frozen=True)
class EnvVar:
    name: str
    value: str


@dataclass(frozen=True)
class VolumeMount:
    name: str
    mount_path: str
    read_only: bool = False


@dataclass(frozen=True)
class Volume:
    """``emptyDir`` (scratch space living as long as the pod) or ``hostDir`` (a path on the minion)."""

    name: str
    kind: str = "emptyDir"
    host_path: str | None = None


@dataclass(frozen=True)
class Container:
    name: str
    image: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    working_dir: str | None = None
    env: tuple[EnvVar, ...] = ()
    ports: tuple[Port, ...] = ()
    cpu_millis: int = 0  # request; the scheduler counts this
    memory_bytes: int = 0  # request
    cpu_limit_millis: int = 0  # 0: same as the request (or unlimited when both are 0)
    memory_limit_bytes: int = 0
    volume_mounts: tuple[VolumeMount, ...] = ()
    image_pull_policy: str = ""


@dataclass(frozen=True)
class PodSpec:
    containers: tuple[Container, ...]
    volumes: tuple[Volume, ...] = ()
    node_selector: Mapping[str, str] = field(default_factory=dict)
    host: str | None = None  # v1beta1 ``desiredState.host``: pin to one minion by name
    restart_policy: str = "Always"

    @property
    def cpu_millis(self) -> int:
        return sum(c.cpu_millis for c in self.containers)

    @property
    def memory_bytes(self) -> int:
        return sum(c.memory_bytes for c in self.containers)

    @property
    def host_ports(self) -> tuple[tuple[int, str], ...]:
        """(port, protocol) pairs the pod binds on its minion."""
        return tuple((p.host_port, p.protocol) for c in self.containers for p in c.ports if p.host_port)


@dataclass(frozen=True)
class Meta:
    name: str  # kept exactly as written (v1beta1 ids such as ``redisSlaveController``)
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    namespace: str = "default"
    api_version: str = "v1"
    source: Source | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Pod:
    meta: Meta
    spec: PodSpec
    kind: str = field(default=POD, init=False)


@dataclass(frozen=True)
class PodTemplate:
    labels: Mapping[str, str]
    spec: PodSpec


@dataclass(frozen=True)
class ReplicationController:
    meta: Meta
    replicas: int
    selector: Mapping[str, str]
    template: PodTemplate
    kind: str = field(default=REPLICATION_CONTROLLER, init=False)


@dataclass(frozen=True)
class ServicePort:
    port: int
    target_port: int | str | None = None  # number, a container port name, or None: the pods' first port
    protocol: str = TCP
    name: str | None = None


@dataclass(frozen=True)
class Service:
    meta: Meta
    ports: tuple[ServicePort, ...]
    selector: Mapping[str, str]
    create_external_load_balancer: bool = False
    kind: str = field(default=SERVICE, init=False)


Object = Pod | ReplicationController | Service


@dataclass(frozen=True)
class Resources:
    cpu_millis: int
    memory_bytes: int
    pods: int


@dataclass(frozen=True)
class Node:
    """A minion from the inventory. ``vars`` keeps the host's Ansible variables (connection settings)."""

    name: str
    address: str
    capacity: Resources
    labels: Mapping[str, str] = field(default_factory=dict)
    ready: bool = True
    vars: Mapping[str, object] = field(default_factory=dict, compare=False)


def selector_matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Equality selector of the seed era; an empty selector matches nothing (never everything)."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())
