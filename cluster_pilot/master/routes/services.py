"""``/services``: as stored, with the address (``portalIP``) the fleet allocated (the v1beta1 service has no
field for its endpoints)."""

from __future__ import annotations

from typing import Any

from cluster_pilot.api import v1beta1 as wire
from cluster_pilot.master.registry import allocated, managed_by
from cluster_pilot.master.routes.context import Context
from cluster_pilot.model import SERVICE, from_json
from cluster_pilot.store import Record


class Services:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def items(self) -> list[dict[str, Any]]:
        return self.encode_all([r for r in self.ctx.registry().records if r.kind == SERVICE])

    def item(self, name: str) -> dict[str, Any] | None:
        record = self.ctx.listed(SERVICE, name)
        return self.encode(record) if record is not None else None

    def encode(self, record: Record) -> dict[str, Any]:
        return self.encode_all([record])[0]

    def encode_all(self, records: list[Record]) -> list[dict[str, Any]]:
        services = allocated([from_json(r.body) for r in records], self.ctx.reconciler.snapshot().seen)
        return [wire.managed(wire.service(svc, r.resource_version, r.updated_at), managed_by(r))
                for svc, r in zip(services, records)]
