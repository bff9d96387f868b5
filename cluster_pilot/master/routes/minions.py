"""``/minions``: the inventory's hosts, ready while they answer or are within their grace. Read-only."""

from __future__ import annotations

from typing import Any

from cluster_pilot.api import v1beta1 as wire
from cluster_pilot.master.registry import MinionEntry
from cluster_pilot.master.routes.context import Context
from cluster_pilot.master.routes.errors import ApiError
from cluster_pilot.store import Record


def encode(m: MinionEntry, generation: int) -> dict[str, Any]:
    n = m.node
    return wire.minion(n.name, n.address, n.capacity.cpu_millis, n.capacity.memory_bytes, m.ready, n.labels,
                       generation + 1)


class Minions:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def entries(self) -> tuple[list[MinionEntry], int]:
        snapshot = self.ctx.reconciler.snapshot()
        return self.ctx.registry(snapshot, records=[]).minions(), snapshot.generation

    def items(self) -> list[dict[str, Any]]:
        entries, generation = self.entries()
        return [encode(m, generation) for m in entries]

    def item(self, name: str) -> dict[str, Any] | None:
        return next((i for i in self.items() if i["id"] == name), None)

    def encode(self, record: Record) -> dict[str, Any]:
        raise read_only()


def read_only() -> ApiError:
    return ApiError(405, "minions come from the inventory and are read-only here", "MethodNotAllowed")
