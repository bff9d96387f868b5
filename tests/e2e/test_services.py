"""Services on real minions: HAProxy on every minion, all replicas reached, discovery, drain, no drops."""

from __future__ import annotations

import http.client
import json
import threading
import time

import pytest

from tests.e2e.conftest import cli, managed_containers, pods_of, rc_manifest, ssh, wait_for, write_manifest

pytestmark = pytest.mark.e2e

SERVE_HOSTNAME = ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"]


def web(replicas: int, image: str = "busybox") -> dict:
    return rc_manifest("web", replicas, image=image, command=SERVE_HOSTNAME, labels={"name": "web"},
                       ports=[{"name": "http", "containerPort": 80}])


def web_service(port: int = 8080, target="http") -> dict:
    return {"kind": "Service", "apiVersion": "v1beta1", "id": "web", "port": port, "containerPort": target,
            "selector": {"name": "web"}, "labels": {"name": "web"}}


def get(address: str, port: int, timeout: float = 5.0) -> str:
    conn = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        body = resp.read().decode().strip()
        if resp.status != 200:
            raise OSError(f"HTTP {resp.status}")
        return body
    finally:
        conn.close()


def minions(sandbox):
    return [m for m in sandbox.status() if m.ready]


@pytest.fixture(scope="module")
def _web_deployed(sandbox_home, sandbox, tmp_path_factory):
    """Deployed once for the module (an apply and a delete cost ~20 s each); each test gets it back whole."""
    files = tmp_path_factory.mktemp("web")
    rc_file = write_manifest(files / "web-rc.json", web(3))
    svc_file = write_manifest(files / "web-svc.json", web_service())
    cli("apply", "-f", str(rc_file), "-f", str(svc_file), home=sandbox_home)
    yield rc_file, svc_file
    write_manifest(rc_file, web(3))
    cli("delete", "-f", str(rc_file), "-f", str(svc_file), home=sandbox_home)


@pytest.fixture
def web_app(sandbox_home, _web_deployed):
    """3 replicas of ``web`` and its service, as if just applied: an apply puts back what an earlier test of the
    module changed or killed (the hosts are the truth), and changes nothing when nothing was."""
    rc_file, svc_file = _web_deployed
    write_manifest(rc_file, web(3))
    cli("apply", "-f", str(rc_file), "-f", str(svc_file), home=sandbox_home)
    return rc_file, svc_file


def test_every_minion_balances_over_all_replicas(sandbox_home, sandbox, web_app):
    hostnames = {c["pod"] for cs in pods_of(sandbox, "web").values() for c in cs}
    assert len(hostnames) == 3
    for m in minions(sandbox):
        seen = set()
        for _ in range(12):
            seen.add(get(m.address, 8080))
        assert len(seen) == 3, (m.name, seen)
    listing = json.loads(cli("get", "services", "web", "-o", "json", home=sandbox_home).stdout)
    assert sorted(e["pod"] for e in listing["endpoints"]) == sorted(hostnames)


def test_killed_replica_stops_receiving_traffic_and_the_others_serve(sandbox_home, sandbox, web_app):
    victim = next(c for c in managed_containers(sandbox) if c["controller"] == "web" and c["container"] == "app")
    ssh(sandbox, victim["address"], f"docker update --restart=no {victim['id']} >/dev/null && docker kill {victim['id']}")
    target = minions(sandbox)[0].address
    t0 = time.monotonic()

    def twenty_in_a_row() -> bool:
        try:
            return len({get(target, 8080, timeout=2) for _ in range(20)}) >= 1
        except OSError:
            return False

    wait_for(twenty_in_a_row, 10, "requests to stop failing after a replica was killed", interval=0.1)
    recovered = time.monotonic() - t0
    print(f"\nservice healthy again {recovered:.1f} s after a replica was killed")
    ssh(sandbox, victim["address"], f"docker rm -f {victim['id']} >/dev/null")


class Load:
    """A client in a loop against one minion's service port, counting what fails."""

    def __init__(self, address: str, port: int) -> None:
        self.address, self.port = address, port
        self.ok = self.failed = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + 600  # bounded, whatever happens to the test
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                get(self.address, self.port)
                self.ok += 1
            except OSError as exc:
                self.failed += 1
                self.errors.append(repr(exc))
            time.sleep(0.01)  # poll step: about 100 requests a second

    def __enter__(self) -> "Load":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def test_no_request_dropped_while_scaling_and_replacing(sandbox_home, sandbox, web_app):
    rc_file, _ = web_app
    target = minions(sandbox)[1].address
    with Load(target, 8080) as load:
        wait_for(lambda: load.ok > 20, 30, "the load to start")
        cli("scale", "rc", "web", "--replicas", "6", home=sandbox_home)
        cli("scale", "rc", "web", "--replicas", "1", home=sandbox_home)
        write_manifest(rc_file, web(1, image="busybox:latest"))
        cli("apply", "-f", str(rc_file), home=sandbox_home)
        before = load.ok
        wait_for(lambda: load.ok > before + 20, 30, "requests after the last change")
    print(f"\nzero-drop: {load.ok} requests served, {load.failed} failed during scale 3->6->1 and an image change")
    assert load.failed == 0, load.errors[:5]
    pods = pods_of(sandbox, "web")
    assert len(pods) == 1
    assert all(c["image"] == "busybox:latest" for cs in pods.values() for c in cs if c["container"] == "app")


def test_bad_service_inputs(sandbox_home, sandbox, tmp_path):
    before = sorted(c["id"] for c in managed_containers(sandbox))
    rc_file = write_manifest(tmp_path / "rc.json", rc_manifest("clash", 1, ports=[{"containerPort": 80, "hostPort": 9090}]))
    clash = write_manifest(tmp_path / "svc.json", {**web_service(port=9090), "id": "clash-svc"})
    proc = cli("apply", "-f", str(rc_file), "-f", str(clash), home=sandbox_home, check=False)
    assert proc.returncode == 1 and "9090" in proc.stderr and "Traceback" not in proc.stderr

    bad_name = write_manifest(tmp_path / "svc2.json", {**web_service(port=9191, target="nope"), "id": "noname",
                                                       "selector": {"name": "clash"}})
    proc = cli("apply", "-f", str(bad_name), "-f", str(write_manifest(tmp_path / "rc2.json", rc_manifest("clash", 1))),
               home=sandbox_home, check=False)
    assert proc.returncode == 1 and "nope" in proc.stderr
    assert sorted(c["id"] for c in managed_containers(sandbox)) == before

    lonely = write_manifest(tmp_path / "svc3.json", {**web_service(port=9292), "id": "lonely",
                                                     "selector": {"name": "nobody"}})
    proc = cli("validate", str(lonely), home=sandbox_home, check=False)
    assert proc.returncode == 0 and "warning" in (proc.stdout + proc.stderr).lower()
