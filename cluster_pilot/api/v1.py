"""Today's API (``v1``), written: as a manifest (only the fields that are set), and as the master serves it on
``/api/v1`` (metadata with uid and resourceVersion, status from what the fleet reports). Pure; reading is the
manifests package's."""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from cluster_pilot import model
from cluster_pilot.api.fields import env, port, some

VERSION = "v1"


def _meta(meta: model.Meta) -> dict:
    return {"name": meta.name, **some(namespace=meta.namespace if meta.namespace != "default" else None,
                                      labels=dict(meta.labels), annotations=dict(meta.annotations))}


def _container(c: model.Container) -> dict:
    requests = some(cpu=f"{c.cpu_millis}m" if c.cpu_millis else None,
                    memory=str(c.memory_bytes) if c.memory_bytes else None)
    limits = some(cpu=f"{c.cpu_limit_millis}m" if c.cpu_limit_millis else None,
                  memory=str(c.memory_limit_bytes) if c.memory_limit_bytes else None)
    mounts = [some(name=m.name, mountPath=m.mount_path, readOnly=m.read_only) for m in c.volume_mounts]
    return {"name": c.name, "image": c.image, **model.written_values(c),
            **some(resources=some(requests=requests, limits=limits), env=env(c), ports=[port(p) for p in c.ports],
                   volumeMounts=mounts),
            **{key: probe(getattr(c, attr)) for key, attr in model.PROBE_FIELDS if getattr(c, attr) is not None},
            **({"securityContext": security(c.security)} if c.security is not None else {})}


def security(sc: model.SecurityContext) -> dict:
    """A securityContext as a v1 manifest writes it (a pod's and a container's share the spelling)."""
    return some(runAsUser=sc.run_as_user, runAsGroup=sc.run_as_group, runAsNonRoot=sc.run_as_non_root,
                readOnlyRootFilesystem=sc.read_only_root_filesystem,
                capabilities=some(drop=list(sc.drop)), fsGroup=sc.fs_group,
                supplementalGroups=list(sc.supplemental_groups)) | (
        {"allowPrivilegeEscalation": False} if sc.no_new_privileges else {})


def probe(p: model.Probe) -> dict:
    """A probe as a v1 manifest writes it, Kubernetes' defaults filled in (what ``cp-health`` reads too)."""
    if p.action == "httpGet":
        handler: dict = {"path": p.path, "port": p.port, "scheme": p.scheme,
                         **some(httpHeaders=[{"name": n, "value": v} for n, v in p.headers])}
    elif p.action == "tcpSocket":
        handler = {"port": p.port}
    else:
        handler = {"command": list(p.command)}
    return {p.action: handler, "initialDelaySeconds": p.initial_delay_seconds, "periodSeconds": p.period_seconds,
            "timeoutSeconds": p.timeout_seconds, "successThreshold": p.success_threshold,
            "failureThreshold": p.failure_threshold}


def _spec(spec: model.PodSpec) -> dict:
    volumes = [{"name": v.name, "hostPath": {"path": v.host_path}} if v.kind == "hostDir"
               else {"name": v.name, "emptyDir": {}} for v in spec.volumes]
    return {"containers": [_container(c) for c in spec.containers], **some(volumes=volumes),
            **model.written_values(spec),
            **({"securityContext": security(spec.security)} if spec.security is not None else {})}


def manifest(obj: model.Object) -> dict:
    """``obj`` as a v1 manifest, with only the fields that are set."""
    result = {"apiVersion": VERSION, "kind": obj.kind, "metadata": _meta(obj.meta)}
    if isinstance(obj, model.Pod):
        result["spec"] = _spec(obj.spec)
    elif isinstance(obj, model.ReplicationController):
        result["spec"] = {"replicas": obj.replicas, "selector": dict(obj.selector),
                          "template": {"metadata": some(labels=dict(obj.template.labels)),
                                       "spec": _spec(obj.template.spec)}}
    else:
        ports = [some(name=p.name, port=p.port, targetPort=p.target_port,
                      protocol=p.protocol if p.protocol != model.TCP else None,
                      nodePort=p.node_port if obj.type != model.CLUSTER_IP else None) for p in obj.ports]
        kind = model.LOAD_BALANCER if obj.create_external_load_balancer else obj.type
        result["spec"] = {"ports": ports, **some(selector=dict(obj.selector), clusterIP=obj.cluster_ip,
                                                 type=kind if kind != model.CLUSTER_IP else None)}
    return result


# --- served: what the master answers on /api/v1 ------------------------------------------------------------

MANAGED_BY = "cluster-pilot.io/managed-by"  # annotation: the CLI apply set that owns an object read-only here
READ_ONLY = "cluster-pilot.io/read-only"
_UIDS = uuid.UUID("6f1f0c7e-3c55-5d1b-9a53-2d7c1e0c0a11")


@dataclass(frozen=True)
class Served:
    """What the master adds to an object it answers with. ``managed_by``: the CLI apply set that owns it (the
    API refuses writes to it, and says so in two annotations)."""

    resource_version: int
    created: float | None
    managed_by: str = ""
    deleting: float | None = None  # when it was deleted, for a pod that still runs


@dataclass(frozen=True)
class ContainerState:
    """One container of a running pod, as the minion's Docker reports it."""

    name: str
    image: str
    state: str  # Docker's: created, running, restarting, exited, paused, dead
    exit_code: int | None = None
    ready: bool | None = None  # what its readiness probe says (cp-health); None: it has none


@dataclass(frozen=True)
class PodState:
    """What the fleet reports about one pod: ``status`` as the 2014 API says it (Running, Waiting, Terminated,
    Unknown), the minion and its address, its containers (none while it does not run)."""

    status: str
    node: str = ""
    host_ip: str = ""
    containers: tuple[ContainerState, ...] = ()
    controller: str | None = None


def timestamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def uid(kind: str, namespace: str, name: str) -> str:
    """Stable per kind, namespace and name: the store keeps no creation identity, so a recreated object has
    its predecessor's uid (said in docs/kubernetes-api.md)."""
    return str(uuid.uuid5(_UIDS, f"{kind}/{namespace}/{name}"))


def metadata(kind: str, meta: model.Meta, served: Served, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    namespace = meta.namespace or "default"
    annotations = dict(meta.annotations)
    if served.managed_by:
        annotations |= {MANAGED_BY: served.managed_by, READ_ONLY: "true"}
    out: dict[str, Any] = {"name": meta.name, "namespace": namespace, "uid": uid(kind, namespace, meta.name),
                           "resourceVersion": str(max(1, served.resource_version))}
    if served.created is not None:
        out["creationTimestamp"] = timestamp(served.created)
    if served.deleting is not None:
        out["deletionTimestamp"] = timestamp(served.deleting)
    return out | some(labels=dict(meta.labels if labels is None else labels), annotations=annotations)


def _phase(state: PodState) -> str:
    if state.status == "Running":
        return "Running"
    if state.status == "Terminated":
        exited = [c for c in state.containers if c.state in ("exited", "dead")]
        return "Succeeded" if exited and all(c.exit_code == 0 for c in exited) else "Failed"
    return "Unknown" if state.status == "Unknown" else "Pending"


def _container_status(c: ContainerState, started: str | None) -> dict[str, Any]:
    if c.state in ("running", "restarting", "paused"):
        state: dict[str, Any] = {"running": some(startedAt=started)}
    elif c.state in ("exited", "dead"):
        code = c.exit_code or 0
        state = {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error"}}
    else:
        state = {"waiting": {"reason": "ContainerCreating"}}
    running = c.state == "running"
    return {"name": c.name, "image": c.image, "imageID": "", "ready": running and c.ready is not False,
            "started": running, "restartCount": 0, "state": state}


def pod(p: model.Pod, served: Served, state: PodState) -> dict[str, Any]:
    meta = metadata(model.POD, p.meta, served)
    if state.controller:
        meta["ownerReferences"] = [{"apiVersion": VERSION, "kind": model.REPLICATION_CONTROLLER,
                                    "name": state.controller,
                                    "uid": uid(model.REPLICATION_CONTROLLER, meta["namespace"], state.controller),
                                    "controller": True, "blockOwnerDeletion": True}]
    spec = _spec(p.spec) | some(nodeName=state.node or p.spec.host)
    spec.setdefault("restartPolicy", p.spec.restart_policy)
    phase = _phase(state)
    started = meta.get("creationTimestamp") if phase == "Running" else None
    by_name = {c.name: c for c in state.containers}
    statuses = [_container_status(by_name[c.name], started) for c in p.spec.containers if c.name in by_name]
    ready = bool(statuses) and len(statuses) == len(p.spec.containers) and all(s["ready"] for s in statuses)
    status: dict[str, Any] = {"phase": phase, "conditions": [
        {"type": "PodScheduled", "status": "True" if state.node else "False"},
        {"type": "Ready", "status": "True" if ready else "False"}]}
    status |= some(hostIP=state.host_ip, startTime=started, containerStatuses=statuses)
    return {"apiVersion": VERSION, "kind": model.POD, "metadata": meta, "spec": spec, "status": status}


def controller(rc: model.ReplicationController, served: Served, running: int, ready: int) -> dict[str, Any]:
    body = manifest(rc)
    return body | {"metadata": metadata(rc.kind, rc.meta, served),
                   "status": {"replicas": running, "readyReplicas": ready, "availableReplicas": ready,
                              "fullyLabeledReplicas": running}}


def scale(rc: dict[str, Any]) -> dict[str, Any]:
    """The ``autoscaling/v1`` Scale of a served controller (``kubectl scale``)."""
    meta = {k: v for k, v in rc["metadata"].items() if k in ("name", "namespace", "uid", "resourceVersion",
                                                              "creationTimestamp")}
    selector = ",".join(f"{k}={v}" for k, v in sorted(rc["spec"].get("selector", {}).items()))
    return {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": meta,
            "spec": {"replicas": rc["spec"]["replicas"]},
            "status": {"replicas": rc.get("status", {}).get("replicas", 0), "selector": selector}}


def service(svc: model.Service, served: Served) -> dict[str, Any]:
    body = manifest(svc)
    spec = body["spec"] | {"type": body["spec"].get("type", model.CLUSTER_IP)}
    for p in spec["ports"]:
        p.setdefault("protocol", model.TCP)
        p.setdefault("targetPort", p["port"])
    if svc.cluster_ip:
        spec["clusterIPs"] = [svc.cluster_ip]
    return body | {"metadata": metadata(svc.kind, svc.meta, served), "spec": spec,
                   "status": {"loadBalancer": {}}}


def node(n: model.Node, ready: bool, resource_version: int) -> dict[str, Any]:
    capacity = {"cpu": f"{n.capacity.cpu_millis}m" if n.capacity.cpu_millis % 1000 else str(n.capacity.cpu_millis // 1000),
                "memory": f"{n.capacity.memory_bytes // 1024}Ki", "pods": str(n.capacity.pods)}
    labels = {"kubernetes.io/hostname": n.name, **n.labels}
    condition = {"type": "Ready", "status": "True" if ready else "Unknown",
                 "reason": "MinionReady" if ready else "MinionNotAnswering",
                 "message": "the minion answers" if ready else "the minion does not answer and is past its grace"}
    return {"apiVersion": VERSION, "kind": "Node",
            "metadata": {"name": n.name, "uid": uid("Node", "", n.name),
                         "resourceVersion": str(max(1, resource_version)), "labels": labels},
            "spec": some(unschedulable=not n.ready),
            "status": {"capacity": capacity, "allocatable": dict(capacity), "conditions": [condition],
                       "addresses": [{"type": "InternalIP", "address": n.address},
                                     {"type": "Hostname", "address": n.name}],
                       # every field NodeSystemInfo requires, "" where the inventory does not say
                       "nodeInfo": {"kubeletVersion": "cluster-pilot", "containerRuntimeVersion": "docker://",
                                    "operatingSystem": "linux", "architecture": "", "osImage": "",
                                    "kernelVersion": "", "kubeProxyVersion": "", "machineID": "",
                                    "systemUUID": "", "bootID": ""}}}


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": VERSION, "kind": "Namespace",
            "metadata": {"name": name, "uid": uid("Namespace", "", name), "resourceVersion": "1",
                         "labels": {"kubernetes.io/metadata.name": name}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}


WARNINGS = frozenset({"FailedScheduling", "Killed", "Evicted", "MinionLost", "MinionNotReady", "Failed"})


def event(kind: str, name: str, reason: str, message: str, node_name: str, at: float, number: int,
          namespace_name: str = "default") -> dict[str, Any]:
    """One of the master's events. Its object's kind in today's words (a Minion is a Node), and its uid, which
    ``kubectl describe`` selects events by."""
    involved_kind = "Node" if kind == "Minion" else kind
    when = timestamp(at)
    involved_uid = uid(involved_kind, "" if involved_kind == "Node" else namespace_name, name)
    return {"apiVersion": VERSION, "kind": "Event",
            "metadata": {"name": f"{name}.{number:x}", "namespace": namespace_name,
                         "uid": uid("Event", namespace_name, str(number)), "resourceVersion": str(number),
                         "creationTimestamp": when},
            "involvedObject": {"kind": involved_kind, "name": name, "uid": involved_uid,
                               **some(namespace=namespace_name if involved_kind != "Node" else None),
                               "apiVersion": VERSION},
            "reason": reason, "message": message, "type": "Warning" if reason in WARNINGS else "Normal",
            "source": {"component": "cluster-pilot-master", **some(host=node_name)}, "count": 1,
            "firstTimestamp": when, "lastTimestamp": when, "reportingComponent": "cluster-pilot-master"}


def listing(kind: str, items: Iterable[dict[str, Any]], resource_version: str, more: str = "",
            remaining: int = 0) -> dict[str, Any]:
    return {"apiVersion": VERSION, "kind": f"{kind}List",
            "metadata": {"resourceVersion": resource_version, **paged(more, remaining)}, "items": list(items)}


def paged(more: str, remaining: int) -> dict[str, Any]:
    """A list's ``continue`` and ``remainingItemCount``, when a page is not the last."""
    return {"continue": more, "remainingItemCount": remaining} if more else {}


def page(items: Iterable[dict[str, Any]], limit: int, token: str) -> tuple[list[dict[str, Any]], str, int]:
    """One page of a list, as Kubernetes' ``limit`` and ``continue`` ask: (its items, the token of the next
    page or "", how many items come after it). Pages follow namespace and name, and a token names the last
    item served, so an object created or deleted meanwhile neither repeats nor hides another one.
    ``ValueError`` for a token this server did not write."""
    ordered = sorted(items, key=_place)
    if token:
        after = _token_place(token)
        ordered = [o for o in ordered if _place(o) > after]
    if limit <= 0 or len(ordered) <= limit:
        return ordered, "", 0
    served = ordered[:limit]
    mark = json.dumps({"v": 1, "after": list(_place(served[-1]))}, separators=(",", ":"))
    return served, base64.urlsafe_b64encode(mark.encode()).decode().rstrip("="), len(ordered) - limit


def _place(o: Mapping[str, Any]) -> tuple[str, str]:
    return o["metadata"].get("namespace", ""), o["metadata"]["name"]


def _token_place(token: str) -> tuple[str, str]:
    try:
        doc = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        namespace, name = doc["after"]
        if doc.get("v") != 1 or not isinstance(namespace, str) or not isinstance(name, str):
            raise ValueError
    except (ValueError, TypeError, KeyError, binascii.Error) as exc:
        raise ValueError("the continue token is not one this server gave: list again without it") from exc
    return namespace, name


def status(code: int, message: str, reason: str, details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A ``metav1.Status``: Kubernetes' reasons (NotFound, AlreadyExists, Conflict, Invalid, ...)."""
    return {"kind": "Status", "apiVersion": VERSION, "metadata": {},
            "status": "Success" if 200 <= code < 300 else "Failure", "message": message, "reason": reason,
            **some(details=dict(details or {})), "code": code}
