"""``?watch=true`` on today's API: newline-delimited ``{"type": ADDED|MODIFIED|DELETED|BOOKMARK, "object"}``.

What a client sees of a kind is the store beside the last observation (a pod is running because a minion says
so, not because anyone wrote it), so a watch compares readings of the v1 view rather than replaying the
store's history. Each list answers with a ``resourceVersion`` naming its reading, kept here (the last
``KEEP``); a watch from that version starts from that reading, so nothing that changed between the list and
the watch is missed. A version not kept any more (or from a master process before this one) is ``410 Gone``,
and the client lists again, as it does after a compacted etcd. A watch without a version starts with every
object ``ADDED``.

The readings are versions of this process: a counter started from the clock, so that a version from an
earlier process is not mistaken for one of this. A watch looks again every ``POLL`` seconds, and reads the
view only when the store's version or the observation changed.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections import OrderedDict
from typing import Any, AsyncIterator, Callable

from starlette.concurrency import run_in_threadpool

from cluster_pilot.api import kinds
from cluster_pilot.master.routes.errors import ApiError

KEEP = 256
POLL = 0.25
DEFAULT_TIMEOUT = 1800.0  # a watch ends after this long unless the client asks otherwise (it watches again)

Key = tuple[str, str]  # namespace, name
Reading = dict[Key, tuple[str, dict[str, Any]]]  # fingerprint, object


def key(obj: dict[str, Any]) -> Key:
    return obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def fingerprint(obj: dict[str, Any]) -> str:
    """What a change is: anything but the time a terminating pod is said to have been deleted at."""
    meta = {k: v for k, v in obj["metadata"].items() if k != "deletionTimestamp"}
    return json.dumps({**obj, "metadata": meta, "_deleting": "deletionTimestamp" in obj["metadata"]},
                      sort_keys=True, separators=(",", ":"))


class Readings:
    """The last readings lists answered with, by resourceVersion; the same reading keeps its version."""

    def __init__(self, keep: int = KEEP) -> None:
        self._lock = threading.Lock()
        self._versions = itertools.count(time.time_ns() // 1000)  # µs: above every version of an earlier process
        self._kept: OrderedDict[str, tuple[kinds.Kind, Reading]] = OrderedDict()
        self._last: dict[kinds.Kind, tuple[str, Reading]] = {}
        self._keep = keep

    def version(self, k: kinds.Kind, objects: list[dict[str, Any]]) -> str:
        reading = {key(o): (fingerprint(o), o) for o in objects}
        with self._lock:
            last = self._last.get(k)
            if last is not None and _same(last[1], reading):
                return last[0]
            version = str(next(self._versions))
            self._kept[version] = (k, reading)
            self._last[k] = (version, reading)
            while len(self._kept) > self._keep:
                self._kept.popitem(last=False)
            return version

    def reading(self, k: kinds.Kind, version: str) -> Reading:
        with self._lock:
            found = self._kept.get(version)
        if found is None or found[0] != k:
            raise ApiError(410, f"too old resource version: {version} (list again)", "Expired")
        return found[1]


def _same(a: Reading, b: Reading) -> bool:
    return a.keys() == b.keys() and all(a[k][0] == b[k][0] for k in a)


def changes(before: Reading, after: Reading) -> list[tuple[str, dict[str, Any]]]:
    """The events that make ``before`` into ``after``: deletions first, then additions and changes by name."""
    out = [("DELETED", obj) for k, (_, obj) in sorted(before.items()) if k not in after]
    for k, (mark, obj) in sorted(after.items()):
        if k not in before:
            out.append(("ADDED", obj))
        elif before[k][0] != mark:
            out.append(("MODIFIED", obj))
    return out


def stream(k: kinds.Kind, readings: Readings, read: Callable[[], list[dict[str, Any]]],
           changed: Callable[[], object], admits: Callable[[dict[str, Any]], bool],
           encode: Callable[[dict[str, Any]], dict[str, Any]], params: dict[str, str]) -> AsyncIterator[bytes]:
    """The watch a request asks for (its version checked before the first byte: a 410 is an answer).

    ``read``: every object of the kind now; ``changed``: a value that changes when the view may have (the
    store's version, the observation); ``admits``: the request's selectors; ``encode``: an object as sent (a
    Table row for ``kubectl get -w``)."""
    version = params.get("resourceVersion", "")
    base = None if version in ("", "0") else {key_: v for key_, v in readings.reading(k, version).items()
                                              if admits(v[1])}
    initial = params.get("sendInitialEvents") == "true"
    bookmarks = params.get("allowWatchBookmarks") == "true"
    try:
        timeout = min(float(params.get("timeoutSeconds") or DEFAULT_TIMEOUT), DEFAULT_TIMEOUT * 2)
    except ValueError:
        raise ApiError(400, f"timeoutSeconds {params['timeoutSeconds']!r}: expected a number", "BadRequest") from None

    def line(kind: str, obj: dict[str, Any]) -> bytes:
        return json.dumps({"type": kind, "object": obj}, separators=(",", ":")).encode() + b"\n"

    def bookmark(at: str, initial_end: bool = False) -> bytes:
        meta: dict[str, Any] = {"resourceVersion": at}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return line("BOOKMARK", {"kind": k.kind_v1, "apiVersion": "v1", "metadata": meta})

    async def events() -> AsyncIterator[bytes]:
        nonlocal base
        deadline = time.monotonic() + timeout
        seen_marker: object = None
        while True:
            marker = await run_in_threadpool(changed)
            if marker != seen_marker:
                seen_marker = marker
                objects = await run_in_threadpool(read)
                now = {key(o): (fingerprint(o), o) for o in objects if admits(o)}
                first = base is None
                found = changes(base or {}, now)
                for kind, obj in found:
                    yield line(kind, encode(obj))
                if (first and initial) or (bookmarks and found and not first):
                    yield bookmark(readings.version(k, objects), initial_end=first and initial)
                base = now
            left = deadline - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(POLL, left))  # poll step; a feed from the store is the next slice

    return events()
