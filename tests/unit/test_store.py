from __future__ import annotations

import os
import signal

import pytest

from cluster_pilot.store import Conflict, NotFound, SQLiteStore, open_store
from tests.postgres import postgres


@pytest.fixture(scope="module")
def server():
    with postgres() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def where(request, tmp_path) -> str:
    """A fresh store's URL on each backend: the same tests hold both to the same semantics."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/s.db"
    import psycopg

    url = request.getfixturevalue("server")
    name = "t" + os.urandom(6).hex()
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(f"CREATE DATABASE {name}")
    return url.rsplit("/", 1)[0] + "/" + name


def test_put_get_versions_and_history(where):
    s = open_store(where)
    a = s.put("Pod", "p", {"x": 1}, actor="t")
    assert a.resource_version == 1
    same = s.put("Pod", "p", {"x": 1})
    assert same.resource_version == 1  # unchanged body: no new version
    b = s.put("Pod", "p", {"x": 2}, expect_version=1)
    assert b.resource_version == 2 and s.get("Pod", "p").body == {"x": 2}
    with pytest.raises(Conflict):
        s.put("Pod", "p", {"x": 3}, expect_version=1)
    with pytest.raises(Conflict):
        s.put("Pod", "p", {"x": 3}, create_only=True)
    s.delete("Pod", "p")
    with pytest.raises(NotFound):
        s.get("Pod", "p")
    assert [h["verb"] for h in s.history("Pod", "p")] == ["delete", "update", "create"]


def _writer(path: str, n: int) -> None:
    store = open_store(path)
    for i in range(n):
        store.put("Pod", f"p{i}", {"i": i})
        print(i, flush=True)


def test_acknowledged_writes_survive_sigkill(where):
    path = where
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: write forever, acknowledging each write on the pipe
        os.close(r)
        os.dup2(w, 1)
        _writer(path, 10_000)
        os._exit(0)
    os.close(w)
    acknowledged = -1
    with os.fdopen(r) as pipe:
        for line in pipe:
            acknowledged = int(line)
            if acknowledged >= 20:
                os.kill(pid, signal.SIGKILL)
                break
    os.waitpid(pid, 0)
    store = open_store(path)
    names = {rec.name for rec in store.list("Pod")}
    assert {f"p{i}" for i in range(acknowledged + 1)} <= names


def test_open_store_urls(tmp_path):
    assert open_store(f"sqlite:///{tmp_path}/a.db").path == tmp_path / "a.db"
    with pytest.raises(ValueError, match="unsupported store mysql://"):
        open_store("mysql://x/y")


def test_a_postgresql_store_never_prints_its_password(server):
    url = server.replace("cp@", "cp:s3cret-pw@").rsplit(":", 1)[0] + ":1/cp"  # a port nothing listens on
    with pytest.raises(ValueError) as refused:
        open_store(url)
    assert "s3cret-pw" not in str(refused.value) and "cp:***@127.0.0.1:1/cp" in str(refused.value)


def test_the_password_is_redacted_in_every_url_form():
    from cluster_pilot.store.postgres import redacted

    assert redacted("postgresql://cp:pw@h1:5432,h2:5432/db?target_session_attrs=read-write") == (
        "postgresql://cp:***@h1:5432,h2:5432/db?target_session_attrs=read-write")
    assert redacted("postgresql://cp@h/db") == "postgresql://cp@h/db"


def test_versions_stay_one_sequence_across_connections(where):
    """Two masters over one database: every write, whichever wrote it, gets a version above every earlier one."""
    a, b = open_store(where), open_store(where)
    versions = [(a if i % 2 else b).put("Pod", f"p{i % 3}", {"i": i}).resource_version for i in range(12)]
    assert versions == sorted(versions) and len(set(versions)) == 12
    assert b.get("Pod", "p2").body == {"i": 11} and a.history(limit=1)[0]["resource_version"] == versions[-1]


def test_history_keeps_the_newest_per_object(where):
    s = open_store(where, history_limit=3)
    for i in range(6):
        s.put("Pod", "p", {"i": i})
    s.put("Pod", "q", {"i": 0})
    assert [h["resource_version"] for h in s.history("Pod", "p")] == [6, 5, 4]
    assert len(s.history()) == 4


def test_one_leader_at_a_time_and_every_new_holding_a_higher_term(where):
    """The leader lease: renewing keeps the term; a release or a lease run out lets another take it, with the
    next term; while it lasts, nobody else gets it."""
    from tests.waits import wait_for

    a, b = open_store(where), open_store(where)
    assert a.hold_lease("A", 30) == 1 and b.hold_lease("B", 30) is None
    assert a.hold_lease("A", 30) == 1 and b.leader()[:2] == ("A", 1) and 29 < b.leader()[2] <= 30
    a.release_lease("A")
    assert b.leader() is None and b.hold_lease("B", 0.3) == 2 and a.hold_lease("A", 30) is None
    term = wait_for(lambda: a.hold_lease("A", 30), 10, "B's short lease to run out")
    assert term == 3 and b.hold_lease("B", 30) is None and a.version() == 0


def test_masters_racing_for_the_lease_elect_exactly_one(where):
    import threading

    stores = [open_store(where) for _ in range(6)]
    for round_ in range(5):
        won: list[tuple[str, int]] = []
        go = threading.Barrier(len(stores))

        def race(i: int) -> None:
            go.wait()
            term = stores[i].hold_lease(f"m{i}", 30)
            if term is not None:
                won.append((f"m{i}", term))

        threads = [threading.Thread(target=race, args=(i,)) for i in range(len(stores))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(won) == 1 and won[0][1] == round_ + 1, won
        stores[0].release_lease(won[0][0])


def test_another_masters_write_shows_as_a_new_store_version(where):
    a, b = open_store(where), open_store(where)
    before = b.version()
    a.put("Pod", "p", {"x": 1})
    assert b.version() == before + 1


def test_events_one_master_records_are_read_by_another_of_the_store_and_stay_bounded(where):
    """The leader records what its passes did; every master of the store (a follower's dashboard) reads it."""
    from cluster_pilot.store.events import Event, EventLog

    leader, follower = EventLog(open_store(where), limit=3), EventLog(open_store(where))
    leader.record([Event("Pod", f"p{i}", "Created", f"made {i}", "minion-1") for i in range(5)])
    seen = follower.list()
    assert [e.name for e in seen] == ["p2", "p3", "p4"] and seen[0].message == "made 2"
    assert [e.name for e in follower.list("Pod", "p4")] == ["p4"]
    assert [e.name for e in follower.list(after=seen[1].id)] == ["p4"]
