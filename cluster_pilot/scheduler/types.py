"""What the scheduler takes in besides the model (pods observed on the hosts) and what it hands on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from cluster_pilot.model import Pod


@dataclass(frozen=True)
class RunningPod:
    """A pod that exists on a node, as observation reports it (the hosts are the truth about what runs).

    ``cpu_millis``, ``memory_bytes`` and ``host_ports`` are what it holds on its node now; a pod whose
    ``spec_hash`` differs from the wanted spec still counts as a replica: the planner replaces it in place.
    """

    name: str
    node: str
    labels: Mapping[str, str] = field(default_factory=dict)
    controller: str | None = None
    cpu_millis: int = 0
    memory_bytes: int = 0
    host_ports: tuple[tuple[int, str], ...] = ()
    ready: bool = True
    spec_hash: str = ""


@dataclass(frozen=True)
class Placement:
    """One pod of the desired set and its node; ``existing`` when it runs there already."""

    pod: Pod
    node: str
    controller: str | None = None
    existing: bool = False

    @property
    def name(self) -> str:
        return self.pod.meta.name


@dataclass(frozen=True)
class Unschedulable:
    """A wanted pod that fits on no node; ``reasons`` count nodes per cause, ``message`` says it all in one line."""

    pod: str
    controller: str | None
    reasons: tuple[str, ...]
    message: str


@dataclass(frozen=True)
class Schedule:
    """The complete desired set of pods and the running pods to remove to get there.

    ``removals`` are only the scheduler's own business: controller surplus, duplicates, and pods of wanted
    objects whose node is gone, not ready, or no longer allowed by the pod's pin or nodeSelector. Pods of
    objects nobody asks for any more are left to pruning. Placements count a removed pod's resources as
    free, so a planner runs the removals of a host before the creations on it.
    """

    placements: tuple[Placement, ...]
    removals: tuple[RunningPod, ...] = ()
    unschedulable: tuple[Unschedulable, ...] = ()

    @property
    def created(self) -> tuple[Placement, ...]:
        return tuple(p for p in self.placements if not p.existing)
