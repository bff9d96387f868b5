"""Every service's own address and node ports, allocated once and kept. Pure.

A service keeps what the fleet's records hold for it (they travel with the service on every minion, so every
runner and every master sees the same); a service asking for an address or a node port gets it unless
another live service holds it; the rest are chosen. A choice starts at a point derived from the service's
name and takes the first free value after it, so two runners that see the same records choose the same
address, and a service deleted and made again usually gets its old one back. A deleted service's record is a
tombstone, which holds nothing: its address and ports are free again.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Iterable, Sequence

from cluster_pilot.errors import UserError
from cluster_pilot.manifests.network import NODE_PORTS, ServiceNetwork
from cluster_pilot.manifests.normalise import default_layout
from cluster_pilot.manifests.problem import Problem
from cluster_pilot.model import CLUSTER_IP, Object, Service


class Taken:
    """What the live services hold: addresses and node ports, by owner name."""

    def __init__(self, held: Iterable[Service]) -> None:
        self.addresses: dict[str, str] = {}
        self.ports: dict[int, str] = {}
        for svc in held:
            self.hold(svc)

    def hold(self, svc: Service) -> None:
        if svc.cluster_ip:
            self.addresses.setdefault(svc.cluster_ip, svc.meta.name)
        for port, _ in svc.host_ports:
            self.ports.setdefault(port, svc.meta.name)

    def address_free(self, address: str, name: str) -> bool:
        return self.addresses.get(address, name) == name

    def port_free(self, port: int, name: str) -> bool:
        return self.ports.get(port, name) == name


def allocate(objects: Sequence[Object], recorded: Sequence[Service], network: ServiceNetwork,
             busy_ports: Iterable[int] = ()) -> tuple[list[Object], list[tuple[str, Problem]]]:
    """``objects`` with every service's address and node ports filled in, and the problems (by service name)
    of those that ask for what another service holds or the network cannot give. ``recorded``: the fleet's
    live services; ``busy_ports``: host ports pods already publish (a new node port avoids them)."""
    names = {o.meta.name for o in objects if isinstance(o, Service)}
    taken = Taken(s for s in recorded if s.meta.name not in names)
    before = {s.meta.name: s for s in recorded}
    busy = set(busy_ports)
    problems: list[tuple[str, Problem]] = []
    inputs = [o for o in objects if isinstance(o, Service)]
    for svc in inputs:  # what is asked for first: a choice never takes an address someone asks for
        problems += [(svc.meta.name, p) for p in _asked(svc, taken, network)]
        taken.hold(svc)
    done: dict[str, Service] = {}
    for svc in inputs:
        old = before.get(svc.meta.name)
        address = svc.cluster_ip or _kept_address(old, taken, network, svc.meta.name) or \
            _choose_address(svc, taken, network)
        svc = replace(svc, cluster_ip=address)
        svc = _with_node_ports(svc, old, taken, busy)
        taken.hold(svc)
        done[svc.meta.name] = svc
    out = [done.get(o.meta.name, o) if isinstance(o, Service) else o for o in objects]
    return out, problems


def _asked(svc: Service, taken: Taken, network: ServiceNetwork) -> list[Problem]:
    layout = default_layout(svc)
    out = []
    if svc.cluster_ip:
        why = network.refusal(svc.cluster_ip)
        if why is None and not taken.address_free(svc.cluster_ip, svc.meta.name):
            why = f"address {svc.cluster_ip} is taken by service {taken.addresses[svc.cluster_ip]!r}"
        if why is not None:
            out.append(_problem(svc, layout.cluster_ip, why))
    for i, p in enumerate(svc.ports):
        if p.node_port and svc.type != CLUSTER_IP and not taken.port_free(p.node_port, svc.meta.name):
            at = layout.node_ports[i] if layout.node_ports else ""
            out.append(_problem(svc, at, f"node port {p.node_port} is taken by service {taken.ports[p.node_port]!r}"))
    return out


def _problem(svc: Service, pointer: str, message: str) -> Problem:
    source = svc.meta.source
    if source is None:
        return Problem(f"Service {svc.meta.name}", 0, 0, pointer, message)
    return Problem(source.file, source.line, source.column, source.pointer + pointer, message)


def _kept_address(old: Service | None, taken: Taken, network: ServiceNetwork, name: str) -> str | None:
    if old is None or not old.cluster_ip or network.refusal(old.cluster_ip) or not taken.address_free(old.cluster_ip, name):
        return None
    return old.cluster_ip


def _start(text: str, size: int) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16) % size


def _choose_address(svc: Service, taken: Taken, network: ServiceNetwork) -> str:
    size = network.size
    start = _start(f"{svc.meta.namespace}/{svc.meta.name}", size)
    for step in range(size):
        candidate = network.address((start + step) % size)
        if network.refusal(candidate) is None and candidate not in taken.addresses:
            return candidate
    raise UserError(f"the service network {network.network} is full: no address left for {svc.meta.name!r}")


def _with_node_ports(svc: Service, old: Service | None, taken: Taken, busy: set[int]) -> Service:
    """NodePort and LoadBalancer services: a node port for every port that has none (the recorded one, else a
    free one)."""
    if svc.type == CLUSTER_IP or svc.meta.api_version == "v1beta1":
        return svc
    kept = {(p.port, p.protocol): p.node_port for p in old.ports} if old is not None else {}
    ports = []
    for p in svc.ports:
        port = p.node_port or kept.get((p.port, p.protocol))
        if not port or not taken.port_free(port, svc.meta.name) or port in _held_by_self(ports):
            port = _choose_port(f"{svc.meta.namespace}/{svc.meta.name}:{p.port}/{p.protocol}", svc.meta.name,
                                taken, busy | _held_by_self(ports))
        ports.append(replace(p, node_port=port))
    return replace(svc, ports=tuple(ports))


def _held_by_self(ports: list) -> set[int]:
    return {p.node_port for p in ports if p.node_port}


def _choose_port(key: str, name: str, taken: Taken, avoid: set[int]) -> int:
    size = len(NODE_PORTS)
    start = _start(key, size)
    for step in range(size):
        candidate = NODE_PORTS[(start + step) % size]
        if candidate not in taken.ports and candidate not in avoid:
            return candidate
    raise UserError(f"no node port left in {NODE_PORTS.start}-{NODE_PORTS.stop - 1} for {name!r}")
