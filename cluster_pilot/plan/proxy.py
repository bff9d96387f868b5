"""Services as the proxies on the minions see them: which backends each service port balances over. Pure.

Every service listens at its own address (from the service network, local on every minion) on every minion,
balancing over every ready pod its selector matches, on any minion; a v1beta1 service also at its port on
every minion's own addresses (the seed's behaviour), a NodePort or LoadBalancer one at its node ports. The
minions' DNS server answers the services' names from the same document. A backend is ``minion
address:published port`` of the targeted container port (a hostPort, or the dynamic port the planner
published it on). Discovery variables follow the Docker-links style of Kubernetes v0.4. The same function serves the planner (what the proxies must become), ``get services`` and the API.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from typing import Iterable, Mapping, Sequence

from cluster_pilot.host.observed import Observation
from cluster_pilot.host.podformat import Published, readiness_gated
from cluster_pilot.manifests.network import ServiceNetwork, dns_names
from cluster_pilot.model import CLUSTER_IP, Service, ServicePort, selector_matches

DYNAMIC_PORTS = range(30000, 32768)
# cp-health's own digest (the first 16 hex digits of roles/cp_proxy/files/cp-health.py's SHA-256), in the proxy
# document: a new cp-health changes it, so every minion converges its proxy role, and with it cp-health, once.
# tests/unit/test_health.py holds it to the file.
HEALTH_DIGEST = "9b58f7ea33171e0e"


@dataclass(frozen=True)
class Endpoint:
    """A pod able to serve, with its ports as published on its minion."""

    pod: str
    node: str
    address: str
    labels: Mapping[str, str]
    ports: tuple[Published, ...]
    agent: str = ""  # what the proxies send cp-health on the pod's minion to learn its readiness ("": not gated)


def endpoints(observation: Observation, addresses: Mapping[str, str],
              excluded: Iterable[tuple[str, str, str]] = ()) -> list[Endpoint]:
    """Pods able to serve (complete, on an answering minion), but for ``excluded`` (node, pod, spec hash)."""
    skip = set(excluded)
    return [Endpoint(p.name, p.node, addresses.get(p.node, p.node), p.labels, p.ports,
                     agent_key(p.name, p.spec_hash) if any(readiness_gated(c.labels) for c in p.containers) else "")
            for p in observation.pods
            if p.complete and observation.hosts[p.node].reachable and (p.node, p.name, p.spec_hash) not in skip]


def agent_key(pod: str, spec_hash: str) -> str:
    """What a proxy sends cp-health to ask about one pod version (cp-health reads it off the pod's labels)."""
    return f"{pod}@{spec_hash}"


@dataclass(frozen=True)
class Backend:
    pod: str
    node: str
    address: str
    port: int
    agent: str = ""  # see Endpoint


@dataclass(frozen=True)
class ProxiedService:
    name: str
    port: int
    protocol: str
    backends: tuple[Backend, ...]
    address: str = ""  # the service's own address ("" for a service recorded before addresses)
    host_port: int | None = None  # also on every minion's own address: a v1beta1 port, a nodePort
    namespace: str = "default"

    @property
    def binds(self) -> tuple[str, ...]:
        """HAProxy binds: the service address, and the port on every address of the minion. A port on every
        address also covers the service's own (the service network is local on every minion)."""
        if self.host_port == self.port or not self.address:
            return (f":{self.port}",)
        return (f"{self.address}:{self.port}",) + ((f":{self.host_port}",) if self.host_port else ())


def target(port: ServicePort, ports: Sequence[Published]) -> Published | None:
    """The published port a service port reaches on one pod: by number, by name, or (2014) the first port."""
    if not ports:
        return None
    if port.target_port is None:
        return ports[0]
    for p in ports:
        if p.protocol == port.protocol and (p.container_port == port.target_port or
                                            (isinstance(port.target_port, str) and p.name == port.target_port)):
            return p
    return None


def proxied(services: Iterable[Service], endpoints: Iterable[Endpoint]) -> tuple[ProxiedService, ...]:
    """Every service port with its backends, in a stable order (the proxy config must not churn)."""
    endpoints = sorted(endpoints, key=lambda e: (e.pod, e.node))
    out = []
    for svc in sorted(services, key=lambda s: s.meta.name):
        members = [e for e in endpoints if selector_matches(svc.selector, e.labels)]
        for sp in svc.ports:
            backends = []
            for e in members:
                hit = target(sp, e.ports)
                if hit is not None:
                    backends.append(Backend(e.pod, e.node, e.address, hit.host_port, e.agent))
            out.append(ProxiedService(svc.meta.name, sp.port, sp.protocol, tuple(backends), svc.cluster_ip or "",
                                      _host_port(svc, sp), svc.meta.namespace))
    return tuple(out)


def _host_port(svc: Service, port: ServicePort) -> int | None:
    if svc.meta.api_version == "v1beta1":
        return port.port
    return port.node_port if svc.type != CLUSTER_IP else None


def proxy_document(services: Sequence[ProxiedService], network: ServiceNetwork | None = None) -> str:
    """The canonical JSON a minion's proxy and DNS server are configured from; its hash says whether a minion
    is up to date. With ``network``: the AnyIP route and the DNS server's address and names."""
    doc: dict = {"health": HEALTH_DIGEST, "services": [
        {**asdict(s), "key": _key(s.name, s.port), "binds": list(s.binds),
         "backends": [{**asdict(b), "key": _key(b.pod, b.port)} for b in s.backends]}
        for s in services]}
    if network is not None:
        doc["network"] = str(network.network)
        doc["dns"] = {"server": network.dns, "hosts": dns_hosts(services)}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


_DNS_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?\Z")


def dns_hosts(services: Iterable[ProxiedService]) -> list[list[str]]:
    """``[address, name...]`` per service, as a hosts file writes them. A 2014 id that is no DNS label (it has
    "_" or ".") gets no name."""
    out: dict[str, list[str]] = {}
    for s in services:
        if s.address and _DNS_NAME.match(s.name):
            out.setdefault(s.address, [s.address, *dns_names(s.name, s.namespace)])
    return [out[a] for a in sorted(out, key=lambda a: tuple(int(x) for x in a.split(".")))]


def document_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _key(name: str, port: int) -> str:
    """HAProxy section and server names: ids of either API style fit [A-Za-z0-9_.-]; the port keeps them unique."""
    return f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}_{port}"


def env_name(service: str) -> str:
    """``redis-master`` -> ``REDIS_MASTER``; a 2014 id such as ``redisMaster`` -> ``REDISMASTER``."""
    name = re.sub(r"[^A-Z0-9_]", "_", service.upper())
    return name if not name[:1].isdigit() else "_" + name


def discovery_env(services: Iterable[Service], proxy_address: str) -> list[tuple[str, str]]:
    """The variables a container gets for every service that exists when it is created, as Kubernetes gave
    them from v0.4: at the service's own address (``proxy_address``, the container's minion, for a service
    recorded before addresses)."""
    env: list[tuple[str, str]] = []
    for svc in sorted(services, key=lambda s: s.meta.name):
        if not svc.ports:
            continue
        n = env_name(svc.meta.name)
        host = svc.cluster_ip or proxy_address
        first = svc.ports[0]
        env += [(f"{n}_SERVICE_HOST", host), (f"{n}_SERVICE_PORT", str(first.port)),
                (f"{n}_PORT", f"{first.protocol.lower()}://{host}:{first.port}")]
        for sp in svc.ports:
            proto = sp.protocol.lower()
            base = f"{n}_PORT_{sp.port}_{sp.protocol.upper()}"
            env += [(base, f"{proto}://{host}:{sp.port}"), (f"{base}_PROTO", proto),
                    (f"{base}_PORT", str(sp.port)), (f"{base}_ADDR", host)]
            if sp.name:
                env.append((f"{n}_SERVICE_PORT_{env_name(sp.name)}", str(sp.port)))
    return env


def free_port(used: set[int]) -> int:
    """The lowest free port of the dynamic range: deterministic, so the same plan publishes the same ports."""
    for port in DYNAMIC_PORTS:
        if port not in used:
            used.add(port)
            return port
    raise ValueError("no free port left in the dynamic range 30000-32767")
