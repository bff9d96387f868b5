"""``GET /api/v1beta1/events``: what the master did and why, oldest first, filtered by object.

``?object=pod/NAME`` (or ``kind=`` and ``name=``); ``?after=ID`` returns only newer events, which is how
``get events -w`` follows them.
"""

from __future__ import annotations

from fastapi import APIRouter, Query

from cluster_pilot.api import kinds
from cluster_pilot.master.routes.errors import named
from cluster_pilot.store.events import EventLog


def object_filter(text: str | None) -> tuple[str | None, str | None]:
    """``pod/web-1`` -> (Pod, web-1); ``web-1`` -> (None, web-1); an unknown kind is kept as given."""
    if not text:
        return None, None
    kind, _, name = text.rpartition("/")
    return kind_named(kind), name


def kind_named(word: str | None) -> str | None:
    """``pods``, ``rc``, ``Minion``: the kind's name; an unknown word is kept as given."""
    found = kinds.find(word) if word else None
    return found.name if found else word or None


def listing(events: EventLog, kind: str | None, name: str | None, after: int, limit: int) -> dict:
    items = [e.to_json() for e in events.list(kind, name, after, limit)]
    return {"kind": "EventList", "apiVersion": "v1beta1", "items": items}


def router(events: EventLog) -> APIRouter:
    r = APIRouter()

    @r.get("/api/v1beta1/events")
    def list_events(object: str | None = None, kind: str | None = None, name: str | None = None,  # noqa: A002
                    after: int = Query(0, ge=0, le=2**62), limit: int = Query(500, ge=1, le=10_000)) -> dict:
        k, n = object_filter(object)
        k, n = k or kind_named(kind), n or name
        return listing(events, k, n if n is None else named(k or "", n, "object" if object else "name"), after, limit)

    return r
