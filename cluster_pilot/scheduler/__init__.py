"""Which minion runs each pod, and how many pods each replication controller needs (pure: no I/O).

Nomad's shape: feasibility filters (ready, pinned host, nodeSelector, cpu, memory, pod count, hostPorts)
feed a ranking (spread, then least requested, then name); the seed scheduler's rules; an index instead of
a scan of every node for every pod.
"""

from cluster_pilot.scheduler.core import schedule
from cluster_pilot.scheduler.fleet import ZONE_LABEL
from cluster_pilot.scheduler.types import Placement, RunningPod, Schedule, Unschedulable

__all__ = ["Placement", "RunningPod", "Schedule", "Unschedulable", "ZONE_LABEL", "schedule"]
