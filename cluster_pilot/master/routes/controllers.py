"""``/replicationControllers``: each with the number of running pods it counts (see ``registry``)."""

from __future__ import annotations

from typing import Any

from cluster_pilot.api import v1beta1 as wire
from cluster_pilot.master.registry import Registry, managed_by
from cluster_pilot.master.routes.context import Context
from cluster_pilot.model import REPLICATION_CONTROLLER
from cluster_pilot.store import Record


def encode(record: Record, registry: Registry, counts: dict[str, int]) -> dict[str, Any]:
    return wire.managed(wire.controller(registry.object(record), record.resource_version, record.updated_at,
                                        counts.get(record.name, 0)), managed_by(record))


def _counts(registry: Registry) -> dict[str, int]:
    return {c.name: len(c.pods) for c in registry.controllers()}


class Controllers:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def items(self) -> list[dict[str, Any]]:
        registry = self.ctx.registry()
        counts = _counts(registry)  # one walk over the pods for the whole list, not one per controller
        return [encode(r, registry, counts) for r in registry.records if r.kind == REPLICATION_CONTROLLER]

    def item(self, name: str) -> dict[str, Any] | None:
        record = self.ctx.listed(REPLICATION_CONTROLLER, name)
        return self.encode(record) if record is not None else None

    def encode(self, record: Record) -> dict[str, Any]:
        registry = self.ctx.registry()
        return encode(record, registry, _counts(registry))
