"""``meta.k8s.io/v1`` Tables: what ``kubectl get`` prints, computed by the server (kubectl asks for
``application/json;as=Table;v=v1;g=meta.k8s.io`` and prints the cells as given). The columns are the ones
Kubernetes' own printers serve per kind, priority 1 being those ``-o wide`` adds. Pure: each row is read from
the v1 object the master would answer with, so the table and ``-o yaml`` cannot disagree."""

from __future__ import annotations

import calendar
import time
from typing import Any, Callable, Iterable, Sequence

Column = tuple[str, str, int]  # name, type, priority (1: only with -o wide)
Row = Callable[[dict[str, Any], float], list[Any]]

API_VERSION = "meta.k8s.io/v1"


def age(obj: dict[str, Any], now: float) -> str:
    created = obj.get("metadata", {}).get("creationTimestamp")
    if not created:
        return "<unknown>"
    then = calendar.timegm(time.strptime(created, "%Y-%m-%dT%H:%M:%SZ"))
    return human_duration(now - then)


def human_duration(seconds: float) -> str:
    """As Kubernetes' ``duration.HumanDuration``: ``45s``, ``7m30s``, ``3h``, ``2d5h``, ``400d``, ``3y20d``."""
    s = int(seconds)
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes, hours, days = s // 60, s // 3600, s // 86400
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 192:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    years = days // 365
    return f"{years}y{days % 365}d" if days % 365 else f"{years}y"


def _none(value: Any) -> Any:
    return value if value not in (None, "", []) else "<none>"


def _selector(selector: dict[str, str] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((selector or {}).items())) or "<none>"


def _pod_status(pod: dict[str, Any]) -> str:
    """kubectl's reading of a pod: Terminating, a container's waiting or terminated reason, else the phase."""
    if pod["metadata"].get("deletionTimestamp"):
        return "Terminating"
    for c in pod["status"].get("containerStatuses", []):
        state = c.get("state", {})
        for key in ("waiting", "terminated"):
            if key in state and state[key].get("reason"):
                if key == "terminated" and pod["status"]["phase"] == "Running":
                    continue
                return state[key]["reason"]
    return pod["status"]["phase"]


def _pod(pod: dict[str, Any], now: float) -> list[Any]:
    statuses = pod["status"].get("containerStatuses", [])
    ready = sum(1 for c in statuses if c.get("ready"))
    return [pod["metadata"]["name"], f"{ready}/{len(pod['spec']['containers'])}", _pod_status(pod),
            sum(c.get("restartCount", 0) for c in statuses), age(pod, now), _none(pod["status"].get("podIP")),
            _none(pod["spec"].get("nodeName")), "<none>", "<none>"]


def _images(template: dict[str, Any]) -> tuple[str, str]:
    containers = template.get("spec", {}).get("containers", [])
    return ",".join(c["name"] for c in containers), ",".join(c["image"] for c in containers)


def _controller(rc: dict[str, Any], now: float) -> list[Any]:
    names, images = _images(rc["spec"]["template"])
    status = rc.get("status", {})
    return [rc["metadata"]["name"], rc["spec"]["replicas"], status.get("replicas", 0),
            status.get("readyReplicas", 0), age(rc, now), names, images, _selector(rc["spec"].get("selector"))]


def _ports(svc: dict[str, Any]) -> str:
    out = []
    for p in svc["spec"].get("ports", []):
        node_port = f":{p['nodePort']}" if p.get("nodePort") else ""
        out.append(f"{p['port']}{node_port}/{p.get('protocol', 'TCP')}")
    return ",".join(out) or "<none>"


def _service(svc: dict[str, Any], now: float) -> list[Any]:
    spec = svc["spec"]
    external = "<pending>" if spec.get("type") == "LoadBalancer" else "<none>"
    return [svc["metadata"]["name"], spec.get("type", "ClusterIP"), _none(spec.get("clusterIP")), external,
            _ports(svc), age(svc, now), _selector(spec.get("selector"))]


def _node(node: dict[str, Any], now: float) -> list[Any]:
    ready = next((c for c in node["status"]["conditions"] if c["type"] == "Ready"), {})
    status = "Ready" if ready.get("status") == "True" else "NotReady"
    if node["spec"].get("unschedulable"):
        status += ",SchedulingDisabled"
    internal = next((a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP"), "<none>")
    return [node["metadata"]["name"], status, "<none>", age(node, now),
            node["status"]["nodeInfo"]["kubeletVersion"], internal, "<none>"]


def _namespace(ns: dict[str, Any], now: float) -> list[Any]:
    return [ns["metadata"]["name"], ns["status"]["phase"], age(ns, now)]


def _event(ev: dict[str, Any], now: float) -> list[Any]:
    involved = ev["involvedObject"]
    return [age({"metadata": {"creationTimestamp": ev["lastTimestamp"]}}, now), ev["type"], ev["reason"],
            f"{involved['kind'].lower()}/{involved['name']}", ev["message"]]


_NAME = ("Name", "string", 0)
_AGE = ("Age", "string", 0)
TABLES: dict[str, tuple[Sequence[Column], Row]] = {
    "Pod": ((_NAME, ("Ready", "string", 0), ("Status", "string", 0), ("Restarts", "string", 0), _AGE,
             ("IP", "string", 1), ("Node", "string", 1), ("Nominated Node", "string", 1),
             ("Readiness Gates", "string", 1)), _pod),
    "ReplicationController": ((_NAME, ("Desired", "integer", 0), ("Current", "integer", 0),
                               ("Ready", "integer", 0), _AGE, ("Containers", "string", 1), ("Images", "string", 1),
                               ("Selector", "string", 1)), _controller),
    "Service": ((_NAME, ("Type", "string", 0), ("Cluster-IP", "string", 0), ("External-IP", "string", 0),
                 ("Port(s)", "string", 0), _AGE, ("Selector", "string", 1)), _service),
    "Node": ((_NAME, ("Status", "string", 0), ("Roles", "string", 0), _AGE, ("Version", "string", 0),
              ("Internal-IP", "string", 1), ("External-IP", "string", 1)), _node),
    "Namespace": ((_NAME, ("Status", "string", 0), _AGE), _namespace),
    "Event": ((("Last Seen", "string", 0), ("Type", "string", 0), ("Reason", "string", 0),
               ("Object", "string", 0), ("Message", "string", 0)), _event),
}


def table(kind: str, objects: Iterable[dict[str, Any]], resource_version: str, now: float,
          include_object: str = "Metadata") -> dict[str, Any]:
    """A Table of ``objects`` (v1 objects of ``kind``). ``include_object``: ``Metadata`` (the default, each
    row carries the object's metadata, which kubectl reads for ``--show-labels`` and namespaces), ``Object``
    or ``None``."""
    columns, row = TABLES[kind]
    rows = []
    for obj in objects:
        entry: dict[str, Any] = {"cells": row(obj, now)}
        if include_object == "Object":
            entry["object"] = obj
        elif include_object != "None":
            entry["object"] = {"kind": "PartialObjectMetadata", "apiVersion": API_VERSION, "metadata": obj["metadata"]}
        rows.append(entry)
    definitions = [{"name": name, "type": kind_of_cell, "format": "name" if name == "Name" else "",
                    "description": "", "priority": priority} for name, kind_of_cell, priority in columns]
    return {"kind": "Table", "apiVersion": API_VERSION, "metadata": {"resourceVersion": resource_version},
            "columnDefinitions": definitions, "rows": rows}
