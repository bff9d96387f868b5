"""One real sandbox for the whole end-to-end session, in a home of its own, removed at the end. A test that
changes the fleet itself (stops a minion, adds one) puts it back before it ends."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cluster_pilot.sandbox import Sandbox
from tests.waits import wait_for  # noqa: F401 - the e2e tests import it from here

MINIONS = 3


def cli(*args: str, home: Path, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    """Run the real ``cluster-pilot`` command, as a user would."""
    env = dict(os.environ, CLUSTER_PILOT_HOME=str(home))
    proc = subprocess.run([sys.executable, "-m", "cluster_pilot", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(f"cluster-pilot {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


_times: dict[str, float] = {}


def pytest_collection_modifyitems(config, items):
    """The slow tests (``-m slow``) last, in their order: the rest of the suite's time is read off the same run,
    on the same sandbox, with no second ``sandbox up``."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is not None)


def pytest_sessionstart(session):
    _times["start"] = time.monotonic()


def pytest_runtest_logfinish(nodeid, location):
    _times["slow" if nodeid in _slow else "rest"] = time.monotonic()


_slow: set[str] = set()


def pytest_collection_finish(session):
    _slow.update(item.nodeid for item in session.items if item.get_closest_marker("slow"))


def pytest_terminal_summary(terminalreporter):
    if "rest" in _times:
        rest = _times["rest"] - _times["start"]
        slow = _times["slow"] - _times["rest"] if "slow" in _times else 0.0
        terminalreporter.write_line(f"e2e without the slow tests: {rest:.0f} s (sandbox up included); "
                                    f"the {len(_slow)} slow tests after them: {slow:.0f} s")


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


def ssh(sandbox: Sandbox, address: str, command: str, timeout: float = 120) -> subprocess.CompletedProcess:
    from cluster_pilot.sandbox.fleet import SSH_OPTIONS

    return subprocess.run(["ssh", *SSH_OPTIONS, "-i", str(sandbox.key), f"root@{address}", command],
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def managed_containers(sandbox: Sandbox) -> list[dict]:
    """Every cluster-pilot container on every ready minion, read with plain docker (not our observer)."""
    import json

    out = []
    for m in sandbox.status():
        if not m.ready:
            continue
        proc = ssh(sandbox, m.address, "docker ps -a --filter label=io.cluster-pilot.pod --format '{{json .}}'")
        assert proc.returncode == 0, proc.stderr
        for line in proc.stdout.splitlines():
            doc = json.loads(line)
            labels = dict(kv.split("=", 1) for kv in doc["Labels"].split(",") if "=" in kv)
            out.append({"minion": m.name, "address": m.address, "id": doc["ID"], "name": doc["Names"],
                        "state": doc["State"], "image": doc["Image"], "pod": labels.get("io.cluster-pilot.pod"),
                        "container": labels.get("io.cluster-pilot.container"),
                        "controller": labels.get("io.cluster-pilot.controller", "")})
    return out


def write_manifest(path: Path, doc: dict) -> Path:
    import json

    path.write_text(json.dumps(doc, indent=2))
    return path


def rc_manifest(name: str, replicas: int, image: str = "busybox", command=None, labels=None, ports=None) -> dict:
    """A v1beta1 replicationController, as people wrote them in 2014."""
    labels = labels or {"name": name}
    container = {"name": "app", "image": image, "command": command or ["sleep", "2147483647"]}
    if ports:
        container["ports"] = ports
    return {"kind": "ReplicationController", "apiVersion": "v1beta1", "id": name, "labels": labels,
            "desiredState": {"replicas": replicas, "replicaSelector": labels,
                             "podTemplate": {"labels": labels, "desiredState": {"manifest": {
                                 "version": "v1beta1", "containers": [container]}}}}}


def pods_of(sandbox: Sandbox, controller: str) -> dict[str, list[dict]]:
    """pod name -> its containers, for one controller."""
    pods: dict[str, list[dict]] = {}
    for c in managed_containers(sandbox):
        if c["controller"] == controller:
            pods.setdefault(c["pod"], []).append(c)
    return pods
