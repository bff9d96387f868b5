"""Where a pod may go: one function per rule, in the manner of Kubernetes' ``predicates.go``.

Each predicate looks at one node (by its position ``i`` in the fleet) for one pod shape and returns None
when the node passes, or the reasons it does not, worded as ``explain`` counts them ("insufficient cpu").
``PREDICATES`` is the whole rule: the reference scan, ``explain`` and the pinned path ask these functions
as they are; the index (``placement``) answers the node filters with its cells, checks each ``Resource``
from its declaration, and calls every other predicate as it is. Editing a predicate here changes where
pods go and what ``explain`` says; the property tests hold the index to the reference scan.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter
from typing import Callable

from cluster_pilot.model import UDP
from cluster_pilot.scheduler.fleet import Fleet, Shape

Reasons = tuple[str, ...]  # several only where one rule finds several faults (each hostPort in use)
Predicate = Callable[[Fleet, int, Shape], Reasons | None]


def node_ready(fleet: Fleet, i: int, shape: Shape) -> Reasons | None:
    """A node that is not ready takes nothing new (its pods are replaced elsewhere)."""
    return None if fleet.ready[i] else ("not ready",)


def pinned_host(fleet: Fleet, i: int, shape: Shape) -> Reasons | None:
    """v1beta1 ``host``: a pinned pod goes to that minion or nowhere."""
    return None if shape.host is None or shape.host == fleet.names[i] else (f"not the pinned host {shape.host}",)


def node_selector(fleet: Fleet, i: int, shape: Shape) -> Reasons | None:
    """Every pair of the nodeSelector is a label of the node (an empty one matches every node).

    The index answers this one by cells keyed on label values (``Fleet.cells_for``): a change here wants
    the same change there.
    """
    labels = fleet.nodes[i].labels
    if all(labels.get(k) == v for k, v in shape.selector):
        return None
    return ("not matching nodeSelector " + ",".join(f"{k}={v}" for k, v in shape.selector),)


@dataclass(frozen=True)
class Resource:
    """A countable resource of a node (Kubernetes' PodFitsResources, one dimension each).

    The pod fits while its ``need`` is at most what the node has free: ``capacity - used``, counting every
    pod the node holds. Declared as data so that the index can check it in its hot loop and prune on it (a
    cell whose most free room is less than the need is passed over); ``hold`` books the need.
    """

    reason: str
    need: Callable[[Shape], int]
    used: Callable[[Fleet], list[int]]
    capacity: Callable[[Fleet], list[int]]

    def __call__(self, fleet: Fleet, i: int, shape: Shape) -> Reasons | None:
        return None if self.need(shape) <= self.capacity(fleet)[i] - self.used(fleet)[i] else (self.reason,)


enough_cpu = Resource("insufficient cpu", attrgetter("cpu"), attrgetter("used_cpu"), attrgetter("cap_cpu"))
enough_memory = Resource("insufficient memory", attrgetter("memory"), attrgetter("used_mem"), attrgetter("cap_mem"))
free_pod_slot = Resource("too many pods", lambda shape: 1, attrgetter("used_pods"), attrgetter("cap_pods"))


def free_host_ports(fleet: Fleet, i: int, shape: Shape) -> Reasons | None:
    """PodFitsHostPorts: no pod on the node holds one of the pod's hostPorts (TCP and UDP apart)."""
    taken = shape.ports & fleet.ports[i]
    return tuple(f"hostPort {port_text(p)} in use" for p in sorted(taken)) if taken else None


NODE_FILTERS: tuple[Predicate, ...] = (node_ready, pinned_host, node_selector)
"""What the node is: it never changes during a run, and a node failing one is reported for the first alone."""
FITS: tuple[Predicate, ...] = (enough_cpu, enough_memory, free_pod_slot, free_host_ports)
"""What the node holds: it shrinks as pods land, and a node is reported for every one it fails."""
PREDICATES: tuple[Predicate, ...] = NODE_FILTERS + FITS
STAY_FILTERS: tuple[Predicate, ...] = (pinned_host, node_selector)
"""What a running pod must still pass to stay on its node (the room it holds already counts as its own)."""
RESOURCES: tuple[Resource, ...] = tuple(p for p in FITS if isinstance(p, Resource))
PRE_FILTERS: dict[Predicate, Callable[[Shape], bool]] = {free_host_ports: lambda shape: bool(shape.ports)}
"""Kubernetes' PreFilter: whether a predicate can reject a pod of this shape at all; the index skips it if not."""


def can_reject(predicate: Predicate, shape: Shape) -> bool:
    pre_filter = PRE_FILTERS.get(predicate)
    return pre_filter is None or pre_filter(shape)


def feasible(fleet: Fleet, i: int, shape: Shape) -> bool:
    """Whether node ``i`` can take a pod of this shape now: every predicate passes."""
    return all(predicate(fleet, i, shape) is None for predicate in PREDICATES)


def failures(fleet: Fleet, i: int, shape: Shape) -> Reasons:
    """Why node ``i`` cannot take the pod: the first node filter it fails, else every fit it fails."""
    for predicate in NODE_FILTERS:
        reasons = predicate(fleet, i, shape)
        if reasons is not None:
            return reasons
    return tuple(reason for predicate in FITS for reason in predicate(fleet, i, shape) or ())


def unstartable(shape: Shape) -> Reasons | None:
    """A pod that asks twice for one hostPort fits no node, whatever the node: docker would refuse it."""
    if not shape.duplicate_ports:
        return None
    return tuple(f"the pod asks twice for hostPort {port_text(p)}" for p in shape.duplicate_ports)


def hold(fleet: Fleet, i: int, shape: Shape, delta: int = 1) -> None:
    """Count (``delta=1``) or release (``-1``) what a pod of this shape needs of every resource on node ``i``."""
    for resource in RESOURCES:
        resource.used(fleet)[i] += delta * resource.need(shape)


def take(fleet: Fleet, i: int, shape: Shape) -> None:
    """Book a new pod on node ``i``: its resources and its hostPorts."""
    hold(fleet, i, shape)
    fleet.ports[i].update(shape.ports)


def port_text(port: tuple[int, str]) -> str:
    """``8080`` for TCP, ``53/UDP``: as ``docker run -p`` and Kubernetes' events name a port."""
    number, protocol = port
    return f"{number}/{UDP}" if protocol == UDP else str(number)
