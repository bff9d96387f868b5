"""The typed model every stage speaks.

Manifests of both API styles (2014 ``v1beta1`` and today's ``v1``) normalise into these classes, so no stage
after loading ever looks at raw JSON. Resource amounts are integers (millicores, bytes) so that scheduling
arithmetic is exact. Instances are frozen: stages hand values to each other, never shared mutable state.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import MISSING, dataclass, field, fields
from functools import lru_cache
from types import UnionType
from typing import Any, Callable, Mapping, Union, get_args, get_origin, get_type_hints

TCP = "TCP"
UDP = "UDP"

POD = "Pod"
REPLICATION_CONTROLLER = "ReplicationController"
SERVICE = "Service"
KINDS = (POD, REPLICATION_CONTROLLER, SERVICE)


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


def manifest_field(v1: str, default: Any = None, *, factory: Callable[[], Any] | None = None,
                   hashed_at_default: bool = False) -> Any:
    """A field a v1 manifest spells ``v1`` and gives as it is (a list read as a tuple): from this declaration
    alone the normaliser reads it (``declared_values``) and the API writes it back (``written_values``), so a
    field every pod-bearing kind carries is added here, in ``schemas/v1/defs.json`` and where it takes effect.

    At its default, a field leaves the spec hash as it was before the field existed (``spec_document``):
    upgrading cluster-pilot replaces no running pod. The fields the hash always held say
    ``hashed_at_default``."""
    metadata = {"v1": v1, "hashed_at_default": hashed_at_default}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def added_later(default: Any = None) -> Any:
    """A field the spec hash leaves out while it is at its default (see ``manifest_field``)."""
    return field(default=default, metadata={"hashed_at_default": False})


@dataclass(frozen=True)
class Probe:
    """A container probe: ``action`` is ``httpGet``, ``tcpSocket`` or ``exec``; ``port`` a number or the name
    of one of the container's ports. Run on the pod's minion by ``cp-health`` (roles/cp_proxy/files)."""

    action: str
    port: int | str = 0
    path: str = "/"
    scheme: str = "HTTP"
    headers: tuple[tuple[str, str], ...] = ()
    command: tuple[str, ...] = ()
    initial_delay_seconds: int = 0
    period_seconds: int = 10
    timeout_seconds: int = 1
    success_threshold: int = 1
    failure_threshold: int = 3


@dataclass(frozen=True)
class SecurityContext:
    """What tightens a container, as a pod's or a container's ``securityContext`` says it (what would loosen
    one is refused when the manifest is read). ``fs_group`` and ``supplemental_groups`` are the pod's only."""

    run_as_user: int | None = None
    run_as_group: int | None = None
    run_as_non_root: bool = False
    read_only_root_filesystem: bool = False
    no_new_privileges: bool = False  # allowPrivilegeEscalation: false
    drop: tuple[str, ...] = ()  # capabilities.drop
    fs_group: int | None = None
    supplemental_groups: tuple[int, ...] = ()


PROBE_FIELDS = (("readinessProbe", "readiness_probe"), ("livenessProbe", "liveness_probe"),
                ("startupProbe", "startup_probe"))  # (v1 spelling, Container attribute)


@dataclass(frozen=True)
class Port:
    container_port: int
    host_port: int | None = None
    protocol: str = TCP
    name: str | None = None


# the pod's fields an environment variable can take (valueFrom.fieldRef), as ``field_value`` fills them in
FIELD_PATH = re.compile(r"metadata\.(name|namespace)|metadata\.(labels|annotations)\['[^']+'\]|spec\.nodeName|"
                        r"status\.hostIP")


def field_value(path: str, meta: Meta, node: str, host_ip: str) -> str:
    """A ``fieldRef``'s value for one pod on one minion; "" for a label or annotation it does not have."""
    if path in ("metadata.name", "metadata.namespace"):
        return meta.name if path == "metadata.name" else meta.namespace
    if path == "spec.nodeName":
        return node
    if path == "status.hostIP":
        return host_ip
    mapping, _, key = path.partition("['")
    return (meta.labels if mapping == "metadata.labels" else meta.annotations).get(key[:-2], "")


@dataclass(frozen=True)
class EnvVar:
    name: str
    value: str
    field_path: str | None = added_later()  # valueFrom.fieldRef: the pod's own field, filled in at creation


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
    command: tuple[str, ...] = manifest_field("command", (), hashed_at_default=True)
    args: tuple[str, ...] = manifest_field("args", (), hashed_at_default=True)
    working_dir: str | None = manifest_field("workingDir", hashed_at_default=True)
    env: tuple[EnvVar, ...] = ()
    ports: tuple[Port, ...] = ()
    cpu_millis: int = 0  # request; the scheduler counts this
    memory_bytes: int = 0  # request
    cpu_limit_millis: int = 0  # 0: same as the request (or unlimited when both are 0)
    memory_limit_bytes: int = 0
    volume_mounts: tuple[VolumeMount, ...] = ()
    image_pull_policy: str = manifest_field("imagePullPolicy", "", hashed_at_default=True)
    readiness_probe: Probe | None = added_later()
    liveness_probe: Probe | None = added_later()
    startup_probe: Probe | None = added_later()
    security: SecurityContext | None = added_later()


@dataclass(frozen=True)
class PodSpec:
    containers: tuple[Container, ...]
    volumes: tuple[Volume, ...] = ()
    node_selector: Mapping[str, str] = manifest_field("nodeSelector", factory=dict, hashed_at_default=True)
    host: str | None = manifest_field("nodeName", hashed_at_default=True)  # v1beta1 ``desiredState.host``
    restart_policy: str = manifest_field("restartPolicy", "Always", hashed_at_default=True)
    hostname: str | None = manifest_field("hostname")  # the pod's own; by default its name (a DNS label of it)
    security: SecurityContext | None = added_later()  # the containers' defaults, and fsGroup

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


def effective_security(pod: SecurityContext | None, container: SecurityContext | None) -> SecurityContext:
    """A container's settings: its own where it gives them, else the pod's (Kubernetes' rule)."""
    p, c = pod or SecurityContext(), container or SecurityContext()
    return SecurityContext(
        run_as_user=c.run_as_user if c.run_as_user is not None else p.run_as_user,
        run_as_group=c.run_as_group if c.run_as_group is not None else p.run_as_group,
        run_as_non_root=c.run_as_non_root or p.run_as_non_root,
        read_only_root_filesystem=c.read_only_root_filesystem, no_new_privileges=c.no_new_privileges,
        drop=c.drop, fs_group=p.fs_group, supplemental_groups=p.supplemental_groups)


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
    node_port: int | None = None  # NodePort/LoadBalancer: the port on every minion's own address


CLUSTER_IP = "ClusterIP"
NODE_PORT = "NodePort"
LOAD_BALANCER = "LoadBalancer"
SERVICE_TYPES = (CLUSTER_IP, NODE_PORT, LOAD_BALANCER)


@dataclass(frozen=True)
class Service:
    meta: Meta
    ports: tuple[ServicePort, ...]
    selector: Mapping[str, str]
    create_external_load_balancer: bool = False
    cluster_ip: str | None = None  # the service's own address; None until allocated (see plan.addresses)
    type: str = CLUSTER_IP
    kind: str = field(default=SERVICE, init=False)

    @property
    def host_wide(self) -> bool:
        """Whether the service also listens on every minion's own address: a 2014 service at its port (the
        seed's behaviour), a NodePort or LoadBalancer one at its node ports."""
        return self.meta.api_version == "v1beta1" or self.type != CLUSTER_IP

    @property
    def host_ports(self) -> tuple[tuple[int, str], ...]:
        """(port, protocol) the service takes on every minion's own address (none for a ClusterIP service)."""
        if self.meta.api_version == "v1beta1":
            return tuple((p.port, p.protocol) for p in self.ports)
        return tuple((p.node_port, p.protocol) for p in self.ports if self.type != CLUSTER_IP and p.node_port)


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


Selector = list[tuple[str, str, bool]]  # (key, value, equal)


def parse_selector(text: str | None) -> Selector:
    """``a=b,c!=d`` (also ``a==b``), as ``kubecfg -l`` and ``?labels=`` write it; ``ValueError`` if malformed."""
    out: Selector = []
    for term in (text or "").split(","):
        term = term.strip()
        if not term:
            continue
        if "!=" in term:
            key, value = term.split("!=", 1)
            equal = False
        elif "=" in term:
            key, value = term.split("=", 1)
            value = value[1:] if value.startswith("=") else value
            equal = True
        else:
            raise ValueError(f"bad selector term {term!r}: expected key=value or key!=value")
        if not key.strip():
            raise ValueError(f"bad selector term {term!r}: the key is empty")
        out.append((key.strip(), value.strip(), equal))
    return out


def selector_admits(selector: Selector, labels: Mapping[str, str]) -> bool:
    """A query selector: every term holds (an empty one admits everything, unlike a controller's)."""
    return all((labels.get(k) == v) == equal for k, v, equal in selector)


_NOT_DNS = re.compile(r"[^a-z0-9-]+")


def host_safe_name(name: str) -> str:
    """A DNS-1123 label standing for ``name``, where a host needs a stricter name than a v1beta1 id.

    2014 ids such as ``redisSlaveController`` are kept as written everywhere a person sees them; container
    names (and environment variable names derived from them) use this form instead. A name that already is a
    DNS-1123 label comes back unchanged; any other is lower-cased, with runs of other characters turned into
    "-", and a short hash of the original appended, because lower-casing lost information: ``redisMaster``
    and ``redismaster`` must not end up as the same container.
    """
    if 0 < len(name) <= 63 and _DNS_LABEL.match(name):
        return name
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    base = _NOT_DNS.sub("-", name.lower())[:54].strip("-")
    return f"{base}-{digest}" if base else f"x-{digest}"


_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")


def _default(f) -> Any:
    return f.default_factory() if f.default_factory is not MISSING else f.default


def declared_values(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """The ``manifest_field``s of ``cls`` that a v1 manifest's mapping sets, as keyword arguments: a list as a
    tuple, an empty value (``""``, null) as the default."""
    out: dict[str, Any] = {}
    for f in fields(cls):
        name = f.metadata.get("v1")
        if name is None or data.get(name) in (None, ""):
            continue
        value = data[name]
        out[f.name] = tuple(value) if isinstance(value, list) else dict(value) if isinstance(value, Mapping) else value
    return out


def written_values(value: Any) -> dict[str, Any]:
    """The ``manifest_field``s of a model value that are not at their default, spelled as a v1 manifest."""
    out: dict[str, Any] = {}
    for f in fields(value):
        name = f.metadata.get("v1")
        got = getattr(value, f.name)
        if name is not None and got != _default(f):
            out[name] = list(got) if isinstance(got, tuple) else dict(got) if isinstance(got, Mapping) else got
    return out


def spec_document(value: Any) -> Any:
    """A value as the spec hash reads it: every field, but a ``manifest_field`` added later only when it is set."""
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: spec_document(getattr(value, f.name)) for f in fields(value)
                if f.metadata.get("hashed_at_default", True) or getattr(value, f.name) != _default(f)}
    if isinstance(value, Mapping):
        return {k: spec_document(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [spec_document(v) for v in value]
    return value


def to_json(obj: Object) -> dict:
    """Exact, lossless JSON of a model object, for the store (manifest spellings are not kept)."""
    return _encode(obj)


def from_json(doc: Mapping) -> Object:
    """The inverse of ``to_json``."""
    kind = doc.get("kind")
    cls = {POD: Pod, REPLICATION_CONTROLLER: ReplicationController, SERVICE: Service}.get(kind)  # type: ignore[arg-type]
    if cls is None:
        raise ValueError(f"not a stored object: kind {kind!r}")
    return _decode(cls, doc)


def _encode(value):
    if hasattr(value, "__dataclass_fields__"):
        out = {}
        for f in fields(value):
            if f.name == "source":
                continue
            out[f.name] = _encode(getattr(value, f.name))
        return out
    if isinstance(value, Mapping):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    return value


@lru_cache(maxsize=None)
def _hints(cls) -> dict:
    return get_type_hints(cls)


def _decode(cls, doc):
    hints = _hints(cls)
    kwargs = {}
    for f in fields(cls):
        if not f.init or f.name not in doc or f.name == "source":
            continue
        kwargs[f.name] = _decode_value(hints[f.name], doc[f.name])
    return cls(**kwargs)


def _decode_value(hint, value):
    if value is None:
        return None
    origin = get_origin(hint)
    args = get_args(hint)
    if origin in (UnionType, Union):
        for arg in args:
            if hasattr(arg, "__dataclass_fields__") and isinstance(value, Mapping):
                return _decode(arg, value)
        return value
    if hasattr(hint, "__dataclass_fields__"):
        return _decode(hint, value)
    if origin is tuple:
        inner = args[0] if args else object
        return tuple(_decode_value(inner, v) for v in value)
    if origin in (Mapping, dict) or hint in (Mapping, dict):
        return dict(value)
    return value
