"""Choosing nodes fast: the predicates and the ranking key answered from the fleet's index.

``reference.place_by_scanning`` says what to choose, by asking every predicate and the ranking key of
every node for every pod; this module chooses exactly the same (the property tests hold it to that), and
only the way differs. The cells answer the node filters (only ready nodes have cells, a nodeSelector maps
to its cells, and a ranked pod is pinned to no host); each ``Resource`` is checked from its declaration and
prunes whole cells; every other predicate is called as it is.

A batch is a run of pods with one shape and one set of spread keys (the replicas a controller is missing).
Each pod of a batch gets exactly the node it would get alone; batching only saves rebuilding the
candidates. While a batch runs only its own pods land, so the cells' load order stays true for every node
the batch has not touched, and a cursor walks each cell once; nodes the batch (or an earlier pod of its
group) has touched wait in per-zone heaps with their current rank. Free resources only shrink while pods
are placed, so a node that does not fit a batch's shape is passed over for good.
"""

from __future__ import annotations

from heapq import heapify, heappop, heappush
from typing import Callable

from cluster_pilot.scheduler import predicates
from cluster_pilot.scheduler.fleet import Cell, Fleet, Shape, SpreadKey
from cluster_pilot.scheduler.predicates import (
    Resource,
    feasible,
    node_ready,
    node_selector,
    pinned_host,
    take,
    unstartable,
)
from cluster_pilot.scheduler.priorities import LeastRequested, least_requested

ANSWERED_BY_CELLS = (node_ready, pinned_host, node_selector)
Dimension = tuple[list[int], list[int], int]  # a Resource for one shape: used, capacity, need


def place(fleet: Fleet, shape: Shape, keys: tuple[SpreadKey, ...], count: int) -> list[int]:
    """Nodes (indices) for up to ``count`` pods, in order; fewer when the rest fit nowhere."""
    if count <= 0 or unstartable(shape):
        return []
    placed = _place_pinned(fleet, shape, count) if shape.host is not None else _Search(fleet, shape, keys).run(count)
    for i in set(placed):
        fleet.rekey(i)
    for i in placed:
        fleet.count(i, keys)
    if placed:
        fleet.version += 1
    return placed


def _place_pinned(fleet: Fleet, shape: Shape, count: int) -> list[int]:
    i = fleet.index.get(shape.host)  # type: ignore[arg-type]
    placed: list[int] = []
    while i is not None and len(placed) < count and feasible(fleet, i, shape):
        take(fleet, i, shape)
        placed.append(i)
    return placed


def dimensions(fleet: Fleet, shape: Shape) -> list[Dimension]:
    return [(r.used(fleet), r.capacity(fleet), r.need(shape)) for r in predicates.RESOURCES]


def fit_check(fleet: Fleet, shape: Shape, dims: list[Dimension]) -> Callable[[int], bool]:
    """Whether a node of the cells fits ``shape``: the predicates the cells do not answer, as one fast check."""
    others = [
        p for p in predicates.PREDICATES
        if p not in ANSWERED_BY_CELLS and not isinstance(p, Resource) and predicates.can_reject(p, shape)
    ]

    def fits(i: int) -> bool:
        for used, capacity, need in dims:  # each Resource.__call__, from its declaration
            if need > capacity[i] - used[i]:
                return False
        for predicate in others:
            if predicate(fleet, i, shape) is not None:
                return False
        return True

    return fits


def room(cell: Cell, dims: list[Dimension]) -> tuple[int, ...]:
    """The most of each resource any node of the cell has free."""
    nodes = [entry[-1] for entry in cell.entries]
    return tuple(max((capacity[i] - used[i] for i in nodes), default=0) for used, capacity, _ in dims)


def may_fit(dims: list[Dimension], known: tuple[int, ...] | None) -> bool:
    """Whether some node of a cell with this ``room`` (None: not learnt yet) may have enough of each resource."""
    if known is not None:
        for (_, _, need), free in zip(dims, known):
            if need > free:
                return False
    return True


class _Search:
    """One batch's walk over the cells: fresh nodes by cursor, touched nodes by heap, both per zone."""

    def __init__(self, fleet: Fleet, shape: Shape, keys: tuple[SpreadKey, ...]) -> None:
        self.fleet, self.shape, self.weight = fleet, shape, len(keys)
        self.dims = dimensions(fleet, shape)
        self.fits = fit_check(fleet, shape, self.dims)
        self.rank = rank = least_requested(fleet, shape)
        index, eligible = fleet.cells_for(shape.selector)
        self.cells = index.cells
        self.spread: dict[int, int] = {}
        self.zone_spread: dict[str, int] = {}
        for key in keys:
            for i, n in fleet.key_nodes.get(key, {}).items():
                self.spread[i] = self.spread.get(i, 0) + n
            for z, n in fleet.key_zones.get(key, {}).items():
                self.zone_spread[z] = self.zone_spread.get(z, 0) + n
        # touched: nodes holding pods of the group, by (spread, rank) in a heap per zone; the flag says the node
        # is known to fit (it stays true until the node is popped: only the popped node takes pods)
        self.touched: dict[str, list[tuple[int, LeastRequested, bool]]] = {}
        eligible_set = set(eligible)
        for i, n in self.spread.items():
            if index.cell_of.get(i) in eligible_set:
                self.touched.setdefault(fleet.zone[i], []).append((n, rank(i), False))
        for heap in self.touched.values():
            heapify(heap)
        # fresh: per zone, a heap of each cell's first untouched node that fits, as (rank, cell, position)
        self.fresh: dict[str, list[tuple[LeastRequested, int, int]]] = {}
        for c in eligible:
            if may_fit(self.dims, self.cells[c].room):
                self.advance(c, 0)

    def advance(self, c: int, pos: int) -> None:
        """Put cell ``c``'s first untouched node that fits, from ``pos`` on, among the fresh candidates."""
        cell, spread, fits = self.cells[c], self.spread, self.fits
        entries = cell.entries
        end, start = len(entries), pos
        while pos < end:
            i = entries[pos][-1]
            if i not in spread and fits(i):
                heappush(self.fresh.setdefault(cell.zone, []), (self.rank(i), c, pos))
                return
            pos += 1
        if start == 0:
            cell.room = room(cell, self.dims)

    def run(self, count: int) -> list[int]:
        fresh, touched, spread, zone_spread, fits, rank = (
            self.fresh, self.touched, self.spread, self.zone_spread, self.fits, self.rank)
        dims, ports, node_ports, weight = self.dims, self.shape.ports, self.fleet.ports, self.weight
        placed: list[int] = []
        while len(placed) < count:
            best: tuple[int, int, LeastRequested] | None = None  # (spread, zone spread, rank)
            best_zone, from_fresh = "", False
            for z, candidates in fresh.items():
                if candidates:
                    candidate = (0, zone_spread.get(z, 0), candidates[0][0])
                    if best is None or candidate < best:
                        best, best_zone, from_fresh = candidate, z, True
            for z, crowd in touched.items():
                while crowd and not crowd[0][2]:
                    top = crowd[0]
                    if fits(top[1][-1]):
                        crowd[0] = (top[0], top[1], True)  # same key: the heap stays a heap
                    else:
                        heappop(crowd)
                if crowd:
                    candidate = (crowd[0][0], zone_spread.get(z, 0), crowd[0][1])
                    if best is None or candidate < best:
                        best, best_zone, from_fresh = candidate, z, False
            if best is None:
                break
            i = best[2][-1]
            if from_fresh:
                _, cell, position = heappop(fresh[best_zone])
            else:
                heappop(touched[best_zone])
            for used, _, need in dims:  # predicates.take, with the needs worked out once
                used[i] += need
            if ports:
                node_ports[i].update(ports)
            spread[i] = spread.get(i, 0) + weight
            zone_spread[best_zone] = zone_spread.get(best_zone, 0) + weight
            heappush(touched.setdefault(best_zone, []), (spread[i], rank(i), False))
            if from_fresh:
                self.advance(cell, position + 1)
            placed.append(i)
        return placed
