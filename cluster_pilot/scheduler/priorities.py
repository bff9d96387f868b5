"""Which feasible node is best: one ranking key, smallest first, in the manner of Nomad's ``rank.go``.

1. ``spread``: fewest pods sharing a spread key (same controller, same service) on the node;
2. fewest such pods in the node's ``zone``;
3. ``least_requested``: the lowest cpu + memory fraction once the pod is there, then before it (so that
   nodes of one capacity keep the order of the fleet's index whatever the float rounding), then the fewest
   pods for the node's size;
4. the node's position in name order.

Spread comes before load because replicas exist to survive the loss of a node: with load first, spread
would only break ties between equally loaded nodes, and one busy neighbour would stack a controller's pods
on one minion. Fractions divide by capacities read at four significant bits (``Fleet``): nodes that differ
by less rank as one class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from cluster_pilot.scheduler.fleet import Fleet, Shape, SpreadKey

LeastRequested = tuple[float, float, float, int]  # load after, load before, pods for the node's size, node
Rank = tuple[int, int, float, float, float, int]  # spread on the node, spread in its zone, then LeastRequested


def least_requested(fleet: Fleet, shape: Shape) -> Callable[[int], LeastRequested]:
    """The load part of the key for pods of ``shape``, as a function of the node (the index calls it in its
    hot loop, so it reads the fleet's lists directly)."""
    cpu, memory = shape.cpu, shape.memory
    used_cpu, used_mem, used_pods = fleet.used_cpu, fleet.used_mem, fleet.used_pods
    inv_cpu, inv_mem, inv_pods = fleet.inv_cpu, fleet.inv_mem, fleet.inv_pods

    def key(i: int) -> LeastRequested:
        load = used_cpu[i] * inv_cpu[i] + used_mem[i] * inv_mem[i]
        return (load + cpu * inv_cpu[i] + memory * inv_mem[i], load, used_pods[i] * inv_pods[i], i)

    return key


def load_order(fleet: Fleet) -> Callable[[int], tuple[float, int, int]]:
    """The order of the index's cells: load, pods, node. Within a cell (one capacity class) it is the order
    ``least_requested`` gives for any pod; kept lean, as it is recomputed for every pod placed."""
    used_cpu, used_mem, used_pods, inv_cpu, inv_mem = (
        fleet.used_cpu, fleet.used_mem, fleet.used_pods, fleet.inv_cpu, fleet.inv_mem)

    def key(i: int) -> tuple[float, int, int]:
        return (used_cpu[i] * inv_cpu[i] + used_mem[i] * inv_mem[i], used_pods[i], i)

    return key


def spread(fleet: Fleet, i: int, keys: tuple[SpreadKey, ...]) -> tuple[int, int]:
    """Pods sharing one of ``keys`` on node ``i``, and in its zone."""
    zone = fleet.zone[i]
    on_node = sum(fleet.key_nodes.get(key, {}).get(i, 0) for key in keys)
    in_zone = sum(fleet.key_zones.get(key, {}).get(zone, 0) for key in keys)
    return on_node, in_zone


def rank(fleet: Fleet, shape: Shape, keys: tuple[SpreadKey, ...]) -> Callable[[int], Rank]:
    """The whole key for pods of ``shape`` with spread ``keys``: the smallest wins."""
    load = least_requested(fleet, shape)

    def key(i: int) -> Rank:
        return spread(fleet, i, keys) + load(i)

    return key
