"""What the master did and why, as events: a table of its own beside the objects, bounded to the newest ones.

Events are a record for people (``get events``, ``describe``, the dashboard), never an input to a decision:
losing old ones costs nothing, so the table keeps the last ``limit`` and drops the rest as it goes. The table
lives in the store (either backend creates it): on PostgreSQL the leader records and every master reads.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

from cluster_pilot.store.sqlite import SqlStore, SQLiteStore

LIMIT = 10_000


@dataclass(frozen=True)
class Event:
    kind: str  # of the object it is about: Pod, ReplicationController, Service, Minion
    name: str
    reason: str  # Scheduled, Created, Replaced, Killed, Restarted, Evicted, FailedScheduling, MinionReady, ...
    message: str
    node: str = ""
    at: float = 0.0
    id: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class EventLog:
    """Append and read events in the store's own database (one to back up), over its connections."""

    def __init__(self, store: SqlStore, limit: int = LIMIT) -> None:
        self.limit = limit
        self._db, self._tx = store._db, store._tx  # the store's per-thread connections and transactions

    @classmethod
    def open(cls, path: Path, limit: int = LIMIT) -> "EventLog":
        return cls(SQLiteStore(path), limit)

    def record(self, events: Iterable[Event]) -> None:
        rows = [(e.at or time.time(), e.kind, e.name, e.reason, e.message, e.node) for e in events]
        if not rows:
            return
        with self._tx() as db:
            for row in rows:
                db.execute("INSERT INTO events (at, kind, name, reason, message, node) VALUES (?, ?, ?, ?, ?, ?)",
                           row)
            db.execute("DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?", (self.limit,))

    def list(self, kind: str | None = None, name: str | None = None, after: int = 0,
             limit: int = 500) -> list[Event]:
        """The newest ``limit`` events after id ``after`` (a watcher's cursor), oldest first."""
        terms = [(sql, value) for sql, value in (("id > ?", after), ("kind = ?", kind), ("name = ?", name))
                 if value or sql.startswith("id")]
        where, args = [sql for sql, _ in terms], [value for _, value in terms]
        rows = self._db().execute(
            "SELECT id, at, kind, name, reason, message, node FROM events WHERE " + " AND ".join(where)
            + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        return [Event(kind=k, name=n, reason=r, message=m, node=nd, at=at, id=i)
                for i, at, k, n, r, m, nd in reversed(rows)]
