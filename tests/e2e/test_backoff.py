"""A pod that cannot run (its image is in no registry, or dockerd refuses to start it) is retried with back-off:
a few Ansible runs, not one a second, and the rest of the fleet still heals meanwhile."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from tests.e2e.conftest import cli, managed_containers, rc_manifest, ssh, wait_for, write_manifest
from tests.e2e.test_master import Master, _rc_running
from tests.e2e.test_watch import create, delete, passes_that_ran

pytestmark = pytest.mark.e2e

WINDOW = 20.0  # the audit's window: 18-28 runs in it before back-off
UNRUNNABLE = {
    # the sandbox's registry has no such image (and the sandbox no internet)
    "ImagePullBackOff": {"name": "app", "image": "cp-no-such-image:404"},
    # dockerd creates the container, then refuses to start it: a directory cannot be mounted over a file
    "CreateContainerError": {"name": "app", "image": "busybox", "command": ["sleep", "2147483647"],
                             "volumeMounts": [{"name": "scratch", "mountPath": "/etc/passwd"}]},
}


@pytest.fixture
def master(sandbox_home):
    m = Master(sandbox_home, "--insecure-loopback").start()  # the default: --observe watch
    yield m
    m.kill()


def ansible_runs(master: Master) -> int:
    with urllib.request.urlopen(f"{master.url}/metrics", timeout=10) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith("cluster_pilot_ansible_runs_total "):
                return int(float(line.split()[-1]))
    return 0


def pod_item(master: Master, name: str) -> dict:
    items = master.get("/api/v1beta1/pods")["items"]
    return next((i for i in items if i["id"] == name), {})


def events_of(master: Master, name: str) -> list[dict]:
    return master.get(f"/api/v1beta1/events?object=pod/{name}")["items"]


def test_unrunnable_pods_back_off_and_the_rest_of_the_fleet_still_heals(master, sandbox_home, sandbox, tmp_path):
    """Both reasons in one window (one apply, so their schedules run together): CI time, not a weaker bound."""
    create(master, rc_manifest("steady", 1))
    wait_for(lambda: _rc_running(sandbox, "steady", 1), 180, "the healthy controller's pod to run")
    bad = {reason: f"unrunnable-{reason.lower()}" for reason in sorted(UNRUNNABLE)}
    doc = {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
         "spec": {"containers": [UNRUNNABLE[reason]], "volumes": [{"name": "scratch", "emptyDir": {}}]}}
        for reason, name in bad.items()]}
    before = ansible_runs(master)
    cli("apply", "--server", master.url, "-f", str(write_manifest(tmp_path / "bad.json", doc)), home=sandbox_home)
    wait_for(lambda: ansible_runs(master) > before, 60, "the first attempt's run")

    start, runs = time.monotonic(), ansible_runs(master)
    statuses: dict[str, set] = {name: set() for name in bad.values()}
    while time.monotonic() - start < WINDOW:  # the measurement window: what `get pods` says meanwhile
        for name in bad.values():
            statuses[name].add(pod_item(master, name).get("currentState", {}).get("status"))
        time.sleep(0.5)
    ran = ansible_runs(master) - runs
    lines = passes_that_ran(master)[-ran:] if ran else []
    tries = {name: [line for line in lines if f" {name}@" in line] for name in bad.values()}
    print(f"\n{ran} Ansible runs in {WINDOW:.0f} s for two pods that cannot run; tries "
          f"{ {n: len(t) for n, t in tries.items()} }")
    # each pod's schedule allows 2 runs (its try 10 s after the first failure, the next 20 s later, and their
    # records); the two pods failed in passes of their own, so their schedules need not coincide
    assert all(len(t) <= 2 for t in tries.values()), tries
    assert ran <= 2 * len(bad), "\n".join(passes_that_ran(master)[-ran - 1:])

    # at once, another pod heals while the bad ones wait for their next try (20 s after their second)
    victim = next(c for c in managed_containers(sandbox) if c["controller"] == "steady" and c["container"] == "app")
    before = len(passes_that_ran(master))
    t0 = time.monotonic()
    ssh(sandbox, victim["address"], f"docker rm -f {victim['id']} >/dev/null")
    wait_for(lambda: _rc_running(sandbox, "steady", 1) and victim["id"] not in
             {c["id"] for c in managed_containers(sandbox)}, 60, "the healthy controller's pod healed")
    healed = time.monotonic() - t0
    print(f"another pod healed in {healed:.1f} s while they backed off")
    heal = [line for line in passes_that_ran(master)[before:] if "create steady-" in line]
    assert heal and not any(f" {name}@" in heal[0] for name in bad.values()), passes_that_ran(master)[before:]

    listed = cli("get", "pods", "--server", master.url, home=sandbox_home).stdout
    for reason, name in bad.items():
        state = pod_item(master, name)["currentState"]
        assert reason in statuses[name] and state["status"] == reason, (reason, statuses[name], state)
        assert state["message"], state
        events = [e for e in events_of(master, name) if e["reason"] == reason]
        assert events and "next try in" in events[-1]["message"], events_of(master, name)
        assert any(name in line and reason in line for line in listed.splitlines()), listed
        described = cli("describe", "pod", name, "--server", master.url, home=sandbox_home).stdout
        assert reason in described and "next try in" in described, described

    for name in bad.values():
        request = urllib.request.Request(f"{master.url}/api/v1beta1/pods/{name}", method="DELETE")
        urllib.request.urlopen(request, timeout=60).close()
    wait_for(lambda: not any(c["pod"] in bad.values() for c in managed_containers(sandbox)), 120,
             "the unrunnable pods' containers to go")
    delete(master, "steady", sandbox)
    print(json.dumps({name: [e["reason"] for e in events_of(master, name)] for name in bad.values()}))
