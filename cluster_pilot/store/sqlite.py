"""The record of what was asked: objects as applied, their resource versions and history.

A record, never the truth of what runs (the hosts are). SQLite in WAL mode with ``synchronous=FULL``: every
write is one transaction and is durable when the call returns. Bodies hold pods' environments, so the files
are private (0600, in a 0700 directory), and history keeps the last ``history_limit`` versions per object.
The interface is small (``Store``): ``postgres.PostgresStore`` stands behind it too, with the same semantics.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


class Conflict(Exception):
    """The object changed since the version the caller read (or exists already, on create)."""


class NotFound(Exception):
    pass


@dataclass(frozen=True)
class Record:
    kind: str
    name: str
    body: dict[str, Any]  # the object as given (JSON), re-normalised when read
    resource_version: int
    applyset: str = ""
    updated_at: float = 0.0


class Store(Protocol):
    def get(self, kind: str, name: str) -> Record: ...
    def list(self, kind: str | None = None) -> list[Record]: ...
    def put(self, kind: str, name: str, body: dict[str, Any], *, expect_version: int | None = None,
            create_only: bool = False, applyset: str = "", actor: str = "") -> Record: ...
    def delete(self, kind: str, name: str, *, expect_version: int | None = None, actor: str = "") -> Record: ...
    def history(self, kind: str | None = None, name: str | None = None, limit: int = 50) -> list[dict[str, Any]]: ...
    def hold_lease(self, holder: str, ttl: float) -> int | None: ...
    def release_lease(self, holder: str) -> None: ...
    def leader(self) -> tuple[str, int, float] | None: ...
    def version(self) -> int: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL, resource_version INTEGER NOT NULL,
    applyset TEXT NOT NULL DEFAULT '', updated_at REAL NOT NULL, PRIMARY KEY (kind, name));
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, verb TEXT NOT NULL, kind TEXT NOT NULL,
    name TEXT NOT NULL, resource_version INTEGER NOT NULL, actor TEXT NOT NULL DEFAULT '', body TEXT);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counters VALUES ('resource_version', 0);
CREATE INDEX IF NOT EXISTS history_object ON history (kind, name, id);
CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, term INTEGER NOT NULL,
    expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
    reason TEXT NOT NULL, message TEXT NOT NULL, node TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS events_object ON events (kind, name, id);
"""
HISTORY_LIMIT = 100
LEADER = "leader"  # the lease the masters of one store elect their reconciler with


class SqlStore:
    """The objects, versions and history in SQL both backends speak (``?`` placeholders): a subclass gives the
    per-thread connection (``_db``), a write transaction (``_tx``) and ``_serialise``, which makes the writes of
    every connection go one at a time from the first statement on (SQLite's ``BEGIN IMMEDIATE`` already does)."""

    history_limit: int
    NOW = "(julianday('now') - 2440587.5) * 86400.0"  # the database's clock, in seconds since the epoch

    def _db(self) -> Any:
        raise NotImplementedError

    def _tx(self) -> Any:
        raise NotImplementedError

    def _serialise(self, db: Any) -> None:
        pass

    @staticmethod
    def _record(row: tuple) -> Record:
        kind, name, body, rv, applyset, updated = row
        return Record(kind, name, json.loads(body), rv, applyset, updated)

    def get(self, kind: str, name: str) -> Record:
        row = self._db().execute("SELECT kind, name, body, resource_version, applyset, updated_at FROM objects "
                                 "WHERE kind = ? AND name = ?", (kind, name)).fetchone()
        if row is None:
            raise NotFound(f"{kind} {name!r} not found")
        return self._record(row)

    def list(self, kind: str | None = None) -> list[Record]:
        sql = "SELECT kind, name, body, resource_version, applyset, updated_at FROM objects"
        rows = self._db().execute(sql + (" WHERE kind = ?" if kind else "") + " ORDER BY kind, name",
                                  (kind,) if kind else ()).fetchall()
        return [self._record(r) for r in rows]

    def put(self, kind: str, name: str, body: dict[str, Any], *, expect_version: int | None = None,
            create_only: bool = False, applyset: str = "", actor: str = "") -> Record:
        text = json.dumps(body, sort_keys=True)
        with self._tx() as db:
            self._serialise(db)
            row = db.execute("SELECT body, resource_version FROM objects WHERE kind = ? AND name = ?",
                             (kind, name)).fetchone()
            if row is not None and create_only:
                raise Conflict(f"{kind} {name!r} already exists")
            if expect_version is not None and (row is None or row[1] != expect_version):
                raise Conflict(f"{kind} {name!r} was changed since resourceVersion {expect_version}"
                               if row else f"{kind} {name!r} not found")
            if row is not None and row[0] == text:
                return self._record((kind, name, row[0], row[1], applyset, time.time()))
            rv = db.execute("UPDATE counters SET value = value + 1 WHERE name = 'resource_version' "
                            "RETURNING value").fetchone()[0]
            now = time.time()
            db.execute("INSERT INTO objects VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (kind, name) DO UPDATE SET "
                       "body = excluded.body, resource_version = excluded.resource_version, "
                       "applyset = excluded.applyset, updated_at = excluded.updated_at",
                       (kind, name, text, rv, applyset, now))
            db.execute("INSERT INTO history (at, verb, kind, name, resource_version, actor, body) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (now, "create" if row is None else "update", kind, name, rv, actor, text))
            self._trim(db, kind, name)
        return Record(kind, name, json.loads(text), rv, applyset, now)

    def delete(self, kind: str, name: str, *, expect_version: int | None = None, actor: str = "") -> Record:
        with self._tx() as db:
            self._serialise(db)
            row = db.execute("SELECT kind, name, body, resource_version, applyset, updated_at FROM objects "
                             "WHERE kind = ? AND name = ?", (kind, name)).fetchone()
            if row is None:
                raise NotFound(f"{kind} {name!r} not found")
            if expect_version is not None and row[3] != expect_version:
                raise Conflict(f"{kind} {name!r} was changed since resourceVersion {expect_version}")
            db.execute("DELETE FROM objects WHERE kind = ? AND name = ?", (kind, name))
            rv = db.execute("UPDATE counters SET value = value + 1 WHERE name = 'resource_version' "
                            "RETURNING value").fetchone()[0]
            db.execute("INSERT INTO history (at, verb, kind, name, resource_version, actor, body) "
                       "VALUES (?, 'delete', ?, ?, ?, ?, NULL)", (time.time(), kind, name, rv, actor))
            self._trim(db, kind, name)
        return self._record(row)

    def _trim(self, db: Any, kind: str, name: str) -> None:
        """Only the newest ``history_limit`` entries of one object stay (the index makes this a short walk)."""
        db.execute("DELETE FROM history WHERE kind = ? AND name = ? AND id <= (SELECT id FROM history WHERE "
                   "kind = ? AND name = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                   (kind, name, kind, name, self.history_limit))

    def history(self, kind: str | None = None, name: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        where, args = [], []
        if kind:
            where.append("kind = ?")
            args.append(kind)
        if name:
            where.append("name = ?")
            args.append(name)
        sql = "SELECT at, verb, kind, name, resource_version, actor FROM history"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._db().execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        return [dict(zip(("at", "verb", "kind", "name", "resource_version", "actor"), r)) for r in rows]


    # --- the leader lease ------------------------------------------------------------------------------------
    def hold_lease(self, holder: str, ttl: float) -> int | None:
        """Take the leader lease, or renew it: its term while ``holder`` holds it, None while another does.
        One statement, so two masters never both hold it; timed by the database's clock, so the masters'
        clocks may disagree. A new holder, or one whose lease ran out, gets the next term: the fencing term
        that tells a pass of this holding from one of an earlier."""
        row = self._db().execute(
            f"INSERT INTO leases AS l (name, holder, term, expires_at) VALUES (?, ?, 1, {self.NOW} + ?) "
            f"ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at, "
            f"term = CASE WHEN l.holder = excluded.holder AND l.expires_at > {self.NOW} THEN l.term "
            f"ELSE l.term + 1 END WHERE l.holder = excluded.holder OR l.expires_at <= {self.NOW} RETURNING term",
            (LEADER, holder, ttl)).fetchone()
        return None if row is None else int(row[0])

    def release_lease(self, holder: str) -> None:
        """A master that stops lets another lead at once rather than after the lease's time."""
        self._db().execute(f"UPDATE leases SET expires_at = {self.NOW} - 1 WHERE name = ? AND holder = ?",
                           (LEADER, holder))

    def leader(self) -> tuple[str, int, float] | None:
        """(holder, term, seconds left) of a lease not run out, or None."""
        row = self._db().execute(f"SELECT holder, term, expires_at - {self.NOW} FROM leases WHERE name = ? "
                                 f"AND expires_at > {self.NOW}", (LEADER,)).fetchone()
        return None if row is None else (row[0], int(row[1]), float(row[2]))

    def version(self) -> int:
        """The store's resource version: another master's write shows here as a change."""
        return int(self._db().execute("SELECT value FROM counters WHERE name = 'resource_version'").fetchone()[0])


class SQLiteStore(SqlStore):
    def __init__(self, path: Path, history_limit: int = HISTORY_LIMIT) -> None:
        self.path = Path(path)
        self.history_limit = history_limit
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _private(self.path)
        self._local = threading.local()
        self._db().executescript(_SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=30000")
            self._local.db = db
        return db

    class _Tx:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> sqlite3.Connection:
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, exc_type, exc, tb) -> bool:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")
            return False

    def _tx(self) -> "SQLiteStore._Tx":
        return SQLiteStore._Tx(self._db())

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


def _private(path: Path) -> None:
    """The database made 0600 before SQLite opens it (its WAL and SHM files take the database's mode), and
    older files tightened."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.exists() and file.stat().st_mode & 0o077:
            os.chmod(file, 0o600)


def open_store(url_or_path: str | Path, history_limit: int = HISTORY_LIMIT) -> "Store":
    """``sqlite:///relative.db``, ``sqlite:////absolute.db`` (SQLAlchemy's spelling), a plain path, or
    ``postgresql://USER:PASSWORD@HOST:PORT/DB`` (``postgres.PostgresStore``)."""
    text = str(url_or_path)
    if text.startswith(("postgresql://", "postgres://")):
        from cluster_pilot.store.postgres import PostgresStore

        return PostgresStore(text, history_limit)
    if text.startswith("sqlite:///"):
        text = text[len("sqlite:///"):]
    elif "://" in text:
        raise ValueError(f"unsupported store {text.split('://', 1)[0]}://...: sqlite:///PATH or postgresql://...")
    return SQLiteStore(Path(text), history_limit)
