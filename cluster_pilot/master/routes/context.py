"""What every route reads: the store, the loop, and the registry over both at one moment."""

from __future__ import annotations

from dataclasses import dataclass

from cluster_pilot.api import v1beta1 as wire
from cluster_pilot.api.kinds import MINION
from cluster_pilot.model import POD
from cluster_pilot.manifests.policy import Policy
from cluster_pilot.master.reconcile import Reconciler, Snapshot
from cluster_pilot.host.records import Owner, refusal
from cluster_pilot.master.registry import MASTER_APPLYSET, Registry, managed_by, whole_fleet
from cluster_pilot.master.routes.errors import ApiError
from cluster_pilot.store import NotFound, Record, Store

__all__ = ["MINION", "Context", "kind_of"]


@dataclass(frozen=True)
class Context:
    store: Store
    reconciler: Reconciler
    policy: Policy = Policy()  # the fleet's, which written objects must keep

    def registry(self, snapshot: Snapshot | None = None, records: list[Record] | None = None) -> Registry:
        snap = snapshot or self.reconciler.snapshot()
        listed = whole_fleet(self.store.list(), snap.seen) if records is None else records
        return Registry(listed, self.reconciler.nodes(), snap.seen, snap.leaving, snap.backoff)

    def listed(self, kind: str, name: str) -> Record | None:
        """As stored, or as the fleet's records hold it when a CLI apply set manages it (read-only)."""
        found = self.stored(kind, name)
        if found is not None:
            return found
        return next((r for r in whole_fleet([], self.reconciler.snapshot().seen) if (r.kind, r.name) == (kind, name)),
                    None)

    def stored(self, kind: str, name: str) -> Record | None:
        try:
            return self.store.get(kind, name)
        except NotFound:
            return None

    def read_only(self, kind: str, name: str) -> str | None:
        """Why a write to ``name`` is refused (a CLI apply set manages it, or the controller of that pod), or
        None: issue 15's owner rules, as a create meets them (``Reconciler.foreign``)."""
        record = self.listed(kind, name)
        what = ""
        if record is None and kind == POD:
            entry = next((e for e in self.registry().pods if e.name == name), None)
            record = entry.record if entry is not None else None
            what = f"pod {name!r} is listed read-only: " if record is not None else ""
        if not managed_by(record):
            return None
        return what + refusal(record.kind, record.name, Owner(record.applyset), Owner(MASTER_APPLYSET, "master"))

    def version(self) -> int:
        """The store's newest resource version (0 before the first write, whose version is 1): a listing's
        ``resourceVersion`` (at least 1 there), and the key of what ``Pods`` caches."""
        history = self.store.history(limit=1)
        return history[0]["resource_version"] if history else 0


def kind_of(resource: str) -> str:
    """``pods``, ``Pods``, ``pod``: the 2014 client's paths, leniently."""
    kind = wire.RESOURCES.get(resource) or wire.RESOURCES.get(resource.lower().rstrip("s") + "s")
    if kind is None:
        for name, k in wire.RESOURCES.items():
            if name.lower() == resource.lower():
                return k
        raise ApiError(404, f"unknown resource {resource!r}: pods, replicationControllers, services, minions",
                       "NotFound")
    return kind
