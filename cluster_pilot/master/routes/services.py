"""``/services``: as stored (the v1beta1 service has no field for its endpoints)."""

from __future__ import annotations

from typing import Any

from cluster_pilot.api import v1beta1 as wire
from cluster_pilot.master.routes.context import Context
from cluster_pilot.model import SERVICE, from_json
from cluster_pilot.store import Record


class Services:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def items(self) -> list[dict[str, Any]]:
        return [self.encode(r) for r in self.ctx.store.list(SERVICE)]

    def item(self, name: str) -> dict[str, Any] | None:
        record = self.ctx.stored(SERVICE, name)
        return self.encode(record) if record is not None else None

    def encode(self, record: Record) -> dict[str, Any]:
        return wire.service(from_json(record.body), record.resource_version, record.updated_at)
