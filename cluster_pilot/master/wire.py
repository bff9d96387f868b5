"""The 2014 API's JSON (``v1beta1``), as the original ``kubecfg`` sends and expects it. Pure.

Every object and list carries ``kind`` and ``apiVersion: v1beta1`` and a non-zero ``resourceVersion``;
errors are ``Status`` objects with capitalised values, which decide over the HTTP code for the 2014 client.
Reading goes through the manifests package (lenient mode): the same validation as files.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping

from cluster_pilot.model import (POD, REPLICATION_CONTROLLER, SERVICE, Container, Object, Pod, PodSpec,
                                 ReplicationController, Service)

API_VERSION = "v1beta1"
LIST_KINDS = {POD: "PodList", REPLICATION_CONTROLLER: "ReplicationControllerList", SERVICE: "ServiceList",
              "Minion": "MinionList"}
RESOURCES = {"pods": POD, "replicationControllers": REPLICATION_CONTROLLER, "services": SERVICE, "minions": "Minion"}
_RESTART = {"Always": "always", "OnFailure": "onFailure", "Never": "never"}


@dataclass(frozen=True)
class PodState:
    """What the minions report about one pod (``currentState``)."""

    status: str  # Running, Waiting, Terminated (and Unknown for a pod on a lost minion)
    host: str = ""
    host_ip: str = ""
    info: Mapping[str, Any] | None = None


def timestamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _container(c: Container) -> dict[str, Any]:
    out: dict[str, Any] = {"name": c.name, "image": c.image}
    command = [*c.command, *c.args]
    if command:
        out["command"] = command
    if c.working_dir:
        out["workingDir"] = c.working_dir
    if c.env:
        out["env"] = [{"name": e.name, "value": e.value} for e in c.env]
    if c.ports:
        out["ports"] = [{k: v for k, v in (("name", p.name), ("containerPort", p.container_port),
                                           ("hostPort", p.host_port), ("protocol", p.protocol)) if v}
                        for p in c.ports]
    cpu = c.cpu_limit_millis or c.cpu_millis
    memory = c.memory_limit_bytes or c.memory_bytes
    if cpu:
        out["cpu"] = cpu
    if memory:
        out["memory"] = memory
    if c.volume_mounts:
        out["volumeMounts"] = [{"name": m.name, "mountPath": m.mount_path, "readOnly": m.read_only}
                               for m in c.volume_mounts]
    if c.image_pull_policy:
        out["imagePullPolicy"] = c.image_pull_policy
    return out


def _manifest(name: str, spec: PodSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"version": API_VERSION, "id": name, "containers": [_container(c) for c in spec.containers],
                           "restartPolicy": {_RESTART.get(spec.restart_policy, "always"): {}}}
    if spec.volumes:
        out["volumes"] = [{"name": v.name, "source": {"hostDir": {"path": v.host_path}} if v.kind == "hostDir"
                           else {"emptyDir": {}}} for v in spec.volumes]
    return out


def _meta(obj: Object, resource_version: int, created: float) -> dict[str, Any]:
    return {"kind": obj.kind, "apiVersion": API_VERSION, "id": obj.meta.name,
            "creationTimestamp": timestamp(created), "resourceVersion": max(1, int(resource_version)),
            "namespace": obj.meta.namespace or "default", "labels": dict(obj.meta.labels),
            "selfLink": f"/api/{API_VERSION}/{_resource(obj.kind)}/{obj.meta.name}"}


def _resource(kind: str) -> str:
    return next(r for r, k in RESOURCES.items() if k == kind)


def pod(p: Pod, resource_version: int, created: float, state: PodState | None = None) -> dict[str, Any]:
    desired: dict[str, Any] = {"manifest": _manifest(p.meta.name, p.spec)}
    if p.spec.host:
        desired["host"] = p.spec.host
    out = _meta(p, resource_version, created) | {"desiredState": desired}
    if p.spec.node_selector:
        out["nodeSelector"] = dict(p.spec.node_selector)
    s = state or PodState("Waiting")
    current: dict[str, Any] = {"status": s.status, "host": s.host, "hostIP": s.host_ip}
    if s.info:
        current["info"] = dict(s.info)
    out["currentState"] = current
    return out


def controller(rc: ReplicationController, resource_version: int, created: float, running: int = 0) -> dict[str, Any]:
    template: dict[str, Any] = {"desiredState": {"manifest": _manifest("", rc.template.spec)},
                                "labels": dict(rc.template.labels)}
    if rc.template.spec.node_selector:
        template["nodeSelector"] = dict(rc.template.spec.node_selector)
    return _meta(rc, resource_version, created) | {
        "desiredState": {"replicas": rc.replicas, "replicaSelector": dict(rc.selector), "podTemplate": template},
        "currentState": {"replicas": running, "replicaSelector": dict(rc.selector)},
    }


def service(svc: Service, resource_version: int, created: float) -> dict[str, Any]:
    first = svc.ports[0] if svc.ports else None
    out = _meta(svc, resource_version, created) | {"selector": dict(svc.selector),
                                                   "createExternalLoadBalancer": svc.create_external_load_balancer}
    if first is not None:
        out["port"] = first.port
        if first.target_port is not None:
            out["containerPort"] = first.target_port
        if first.protocol != "TCP":
            out["protocol"] = first.protocol
    return out


def minion(name: str, address: str, cpu_millis: int, memory_bytes: int, ready: bool, labels: Mapping[str, str],
           resource_version: int) -> dict[str, Any]:
    return {"kind": "Minion", "apiVersion": API_VERSION, "id": name, "hostIP": address,
            "resourceVersion": max(1, resource_version), "labels": dict(labels),
            "resources": {"capacity": {"cpu": cpu_millis, "memory": memory_bytes}},
            "status": {"conditions": [{"kind": "Ready", "status": "Full" if ready else "None"}]},
            "selfLink": f"/api/{API_VERSION}/minions/{name}"}


def listing(kind: str, items: Iterable[dict[str, Any]], resource_version: int = 1) -> dict[str, Any]:
    return {"kind": LIST_KINDS[kind], "apiVersion": API_VERSION, "resourceVersion": max(1, resource_version),
            "items": list(items)}


REASONS = {400: "Invalid", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
           409: "AlreadyExists", 422: "Invalid", 500: "InternalError", 503: "ServiceUnavailable"}


def status(code: int, message: str, reason: str | None = None, details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A v1beta1 Status. ``Success`` for 2xx, else ``Failure``; capitalised as the 2014 client needs."""
    out: dict[str, Any] = {"kind": "Status", "apiVersion": API_VERSION,
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
    if incoming.meta.api_version != API_VERSION or stored.meta.api_version == API_VERSION:
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
