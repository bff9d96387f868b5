"""A plan becomes data for a static playbook: Docker Engine API bodies per host, every string marked unsafe.

Rendering is pure and produces exactly what the ``cp_pods`` module sends to dockerd, so what reaches a host
can be read and tested here, without a host. Manifest values are never spliced into playbook text, Jinja2 or
a shell: they travel as YAML strings tagged ``!unsafe``, which Ansible never templates.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Mapping

import yaml

from cluster_pilot.model import (LABEL_CONTAINER, LABEL_CONTROLLER, LABEL_POD, LABEL_SPEC_HASH, REPLICATION_CONTROLLER,
                                 POD, Container, Pod, Volume)
from cluster_pilot.observe import (INFRA, LABEL_APPLYSET, LABEL_CONTAINERS, LABEL_HOST_PORTS, LABEL_KIND,
                                   LABEL_POD_LABELS, LABEL_REQUESTS)
from cluster_pilot.planner import Create, Plan, Remove, by_node

POD_DIR = "/var/lib/cluster-pilot/pods"
_RESTART = {"Always": "always", "OnFailure": "on-failure", "Never": "no"}


@dataclass(frozen=True)
class Settings:
    infra_image: str = "busybox:latest"
    applyset: str = "default"
    batches: int = 4  # progress updates per host and phase


def container_name(pod: str, container: str, spec_hash: str) -> str:
    """Docker accepts every character of a v1beta1 id ([A-Za-z0-9_.-]), so the pod name is kept as written."""
    return f"cp_{pod}_{container}_{spec_hash}"


def pod_dir(pod: str, spec_hash: str) -> str:
    return f"{POD_DIR}/{pod}/{spec_hash}"


def _labels(create: Create, container: str) -> dict[str, str]:
    return {LABEL_POD: create.name, LABEL_CONTROLLER: create.controller or "", LABEL_CONTAINER: container,
            LABEL_SPEC_HASH: create.spec_hash}


def _infra_body(create: Create, settings: Settings) -> dict[str, Any]:
    spec = create.pod.spec
    exposed: dict[str, dict] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for c in spec.containers:
        for p in c.ports:
            key = f"{p.container_port}/{p.protocol.lower()}"
            exposed[key] = {}
            if p.host_port:
                bindings.setdefault(key, []).append({"HostIp": "", "HostPort": str(p.host_port)})
    labels = _labels(create, INFRA) | {
        LABEL_KIND: REPLICATION_CONTROLLER if create.controller else POD,
        LABEL_POD_LABELS: json.dumps(dict(create.pod.meta.labels), sort_keys=True),
        LABEL_REQUESTS: f"{spec.cpu_millis},{spec.memory_bytes}",
        LABEL_HOST_PORTS: json.dumps([list(hp) for hp in spec.host_ports]),
        LABEL_CONTAINERS: json.dumps([c.name for c in spec.containers]),
        LABEL_APPLYSET: settings.applyset,
    }
    return {
        "Image": settings.infra_image,
        "Entrypoint": ["sleep"],
        "Cmd": ["2147483647"],
        "Hostname": _hostname(create.name),
        "Labels": labels,
        "ExposedPorts": exposed,
        "HostConfig": {"PortBindings": bindings, "RestartPolicy": {"Name": _RESTART.get(spec.restart_policy, "always")},
                       "Init": True, "IpcMode": "shareable"},
    }


def _hostname(pod: str) -> str:
    name = "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in pod.lower()).strip("-")
    return name[:63] or "pod"


def _container_body(create: Create, c: Container, infra: str, volumes: Mapping[str, Volume]) -> dict[str, Any]:
    spec = create.pod.spec
    cpu = c.cpu_limit_millis or c.cpu_millis
    memory = c.memory_limit_bytes or c.memory_bytes
    host_config: dict[str, Any] = {
        "NetworkMode": f"container:{infra}",
        "IpcMode": f"container:{infra}",
        "RestartPolicy": {"Name": _RESTART.get(spec.restart_policy, "always")},
        "Binds": [_bind(create, m.name, m.mount_path, m.read_only, volumes) for m in c.volume_mounts],
    }
    if cpu:
        host_config["NanoCpus"] = cpu * 1_000_000
    if memory:
        host_config["Memory"] = memory
    body: dict[str, Any] = {
        "Image": c.image,
        "Env": [f"{e.name}={e.value}" for e in c.env],
        "Labels": _labels(create, c.name),
        "HostConfig": host_config,
    }
    if c.command:
        body["Entrypoint"] = list(c.command)
        body["Cmd"] = list(c.args)
    elif c.args:
        body["Cmd"] = list(c.args)
    if c.working_dir:
        body["WorkingDir"] = c.working_dir
    return body


def _bind(create: Create, volume: str, path: str, read_only: bool, volumes: Mapping[str, Volume]) -> str:
    v = volumes.get(volume)
    source = v.host_path if v is not None and v.kind == "hostDir" and v.host_path else \
        f"{pod_dir(create.name, create.spec_hash)}/volumes/{volume}"
    return f"{source}:{path}:{'ro' if read_only else 'rw'}"


def render_create(create: Create, settings: Settings) -> dict[str, Any]:
    spec = create.pod.spec
    infra = container_name(create.name, INFRA, create.spec_hash)
    volumes = {v.name: v for v in spec.volumes}
    dirs = [f"{pod_dir(create.name, create.spec_hash)}/volumes/{v.name}" for v in spec.volumes if v.kind != "hostDir"]
    containers = [{"name": infra, "body": _infra_body(create, settings)}]
    containers += [{"name": container_name(create.name, c.name, create.spec_hash),
                    "body": _container_body(create, c, infra, volumes)} for c in spec.containers]
    images = sorted({settings.infra_image, *(c.image for c in spec.containers)})
    always = any(c.image_pull_policy == "Always" for c in spec.containers)
    return {"pod": create.name, "images": images, "pull": "always" if always else "missing", "dirs": dirs,
            "containers": containers}


def render_remove(remove: Remove) -> dict[str, Any]:
    return {"pod": remove.pod, "ids": list(remove.container_ids), "dir": pod_dir(remove.pod, remove.spec_hash)}


def _batches(items: list, parts: int) -> list[list]:
    if not items:
        return []
    size = max(1, math.ceil(len(items) / max(1, parts)))
    return [items[i:i + size] for i in range(0, len(items), size)]


def render(plan: Plan, settings: Settings = Settings()) -> dict[str, dict[str, list]]:
    """Per host: ``remove_first``, ``create`` and ``remove`` phases, each a list of batches of actions."""
    out: dict[str, dict[str, list]] = {}
    creates = by_node(plan.creates)
    removes = by_node(plan.removes)
    for node in plan.nodes:
        rs = removes.get(node, [])
        out[node] = {
            "remove_first": _batches([render_remove(r) for r in rs if r.first], settings.batches),
            "create": _batches([render_create(c, settings) for c in creates.get(node, [])], settings.batches),
            "remove": _batches([render_remove(r) for r in rs if not r.first], settings.batches),
        }
    return out


def action_count(host_vars: Mapping[str, list]) -> int:
    return sum(len(batch) for phase in host_vars.values() for batch in phase)


class _Unsafe(str):
    pass


class _UnsafeDumper(yaml.SafeDumper):
    pass


_UnsafeDumper.add_representer(_Unsafe, lambda d, s: d.represent_scalar("!unsafe", str(s)))


def _mark(value: Any) -> Any:
    if isinstance(value, str):
        return _Unsafe(value)
    if isinstance(value, Mapping):
        return {str(k): _mark(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mark(v) for v in value]
    return value


def unsafe_yaml(variables: Mapping[str, Any]) -> str:
    """YAML for ``-e @file``: every string value tagged ``!unsafe``, so Ansible treats it as data, never a template."""
    return yaml.dump(_mark(dict(variables)), Dumper=_UnsafeDumper, sort_keys=True, allow_unicode=True, width=1 << 20)


def playbook_vars(rendered: Mapping[str, Mapping[str, list]]) -> dict[str, Any]:
    """``cp_hosts``: per host and phase, each batch as one JSON text.

    One opaque string per batch: Ansible neither templates it (``!unsafe``) nor re-types what is inside
    (ansible-core 2.19 turns an ``!unsafe '80'`` into the integer 80), and the module decodes it itself.
    """
    return {"cp_hosts": {host: {phase: [json.dumps(batch, sort_keys=True) for batch in batches]
                                for phase, batches in phases.items()} for host, phases in rendered.items()}}
