"""The 2014 API (``v1beta1``), written: the master's answers as the original ``kubecfg`` expects them, and
manifests (request bodies, round trips) from the same functions, so the two cannot drift apart. Pure.

An object the master serves carries a non-zero ``resourceVersion``, ``creationTimestamp``, ``selfLink`` and the
fields the 2014 apiserver always wrote (namespace, labels, restartPolicy, readOnly...); a manifest keeps only
what is set. Errors are ``Status`` objects with capitalised values, which decide over the HTTP code for the 2014
client. Reading is the manifests package's (with positions and findings), apart from ``carry_over``.

v1beta1 has one ``cpu``/``memory`` per container (written: the limit, else the request) and one command line
(``command`` + ``args``); v1 annotations have no spelling here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping

from cluster_pilot.api import kinds
from cluster_pilot.api.fields import env, port, some
from cluster_pilot.model import Container, Object, Pod, PodSpec, ReplicationController, Service

VERSION = "v1beta1"
PREFIX = f"/api/{VERSION}"
RESOURCES = {k.v1beta1: k.name for k in kinds.TABLE}
LIST_KINDS = {k.name: k.list_kind for k in kinds.TABLE}
PULL_POLICY = {"Always": "PullAlways", "Never": "PullNever", "IfNotPresent": "PullIfNotPresent"}
RESTART_POLICY = {"Always": "always", "OnFailure": "onFailure", "Never": "never"}


@dataclass(frozen=True)
class Served:
    """What the master adds to an object it answers with."""

    resource_version: int
    created: float


@dataclass(frozen=True)
class PodState:
    """What the minions report about one pod (``currentState``)."""

    status: str  # Running, Waiting, Terminated (and Unknown for a pod on a lost minion)
    host: str = ""
    host_ip: str = ""
    info: Mapping[str, Any] | None = None
    message: str = ""  # why it does not run (a back-off), as Kubernetes' PodState.message


def timestamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _kept(served: Served | None, **fields: object) -> dict:
    """Fields the master always writes (Go's zero values included) and a manifest only when set."""
    return dict(fields) if served else some(**fields)


def _container(c: Container, served: Served | None) -> dict[str, Any]:
    mounts = [{"name": m.name, "mountPath": m.mount_path, **_kept(served, readOnly=m.read_only)}
              for m in c.volume_mounts]
    return {"name": c.name, "image": c.image, **some(
        command=[*c.command, *c.args], workingDir=c.working_dir, env=env(c), ports=[port(p) for p in c.ports],
        cpu=c.cpu_limit_millis or c.cpu_millis, memory=c.memory_limit_bytes or c.memory_bytes, volumeMounts=mounts,
        imagePullPolicy=PULL_POLICY.get(c.image_pull_policy, c.image_pull_policy))}


def _state(name: str, spec: PodSpec, served: Served | None) -> dict[str, Any]:
    """``desiredState``: the container manifest, and the minion a pod is pinned to."""
    manifest: dict[str, Any] = {"version": VERSION, **_kept(served, id=name),
                                "containers": [_container(c, served) for c in spec.containers]}
    if served or spec.restart_policy != "Always":
        manifest["restartPolicy"] = {RESTART_POLICY.get(spec.restart_policy, "always"): {}}
    manifest |= some(volumes=[{"name": v.name, "source": {"hostDir": {"path": v.host_path}} if v.kind == "hostDir"
                               else {"emptyDir": {}}} for v in spec.volumes])
    return {"manifest": manifest, **some(host=spec.host)}


def _meta(obj: Object, served: Served | None) -> dict[str, Any]:
    out = {"kind": obj.kind, "apiVersion": VERSION, "id": obj.meta.name}
    if served is None:
        return out | some(namespace=obj.meta.namespace if obj.meta.namespace != "default" else None,
                          labels=dict(obj.meta.labels))
    return out | {"creationTimestamp": timestamp(served.created),
                  "resourceVersion": max(1, int(served.resource_version)),
                  "namespace": obj.meta.namespace or "default", "labels": dict(obj.meta.labels),
                  "selfLink": f"{PREFIX}/{kinds.of(obj.kind).v1beta1}/{obj.meta.name}"}


def _pod(p: Pod, served: Served | None) -> dict[str, Any]:
    return _meta(p, served) | {"desiredState": _state(p.meta.name, p.spec, served)} | some(
        nodeSelector=dict(p.spec.node_selector))


def _controller(rc: ReplicationController, served: Served | None) -> dict[str, Any]:
    spec = rc.template.spec
    template = {"desiredState": _state("", spec, served), **_kept(served, labels=dict(rc.template.labels)),
                **some(nodeSelector=dict(spec.node_selector))}
    return _meta(rc, served) | {"desiredState": {"replicas": rc.replicas, "replicaSelector": dict(rc.selector),
                                                 "podTemplate": template}}


def _service(svc: Service, served: Served | None) -> dict[str, Any]:
    out = _meta(svc, served) | {"selector": dict(svc.selector)} | _kept(
        served, createExternalLoadBalancer=svc.create_external_load_balancer)
    if svc.ports:  # one port in v1beta1: the first
        first = svc.ports[0]
        out["port"] = first.port
        if first.target_port is not None:
            out["containerPort"] = first.target_port
        if first.protocol != "TCP":
            out["protocol"] = first.protocol
    return out | _kept(served, portalIP=svc.cluster_ip or "")


def manifest(obj: Object) -> dict[str, Any]:
    """``obj`` as a v1beta1 manifest, with only the fields that are set."""
    if isinstance(obj, Pod):
        return _pod(obj, None)
    if isinstance(obj, ReplicationController):
        return _controller(obj, None)
    return _service(obj, None)


def pod(p: Pod, resource_version: int, created: float, state: PodState | None = None) -> dict[str, Any]:
    s = state or PodState("Waiting")
    current: dict[str, Any] = {"status": s.status, "host": s.host, "hostIP": s.host_ip,
                               **some(info=dict(s.info or {}), message=s.message)}
    return _pod(p, Served(resource_version, created)) | {"currentState": current}


def controller(rc: ReplicationController, resource_version: int, created: float, running: int = 0) -> dict[str, Any]:
    return _controller(rc, Served(resource_version, created)) | {
        "currentState": {"replicas": running, "replicaSelector": dict(rc.selector)}}


def service(svc: Service, resource_version: int, created: float) -> dict[str, Any]:
    return _service(svc, Served(resource_version, created))


def minion(name: str, address: str, cpu_millis: int, memory_bytes: int, ready: bool, labels: Mapping[str, str],
           resource_version: int) -> dict[str, Any]:
    return {"kind": kinds.MINION, "apiVersion": VERSION, "id": name, "hostIP": address,
            "resourceVersion": max(1, resource_version), "labels": dict(labels),
            "resources": {"capacity": {"cpu": cpu_millis, "memory": memory_bytes}},
            "status": {"conditions": [{"kind": "Ready", "status": "Full" if ready else "None"}]},
            "selfLink": f"{PREFIX}/{kinds.MINIONS.v1beta1}/{name}"}


def managed(item: dict[str, Any], managed_by: str) -> dict[str, Any]:
    """An object another owner than the master manages (a CLI apply set), marked so: the API lists it and
    refuses writes to it."""
    return item | {"managedBy": managed_by, "readOnly": True} if managed_by else item


def listing(kind: str, items: Iterable[dict[str, Any]], resource_version: int = 1) -> dict[str, Any]:
    return {"kind": LIST_KINDS[kind], "apiVersion": VERSION, "resourceVersion": max(1, resource_version),
            "items": list(items)}


REASONS = {400: "Invalid", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
           409: "AlreadyExists", 422: "Invalid", 500: "InternalError", 503: "ServiceUnavailable"}


def status(code: int, message: str, reason: str | None = None, details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A v1beta1 Status. ``Success`` for 2xx, else ``Failure``; capitalised as the 2014 client needs."""
    out: dict[str, Any] = {"kind": "Status", "apiVersion": VERSION,
                           "status": "Success" if 200 <= code < 300 else "Failure", "code": code,
                           "reason": reason or ("" if code < 300 else REASONS.get(code, "Unknown")),
                           "message": message}
    if details:
        out["details"] = dict(details)
    return out


def carry_over(stored: Object, incoming: Object) -> Object:
    """What a v1beta1 body cannot say, kept from the stored object where the body left it as it was read.

    A 2014 client updates by reading an object in v1beta1, changing a field and writing it back (``resize``,
    ``stop``, ``rollingupdate``). v1beta1 has no annotations, one ``cpu``/``memory`` (the limit) and one
    ``command``; an object made from a v1 manifest would lose its request/limit split and its args split.
    """
    if incoming.meta.api_version != VERSION or stored.meta.api_version == VERSION:
        return incoming
    meta = incoming.meta if incoming.meta.annotations else replace(incoming.meta, annotations=stored.meta.annotations)
    if isinstance(stored, ReplicationController) and isinstance(incoming, ReplicationController):
        spec = _carry_spec(stored.template.spec, incoming.template.spec)
        return replace(incoming, meta=meta, template=replace(incoming.template, spec=spec))
    if isinstance(stored, Pod) and isinstance(incoming, Pod):
        return replace(incoming, meta=meta, spec=_carry_spec(stored.spec, incoming.spec))
    return replace(incoming, meta=meta)


def _carry_spec(stored: PodSpec, incoming: PodSpec) -> PodSpec:
    before = {c.name: c for c in stored.containers}
    containers = []
    for c in incoming.containers:
        old = before.get(c.name)
        if old is not None:
            if c.cpu_millis == (old.cpu_limit_millis or old.cpu_millis) and not c.cpu_limit_millis:
                c = replace(c, cpu_millis=old.cpu_millis, cpu_limit_millis=old.cpu_limit_millis)
            if c.memory_bytes == (old.memory_limit_bytes or old.memory_bytes) and not c.memory_limit_bytes:
                c = replace(c, memory_bytes=old.memory_bytes, memory_limit_bytes=old.memory_limit_bytes)
            if c.command == (*old.command, *old.args) and not c.args:
                c = replace(c, command=old.command, args=old.args)
        containers.append(c)
    return replace(incoming, containers=tuple(containers))
