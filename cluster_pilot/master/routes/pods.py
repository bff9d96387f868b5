"""``/pods``: the pods the minions run, then the bare pods asked for that do not run yet (see ``registry``)."""

from __future__ import annotations

import json
import time
from typing import Any

from cluster_pilot.api import v1beta1 as wire
from cluster_pilot.master.registry import PodEntry, managed_by
from cluster_pilot.master.routes.context import Context
from cluster_pilot.model import POD, from_json
from cluster_pilot.store import Record


def encode(e: PodEntry) -> dict[str, Any]:
    rv, created = (e.record.resource_version, e.record.updated_at) if e.record is not None else (1, time.time())
    state = wire.PodState(e.status, e.host, e.host_ip, message=e.message)
    return wire.managed(wire.pod(e.pod, rv, created, state), managed_by(e.record))


class Pods:
    """Listing pods is the hot read (kubecfg polls it): the items, and the whole list's JSON, are encoded once
    per observation, store version and set of pods leaving."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._items: tuple[Any, list[dict[str, Any]]] = (None, [])
        self._body: tuple[Any, bytes] = (None, b"")

    def _current(self) -> tuple[Any, list[dict[str, Any]]]:
        snapshot = self.ctx.reconciler.snapshot()
        key = (id(snapshot.seen), self.ctx.version(), snapshot.leaving, tuple(sorted(snapshot.backoff.items())))
        cached = self._items
        if cached[0] != key:
            cached = (key, [encode(e) for e in self.ctx.registry(snapshot).pods])
            self._items = cached
        return cached

    def items(self) -> list[dict[str, Any]]:
        return self._current()[1]

    def body(self) -> bytes:
        """``GET /pods`` without a selector, as bytes."""
        key, items = self._current()
        cached = self._body
        if cached[0] != key:
            cached = (key, json.dumps(wire.listing(POD, items, key[1]), separators=(",", ":")).encode())
            self._body = cached
        return cached[1]

    def item(self, name: str) -> dict[str, Any] | None:
        return next((i for i in self.items() if i["id"] == name), None)

    def encode(self, record: Record) -> dict[str, Any]:
        return wire.pod(from_json(record.body), record.resource_version, record.updated_at)

    def running(self, name: str) -> bool:
        """A pod the minions run that nobody stored by that name: a controller's."""
        seen = self.ctx.reconciler.snapshot().seen
        return seen is not None and any(p.name == name for p in seen.pods)
