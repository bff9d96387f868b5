"""The scheduling rule as written: every node, every pod, every predicate, then the smallest ranking key.

Too slow for a real fleet (nodes x pods), and meant to be: it is what ``placement.place`` must choose, node
for node, and the property tests compare the two. It has ``place``'s signature, so that a test can put it in
``place``'s stead for a whole ``schedule``.
"""

from __future__ import annotations

from cluster_pilot.scheduler.fleet import Fleet, Shape, SpreadKey
from cluster_pilot.scheduler.predicates import feasible, take, unstartable
from cluster_pilot.scheduler.priorities import rank


def place_by_scanning(fleet: Fleet, shape: Shape, keys: tuple[SpreadKey, ...], count: int) -> list[int]:
    """Nodes (indices) for up to ``count`` pods, in order; fewer when the rest fit nowhere."""
    if unstartable(shape):
        return []
    placed: list[int] = []
    for _ in range(count):
        key = rank(fleet, shape, keys)
        candidates = [i for i in range(len(fleet.names)) if feasible(fleet, i, shape)]
        if not candidates:
            break
        i = min(candidates, key=key)
        take(fleet, i, shape)
        fleet.count(i, keys)
        placed.append(i)
    if placed:
        fleet.version += 1
    return placed
