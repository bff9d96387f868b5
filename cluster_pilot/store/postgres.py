"""The ``Store`` on PostgreSQL (psycopg 3), for several masters over one database.

The same SQL and semantics as ``sqlite`` (``SqlStore``): one global resource version (a counter row, taken ``FOR UPDATE`` inside each
write's transaction, so versions are strictly increasing across every master), an unchanged body makes no new
version, ``expect_version`` and ``create_only`` are checked in the writing transaction, history keeps the newest
``history_limit`` entries per object. A write is acknowledged once its transaction committed (PostgreSQL's
``synchronous_commit`` decides durability: on by default). The URL carries the credentials: it is never printed
(``redacted``).
"""

from __future__ import annotations

import threading
from typing import Any, Sequence

from cluster_pilot.store.sqlite import HISTORY_LIMIT, SqlStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL, resource_version BIGINT NOT NULL,
    applyset TEXT NOT NULL DEFAULT '', updated_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (kind, name));
CREATE TABLE IF NOT EXISTS history (
    id BIGSERIAL PRIMARY KEY, at DOUBLE PRECISION NOT NULL, verb TEXT NOT NULL, kind TEXT NOT NULL,
    name TEXT NOT NULL, resource_version BIGINT NOT NULL, actor TEXT NOT NULL DEFAULT '', body TEXT);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO counters VALUES ('resource_version', 0) ON CONFLICT DO NOTHING;
CREATE INDEX IF NOT EXISTS history_object ON history (kind, name, id);
CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, term BIGINT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL);
INSERT INTO counters VALUES ('cluster', (random() * 4611686018427387903)::bigint) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS events (
    id BIGSERIAL PRIMARY KEY, at DOUBLE PRECISION NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
    reason TEXT NOT NULL, message TEXT NOT NULL, node TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS events_object ON events (kind, name, id);
"""


def redacted(url: str) -> str:
    """The URL without its password, for messages (libpq's multi-host form too: ``u:pw@h1:5432,h2:5432``)."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, hosts = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return f"{scheme}{sep}{userinfo.split(':', 1)[0]}:***@{hosts}"


class _Connection:
    """A psycopg connection that takes the SQL ``SqlStore`` writes (``?`` placeholders)."""

    def __init__(self, db: Any) -> None:
        self.db = db

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any:
        return self.db.execute(sql.replace("?", "%s"), args)


class _Tx:
    def __init__(self, db: Any) -> None:
        self.db, self._tx = db, db.transaction()

    def __enter__(self) -> _Connection:
        self._tx.__enter__()
        return _Connection(self.db)

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._tx.__exit__(exc_type, exc, tb)
        return False


class PostgresStore(SqlStore):
    NOW = "extract(epoch FROM clock_timestamp())::double precision"

    def __init__(self, url: str, history_limit: int = HISTORY_LIMIT) -> None:
        import psycopg

        self.url = url
        self.history_limit = history_limit
        self._psycopg = psycopg
        self._local = threading.local()
        try:
            with self._tx() as db:
                db.execute("SELECT pg_advisory_xact_lock(7033)")  # two masters creating the schema at once
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    db.execute(statement)
        except psycopg.OperationalError as exc:
            raise ValueError(f"cannot open store {redacted(url)}: {str(exc).replace(url, redacted(url))}") from None

    def owner(self) -> str:
        """Who the objects of this store's masters belong to, in the minions' records: the same for every master
        of the database, whatever URL each was given for it."""
        cluster = self._db().execute("SELECT value FROM counters WHERE name = 'cluster'").fetchone()[0]
        return f"the masters of PostgreSQL store {int(cluster):x}"

    def _raw(self) -> Any:
        db = getattr(self._local, "db", None)
        if db is None or db.closed:
            db = self._psycopg.connect(self.url, autocommit=True)
            self._local.db = db
        return db

    def _db(self) -> _Connection:
        return _Connection(self._raw())

    def _tx(self) -> _Tx:
        return _Tx(self._raw())

    def _serialise(self, db: Any) -> None:
        """The counter row locked first: a write reads the object and takes the next version after every
        other connection's write committed (two creates of one name: the second sees the first's row)."""
        db.execute("SELECT value FROM counters WHERE name = 'resource_version' FOR UPDATE")

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
