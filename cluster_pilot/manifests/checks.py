"""Rules a JSON Schema cannot state: uniqueness inside a pod, where a container may mount a volume, a
controller's selector against its template, and the rules that hold across every object of one run (a name
defined twice, service ports that clash, services whose selector or target port finds nothing).

Pure functions of the model. What they need to know about the written form is only where things were
written (a ``Layout`` of JSON pointers), so their messages point at the right line of either API version.
"""

from __future__ import annotations

import posixpath
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Iterable

from cluster_pilot import model
from cluster_pilot.manifests.problem import ERROR, WARNING, Finding, Problem, show

# The kernel's own filesystems in a container: a volume over them hides or replaces what the kernel shows the
# container about itself (its processes, cgroups, sysctls), which Docker sets up and the pod must not.
KERNEL_PATHS = ("/proc", "/sys")


@dataclass(frozen=True)
class Layout:
    """Where, relative to an object's root, the parts these checks talk about were written."""

    name: str = ""
    containers: str = ""  # the containers list of the pod, or of the controller's template
    selector: str = ""
    template_labels: str = ""
    service_ports: tuple[str, ...] = ()  # per ServicePort: its port number
    target_ports: tuple[str, ...] = ()  # per ServicePort: its target port (or its port when none is written)
    cluster_ip: str = ""  # a service's own address (v1 clusterIP, v1beta1 portalIP)
    node_ports: tuple[str, ...] = ()  # per ServicePort: its nodePort (v1)

    @property
    def volumes(self) -> str:
        return self.containers.rsplit("/", 1)[0] + "/volumes"


def pod_spec_of(obj: model.Object) -> model.PodSpec | None:
    if isinstance(obj, model.Pod):
        return obj.spec
    if isinstance(obj, model.ReplicationController):
        return obj.template.spec
    return None


def pod_labels_of(obj: model.Object) -> dict[str, str] | None:
    """The labels of the pods an object stands for: its own for a pod, its template's for a controller."""
    if isinstance(obj, model.Pod):
        return dict(obj.meta.labels)
    if isinstance(obj, model.ReplicationController):
        return dict(obj.template.labels)
    return None


def describe(obj: model.Object) -> str:
    return f"{obj.kind} \"{obj.meta.name}\""


def show_labels(labels: dict) -> str:
    return "{" + ", ".join(f"{k}={v}" for k, v in labels.items()) + "}" if labels else "{}"


# --- one object ---------------------------------------------------------------------------------------------

def check_object(obj: model.Object, layout: Layout) -> list[Finding]:
    findings: list[Finding] = []
    spec = pod_spec_of(obj)
    if spec is not None:
        findings += check_pod_spec(spec, layout, obj.meta.api_version)
    if isinstance(obj, model.ReplicationController):
        findings += _check_controller(obj, layout)
    if isinstance(obj, model.Service):
        findings += _check_service(obj, layout)
    return findings


def check_pod_spec(spec: model.PodSpec, layout: Layout, api_version: str = "v1") -> list[Finding]:
    at = layout.containers
    findings: list[Finding] = []
    names: dict[str, int] = {}
    host_ports: dict[tuple[int, str], str] = {}
    port_names: dict[str, str] = {}
    volumes: dict[str, int] = {}
    for i, volume in enumerate(spec.volumes):
        if volume.name in volumes:
            findings.append(Finding(f"{layout.volumes}/{i}/name",
                                    f"volume name \"{volume.name}\" is also used by volume {volumes[volume.name]}"))
        volumes.setdefault(volume.name, i)
    for i, container in enumerate(spec.containers):
        if container.name in names:
            findings.append(Finding(f"{at}/{i}/name", f"container name \"{container.name}\" is also used by container "
                                    f"{names[container.name]}; names must be unique in a pod"))
        names.setdefault(container.name, i)
        for j, port in enumerate(container.ports):
            if port.host_port:
                key = (port.host_port, port.protocol)
                if key in host_ports:
                    findings.append(Finding(f"{at}/{i}/ports/{j}/hostPort",
                                            f"hostPort {port.host_port}/{port.protocol} is also used by container "
                                            f"\"{host_ports[key]}\"; a pod binds a host port once"))
                host_ports.setdefault(key, container.name)
            if port.name:
                if port.name in port_names:
                    findings.append(Finding(f"{at}/{i}/ports/{j}/name",
                                            f"port name \"{port.name}\" is also used by container "
                                            f"\"{port_names[port.name]}\"; port names must be unique in a pod"))
                port_names.setdefault(port.name, container.name)
        mount_paths: dict[str, int] = {}
        for k, mount in enumerate(container.volume_mounts):
            if mount.name not in volumes:
                findings.append(Finding(f"{at}/{i}/volumeMounts/{k}/name",
                                        f"no volume named \"{mount.name}\" in this pod: define it under volumes"))
            why = path_refusal(mount.mount_path)
            if why is None and mount.mount_path in mount_paths:
                why = (f"{show(mount.mount_path)} is also the mountPath of volumeMounts/{mount_paths[mount.mount_path]}"
                       " of this container: a container mounts one volume at a path")
            if why is not None:
                findings.append(Finding(f"{at}/{i}/volumeMounts/{k}/mountPath", why))
            mount_paths.setdefault(mount.mount_path, k)
    for i, volume in enumerate(spec.volumes):
        if volume.kind == "hostDir" and (why := path_refusal(volume.host_path, in_container=False)) is not None:
            findings.append(Finding(f"{layout.volumes}/{i}{host_path_leaf(api_version)}", why))
    return findings


def host_path_leaf(api_version: str) -> str:
    """Where, below a volume, its host path is written."""
    return "/source/hostDir/path" if api_version == "v1beta1" else "/hostPath/path"


def path_refusal(path: str, in_container: bool = True) -> str | None:
    """Why ``path`` cannot be where a volume is mounted in a container (or, with ``in_container`` false, the
    host directory a hostDir/hostPath volume binds), or None. The one rule for every spelling of a mount.

    The path reaches the host as text Docker and the kernel read, so it must mean one thing there: absolute
    and in normal form (no ``.``, ``..``, ``//`` or trailing ``/``: what is checked is what is mounted, and a
    mount path cannot climb out of where it seems to be), no ``:`` (Docker's bind string ``SRC:DST:MODE`` would
    read the rest as another path or as options such as ``rshared``) and no control character (a newline
    ends a line of Ansible's or Docker's output, NUL ends the path for the kernel). A container's mount is
    also not ``/`` (it would replace the whole image) nor on the kernel's filesystems (``KERNEL_PATHS``).
    Whether a host path is allowed at all is the fleet's policy (``manifests.policy``)."""
    if not path.startswith("/"):
        return f"{show(path)} is not an absolute path: write it from \"/\" (e.g. \"/data\")"
    control = next((c for c in path if unicodedata.category(c) == "Cc"), None)
    if control is not None:
        return f"{show(path)} holds the control character U+{ord(control):04X}: a path is one line of printable text"
    if ":" in path:
        return (f"{show(path)} holds \":\", which Docker would read as the end of the path and the start of the "
                "bind's options or another path" + (": use readOnly for a read-only mount" if in_container else ""))
    segments = path.split("/")[1:]
    if path != "/" and ("" in segments or "." in segments or ".." in segments):
        if ".." in segments:
            return f"{show(path)} climbs with \"..\": write the path it stands for"
        normal = "/" + posixpath.normpath(path).lstrip("/")
        return f"{show(path)} is not in normal form: write {show(normal)}"
    if in_container and path == "/":
        return "\"/\" cannot be a mountPath: a volume there would replace the container's whole filesystem"
    if in_container:
        kernel = next((k for k in KERNEL_PATHS if path == k or path.startswith(k + "/")), None)
        if kernel is not None:
            return (f"{show(path)} is on {kernel}, the kernel's own filesystem in the container: a volume "
                    "cannot be mounted there")
    return None


def _check_controller(rc: model.ReplicationController, layout: Layout) -> list[Finding]:
    selector, labels = dict(rc.selector), dict(rc.template.labels)
    if not labels:
        return [Finding(layout.template_labels, "the template has no labels, so the controller could never find "
                        "the pods it creates: give it labels and a selector that matches them")]
    if not selector:
        return [Finding(layout.selector, "the selector is empty: a controller counts the pods its selector matches")]
    if not model.selector_matches(selector, labels):
        return [Finding(layout.selector, f"the selector {show_labels(selector)} does not match the template's labels "
                        f"{show_labels(labels)}: the controller would never count the pods it creates")]
    return []


def _check_service(service: model.Service, layout: Layout) -> list[Finding]:
    findings: list[Finding] = []
    seen: dict[tuple[int, str], int] = {}
    names: set[str] = set()
    several = len(service.ports) > 1
    for i, port in enumerate(service.ports):
        key = (port.port, port.protocol)
        if key in seen:
            findings.append(Finding(layout.service_ports[i], f"port {port.port}/{port.protocol} is listed twice in "
                                    f"this service (also at {layout.service_ports[seen[key]]})"))
        seen.setdefault(key, i)
        if several and not port.name:
            findings.append(Finding(layout.service_ports[i].rsplit("/", 1)[0] + "/name",
                                    "a service with several ports must name each of them"))
        elif port.name:
            if port.name in names:
                findings.append(Finding(layout.service_ports[i].rsplit("/", 1)[0] + "/name",
                                        f"port name \"{port.name}\" is used twice in this service"))
            names.add(port.name)
    return findings


# --- every object of a run ----------------------------------------------------------------------------------

class Placed:
    """An object of the run, with a way to turn pointers relative to it into problems at the right line."""

    __slots__ = ("obj", "layout", "_place")

    def __init__(self, obj: model.Object, layout: Layout,
                 place: Callable[[str, bool], tuple[str, int, int]]) -> None:
        self.obj = obj
        self.layout = layout
        self._place = place  # relative pointer, at_key -> (file, line, column)

    def problem(self, pointer: str, message: str, severity: str = ERROR, at_key: bool = False) -> Problem:
        file, line, column = self._place(pointer, at_key)
        return Problem(file, line, column, self.pointer(pointer), message, severity)

    def pointer(self, pointer: str) -> str:
        source = self.obj.meta.source
        return (source.pointer if source else "") + pointer

    def where(self, pointer: str = "") -> str:
        file, line, column = self._place(pointer, False)
        return f"{file}:{line}:{column}" if line else file


def check_set(placed: list[Placed]) -> tuple[list[Problem], list[Problem]]:
    """Errors and warnings that only show when all the objects of one run are looked at together."""
    errors: list[Problem] = []
    warnings: list[Problem] = []
    errors += _duplicates(placed)
    errors += _port_clashes(placed)
    errors += _addresses(placed)
    e, w = _selections(placed)
    return errors + e, warnings + w


def _duplicates(placed: list[Placed]) -> Iterable[Problem]:
    first: dict[tuple[str, str, str], Placed] = {}
    for p in placed:
        meta = p.obj.meta
        key = (p.obj.kind, meta.namespace, meta.name)
        if key in first:
            other = first[key]
            yield p.problem(p.layout.name, f"{describe(p.obj)} is defined twice: here and at "
                            f"{other.where(other.layout.name)}")
        else:
            first[key] = p


def _port_clashes(placed: list[Placed]) -> Iterable[Problem]:
    """Ports on every minion's own address (a v1beta1 service's port, a nodePort, a pod's hostPort) are bound on
    every address of a minion, so no other service may listen on them, at its own address or at theirs. Two
    services on one port at their own addresses never clash."""
    host_ports: dict[tuple[int, str], list[tuple[Placed, str]]] = defaultdict(list)
    for p in placed:
        spec = pod_spec_of(p.obj)
        if spec is None:
            continue
        for i, container in enumerate(spec.containers):
            for j, port in enumerate(container.ports):
                if port.host_port:
                    at = f"{p.layout.containers}/{i}/ports/{j}/hostPort"
                    host_ports[(port.host_port, port.protocol)].append((p, at))
    wide: dict[tuple[int, str], tuple[Placed, str]] = {}  # the first service taking the port on every address
    own: dict[tuple[int, str], list[tuple[Placed, str]]] = defaultdict(list)  # services at their own address
    for p in placed:
        if isinstance(p.obj, model.Service):
            for key, at, host_wide in _service_binds(p):
                if not host_wide:
                    own[key].append((p, at))
    for p in placed:
        if not isinstance(p.obj, model.Service):
            continue
        for key, at, host_wide in _service_binds(p):
            users = host_ports.get(key)
            others = [(o, o_at) for o, o_at in own.get(key, ()) if o is not p]
            if host_wide and key in wide:
                other, other_at = wide[key]
                yield p.problem(at, f"port {key[0]}/{key[1]} is also the port of {describe(other.obj)} "
                                f"({other.where(other_at)}): services reserve their port on every minion")
                continue
            if users:
                user, user_at = users[0]
                more = f" and {len(users) - 1} more" if len(users) > 1 else ""
                yield p.problem(at, f"port {key[0]}/{key[1]} is also a hostPort of {describe(user.obj)} "
                                f"({user.where(user_at)}){more}: a port on every minion is taken on all its addresses")
            elif host_wide and others:
                other, other_at = others[0]
                yield p.problem(at, f"port {key[0]}/{key[1]} is also the port of {describe(other.obj)} "
                                f"({other.where(other_at)}) at its own address: a port on every minion's address "
                                "(a v1beta1 service's port or a nodePort) is taken on all of a minion's addresses")
            if host_wide:
                wide.setdefault(key, (p, at))


def _service_binds(p: Placed) -> Iterable[tuple[tuple[int, str], str, bool]]:
    """(port, protocol), where it is written, and whether it is taken on every minion's address."""
    svc = p.obj
    for i, port in enumerate(svc.ports):
        yield (port.port, port.protocol), p.layout.service_ports[i], svc.meta.api_version == "v1beta1"
        if port.node_port and svc.type != model.CLUSTER_IP:
            yield (port.node_port, port.protocol), p.layout.node_ports[i], True


def _addresses(placed: list[Placed]) -> Iterable[Problem]:
    """Two services asking for one address."""
    first: dict[str, Placed] = {}
    for p in placed:
        if isinstance(p.obj, model.Service) and p.obj.cluster_ip:
            other = first.setdefault(p.obj.cluster_ip, p)
            if other is not p:
                yield p.problem(p.layout.cluster_ip, f"address {p.obj.cluster_ip} is also asked for by "
                                f"{describe(other.obj)} ({other.where(other.layout.cluster_ip)})")


def _selections(placed: list[Placed]) -> tuple[list[Problem], list[Problem]]:
    """Services whose selector matches nothing, and target port names the selected pods do not define."""
    candidates = [p for p in placed if pod_labels_of(p.obj) is not None]
    index: dict[tuple[str, str], set[int]] = defaultdict(set)
    for n, p in enumerate(candidates):
        for item in pod_labels_of(p.obj).items():
            index[item].add(n)
    errors: list[Problem] = []
    warnings: list[Problem] = []
    for p in placed:
        service = p.obj
        if not isinstance(service, model.Service):
            continue
        selector = dict(service.selector)
        if not selector:
            warnings.append(p.problem(p.layout.selector or p.layout.name,
                                      f"{describe(service)} has no selector, so it sends traffic to no pod", WARNING))
            continue
        sets = sorted((index.get(item, set()) for item in selector.items()), key=len)
        chosen = [candidates[n] for n in sorted(sets[0].intersection(*sets[1:]))]
        if not chosen:
            warnings.append(p.problem(p.layout.selector, f"the selector {show_labels(selector)} matches no pod or "
                                      "controller template in these inputs", WARNING))
            continue
        for i, port in enumerate(service.ports):
            at = p.layout.target_ports[i]
            if isinstance(port.target_port, str):
                e, w = _named_target(p, at, port.target_port, chosen)
                errors += e
                warnings += w
            elif port.target_port is None:
                for c in chosen:
                    spec = pod_spec_of(c.obj)
                    if not spec.containers[0].ports:
                        warnings.append(p.problem(at, f"without containerPort the service targets the first port of "
                                                  f"the first container, and {describe(c.obj)} ({c.where()}) has none",
                                                  WARNING))
    return errors, warnings


def _named_target(p: Placed, at: str, name: str, chosen: list[Placed]) -> tuple[list[Problem], list[Problem]]:
    lacking = [c for c in chosen
               if not any(port.name == name for ct in pod_spec_of(c.obj).containers for port in ct.ports)]
    if len(lacking) == len(chosen):
        names = ", ".join(describe(c.obj) for c in chosen[:3]) + (" and others" if len(chosen) > 3 else "")
        return [p.problem(at, f"no port named \"{name}\" in the pods this service selects ({names})")], []
    return [], [p.problem(at, f"{describe(c.obj)} ({c.where()}) is selected but has no port named \"{name}\"", WARNING)
                for c in lacking]
