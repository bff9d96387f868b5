"""What a manifest may reach on the fleet's hosts: the fleet's policy, checked before anything touches a host.

A manifest author is not a host administrator. A ``hostDir``/``hostPath`` bind or a port the minions use
themselves (sshd, dockerd, the registry) would make them one, so both are refused unless the fleet says
otherwise. The policy is data the fleet owns (the inventory, see ``host.inventory.fleet_policy``); this
module only judges objects against it, purely, and reports problems at the line they were written like
every other check.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Iterable

from cluster_pilot import model
from cluster_pilot.manifests.checks import Placed, host_path_leaf, pod_spec_of
from cluster_pilot.manifests.network import ServiceNetwork
from cluster_pilot.manifests.problem import ERROR, WARNING, Problem, show

HOST_PATHS_VAR = "cp_allowed_host_paths"
RESERVED_PORTS_VAR = "cp_reserved_ports"
SSH_PORT = 22
DOCKERD_PORTS = (2375, 2376)
REGISTRY_PORT = 5000  # the sandbox registry's, and the usual registry port
# Binding any of these (or a directory above them) hands the pod the host: refused even when allowed.
DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")
# cluster-pilot's own places on a minion (pods' volumes, the anchors of their host paths, records, the lock, the
# proxy): a pod writing there could reach another pod's volumes or the fleet's state.
OWN_DIRS = ("/var/lib/cluster-pilot", "/run/cluster-pilot", "/var/run/cluster-pilot", "/etc/cluster-pilot")


@dataclass(frozen=True)
class Policy:
    """``allowed_host_paths`` are path prefixes; ``None`` means no inventory was read, so host paths can only
    be warned about (``validate``). ``reserved_ports`` are refused as service ports and hostPorts; a service's
    own address must be one ``service_network`` may give."""

    allowed_host_paths: tuple[str, ...] | None = ()
    reserved_ports: frozenset[int] = frozenset((SSH_PORT, *DOCKERD_PORTS, REGISTRY_PORT))
    service_network: ServiceNetwork = ServiceNetwork()


NO_INVENTORY = Policy(allowed_host_paths=None)


def fleet(allowed_host_paths: Iterable[str] = (), reserved_ports: Iterable[int] = (),
          ssh_ports: Iterable[int] = (SSH_PORT,), network: ServiceNetwork = ServiceNetwork()) -> Policy:
    """A fleet's policy: its allowed prefixes, normalised, every port its minions keep for themselves, and its
    service network."""
    prefixes = tuple(sorted({p for p in (normal_path(a) for a in allowed_host_paths) if p is not None}))
    ports = frozenset((*ssh_ports, *DOCKERD_PORTS, REGISTRY_PORT, *reserved_ports))
    return Policy(prefixes, ports, network)


def normal_path(path: str) -> str | None:
    """``path`` with ``//`` and ``.`` folded; ``None`` when it is not absolute or goes up (``..``), since
    no prefix can vouch for where that lands, or holds ``:``. Symbolic links are judged on the minion, where
    they are (``cp_pods`` opens the path without following any and binds what it opened)."""
    if not path.startswith("/") or ".." in path.split("/") or "\0" in path or ":" in path:
        return None
    return "/" + posixpath.normpath(path).lstrip("/")


def host_path_refusal(path: str, policy: Policy) -> tuple[str, str] | None:
    """Why ``path`` may not be bound on this fleet, and how grave: ``(severity, message)``, or ``None``."""
    normal = normal_path(path)
    if normal is None:
        return ERROR, f"host path {show(path)} is not allowed: it must be absolute, without \"..\" or \":\""
    if normal == "/" or any(_under(socket, normal) for socket in DOCKER_SOCKETS):
        return ERROR, f"host path {normal} is never allowed: it would hand the pod the minion (the root or dockerd)"
    if any(_under(normal, own) or _under(own, normal) for own in OWN_DIRS):
        return ERROR, f"host path {normal} is never allowed: it holds cluster-pilot's own state on the minion"
    if policy.allowed_host_paths is None:
        return WARNING, (f"host path {normal} needs the fleet's permission ({HOST_PATHS_VAR} in the inventory); "
                         "plan and apply refuse it otherwise")
    if not any(_under(normal, prefix) for prefix in policy.allowed_host_paths):
        return ERROR, f"host path {normal} is not allowed on this fleet ({HOST_PATHS_VAR})"
    return None


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def check(placed: list[Placed], policy: Policy) -> tuple[list[Problem], list[Problem]]:
    """Errors and warnings of every object of a run against the fleet's policy."""
    errors: list[Problem] = []
    warnings: list[Problem] = []
    for p in placed:
        for problem in _object_problems(p, policy):
            (warnings if problem.severity == WARNING else errors).append(problem)
    return errors, warnings


def _object_problems(p: Placed, policy: Policy) -> Iterable[Problem]:
    obj, layout = p.obj, p.layout
    spec = pod_spec_of(obj)
    if spec is not None:
        leaf = host_path_leaf(obj.meta.api_version)
        for i, volume in enumerate(spec.volumes):
            refusal = host_path_refusal(volume.host_path, policy) if volume.kind == "hostDir" else None
            if refusal is not None:
                yield p.problem(f"{layout.volumes}/{i}{leaf}", refusal[1], refusal[0])
        for i, container in enumerate(spec.containers):
            for j, port in enumerate(container.ports):
                if port.host_port in policy.reserved_ports:
                    yield p.problem(f"{layout.containers}/{i}/ports/{j}/hostPort", _reserved(port.host_port))
    if isinstance(obj, model.Service):
        for i, port in enumerate(obj.ports):
            if port.port in policy.reserved_ports:
                yield p.problem(layout.service_ports[i], _reserved(port.port))
        refusal = policy.service_network.refusal(obj.cluster_ip) if obj.cluster_ip else None
        if refusal is not None:
            yield p.problem(layout.cluster_ip, refusal)


def _reserved(port: int) -> str:
    return (f"port {port} is reserved on this fleet's minions (SSH, dockerd, the registry or "
            f"{RESERVED_PORTS_VAR}): choose another")
