"""The store seen through the fleet's own records: what a runner with no local state lists and describes.

The minions' object records (``host.records``) are the truth of what the fleet was asked; the local store
is a cache and a history. A fleet whose minions keep no records yet (applies that predate them) is read
from the local store as before.
"""

from __future__ import annotations

from typing import Any

from cluster_pilot.host.records import fleet_records
from cluster_pilot.host.observed import Observation
from cluster_pilot.host.records import Records
from cluster_pilot.store.sqlite import NotFound, Record, Store


class FleetStore:
    """``get``/``list`` from the records, ``history`` (and writes) from the local store."""

    def __init__(self, local: Store, records: Records, has_records: bool) -> None:
        self.local = local
        self.records = records
        self.has_records = has_records

    def list(self, kind: str | None = None) -> list[Record]:
        if not self.has_records:
            return self.local.list(kind)
        return [Record(e.kind, e.name, dict(e.body or {}), e.version, e.owner.applyset)
                for e in self.records.live(kind)]

    def get(self, kind: str, name: str) -> Record:
        for r in self.list(kind):
            if r.name == name:
                return r
        raise NotFound(f"{kind} {name!r} not found")

    def history(self, kind: str | None = None, name: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        return self.local.history(kind, name, limit)

    def __getattr__(self, name: str):
        return getattr(self.local, name)


def fleet_store(local: Store, seen: Observation) -> FleetStore:
    records, _ = fleet_records(seen)
    return FleetStore(local, records, any(v.records is not None for v in seen.hosts.values()))
