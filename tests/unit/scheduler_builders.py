"""Terse builders of model objects for the scheduler and plan tests."""

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
