"""The master on the sandbox: the seed's commands with the real 2014 kubecfg, healing, lost minions, restarts."""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import cli, managed_containers, pods_of, rc_manifest, ssh, wait_for, write_manifest

pytestmark = pytest.mark.e2e

KUBECFG_2014 = Path(__file__).resolve().parents[3] / "shared" / "kubecfg-2014" / "kubecfg-v0.4"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Master:
    def __init__(self, home: Path, *extra: str) -> None:
        self.home, self.extra = home, extra
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log = home / f"master-{self.port}.log"

    @property
    def url(self) -> str:
        scheme = "https" if "--tls-cert" in self.extra else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> "Master":
        env = dict(os.environ, CLUSTER_PILOT_HOME=str(self.home))
        self.proc = subprocess.Popen([sys.executable, "-m", "cluster_pilot", "master", "--listen",
                                      f"127.0.0.1:{self.port}", *self.extra], env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"))

        def healthy() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return True
            except OSError:
                assert self.proc.poll() is None, self.log.read_text()
                return False

        wait_for(healthy, 60, "the master to listen")
        return self

    def kill(self, sig=signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=60)

    def passes(self) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as resp:
            for line in resp.read().decode().splitlines():
                if line.startswith("cluster_pilot_reconcile_duration_seconds_count"):
                    return int(float(line.split()[-1]))  # the text format writes counts as 3.0
        return 0

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as resp:
            return json.loads(resp.read())


@pytest.fixture
def master(sandbox_home):
    m = Master(sandbox_home, "--insecure-loopback").start()
    yield m
    m.kill()


def kubecfg(master: Master, *args: str, home: Path | None = None, timeout: float = 400) -> subprocess.CompletedProcess:
    """The original 2014 client, unchanged, with a HOME of its own."""
    env = {"PATH": os.environ["PATH"], "HOME": str(home or master.home / "kubecfg-home")}
    Path(env["HOME"]).mkdir(exist_ok=True)
    return subprocess.run([str(KUBECFG_2014), "-h", master.url, *args], capture_output=True, text=True, env=env,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def pod_rows(master: Master) -> dict[str, list[str]]:
    out = kubecfg(master, "list", "/pods").stdout
    return {line.split()[0]: line.split() for line in out.splitlines()[2:] if line.strip()}


def test_the_seeds_three_commands_verbatim(master, sandbox):
    t0 = time.monotonic()
    created = kubecfg(master, "-c", str(EXAMPLES / "seed-2014" / "redis-master.json"), "create", "/pods")
    assert created.returncode == 0, created.stderr
    create_s = time.monotonic() - t0
    name = json.loads((EXAMPLES / "seed-2014" / "redis-master.json").read_text())["id"]

    def running():
        row = pod_rows(master).get(name)
        return row if row and row[-1] == "Running" else None

    row = wait_for(running, 120, "the seed's pod to run")
    listed_s = time.monotonic() - t0
    host, ip = row[2].split("/")
    assert host.startswith("minion-") and ip.count(".") == 3
    on_host = [c for c in managed_containers(sandbox) if c["pod"] == name]
    assert on_host and {c["minion"] for c in on_host} == {host}

    t1 = time.monotonic()
    deleted = kubecfg(master, "delete", f"/pods/{name}")
    assert deleted.returncode == 0 and "Success" in deleted.stdout
    wait_for(lambda: not [c for c in managed_containers(sandbox) if c["pod"] == name], 60,
             "the pod's containers to leave the minion")
    print(f"\nseed commands: create {create_s:.2f} s, running and listed after {listed_s:.1f} s, "
          f"delete to containers gone {time.monotonic() - t1:.1f} s")


def _rc_running(sandbox, rc: str, count: int, avoid: str | None = None):
    pods = pods_of(sandbox, rc)
    ok = [p for p, cs in pods.items() if cs and all(c["state"] == "running" for c in cs)
          and (avoid is None or cs[0]["minion"] != avoid)]
    return len(ok) == count and len(pods) == count


def minion_ready(master: Master, name: str) -> bool:
    return master.get(f"/api/v1beta1/minions/{name}")["status"]["conditions"][0]["status"] == "Full"


def lose_minion(master: Master, home: Path, sandbox, lost: str, rc: str, count: int) -> tuple[float, float]:
    """Stop ``lost``; seconds until the master marks it not ready, and until ``rc`` is at full count elsewhere."""
    t0 = time.monotonic()
    cli("sandbox", "stop", lost, home=home)
    wait_for(lambda: not minion_ready(master, lost), 60, f"{lost} to be marked not ready")
    marked = time.monotonic() - t0
    wait_for(lambda: _rc_running(sandbox, rc, count, avoid=lost), 120, f"{rc} back at full count")
    return marked, time.monotonic() - t0


@pytest.mark.slow
def test_self_healing_and_lost_minion(master, sandbox_home, sandbox, tmp_path):
    rc_file = write_manifest(tmp_path / "heal.json", rc_manifest("healer", 3, image="redis",
                                                                command=["redis-server", "--protected-mode", "no"]))
    assert kubecfg(master, "-c", str(rc_file), "create", "/replicationControllers").returncode == 0
    wait_for(lambda: _rc_running(sandbox, "healer", 3), 120, "3 replicas")

    heal_times = []
    for _ in range(3):
        victim = next(c for c in managed_containers(sandbox) if c["controller"] == "healer" and c["container"] != "POD")
        t0 = time.monotonic()
        ssh(sandbox, victim["address"], f"docker rm -f {victim['id']} >/dev/null")
        wait_for(lambda: _rc_running(sandbox, "healer", 3), 60, "the removed pod container to come back", 0.1)
        heal_times.append(time.monotonic() - t0)
    print(f"\nself-healing after a removed container: median {statistics.median(heal_times):.1f} s "
          f"({', '.join(f'{t:.1f}' for t in heal_times)})")

    lost = "minion-2"
    try:
        marked, full = lose_minion(master, sandbox_home, sandbox, lost, "healer", 3)
        print(f"lost minion: not ready after {marked:.1f} s, controller at full count after {full:.1f} s")
    finally:
        cli("sandbox", "start", lost, home=sandbox_home)
    stale = lambda: [c for c in managed_containers(sandbox) if c["controller"] == "healer" and c["minion"] == lost]  # noqa: E731
    wait_for(lambda: not stale(), 120, "the stale pods on the returning minion to be removed")
    assert _rc_running(sandbox, "healer", 3)
    assert kubecfg(master, "stop", "healer").returncode == 0
    assert kubecfg(master, "rm", "healer").returncode == 0
    wait_for(lambda: not pods_of(sandbox, "healer"), 60, "the controller's pods to go")


def test_sigkill_loses_no_acknowledged_write_and_adopts_what_runs(sandbox_home, sandbox, tmp_path):
    m = Master(sandbox_home, "--insecure-loopback").start()
    try:
        assert kubecfg(m, "-p", "16379:6379", "run", "redis", "2", "survivor").returncode == 0
        wait_for(lambda: _rc_running(sandbox, "survivor", 2), 120, "2 replicas")
        ids = sorted(c["id"] for cs in pods_of(sandbox, "survivor").values() for c in cs)
        m.kill(signal.SIGKILL)
        m = Master(sandbox_home, "--insecure-loopback").start()
        rc = m.get("/api/v1beta1/replicationControllers/survivor")
        assert rc["desiredState"]["replicas"] == 2
        # watching, a master passes when something happens; its first pass looks at every minion whole
        wait_for(lambda: m.passes() >= 1, 60, "the restarted master's first pass")
        assert sorted(c["id"] for cs in pods_of(sandbox, "survivor").values() for c in cs) == ids
        assert kubecfg(m, "stop", "survivor").returncode == 0
        assert kubecfg(m, "rm", "survivor").returncode == 0
        wait_for(lambda: not pods_of(sandbox, "survivor"), 60, "the pods to go")
    finally:
        m.kill()
