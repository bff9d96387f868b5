from __future__ import annotations

import os
import signal

import pytest

from cluster_pilot.store import Conflict, NotFound, SQLiteStore, open_store


def test_put_get_versions_and_history(tmp_path):
    s = SQLiteStore(tmp_path / "s.db")
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
    store = SQLiteStore(path)
    for i in range(n):
        store.put("Pod", f"p{i}", {"i": i})
        print(i, flush=True)


def test_acknowledged_writes_survive_sigkill(tmp_path):
    path = str(tmp_path / "s.db")
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
            if acknowledged >= 50:
                os.kill(pid, signal.SIGKILL)
                break
    os.waitpid(pid, 0)
    store = SQLiteStore(path)
    names = {rec.name for rec in store.list("Pod")}
    assert {f"p{i}" for i in range(acknowledged + 1)} <= names


def test_open_store_urls(tmp_path):
    assert open_store(f"sqlite:///{tmp_path}/a.db").path == tmp_path / "a.db"
    with pytest.raises(ValueError):
        open_store("postgresql://x/y")
