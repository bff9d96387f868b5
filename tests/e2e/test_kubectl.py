"""Today's kubectl (the one on this machine) against a real master on the sandbox, over TLS with the kubeconfig
the master writes: the v1 guestbook applied (validated by the server), listed as kubectl prints it, read as
YAML, described, scaled, its logs, deleted with kubectl waiting until the minions no longer run it; and the
2014 API seeing the same objects."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import managed_containers, wait_for
from tests.e2e.test_master import Master

pytestmark = pytest.mark.e2e

KUBECTL = shutil.which("kubectl")
GUESTBOOK = Path(__file__).resolve().parents[2] / "examples" / "guestbook" / "v1"


@pytest.fixture
def secure_master(sandbox_home, tmp_path):
    if KUBECTL is None:
        pytest.skip("no kubectl on this machine")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    m = Master(sandbox_home, "--tls-cert", str(cert), "--tls-key", str(key)).start()
    m.certificate = cert
    kubeconfig = tmp_path / "kubeconfig"  # the one it wrote at start, copied before another master writes its own
    shutil.copy(sandbox_home / "kubeconfig", kubeconfig)
    m.kubeconfig = kubeconfig
    yield m
    m.kill()


def kubectl(master: Master, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "HOME": str(master.kubeconfig.parent), "KUBECONFIG": str(master.kubeconfig)}
    return subprocess.run([KUBECTL, *args], capture_output=True, text=True, env=env, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def pods(master: Master, selector: str) -> list[dict]:
    done = kubectl(master, "get", "pods", "-l", selector, "-o", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["items"]


def all_running(master: Master, selector: str, count: int) -> bool:
    found = pods(master, selector)
    return len(found) == count and all(p["status"]["phase"] == "Running" for p in found)


def test_kubectl_applies_lists_reads_and_deletes_the_guestbook(secure_master, sandbox):
    m = secure_master
    applied = kubectl(m, "apply", "-f", str(GUESTBOOK))
    assert applied.returncode == 0, applied.stderr
    assert {"pod/redis-master created", "replicationcontroller/frontend created", "service/frontend created",
            "replicationcontroller/redis-replica created"} <= set(applied.stdout.splitlines())
    try:
        wait_for(lambda: all_running(m, "app=guestbook", 6), 300, "6 guestbook pods running, as kubectl sees them")
        wide = kubectl(m, "get", "pods", "-o", "wide").stdout.splitlines()
        assert wide[0].split()[:7] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
        rows = {line.split()[0]: line.split() for line in wide[1:]}
        minions = {s.name for s in sandbox.status()}
        assert rows["redis-master"][1:3] == ["1/1", "Running"] and rows["redis-master"][6] in minions
        frontends = [r for name, r in rows.items() if name.startswith("frontend-")]
        assert len(frontends) == 3 and all(r[6] in minions for r in frontends)

        services = kubectl(m, "get", "svc").stdout
        assert "frontend" in services and "30080" in services and "redis-master" in services
        rcs = {line.split()[0]: line.split() for line in kubectl(m, "get", "rc").stdout.splitlines()[1:]}
        assert rcs["frontend"][1:4] == ["3", "3", "3"] and rcs["redis-replica"][1:4] == ["2", "2", "2"]
        nodes = kubectl(m, "get", "nodes").stdout.splitlines()[1:]
        assert sorted(line.split()[0] for line in nodes) == sorted(minions)
        assert all(line.split()[1] == "Ready" for line in nodes)
        master_pod = yaml.safe_load(kubectl(m, "get", "pod", "redis-master", "-o", "yaml").stdout)
        assert master_pod["spec"]["nodeName"] in minions and master_pod["status"]["phase"] == "Running"
        assert [p["metadata"]["name"] for p in pods(m, "name=redis-master")] == ["redis-master"]

        described = kubectl(m, "describe", "pod", "redis-master")
        assert described.returncode == 0 and "Status:       Running" in described.stdout, described.stderr
        scaled = kubectl(m, "scale", "rc", "frontend", "--replicas=2")
        assert scaled.returncode == 0, scaled.stderr
        wait_for(lambda: all_running(m, "name=frontend", 2), 180, "the frontend scaled to 2, as kubectl sees it")

        logs = kubectl(m, "logs", "redis-master", timeout=60)
        assert logs.returncode == 0 and "Ready to accept connections" in logs.stdout, logs.stderr

        # one store, two views: the 2014 API lists what kubectl made
        context = ssl.create_default_context(cafile=str(m.certificate))
        token = (m.home / "master-token").read_text().strip()
        request = urllib.request.Request(f"{m.url}/api/v1beta1/pods", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, context=context, timeout=10) as resp:
            assert "redis-master" in {p["id"] for p in json.loads(resp.read())["items"]}
    finally:
        deleted = kubectl(m, "delete", "-f", str(GUESTBOOK), timeout=600)
    assert deleted.returncode == 0, deleted.stderr
    assert 'pod "redis-master" deleted' in deleted.stdout.splitlines()
    # kubectl waited for the pod it deleted to be gone from the minions, not only from the store
    assert not [c for c in managed_containers(sandbox) if c["pod"] == "redis-master"]
    assert kubectl(m, "get", "pods", "-l", "app=guestbook", "-o", "name").stdout == ""
    wait_for(lambda: not [c for c in managed_containers(sandbox) if c["controller"] in ("frontend", "redis-replica")],
             300, "the controllers' pods to be removed")
