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
