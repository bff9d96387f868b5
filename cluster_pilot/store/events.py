"""What the master did and why, as events: a table of its own beside the objects, bounded to the newest ones.

Events are a record for people (``get events``, ``describe``, the dashboard), never an input to a decision:
losing old ones costs nothing, so the table keeps the last ``limit`` and drops the rest as it goes.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

LIMIT = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
    reason TEXT NOT NULL, message TEXT NOT NULL, node TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS events_object ON events (kind, name, id);
"""


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
    """Append and read events in an SQLite file (the master's store file: one file to back up)."""

    def __init__(self, path: Path, limit: int = LIMIT) -> None:
        self.path, self.limit = Path(path), limit
        self._local = threading.local()
        self._db().executescript(_SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=30000")
            self._local.db = db
        return db

    def record(self, events: Iterable[Event]) -> None:
        rows = [(e.at or time.time(), e.kind, e.name, e.reason, e.message, e.node) for e in events]
        if not rows:
            return
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("INSERT INTO events (at, kind, name, reason, message, node) VALUES (?, ?, ?, ?, ?, ?)",
                           rows)
            db.execute("DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?", (self.limit,))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def list(self, kind: str | None = None, name: str | None = None, after: int = 0,
             limit: int = 500) -> list[Event]:
        """The newest ``limit`` events after id ``after`` (a watcher's cursor), oldest first."""
        where, args = ["id > ?"], [after]
        if kind:
            where.append("kind = ?")
            args.append(kind)
        if name:
            where.append("name = ?")
            args.append(name)
        rows = self._db().execute(
            "SELECT id, at, kind, name, reason, message, node FROM events WHERE " + " AND ".join(where)
            + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        return [Event(kind=k, name=n, reason=r, message=m, node=nd, at=at, id=i)
                for i, at, k, n, r, m, nd in reversed(rows)]
