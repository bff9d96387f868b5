"""A plan becomes data for a static playbook: Docker Engine API bodies per host, every string marked unsafe.

Rendering is pure and produces exactly what the ``cp_pods`` module sends to dockerd, so what reaches a host
can be read and tested here, without a host. Manifest values are never spliced into playbook text, Jinja2 or
a shell: they travel as YAML strings tagged ``!unsafe``, which Ansible never templates.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import yaml

from cluster_pilot.model import (POD, REPLICATION_CONTROLLER, Container, EnvVar, SecurityContext, Service, Volume,
                                 effective_security, field_value, host_safe_name)
from cluster_pilot.host.podformat import (INFRA, LABEL_NON_ROOT, LABEL_PROBES, PodRecord, anchor, bind_dir,
                                          container_name, member_labels, network_owner, owner_labels, pod_dir,
                                          probes_label, volume_dir)
from cluster_pilot.plan.planner import Create, Plan, Remove, by_node
from cluster_pilot.manifests.network import search_path
from cluster_pilot.plan.proxy import discovery_env

MODULE_WIDTH = 16  # pods the cp_pods module works on at once (its thread pool, WIDTH there)
_RESTART = {"Always": "always", "OnFailure": "on-failure", "Never": "no"}


@dataclass(frozen=True)
class Settings:
    infra_image: str = "busybox:latest"
    applyset: str = "default"
    batches: int = 4  # progress updates per host and phase
    dns_server: str = ""  # the minions' DNS server (see manifests.network); "": Docker's default resolver
    fence: int = 0  # the fleet lock's fencing token: every module run on a minion checks it (0: not checked)


def _record(create: Create, settings: Settings) -> PodRecord:
    spec = create.pod.spec
    return PodRecord(
        pod=create.name, spec_hash=create.spec_hash, controller=create.controller,
        kind=REPLICATION_CONTROLLER if create.controller else POD, labels=create.pod.meta.labels,
        containers=tuple(c.name for c in spec.containers), cpu_millis=spec.cpu_millis,
        memory_bytes=spec.memory_bytes, ports=tuple(create.ports), applyset=settings.applyset,
        restart_policy=spec.restart_policy)


def _network(create: Create, settings: Settings) -> dict[str, Any]:
    """What the container owning the pod's network namespace (``podformat.network_owner``) adds to its body:
    the pod's hostname, every published port, its resolver, the pod's record. Containers joining it can set
    none of these."""
    exposed: dict[str, dict] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for p in create.ports:
        key = f"{p.container_port}/{p.protocol.lower()}"
        exposed[key] = {}
        binding = {"HostIp": "", "HostPort": str(p.host_port)}
        if binding not in bindings.setdefault(key, []):
            bindings[key].append(binding)
    return {
        "Hostname": create.pod.spec.hostname or host_safe_name(create.name),
        "Labels": owner_labels(_record(create, settings)),
        "ExposedPorts": exposed,
        "HostConfig": {"PortBindings": bindings, **_resolver(create, settings)},
    }


def _resolver(create: Create, settings: Settings) -> dict[str, Any]:
    """The pod's resolver (its other containers share the owner's resolv.conf): the minions' DNS server, and a
    search path that finds services of the pod's namespace."""
    if not settings.dns_server:
        return {}
    return {"Dns": [settings.dns_server], "DnsSearch": list(search_path(create.pod.meta.namespace))}


def _owning(body: dict[str, Any], network: Mapping[str, Any]) -> dict[str, Any]:
    """``body`` made the owner of its pod's network namespace."""
    return {**body, **network, "HostConfig": {**body["HostConfig"], **network["HostConfig"]},
            "Labels": {**body.get("Labels", {}), **network["Labels"]}}


def _infra_body(create: Create, settings: Settings) -> dict[str, Any]:
    """The infra container of a pod of several containers: it holds the namespace they all join."""
    return _owning({
        "Image": settings.infra_image,
        "Entrypoint": ["sleep"],
        "Cmd": ["2147483647"],
        "HostConfig": {"RestartPolicy": {"Name": _RESTART.get(create.pod.spec.restart_policy, "always")},
                       "Init": True, "IpcMode": "shareable"},
    }, _network(create, settings))


def _container_body(create: Create, c: Container, infra: str | None, volumes: Mapping[str, Volume],
                    discovery: list[tuple[str, str]], host_ip: str) -> dict[str, Any]:
    """``infra``: the container whose namespaces it joins; None for the one container of a pod. ``host_ip``: its
    minion's address (``status.hostIP``)."""
    spec = create.pod.spec
    cpu = c.cpu_limit_millis or c.cpu_millis
    memory = c.memory_limit_bytes or c.memory_bytes
    host_config: dict[str, Any] = {
        "Init": True,  # a process that is PID 1 ignores SIGTERM: stopping would always wait for the kill
        "RestartPolicy": {"Name": _RESTART.get(spec.restart_policy, "always")},
        "Mounts": [{"Type": "bind", "Source": _source(create, volumes.get(m.name), m.name), "Target": m.mount_path,
                    "ReadOnly": m.read_only} for m in c.volume_mounts],
    }
    if infra is not None:
        host_config |= {"NetworkMode": f"container:{infra}", "IpcMode": f"container:{infra}"}
    if cpu:
        host_config["NanoCpus"] = cpu * 1_000_000
    if memory:
        host_config["Memory"] = memory
    body: dict[str, Any] = {
        "Image": c.image,
        # the container's own variables win over discovery ones of the same name
        "Env": [f"{k}={v}" for k, v in discovery if k not in {e.name for e in c.env}] +
               [f"{e.name}={_env_value(e, create, host_ip)}" for e in c.env],
        "Labels": member_labels(create.name, create.controller, c.name, create.spec_hash),
        "HostConfig": host_config,
    }
    probes = probes_label(c)
    if probes is not None:
        body["Labels"][LABEL_PROBES] = probes
    _secure(body, effective_security(spec.security, c.security))
    if c.command:
        body["Entrypoint"] = list(c.command)
        body["Cmd"] = list(c.args)
    elif c.args:
        body["Cmd"] = list(c.args)
    if c.working_dir:
        body["WorkingDir"] = c.working_dir
    return body


def _env_value(e: EnvVar, create: Create, host_ip: str) -> str:
    return e.value if e.field_path is None else field_value(e.field_path, create.pod.meta, create.node, host_ip)


def _secure(body: dict[str, Any], sc: SecurityContext) -> None:
    """A securityContext onto a container's body: only what tightens it reaches here (normalise refused the rest).
    ``runAsNonRoot`` without a user of its own is checked by ``cp_pods`` against the image, before the start."""
    host = body["HostConfig"]
    if sc.run_as_user is not None:
        body["User"] = str(sc.run_as_user) + (f":{sc.run_as_group}" if sc.run_as_group is not None else "")
    elif sc.run_as_non_root:
        body["Labels"][LABEL_NON_ROOT] = "true"
    if sc.read_only_root_filesystem:
        host["ReadonlyRootfs"] = True
    if sc.no_new_privileges:
        host["SecurityOpt"] = ["no-new-privileges"]
    if sc.drop:
        host["CapDrop"] = list(sc.drop)
    groups = ([sc.fs_group] if sc.fs_group is not None else []) + list(sc.supplemental_groups)
    if groups:
        host["GroupAdd"] = [str(g) for g in groups]


def _host_path(v: Volume | None) -> str | None:
    return v.host_path if v is not None and v.kind == "hostDir" and v.host_path else None


def _source(create: Create, v: Volume | None, volume: str) -> str:
    """Structured mounts, never a ``SRC:DST:MODE`` text a path could reshape; a host path through its anchor,
    which ``cp_pods`` binds to the directory it checked, so no later swap of the path reaches a restart."""
    if _host_path(v) is not None:
        return anchor(create.name, create.spec_hash, volume)
    return volume_dir(create.name, create.spec_hash, volume)


def render_create(create: Create, settings: Settings, services: Sequence[Service] = (),
                  proxy_address: str = "") -> dict[str, Any]:
    """The pod's containers, the owner of its network namespace first (``podformat.network_owner``)."""
    spec = create.pod.spec
    discovery = discovery_env(services, proxy_address) if proxy_address else []
    volumes = {v.name: v for v in spec.volumes}
    dirs = [volume_dir(create.name, create.spec_hash, v.name) for v in spec.volumes if v.kind != "hostDir"]
    images = {c.image for c in spec.containers}
    if network_owner([c.name for c in spec.containers]) != INFRA:
        (only,) = spec.containers
        containers = [{"name": container_name(create.name, only.name, create.spec_hash),
                       "body": _owning(_container_body(create, only, None, volumes, discovery, proxy_address),
                                       _network(create, settings))}]
    else:
        infra = container_name(create.name, INFRA, create.spec_hash)
        containers = [{"name": infra, "body": _infra_body(create, settings)}]
        containers += [{"name": container_name(create.name, c.name, create.spec_hash),
                        "body": _container_body(create, c, infra, volumes, discovery, proxy_address)}
                       for c in spec.containers]
        images.add(settings.infra_image)
    always = any(c.image_pull_policy == "Always" for c in spec.containers)
    binds = [{"source": _host_path(v), "anchor": anchor(create.name, create.spec_hash, v.name)}
             for v in spec.volumes if _host_path(v) is not None]
    group = spec.security.fs_group if spec.security else None  # the emptyDir volumes' group (fsGroup)
    return {"pod": create.name, "images": sorted(images), "pull": "always" if always else "missing", "dirs": dirs,
            "binds": binds, "containers": containers, **({"group": group} if group is not None else {})}


def render_remove(remove: Remove) -> dict[str, Any]:
    return {"pod": remove.pod, "ids": list(remove.container_ids), "dir": pod_dir(remove.pod, remove.spec_hash),
            "binds": bind_dir(remove.pod, remove.spec_hash)}


def _batches(items: list, parts: int) -> list[list]:
    """At most ``parts`` batches (each one module run, one after another, for progress), none smaller than
    the pods ``cp_pods`` works on at once: a smaller batch leaves dockerd idle and costs a module start."""
    if not items:
        return []
    count = max(1, min(parts, math.ceil(len(items) / MODULE_WIDTH)))
    size = math.ceil(len(items) / count)
    return [items[i:i + size] for i in range(0, len(items), size)]


@dataclass(frozen=True)
class Rendered:
    """Per host: ``remove_first``, ``create`` and ``remove`` phases (lists of batches) and whether its proxy
    must be reconfigured; the proxy document is the same for every minion."""

    hosts: Mapping[str, Mapping[str, list]]
    proxy_hosts: tuple[str, ...]
    proxy_document: str
    drain_document: str = ""  # switched to on every proxy host before the remove-first phase
    records_hosts: tuple[str, ...] = ()
    records_document: str = ""  # the object records every minion keeps (see host.records)
    fence: int = 0  # see Settings
    env: tuple[tuple[str, str], ...] = ()  # every (name, value) of the pods created: masked out of errors


def render(plan: Plan, services: Sequence[Service] = (), addresses: Mapping[str, str] | None = None,
           settings: Settings = Settings()) -> Rendered:
    addresses = addresses or {}
    out: dict[str, dict[str, list]] = {}
    creates = by_node(plan.creates)
    removes = by_node(plan.removes)
    for node in plan.nodes:
        rs = removes.get(node, [])
        out[node] = {
            "remove_first": _batches([render_remove(r) for r in rs if r.first], settings.batches),
            "create": _batches([render_create(c, settings, services, addresses.get(node, "")) for c in creates.get(node, [])],
                               settings.batches),
            "remove": _batches([render_remove(r) for r in rs if not r.first], settings.batches),
        }
    drain_hosts = tuple(sorted(set(plan.proxy_nodes) | {r.node for r in plan.removes})) if plan.drain else ()
    for node in drain_hosts:
        out.setdefault(node, {"remove_first": [], "create": [], "remove": []})
    env = tuple(sorted({(e.name, e.value) for c in plan.creates for k in c.pod.spec.containers for e in k.env}))
    return Rendered(out, tuple(sorted(set(plan.proxy_nodes) | set(drain_hosts))), plan.proxy, plan.drain,
                    tuple(plan.records_nodes), plan.records, settings.fence, env)


def action_count(rendered: Rendered, host: str) -> int:
    """What progress counts for a host: its pod actions, and one for its proxy."""
    phases = rendered.hosts.get(host, {})
    return sum(len(batch) for phase in phases.values() for batch in phase) + (host in rendered.proxy_hosts)


class _Unsafe(str):
    pass


class _UnsafeDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """libyaml's emitter when PyYAML has it: the same text as the pure-Python one, which took 86 ms for the
    variables of 60 pods, in the critical path between the plan and ansible-playbook's start."""


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


def _converge(phases: Mapping[str, list], records: bool) -> list[dict[str, Any]]:
    """The remove-first and create phases as the batches of one ``cp_pods`` task, which removes before it
    creates: every remove-first pod goes in the first batch, so two phases cost one Ansible task. ``records``:
    the last batch writes the host's records copy too (``_records_early``)."""
    removing = [pod for batch in phases.get("remove_first", []) for pod in batch]
    creates = phases.get("create", [])
    if not removing and not creates and not records:
        return []
    items: list[dict[str, Any]] = [{"remove": json.dumps(removing if i == 0 else [], sort_keys=True),
                                    "create": json.dumps(batch, sort_keys=True), "records": False}
                                   for i, batch in enumerate(creates or [[]])]
    items[-1]["records"] = records
    return items


def _remove_phase(batches: list[list], records: bool) -> list[dict[str, Any]]:
    """The last ``cp_pods`` task's batches: pods to remove once no proxy sends them traffic, and on a host
    whose records copy is rewritten, that write in the same module run (the last batch, or one of its own
    when nothing is removed there). A task of its own cost every such run 0.6 s."""
    items: list[dict[str, Any]] = [{"remove": json.dumps(batch, sort_keys=True), "records": False}
                                   for batch in batches]
    if records:
        items = items or [{"remove": "[]", "records": False}]
        items[-1]["records"] = True
    return items


def _records_early(rendered: Rendered, phases: Mapping[str, list]) -> bool:
    """Whether a host writes its records copy in its converge run rather than in the last stage: when no proxy
    switches in this run (nothing for the records to wait on) and the host has no pod to remove after the
    switch. A cold apply then has no last stage at all, which cost a 12-minion one a worker, an SSH session
    and a module run per host (0.85-1.1 s)."""
    return not rendered.proxy_hosts and not phases.get("remove")


STAGES = ("drain", "converge", "proxy", "remove")  # the playbook's plays, in order (``cp_stages``)


def playbook_vars(rendered: Rendered) -> dict[str, Any]:
    """``cp_hosts``: per host, ``converge`` (see ``_converge``) and ``remove`` (see ``_remove_phase``) batches
    as JSON texts; ``cp_stages``: per stage (a play of the playbook), the hosts with work in it, so that a host
    with none is never touched by it (a task every host skips still costs a worker per host, 0.3 s a task on 12
    minions); ``cp_proxy``: the proxy document; ``cp_records_json``: the object records document; ``cp_fence``:
    the fencing token every module run checks.

    One opaque string per batch: Ansible neither templates it (``!unsafe``) nor re-types what is inside
    (ansible-core 2.19 turns an ``!unsafe '80'`` into the integer 80), and the module decodes it itself.
    The proxy document goes both as data for the role's template and as the exact text the minion keeps
    (its hash is how observation tells whether a minion's proxy is up to date).
    """
    hosts: dict[str, dict[str, Any]] = {}
    for host, phases in rendered.hosts.items():
        records = host in rendered.records_hosts
        early = records and _records_early(rendered, phases)
        hosts[host] = {"converge": _converge(phases, early),
                       "remove": _remove_phase(phases.get("remove", []), records and not early)}
    proxies = sorted(h for h in hosts if h in rendered.proxy_hosts)
    stages = {"drain": proxies if rendered.drain_document else [],
              "converge": sorted(h for h, work in hosts.items() if work["converge"]),
              "proxy": proxies,
              "remove": sorted(h for h, work in hosts.items() if work["remove"])}
    drain = rendered.drain_document or rendered.proxy_document
    return {"cp_hosts": hosts, "cp_stages": stages,
            "cp_proxy": json.loads(rendered.proxy_document or '{"services": []}'),
            "cp_proxy_json": rendered.proxy_document, "cp_records_json": rendered.records_document,
            "cp_drain": json.loads(drain or '{"services": []}'), "cp_drain_json": drain, "cp_fence": rendered.fence}
