"""Choosing nodes: feasibility filters feeding a ranking, answered from the fleet's index.

The ranking, best first:

1. fewest pods sharing a spread key (same controller, same service) on the node;
2. fewest such pods in the node's ``zone``;
3. least requested: the lowest cpu + memory fraction once the pod is there, then before it (so that
   nodes of one capacity keep the order of the fleet's index whatever the float rounding), then the
   fewest pods for the node's size;
4. the node's name.

Spread comes before load because replicas exist to survive the loss of a node: with load first, spread
would only break exact ties, which a fleet with mixed load almost never has, and a controller's replicas
could pile onto one roomy node. Among nodes equally good for spread, the least requested wins.

A batch is a run of pods with one shape and one set of spread keys (the replicas a controller is missing).
Each pod of a batch gets exactly the node it would get alone; batching only saves rebuilding the
candidates. While a batch runs only its own pods land, so the cells' load order stays true for every node
the batch has not touched, and a cursor walks each cell once; nodes the batch (or an earlier pod of its
group) has touched wait in per-zone heaps with their current rank. Free resources only shrink while pods
are placed, so a node that does not fit a batch's shape is passed over for good.
"""

from __future__ import annotations

from heapq import heapify, heappop, heappush

from cluster_pilot.scheduler.fleet import Fleet, Shape, SpreadKey, labels_match

Rank = tuple[float, float, float, int]  # load after, load before, pods for the node's size, node


def place(fleet: Fleet, shape: Shape, keys: tuple[SpreadKey, ...], count: int) -> list[int]:
    """Nodes (indices) for up to ``count`` pods, in order; fewer when the rest fit nowhere."""
    if count <= 0 or shape.duplicate_ports:
        return []
    placed = _place_pinned(fleet, shape, count) if shape.host is not None else _place_ranked(fleet, shape, keys, count)
    for i in set(placed):
        fleet.rekey(i)
    for i in placed:
        fleet.count(i, keys)
    if placed:
        fleet.version += 1
    return placed


def _place_pinned(fleet: Fleet, shape: Shape, count: int) -> list[int]:
    i = fleet.index.get(shape.host)  # type: ignore[arg-type]
    if i is None or not fleet.ready[i] or not labels_match(shape.selector, fleet.nodes[i].labels):
        return []
    placed: list[int] = []
    while len(placed) < count and fleet.fits(i, shape):
        fleet.used_cpu[i] += shape.cpu
        fleet.used_mem[i] += shape.memory
        fleet.used_pods[i] += 1
        fleet.ports[i].update(shape.ports)
        placed.append(i)
    return placed


def _place_ranked(fleet: Fleet, shape: Shape, keys: tuple[SpreadKey, ...], count: int) -> list[int]:
    cpu, mem, ports = shape.cpu, shape.memory, shape.ports
    used_cpu, used_mem, used_pods, node_ports = fleet.used_cpu, fleet.used_mem, fleet.used_pods, fleet.ports
    cap_cpu, cap_mem, cap_pods = fleet.cap_cpu, fleet.cap_mem, fleet.cap_pods
    inv_cpu, inv_mem, inv_pods = fleet.inv_cpu, fleet.inv_mem, fleet.inv_pods
    zone_of = fleet.zone
    index, eligible = fleet.cells_for(shape.selector)
    cells, cell_of = index.cells, index.cell_of
    weight = len(keys)

    def fits(i: int) -> bool:
        return (
            used_cpu[i] + cpu <= cap_cpu[i]
            and used_mem[i] + mem <= cap_mem[i]
            and used_pods[i] < cap_pods[i]
            and (not ports or node_ports[i].isdisjoint(ports))
        )

    def rank(i: int) -> Rank:
        load = used_cpu[i] * inv_cpu[i] + used_mem[i] * inv_mem[i]
        return (load + cpu * inv_cpu[i] + mem * inv_mem[i], load, used_pods[i] * inv_pods[i], i)

    spread: dict[int, int] = {}
    zone_spread: dict[str, int] = {}
    for key in keys:
        for i, n in fleet.key_nodes.get(key, {}).items():
            spread[i] = spread.get(i, 0) + n
        for z, n in fleet.key_zones.get(key, {}).items():
            zone_spread[z] = zone_spread.get(z, 0) + n

    # touched: nodes holding pods of the group, ranked by (spread, rank) in a heap per zone
    touched: dict[str, list[tuple[int, Rank]]] = {}
    eligible_set = set(eligible)
    for i, n in spread.items():
        if cell_of.get(i) in eligible_set:
            touched.setdefault(zone_of[i], []).append((n, rank(i)))
    for heap in touched.values():
        heapify(heap)

    # fresh: per zone, a heap of each cell's first untouched node that fits, as (rank, cell, position)
    fresh: dict[str, list[tuple[Rank, int, int]]] = {}

    def advance(c: int, pos: int) -> None:
        entries = cells[c].entries
        end = len(entries)
        start = pos
        while pos < end:
            i = entries[pos][2]
            if i not in spread and fits(i):
                heappush(fresh.setdefault(zone_of[i], []), (rank(i), c, pos))
                return
            pos += 1
        if start == 0:
            cells[c].room = fleet.room(entries)

    for c in eligible:
        room = cells[c].room
        if room is None or (cpu <= room[0] and mem <= room[1] and room[2] > 0):
            advance(c, 0)

    placed: list[int] = []
    while len(placed) < count:
        best: tuple[int, int, Rank] | None = None  # (spread, zone spread, rank)
        best_zone, from_fresh = "", False
        for z, candidates in fresh.items():
            if candidates:
                candidate = (0, zone_spread.get(z, 0), candidates[0][0])
                if best is None or candidate < best:
                    best, best_zone, from_fresh = candidate, z, True
        for z, crowd in touched.items():
            while crowd and not fits(crowd[0][1][-1]):
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
        used_cpu[i] += cpu
        used_mem[i] += mem
        used_pods[i] += 1
        if ports:
            node_ports[i].update(ports)
        spread[i] = spread.get(i, 0) + weight
        zone_spread[best_zone] = zone_spread.get(best_zone, 0) + weight
        heappush(touched.setdefault(best_zone, []), (spread[i], rank(i)))
        if from_fresh:
            advance(cell, position + 1)
        placed.append(i)
    return placed
