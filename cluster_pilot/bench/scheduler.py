"""The scheduler benchmark: schedule a synthetic fleet and workload as if nothing ran yet, and time it."""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass

from cluster_pilot.model import ReplicationController, Service
from cluster_pilot.scheduler import schedule
from cluster_pilot.scheduler.synthetic import fleet, workload


@dataclass(frozen=True)
class SchedulerFigures:
    nodes: int
    pods: int
    seed: int
    controllers: int
    bare_pods: int
    services: int
    placed: int
    unschedulable: int
    seconds: float
    peak_mib: float  # max RSS of the whole process, generation included

    @property
    def rate(self) -> float:
        return self.pods / self.seconds


def measure(node_count: int, pod_count: int, seed: int) -> SchedulerFigures:
    nodes = fleet(node_count, seed)
    objects = workload(pod_count, seed)
    replicas = sum(o.replicas for o in objects if isinstance(o, ReplicationController))
    start = time.perf_counter()
    result = schedule(objects, nodes)
    elapsed = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    return SchedulerFigures(
        node_count, pod_count, seed, sum(isinstance(o, ReplicationController) for o in objects), pod_count - replicas,
        sum(isinstance(o, Service) for o in objects), len(result.placements), len(result.unschedulable), elapsed,
        peak_mib)
