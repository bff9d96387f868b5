"""One real sandbox for the whole end-to-end session, in a home of its own, removed at the end."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cluster_pilot.sandbox import Sandbox

MINIONS = 3


def cli(*args: str, home: Path, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    """Run the real ``cluster-pilot`` command, as a user would."""
    env = dict(os.environ, CLUSTER_PILOT_HOME=str(home))
    proc = subprocess.run([sys.executable, "-m", "cluster_pilot", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(f"cluster-pilot {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def wait_for(condition, timeout: float, what: str, interval: float = 0.2):
    """Poll ``condition`` until it returns something truthy, or fail naming what never happened."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)  # poll step of a deadline wait


@pytest.fixture(scope="session")
def sandbox_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("e2e-home")
    cli("sandbox", "up", "--minions", str(MINIONS), home=home, timeout=900)
    yield home
    cli("sandbox", "down", home=home, check=False)


@pytest.fixture(scope="session")
def sandbox(sandbox_home) -> Sandbox:
    return Sandbox(sandbox_home)


@pytest.fixture(autouse=True)
def _e2e_env(request, monkeypatch):
    if request.node.get_closest_marker("e2e") and "sandbox_home" in request.fixturenames:
        monkeypatch.setenv("CLUSTER_PILOT_HOME", str(request.getfixturevalue("sandbox_home")))
