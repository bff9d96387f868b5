"""Container probes on real minions, with no master running: a pod whose readiness fails leaves every minion's
proxy and comes back when it recovers; a container whose liveness fails is restarted by cp-health."""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.conftest import cli, pods_of, ssh, wait_for, write_manifest
from tests.e2e.test_services import get, minions

pytestmark = pytest.mark.e2e

PERIOD, FAILURES = 1, 2
SERVE = "mkdir -p /www && hostname > /www/index.html && touch /www/ready && exec httpd -f -p 80 -h /www"


def ready_rc() -> dict:
    probe = {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": PERIOD, "failureThreshold": FAILURES}
    return {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "ready"},
            "spec": {"replicas": 2, "selector": {"app": "ready"}, "template": {
                "metadata": {"labels": {"app": "ready"}},
                "spec": {"containers": [{"name": "app", "image": "busybox", "command": ["sh", "-c", SERVE],
                                         "ports": [{"name": "http", "containerPort": 80}],
                                         "readinessProbe": probe}]}}}}


SERVICE = {"kind": "Service", "apiVersion": "v1beta1", "id": "ready", "port": 8090, "containerPort": "http",
           "selector": {"app": "ready"}}
ALIVE = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "alive"},
         "spec": {"containers": [{"name": "app", "image": "busybox",
                                  "command": ["sh", "-c", "touch /tmp/alive && exec sleep 2147483647"],
                                  "livenessProbe": {"exec": {"command": ["cat", "/tmp/alive"]},
                                                    "periodSeconds": PERIOD, "failureThreshold": FAILURES}}]}}


def answers(address: str, count: int) -> list[str]:
    out = []
    for _ in range(count):
        try:
            out.append(get(address, SERVICE["port"], timeout=2))
        except OSError as exc:
            out.append(f"error: {exc}")
    return out


def test_readiness_decides_the_proxies_backends_and_liveness_restarts(sandbox_home, sandbox, tmp_path):
    files = [write_manifest(tmp_path / "rc.json", ready_rc()), write_manifest(tmp_path / "svc.json", SERVICE),
             write_manifest(tmp_path / "alive.json", ALIVE)]
    cli("apply", *[a for f in files for a in ("-f", str(f))], home=sandbox_home)
    addresses = [m.address for m in minions(sandbox)]
    pods = pods_of(sandbox, "ready")
    assert len(pods) == 2
    wait_for(lambda: all(set(answers(a, 6)) == set(pods) for a in addresses), 60,
             "both ready pods to serve through every minion")

    victim, other = sorted(pods)
    (container,) = pods[victim]
    ssh(sandbox, container["address"], f"docker exec {container['id']} rm /www/ready")
    t0 = time.monotonic()
    wait_for(lambda: all(victim not in answers(a, 8) for a in addresses), 30,
             f"{victim} to leave every proxy once its readiness fails", interval=0.05)
    left = time.monotonic() - t0
    print(f"\nreadiness failed: out of {len(addresses)} proxies in {left:.2f} s "
          f"(periodSeconds {PERIOD} x failureThreshold {FAILURES} = {PERIOD * FAILURES} s)")
    assert all(set(answers(a, 6)) == {other} for a in addresses)  # the other pod serves every request
    assert left <= PERIOD * FAILURES + 1 + 0.5, left  # the bound, and the poll's own granularity
    rows = {r["id"]: r for r in json.loads(cli("get", "pods", "-o", "json", home=sandbox_home).stdout)["items"]}
    assert (rows[victim]["status"], rows[victim]["ready"], rows[other]["ready"]) == ("Running", False, True), rows

    ssh(sandbox, container["address"], f"docker exec {container['id']} touch /www/ready")
    t0 = time.monotonic()
    wait_for(lambda: all(set(answers(a, 6)) == set(pods) for a in addresses), 30,
             f"{victim} to come back to every proxy once ready", interval=0.05)
    print(f"ready again: back in every proxy in {time.monotonic() - t0:.2f} s")

    (alive,) = pods_of(sandbox, "")["alive"]
    started = ssh(sandbox, alive["address"], f"docker inspect -f '{{{{.State.StartedAt}}}}' {alive['id']}").stdout
    ssh(sandbox, alive["address"], f"docker exec {alive['id']} rm /tmp/alive")
    wait_for(lambda: ssh(sandbox, alive["address"], f"docker inspect -f '{{{{.State.StartedAt}}}}' {alive['id']}")
             .stdout not in ("", started), 30, "cp-health to restart the container whose liveness failed")
    state = json.loads(ssh(sandbox, alive["address"], "cat /var/lib/cluster-pilot/health.json").stdout)
    (count,) = [r["count"] for ident, r in state["restarts"].items() if ident.startswith(alive["id"])]
    assert count == 1, state
    listed = cli("get", "pods", "alive", home=sandbox_home).stdout
    assert listed.splitlines()[1].split()[-2] == "1", listed  # RESTARTS
    assert ssh(sandbox, alive["address"], f"docker exec {alive['id']} cat /tmp/alive").returncode == 0

    cli("delete", *[a for f in files for a in ("-f", str(f))], home=sandbox_home)
