"""The original 2014 kubecfg against our master: run/resize/stop/rm, a rolling update without a dropped
request, errors as it prints them, and HTTPS with Basic auth (the token as password)."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time

import pytest

from tests.e2e.conftest import pods_of, wait_for
from tests.e2e.test_master import Master, kubecfg

pytestmark = pytest.mark.e2e


def redis_ping(address: str, port: int) -> None:
    """One request through the service: a new TCP connection, PING, +PONG."""
    with socket.create_connection((address, port), timeout=5) as s:
        s.sendall(b"PING\r\n")
        reply = s.recv(64)
    if not reply.startswith(b"+PONG"):
        raise OSError(f"unexpected reply {reply!r}")


def running(sandbox, rc: str) -> int:
    return sum(1 for cs in pods_of(sandbox, rc).values() if cs and all(c["state"] == "running" for c in cs))


@pytest.fixture
def master(sandbox_home):
    m = Master(sandbox_home, "--insecure-loopback").start()
    yield m
    m.kill()


@pytest.mark.slow
def test_run_resize_stop_rm_and_a_rolling_update_that_drops_nothing(master, sandbox):
    t0 = time.monotonic()
    out = kubecfg(master, "-p", "16380:6379", "-s", "16390", "run", "redis", "3", "kvrun")
    assert out.returncode == 0, out.stderr
    wait_for(lambda: running(sandbox, "kvrun") == 3, 180, "3 replicas from kubecfg run")
    run_s = time.monotonic() - t0
    address = next(m for m in sandbox.status() if m.ready).address
    wait_for(lambda: _ok(address), 60, "the service to answer")

    rows = kubecfg(master, "list", "replicationControllers").stdout.splitlines()
    assert any(r.split()[:2] == ["kvrun", "redis"] and r.split()[-1] == "3" for r in rows), rows
    assert "16390" in kubecfg(master, "list", "services").stdout

    assert kubecfg(master, "resize", "kvrun", "2").returncode == 0
    wait_for(lambda: running(sandbox, "kvrun") == 2 and len(pods_of(sandbox, "kvrun")) == 2, 120, "2 replicas")
    assert kubecfg(master, "resize", "kvrun", "3").returncode == 0
    wait_for(lambda: running(sandbox, "kvrun") == 3, 120, "3 replicas again")
    # rollingupdate waits for as many pods as it lists at its start: start it when the master lists 3
    wait_for(lambda: len([r for r in kubecfg(master, "list", "/pods").stdout.splitlines() if "kvrun" in r]) == 3,
             60, "the master to list 3 pods")

    ok, failed, errors = 0, 0, []
    stop = threading.Event()

    def load():
        nonlocal ok, failed
        deadline = time.monotonic() + 900
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                redis_ping(address, 16390)
                ok += 1
            except OSError as exc:
                failed += 1
                errors.append(repr(exc))
            time.sleep(0.01)  # poll step: about 100 requests a second

    client = threading.Thread(target=load, daemon=True)
    client.start()
    t1 = time.monotonic()
    update = kubecfg(master, "-u", "1s", "-image", "redis:latest", "rollingupdate", "kvrun", timeout=600)
    rolling_s = time.monotonic() - t1

    def updated() -> bool:
        pods = pods_of(sandbox, "kvrun")
        images = {c["image"] for cs in pods.values() for c in cs if c["container"] != "POD"}
        return images == {"redis:latest"} and running(sandbox, "kvrun") == 3 and len(pods) == 3

    try:
        wait_for(updated, 180, "every pod to run the new image")
        converged_s = time.monotonic() - t1
    finally:
        stop.set()
        client.join(timeout=30)
    assert update.returncode == 0, update.stderr
    print(f"\nkubecfg run of 3 with a service: {run_s:.1f} s; rollingupdate: {rolling_s:.1f} s "
          f"(all pods new after {converged_s:.1f} s), {ok} requests served, {failed} failed")
    assert failed == 0, errors[:5]

    refused = kubecfg(master, "rm", "kvrun")
    assert refused.returncode != 0 and "stop it first" in refused.stderr
    assert kubecfg(master, "stop", "kvrun").returncode == 0
    wait_for(lambda: not pods_of(sandbox, "kvrun"), 120, "the pods to go after stop")
    assert kubecfg(master, "rm", "kvrun").returncode == 0
    assert kubecfg(master, "delete", "/services/kvrun").returncode == 0
    assert "kvrun" not in kubecfg(master, "list", "replicationControllers").stdout


def _ok(address: str) -> bool:
    try:
        redis_ping(address, 16390)
        return True
    except OSError:
        return False


def test_errors_come_back_as_the_2014_client_prints_them(master, tmp_path):
    pod = {"id": "twice", "desiredState": {"manifest": {"version": "v1beta1", "id": "twice",
                                                        "containers": [{"name": "a", "image": "busybox"}]}}}
    f = tmp_path / "twice.json"
    f.write_text(json.dumps(pod))
    try:
        assert kubecfg(master, "-c", str(f), "create", "/pods").returncode == 0
        again = kubecfg(master, "-c", str(f), "create", "/pods")
        assert again.returncode == 255 and "Got request error: " in again.stderr and "already exists" in again.stderr
        missing = kubecfg(master, "get", "/pods/nobody")
        assert missing.returncode == 255 and "not found" in missing.stderr
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({"id": "bad id!", "desiredState": {"manifest": {"version": "v1beta1",
                                   "containers": [{"name": "a", "image": "busybox"}]}}}))
        invalid = kubecfg(master, "-c", str(bad), "create", "/pods")
        assert invalid.returncode == 255 and "Got request error: " in invalid.stderr and "bad id!" in invalid.stderr
        version = kubecfg(master, "-server_version")
        assert version.returncode == 0 and "v0.4" in version.stdout
        listed = json.loads(kubecfg(master, "-json", "get", "/pods/twice").stdout)
        assert listed["kind"] == "Pod" and listed["apiVersion"] == "v1beta1" and int(listed["resourceVersion"]) > 0
        assert "twice" in kubecfg(master, "-l", "name!=nothing", "list", "/pods").stdout
    finally:
        kubecfg(master, "delete", "/pods/twice")


def test_https_with_basic_auth_and_plain_http_refuses_writes_without_a_token(sandbox_home, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    token = (sandbox_home / "master-token").read_text().strip() if (sandbox_home / "master-token").exists() else None
    secure = Master(sandbox_home, "--tls-cert", str(cert), "--tls-key", str(key)).start()
    plain = Master(sandbox_home).start()
    try:
        token = token or (sandbox_home / "master-token").read_text().strip()
        pod = tmp_path / "p.json"
        pod.write_text(json.dumps({"id": "secure-pod", "desiredState": {"manifest": {
            "version": "v1beta1", "containers": [{"name": "a", "image": "busybox", "command": ["sleep", "1000000"]}]}}}))
        home = tmp_path / "kube-home"
        home.mkdir()
        (home / ".kubernetes_auth").write_text(json.dumps({"User": "admin", "Password": token, "Insecure": True}))
        made = kubecfg(secure, "-insecure_skip_tls_verify", "-c", str(pod), "create", "/pods", home=home)
        assert made.returncode == 0, made.stderr
        assert "secure-pod" in kubecfg(secure, "-insecure_skip_tls_verify", "list", "/pods", home=home).stdout

        wrong = tmp_path / "wrong-home"
        wrong.mkdir()
        (wrong / ".kubernetes_auth").write_text(json.dumps({"User": "admin", "Password": "guess", "Insecure": True}))
        denied = kubecfg(secure, "-insecure_skip_tls_verify", "delete", "/pods/secure-pod", home=wrong)
        assert denied.returncode == 255 and "token" in denied.stderr

        refused = kubecfg(plain, "delete", "/pods/secure-pod")
        assert refused.returncode == 255 and "token" in refused.stderr
        assert kubecfg(secure, "-insecure_skip_tls_verify", "delete", "/pods/secure-pod", home=home).returncode == 0
    finally:
        secure.kill()
        plain.kill()
