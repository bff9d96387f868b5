"""What every route reads: the store, the loop, and the registry over both at one moment."""

from __future__ import annotations

from dataclasses import dataclass

from cluster_pilot.api import v1beta1 as wire
from cluster_pilot.api.kinds import MINION
from cluster_pilot.manifests.policy import Policy
from cluster_pilot.master.reconcile import Reconciler, Snapshot
from cluster_pilot.master.registry import Registry
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
        return Registry(self.store.list() if records is None else records, self.reconciler.nodes(), snap.seen,
                        snap.leaving)

    def stored(self, kind: str, name: str) -> Record | None:
        try:
            return self.store.get(kind, name)
        except NotFound:
            return None

    def version(self) -> int:
        """The store's newest resource version: a listing's ``resourceVersion``."""
        history = self.store.history(limit=1)
        return history[0]["resource_version"] if history else 1


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
