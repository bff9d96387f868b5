"""The sandbox is a real fleet: real SSH, real Ansible, real dockerd on every minion, real registry."""

from __future__ import annotations

import json

import ansible_runner
import docker
import pytest

from tests.e2e.conftest import MINIONS, cli, ssh, wait_for

pytestmark = pytest.mark.e2e


def status(home) -> dict:
    return json.loads(cli("sandbox", "status", "-o", "json", home=home).stdout)


def test_status_lists_every_minion_ready(sandbox_home):
    doc = status(sandbox_home)
    assert [m["name"] for m in doc["minions"]][:MINIONS] == [f"minion-{i}" for i in range(1, MINIONS + 1)]
    assert all(m["ready"] and m["address"] and m["container"] for m in doc["minions"])
    assert doc["inventory"].endswith("inventory.yml") and doc["ssh_config"].endswith("ssh_config")
    assert doc["registry"].endswith(":5000")


def test_ansible_reaches_every_minion_through_the_generated_inventory(sandbox, tmp_path):
    result = ansible_runner.run(private_data_dir=str(tmp_path), inventory=str(sandbox.inventory),
                                host_pattern="minions", module="ping", quiet=True)
    assert result.status == "successful", result.stats
    assert sorted(result.stats["ok"]) == [f"minion-{i}" for i in range(1, MINIONS + 1)]
    assert not result.stats["dark"] and not result.stats["failures"]


def test_every_minion_runs_busybox_pulled_from_the_sandbox_registry(sandbox):
    for m in sandbox.status()[:MINIONS]:
        proc = ssh(sandbox, m.address, "docker run --rm busybox sh -c 'echo ok-$(hostname)'")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("ok-"), proc.stdout
        mirror = ssh(sandbox, m.address, "cat /etc/docker/daemon.json")
        assert sandbox.registry_address() in mirror.stdout


def test_second_up_changes_nothing(sandbox_home, sandbox):
    client = docker.from_env()
    before = {c.name: (c.id, c.attrs["State"]["StartedAt"]) for c in client.containers.list(
        all=True, filters={"label": f"io.cluster-pilot.sandbox={sandbox.id}"})}
    proc = cli("sandbox", "up", "--minions", str(MINIONS), home=sandbox_home)
    assert f"0 started, {MINIONS} already running" in proc.stderr
    assert "cached" in proc.stderr
    after = {c.name: (c.id, c.attrs["State"]["StartedAt"]) for c in client.containers.list(
        all=True, filters={"label": f"io.cluster-pilot.sandbox={sandbox.id}"})}
    assert after == before


@pytest.fixture
def one_more_minion(sandbox_home, sandbox):
    """The session's fleet grown by a minion, and back to its size afterwards: every later test would otherwise
    run on one more minion than it was written for (and pay for it in each Ansible run)."""
    extra = f"minion-{MINIONS + 1}"
    cli("sandbox", "up", "--minions", str(MINIONS + 1), home=sandbox_home)
    yield extra
    sandbox.client().containers.get(sandbox.container_name(MINIONS + 1)).remove(force=True, v=True)
    cli("sandbox", "up", "--minions", str(MINIONS), home=sandbox_home)  # rewrites the inventory without it
    assert extra not in sandbox.inventory.read_text()


def test_scaling_up_adds_minions_and_stop_start_is_a_reboot(sandbox_home, sandbox, one_more_minion):
    extra = one_more_minion
    doc = status(sandbox_home)
    assert [m["name"] for m in doc["minions"]] == [f"minion-{i}" for i in range(1, MINIONS + 2)]
    assert all(m["ready"] for m in doc["minions"])
    assert extra in sandbox.inventory.read_text()

    address = next(m["address"] for m in doc["minions"] if m["name"] == extra)
    assert ssh(sandbox, address, "docker run -d --name keeper --restart always busybox sleep 100000 && "
                                 "echo kept > /root/marker").returncode == 0
    cli("sandbox", "stop", extra, home=sandbox_home)
    assert next(m for m in status(sandbox_home)["minions"] if m["name"] == extra)["ready"] is False

    cli("sandbox", "start", extra, home=sandbox_home)
    assert next(m for m in status(sandbox_home)["minions"] if m["name"] == extra)["ready"] is True
    assert ssh(sandbox, address, "cat /root/marker").stdout.strip() == "kept"
    wait_for(lambda: ssh(sandbox, address, "docker inspect -f '{{.State.Running}}' keeper").stdout.strip() == "true",
             30, "the container with restart=always to come back after the reboot")


@pytest.mark.parametrize("args, message", [
    (["sandbox", "up", "--minions", "0"], "--minions"),
    (["sandbox", "up", "--minions", "abc"], "--minions"),
    (["sandbox", "up", "--minions", "33"], "--minions"),
    (["sandbox", "stop", "minion-99"], "unknown minion 'minion-99'"),
    (["sandbox", "start", "web-1"], "unknown minion 'web-1'"),
])
def test_bad_input_is_one_line_without_traceback(sandbox_home, args, message):
    proc = cli(*args, home=sandbox_home, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_down_removes_everything_it_created_and_nothing_else(tmp_path, sandbox):
    client = docker.from_env()
    other = client.containers.list(all=True, filters={"label": f"io.cluster-pilot.sandbox={sandbox.id}"})
    home = tmp_path / "own-home"
    cli("sandbox", "up", "--minions", "1", home=home)
    from cluster_pilot.sandbox import Sandbox

    own = Sandbox(home)
    label = {"label": f"io.cluster-pilot.sandbox={own.id}"}
    assert client.containers.list(all=True, filters=label)
    cli("sandbox", "down", home=home)
    assert client.containers.list(all=True, filters=label) == []
    assert client.networks.list(filters=label) == []
    assert client.volumes.list(filters=label) == []
    assert not own.inventory.exists() and not own.key.exists()
    still = client.containers.list(all=True, filters={"label": f"io.cluster-pilot.sandbox={sandbox.id}"})
    assert sorted(c.id for c in still) == sorted(c.id for c in other)


def test_push_makes_a_local_image_runnable_on_every_minion(sandbox_home, sandbox):
    client = docker.from_env()
    seed = next(i for i in client.images.list() if any(t.startswith("cluster-pilot/seed-busybox:") for t in i.tags))
    seed.tag("cp-e2e-pushed", "v1")
    try:
        out = cli("sandbox", "push", "cp-e2e-pushed:v1", home=sandbox_home)
        assert "library/cp-e2e-pushed:v1" in out.stderr
        for m in sandbox.status()[:MINIONS]:
            proc = ssh(sandbox, m.address, "docker run --rm cp-e2e-pushed:v1 echo pushed-ok")
            assert proc.returncode == 0 and proc.stdout.strip() == "pushed-ok", proc.stderr
    finally:
        client.images.remove("cp-e2e-pushed:v1", noprune=True)
