"""The working state of one scheduling run: what each node holds, and indexes that find the best nodes fast.

Nodes of one zone and one ranking capacity are interchangeable except for what they hold, so they share a
*cell*: a list of its nodes sorted by load, in which the least loaded node comes first for any pod. Ranking
reads capacities at four significant bits (within an eighth of their value): nodes that differ by less,
such as a few MiB of memory the kernel reserves differently, rank as one class, and the number of cells
stays small whatever the inventory says. Feasibility always uses exact capacities.

A nodeSelector is answered by picking cells, never by looking at nodes: for each set of label keys that
some nodeSelector asks about there is an index whose cells also share the values of those labels, and a
selector maps straight to its cells. Every node is known by its position in name order, which is also the
last, stable tie-break of every ranking.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from cluster_pilot.model import Node, PodSpec
from cluster_pilot.scheduler.priorities import load_order
from cluster_pilot.scheduler.types import RunningPod

ZONE_LABEL = "zone"

SpreadKey = tuple[str, str]  # ("rc", name) or ("svc", name): pods that should not share a node or zone
Selector = tuple[tuple[str, str], ...]  # sorted (key, value) pairs


@dataclass(frozen=True)
class Shape:
    """All that decides where a pod may go: its requests, host ports, nodeSelector and pinned host."""

    cpu: int
    memory: int
    ports: frozenset[tuple[int, str]]
    selector: Selector
    host: str | None
    duplicate_ports: tuple[tuple[int, str], ...] = ()  # asked twice by one pod: it can never start

    @classmethod
    def of(cls, spec: PodSpec) -> Shape:
        ports = [(port, protocol.upper()) for port, protocol in spec.host_ports]
        unique = frozenset(ports)
        duplicates = tuple(sorted(p for p in unique if ports.count(p) > 1)) if len(unique) < len(ports) else ()
        return cls(
            cpu=spec.cpu_millis,
            memory=spec.memory_bytes,
            ports=unique,
            selector=tuple(sorted(spec.node_selector.items())),
            host=spec.host,
            duplicate_ports=duplicates,
        )

    @classmethod
    def held_by(cls, pod: RunningPod) -> Shape:
        """What a running pod holds on its node (where it may go no longer matters)."""
        ports = frozenset((port, protocol.upper()) for port, protocol in pod.host_ports)
        return cls(cpu=pod.cpu_millis, memory=pod.memory_bytes, ports=ports, selector=(), host=None)



@dataclass
class Cell:
    zone: str
    entries: list[tuple[float, int, int]]  # (load, pods, node) ascending: priorities.load_order
    # the most of each resource any node of the cell has free, learnt when a shape fitted none of them;
    # free room only shrinks while pods are placed, so it stays an upper bound and spares later scans
    room: tuple[int, ...] | None = None


@dataclass
class Index:
    """Cells of nodes sharing zone, ranking capacity and the values of ``keys``."""

    keys: tuple[str, ...]
    cells: list[Cell] = field(default_factory=list)
    cell_of: dict[int, int] = field(default_factory=dict)  # ready nodes only
    by_values: dict[tuple[str | None, ...], list[int]] = field(default_factory=dict)


class Fleet:
    """Node usage as parallel lists (fast to read in the hot loop), the indexes, and spread counts."""

    def __init__(self, nodes: Sequence[Node], selectors: Iterable[Selector]) -> None:
        ordered = sorted(nodes, key=lambda n: n.name)
        self.nodes = ordered
        self.names = [n.name for n in ordered]
        self.index = {name: i for i, name in enumerate(self.names)}
        self.ready = [n.ready for n in ordered]
        self.zone = [n.labels.get(ZONE_LABEL, "") for n in ordered]
        self.cap_cpu = [n.capacity.cpu_millis for n in ordered]
        self.cap_mem = [n.capacity.memory_bytes for n in ordered]
        self.cap_pods = [n.capacity.pods for n in ordered]
        self.inv_cpu = [1.0 / _coarse(c) for c in self.cap_cpu]
        self.inv_mem = [1.0 / _coarse(c) for c in self.cap_mem]
        self.inv_pods = [1.0 / _coarse(c) for c in self.cap_pods]
        self.used_cpu = [0] * len(ordered)
        self.used_mem = [0] * len(ordered)
        self.used_pods = [0] * len(ordered)
        self.ports: list[set[tuple[int, str]]] = [set() for _ in ordered]
        self.indexes = {tuple(k for k, _ in s): Index(tuple(k for k, _ in s)) for s in {*selectors, ()}}
        self._order = load_order(self)
        self._key = [self._order(i) for i in range(len(ordered))]
        self.key_nodes: dict[SpreadKey, dict[int, int]] = {}
        self.key_zones: dict[SpreadKey, dict[str, int]] = {}
        self.version = 0  # bumped by every placement: cached verdicts about the fleet are only good for one

    def count(self, i: int, keys: Iterable[SpreadKey]) -> None:
        zone = self.zone[i]
        for key in keys:
            nodes = self.key_nodes.setdefault(key, {})
            nodes[i] = nodes.get(i, 0) + 1
            zones = self.key_zones.setdefault(key, {})
            zones[zone] = zones.get(zone, 0) + 1

    def load(self, i: int) -> float:
        """The node's cpu + memory fraction (``least_requested`` before a pod)."""
        return self._order(i)[0]

    def build_indexes(self) -> None:
        for i, node in enumerate(self.nodes):
            if node.ready:
                self._key[i] = self._order(i)
        for index in self.indexes.values():
            cell_ids: dict[tuple, int] = {}
            for i, node in enumerate(self.nodes):
                if not node.ready:
                    continue
                values = tuple(node.labels.get(k) for k in index.keys)
                signature = (self.inv_cpu[i], self.inv_mem[i], self.inv_pods[i], self.zone[i], values)
                cell = cell_ids.get(signature)
                if cell is None:
                    cell = cell_ids[signature] = len(index.cells)
                    index.cells.append(Cell(self.zone[i], []))
                    index.by_values.setdefault(values, []).append(cell)
                index.cell_of[i] = cell
                index.cells[cell].entries.append(self._key[i])
            for each in index.cells:
                each.entries.sort()

    def rekey(self, i: int) -> None:
        """Move node ``i`` to its place in its cells after pods landed on it."""
        old = self._key[i]
        self._key[i] = new = self._order(i)
        for index in self.indexes.values():
            entries = index.cells[index.cell_of[i]].entries
            del entries[bisect_left(entries, old)]
            insort(entries, new)

    def cells_for(self, selector: Selector) -> tuple[Index, list[int]]:
        """The index for the selector's keys and the cells whose nodes carry its values."""
        index = self.indexes[tuple(k for k, _ in selector)]
        return index, index.by_values.get(tuple(v for _, v in selector), [])


def _coarse(amount: int) -> int:
    """``amount`` kept to its four leading bits, at least 1: the capacity ranking divides by."""
    shift = max(amount.bit_length() - 4, 0)
    return max(amount >> shift << shift, 1)
