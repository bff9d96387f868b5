"""SSH control sockets: a path the kernel accepts whatever the state dir, and private to its user."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from cluster_pilot.errors import UserError
from cluster_pilot.host.ssh import control_dir


@pytest.fixture
def short_dir():
    d = Path(tempfile.mkdtemp(prefix="cp", dir="/tmp"))
    yield d
    shutil.rmtree(d)


def test_a_short_state_dir_keeps_its_sockets_inside(short_dir):
    assert control_dir(short_dir) == short_dir / "cm"


def test_a_deep_state_dir_gets_a_short_private_socket_dir(tmp_path):
    deep = tmp_path / ("workspace-" * 12) / "cluster-pilot-home"
    deep.mkdir(parents=True)
    d = control_dir(deep)
    assert d != deep / "cm" and d == control_dir(deep)  # the same every time: runs share their masters
    assert oct(d.stat().st_mode & 0o777) == "0o700"
    # a socket as ssh names it (%C is 40 hex characters, plus its temporary suffix) can be bound there
    path = str(d / ("c" * 40 + ".ABCDEFGHIJKLMNOP"))
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(path)
    os.unlink(path)


def test_a_socket_dir_others_can_enter_is_made_private(short_dir):
    (short_dir / "cm").mkdir()
    os.chmod(short_dir / "cm", 0o755)
    assert oct(control_dir(short_dir).stat().st_mode & 0o777) == "0o700"


def test_a_socket_dir_of_another_user_is_refused(short_dir, monkeypatch):
    (short_dir / "cm").mkdir()
    monkeypatch.setattr(os, "getuid", lambda: 4242)
    with pytest.raises(UserError, match="another user"):
        control_dir(short_dir)


def test_observation_asks_every_host_through_a_window_and_names_why_each_did_not_answer(short_dir, monkeypatch):
    """Real ssh clients against a closed port: each host's own failure comes back, in inventory order, also
    for hosts started only as earlier answers were read; a skipped host is not asked at all."""
    from cluster_pilot.host import observe as observe_module
    from cluster_pilot.model import Node, Resources

    monkeypatch.setattr(observe_module, "WINDOW", 1)
    nodes = [Node(f"m{i}", "127.0.0.1", Resources(1000, 1 << 30, 10), vars={"ansible_port": 1})
             for i in range(3)] + [Node("down", "127.0.0.1", Resources(1000, 1 << 30, 10))]
    seen = observe_module.observe(nodes, short_dir, timeout=10, skip={"down"})
    assert list(seen.hosts) == ["m0", "m1", "m2", "down"]
    assert seen.unreachable["down"] == "down (not asked)"
    assert all("refused" in seen.unreachable[f"m{i}"] for i in range(3)), seen.unreachable
