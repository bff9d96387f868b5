"""The manifests benchmark: how fast a large set of manifests is read, checked and normalised.

Writes a synthetic application of N objects to a temporary directory, in every style the loader reads
(2014 JSON with and without kind, first-release spellings, JSON Lists, v1 YAML streams), then times
``manifests.load`` on the directory: reading, parsing, schema, model and every cross-object check.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

from cluster_pilot.manifests import load

_PER_FILE = 10  # objects per List or YAML stream


@dataclass(frozen=True)
class ManifestFigures:
    objects: int
    kinds: dict[str, int]
    files: int
    seconds: float  # the best of the runs

    @property
    def rate(self) -> float:
        return self.objects / self.seconds


def measure(count: int, repeat: int) -> ManifestFigures:
    """Validate ``count`` generated objects of mixed kinds and styles, ``repeat`` times; keep the best run."""
    with tempfile.TemporaryDirectory(prefix="cluster-pilot-bench-") as tmp:
        files = write_application(Path(tmp), count)
        best = float("inf")
        for _ in range(repeat):
            started = time.perf_counter()
            loaded = load([tmp])
            best = min(best, time.perf_counter() - started)
    kinds = Counter(o.kind for o in loaded.objects)
    return ManifestFigures(len(loaded.objects), dict(sorted(kinds.items())), files, best)


def write_application(root: Path, count: int) -> int:
    """Writes ``count`` objects; returns how many files."""
    objects = [_object(i) for i in range(count)]
    files = 0
    for start in range(0, count, _PER_FILE):
        chunk = objects[start:start + _PER_FILE]
        block = start // _PER_FILE
        style = block % 5
        if style in (0, 1):  # one 2014 JSON file per object
            for n, (_, beta, _) in enumerate(chunk):
                (root / f"b{block:05d}-{n}.json").write_text(json.dumps(beta, indent=2))
                files += 1
        elif style == 2:  # a JSON List
            items = [beta for _, beta, _ in chunk]
            listing = {"kind": "List", "apiVersion": "v1beta1", "items": items}
            (root / f"l{block:05d}.json").write_text(json.dumps(listing, indent=2))
            files += 1
        else:  # a v1 YAML stream
            (root / f"y{block:05d}.yaml").write_text("---\n".join(_yaml(v1) for _, _, v1 in chunk))
            files += 1
    return files


def _object(i: int) -> tuple[str, dict, dict]:
    """Object ``i`` of the application, as (kind, v1beta1 form, v1 form). Groups of three: a pod, a
    controller and a service selecting the controller's pods, each group on its own service port."""
    group, role = divmod(i, 3)
    app = f"app-{group}"
    labels = {"app": app, "tier": "web" if role else "cache"}
    if role == 0:
        return "Pod", _beta_pod(f"cache-{group}", labels, group), _v1_pod(f"cache-{group}", labels)
    if role == 1:
        old_name = f"web{group}Controller" if group % 2 else f"web-{group}"
        return "ReplicationController", _beta_rc(old_name, labels, group), _v1_rc(f"web-{group}", labels)
    port = 20_000 + group % 40_000
    return "Service", _beta_service(f"web-{group}", labels, port, group), _v1_service(f"web-{group}", labels, port)


def _beta_container(group: int) -> dict:
    return {"name": "web", "image": "busybox", "command": ["httpd", "-f", "-p", "80"], "cpu": 100, "memory": 67108864,
            "env": [{"name": "GROUP", "value": str(group)}], "ports": [{"name": "http", "containerPort": 80}]}


def _beta_pod(name: str, labels: dict, group: int) -> dict:
    pod = {"id": name, "labels": labels, "desiredState": {"manifest": {"version": "v1beta1", "id": name,
                                                                      "containers": [_beta_container(group)]}}}
    return pod if group % 2 else {"kind": "Pod", "apiVersion": "v1beta1", **pod}


def _beta_rc(name: str, labels: dict, group: int) -> dict:
    first_release = group % 3 == 0
    manifest = {"version": "v1beta1", "containers": [_beta_container(group)]}
    template = {"labels": labels, "desiredState": {"manifest": manifest}}
    return {"id": name, "labels": labels, "desiredState": {
        "replicas": 2,
        "replicasInSet" if first_release else "replicaSelector": labels,
        "taskTemplate" if first_release else "podTemplate": template}}


def _beta_service(name: str, labels: dict, port: int, group: int) -> dict:
    service = {"id": name, "port": port, "labels": labels}
    return service if group % 2 else {"kind": "Service", "apiVersion": "v1beta1", "containerPort": "http",
                                      "selector": labels, **service}


def _v1_container() -> dict:
    return {"name": "web", "image": "busybox", "command": ["httpd", "-f", "-p", "80"],
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
            "ports": [{"name": "http", "containerPort": 80}]}


def _v1_pod(name: str, labels: dict) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [_v1_container()]}}


def _v1_rc(name: str, labels: dict) -> dict:
    return {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": 2, "selector": labels,
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [_v1_container()]}}}}


def _v1_service(name: str, labels: dict, port: int) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": labels},
            "spec": {"ports": [{"port": port, "targetPort": "http"}], "selector": labels}}


def _yaml(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
