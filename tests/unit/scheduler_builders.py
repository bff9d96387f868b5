"""Terse builders of model objects for the scheduler and plan tests, and the reference the index is held to."""

from __future__ import annotations

from cluster_pilot.model import (
    TCP,
    Container,
    Meta,
    Node,
    Pod,
    PodSpec,
    PodTemplate,
    Port,
    ReplicationController,
    Resources,
    Service,
    ServicePort,
)
from cluster_pilot.quantity import cpu_millis, memory_bytes
from cluster_pilot.scheduler import RunningPod
from cluster_pilot.scheduler.fleet import Fleet, Shape, SpreadKey, labels_match

PortSpec = int | tuple[int, str]


def node(name: str, cpu: str = "4", memory: str = "8Gi", pods: int = 110, ready: bool = True, **labels: str) -> Node:
    return Node(name, f"{name}.example", Resources(cpu_millis(cpu), memory_bytes(memory), pods), labels, ready)


def spec(
    cpu: str = "0",
    memory: str = "0",
    ports: tuple[PortSpec, ...] = (),
    selector: dict[str, str] | None = None,
    host: str | None = None,
) -> PodSpec:
    port_list = tuple(
        Port(80, host_port=p, protocol=TCP) if isinstance(p, int) else Port(80, host_port=p[0], protocol=p[1])
        for p in ports
    )
    container = Container("c", "nginx", ports=port_list, cpu_millis=cpu_millis(cpu), memory_bytes=memory_bytes(memory))
    return PodSpec(containers=(container,), node_selector=selector or {}, host=host)


def pod(name: str, labels: dict[str, str] | None = None, **kw) -> Pod:
    return Pod(Meta(name, labels or {}), spec(**kw))


def rc(name: str, replicas: int, labels: dict[str, str] | None = None, **kw) -> ReplicationController:
    template_labels = {"app": name, **(labels or {})}
    return ReplicationController(Meta(name), replicas, {"app": name}, PodTemplate(template_labels, spec(**kw)))


def service(name: str, **selector: str) -> Service:
    return Service(Meta(name), (ServicePort(80),), selector)


def running(
    name: str,
    node: str,
    controller: str | None = None,
    cpu: str = "0",
    memory: str = "0",
    ports: tuple[tuple[int, str], ...] = (),
    ready: bool = True,
    labels: dict[str, str] | None = None,
) -> RunningPod:
    if labels is None:
        labels = {"app": controller} if controller else {}
    return RunningPod(name, node, labels, controller, cpu_millis(cpu), memory_bytes(memory), ports, ready, "h")


def place_by_scanning(fleet: Fleet, shape: Shape, keys: tuple[SpreadKey, ...], count: int) -> list[int]:
    """The ranking as documented, by looking at every node for every pod: the reference for the index."""
    if shape.duplicate_ports:
        return []
    placed: list[int] = []
    for _ in range(count):
        best = None
        for i, node in enumerate(fleet.nodes):
            if not node.ready or shape.host not in (None, node.name) or not labels_match(shape.selector, node.labels):
                continue
            if not fleet.fits(i, shape):
                continue
            spread = sum(fleet.key_nodes.get(k, {}).get(i, 0) for k in keys)
            zone_spread = sum(fleet.key_zones.get(k, {}).get(fleet.zone[i], 0) for k in keys)
            load = fleet.used_cpu[i] * fleet.inv_cpu[i] + fleet.used_mem[i] * fleet.inv_mem[i]
            after = load + shape.cpu * fleet.inv_cpu[i] + shape.memory * fleet.inv_mem[i]
            key = (spread, zone_spread, after, load, fleet.used_pods[i] * fleet.inv_pods[i], i)
            best = key if best is None or key < best else best
        if best is None:
            break
        i = best[-1]
        fleet.used_cpu[i] += shape.cpu
        fleet.used_mem[i] += shape.memory
        fleet.used_pods[i] += 1
        fleet.ports[i].update(shape.ports)
        fleet.count(i, keys)
        placed.append(i)
    if placed:
        fleet.version += 1
    return placed
