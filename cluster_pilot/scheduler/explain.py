"""Why a pod fits nowhere, counted per node the way Kubernetes users know it.

``0/3 minions are available for web-7f3: 2 insufficient cpu, 1 hostPort 8080 in use``. The reasons are the
predicates' own (``predicates.failures``): a node that is not ready, not the pinned host or not matching the
nodeSelector is counted for that alone; a node that passes those filters is counted for every resource it
lacks, so the counts may add up to more than the nodes.
"""

from __future__ import annotations

from collections import Counter

from cluster_pilot.scheduler.fleet import Fleet, Shape
from cluster_pilot.scheduler.predicates import failures, unstartable


def reasons(fleet: Fleet, shape: Shape) -> tuple[str, ...]:
    """``("2 insufficient cpu", "1 hostPort 8080 in use")``: most frequent first, then alphabetical."""
    never = unstartable(shape)
    if never is not None:
        return never
    if not fleet.names:
        return ("no minions in the inventory",)
    counts = Counter(reason for i in range(len(fleet.names)) for reason in failures(fleet, i, shape))
    return tuple(f"{n} {cause}" for cause, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def message(fleet: Fleet, shape: Shape, pod: str, why: tuple[str, ...]) -> str:
    text = f"0/{len(fleet.names)} minions are available for {pod}: {', '.join(why)}"
    if shape.host is not None and shape.host not in fleet.index:
        text += f" ({shape.host} is not in the inventory)"
    return text
