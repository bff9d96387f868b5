"""The master watches the minions (``--observe watch``): events trigger passes, heartbeats decide liveness, a cut
session is reopened and resynced, and no Ansible run outlives a stopped master."""

from __future__ import annotations

import json
import os
import re
import signal
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import cli, managed_containers, pods_of, rc_manifest, ssh, wait_for
from tests.e2e.test_master import Master, _rc_running, lose_minion, minion_ready

pytestmark = pytest.mark.e2e


def create(master: Master, doc: dict) -> None:
    request = urllib.request.Request(f"{master.url}/api/v1beta1/replicationControllers", data=json.dumps(doc).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=60) as resp:
        assert resp.status in (200, 201, 202)


def delete(master: Master, rc: str, sandbox) -> None:
    request = urllib.request.Request(f"{master.url}/api/v1beta1/replicationControllers/{rc}", method="DELETE")
    urllib.request.urlopen(request, timeout=60).close()
    wait_for(lambda: not pods_of(sandbox, rc), 120, f"{rc}'s pods to go")


def passes_that_ran(master: Master) -> list[str]:
    return [line for line in master.log.read_text().splitlines() if "pass ran Ansible" in line]


@pytest.fixture
def master(sandbox_home):
    m = Master(sandbox_home, "--insecure-loopback", "--observe", "watch").start()
    yield m
    m.kill()


def made_by_master(master: Master, victim: dict) -> None:
    """Wait for the log line of the pass that made the victim (it is written after its containers run), so
    that the passes counted from here on are only those that came after."""
    wait_for(lambda: any(f"create {victim['pod']}@" in line for line in passes_that_ran(master)), 120,
             f"the pass that made {victim['pod']} logged")


@pytest.fixture
def resyncing_master(sandbox_home):
    """Whole passes every 2 s rather than 30: for a test that counts passes, not one that asks what caused one."""
    m = Master(sandbox_home, "--insecure-loopback", "--observe", "watch", "--resync", "2").start()
    yield m
    m.kill()


def _heals(line: str, victim: dict) -> bool:
    """A pass that brings the victim's pod back: the pod replaced (an infra container kept it), or, when its one
    container was the whole pod, its controller's new pod created."""
    return (f"replace {victim['pod']}@" in line
            or re.search(rf"\bcreate {re.escape(victim['controller'])}-\w+@", line) is not None)


def test_a_killed_container_is_replaced_by_a_pass_the_event_triggered(master, sandbox):
    create(master, rc_manifest("evented", 2))
    wait_for(lambda: _rc_running(sandbox, "evented", 2), 180, "2 replicas")
    victim = next(c for c in managed_containers(sandbox) if c["controller"] == "evented" and c["container"] == "app")
    made_by_master(master, victim)
    before = len(passes_that_ran(master))
    ssh(sandbox, victim["address"], f"docker rm -f {victim['id']} >/dev/null")
    wait_for(lambda: _rc_running(sandbox, "evented", 2) and victim["id"] not in
             {c["id"] for c in managed_containers(sandbox)}, 120, "the removed container replaced")
    ran = passes_that_ran(master)[before:]
    heal = [line for line in ran if _heals(line, victim)]
    assert heal, ran
    assert re.search(rf"triggered by {victim['minion']}: event (die|destroy) of {victim['pod']}/app", heal[0]), heal[0]
    assert "resync" not in heal[0].split("triggered by", 1)[1]
    delete(master, "evented", sandbox)


@pytest.mark.slow
@pytest.mark.parametrize("lost", ["minion-2", "minion-1"])  # minion-1 is a lock host: a majority is left
def test_a_stopped_minion_is_not_ready_its_pods_move_and_nothing_bounces_when_it_returns(resyncing_master, sandbox_home,
                                                                                        sandbox, lost):
    master = resyncing_master
    create(master, rc_manifest("mover", 3))
    wait_for(lambda: _rc_running(sandbox, "mover", 3), 180, "3 replicas")
    try:
        marked, full = lose_minion(master, sandbox_home, sandbox, lost, "mover", 3)
        print(f"\nwatch: {lost} not ready after {marked:.1f} s, controller full after {full:.1f} s")
        moved = sorted(pods_of(sandbox, "mover"))
        listed = cli("get", "minions", "--server", master.url, home=sandbox_home).stdout
        assert re.search(rf"^{lost}\s.*NotReady", listed, re.M), listed
    finally:
        cli("sandbox", "start", lost, home=sandbox_home)
    wait_for(lambda: minion_ready(master, lost), 60, f"{lost} ready again")
    wait_for(lambda: not [c for c in managed_containers(sandbox) if c["controller"] == "mover" and c["minion"] == lost],
             120, "the returning minion's stale pods removed")
    passes = master.passes()
    wait_for(lambda: master.passes() >= passes + 2, 90, "two more passes after the return")
    assert sorted(pods_of(sandbox, "mover")) == moved  # the replacements stayed where they were made
    assert _rc_running(sandbox, "mover", 3, avoid=lost)
    assert "cannot take the fleet lock" not in master.log.read_text()
    delete(master, "mover", sandbox)


def test_a_cut_watch_session_is_reopened_and_resynced_so_a_missed_event_is_not_lost(master, sandbox):
    create(master, rc_manifest("resynced", 3))
    wait_for(lambda: _rc_running(sandbox, "resynced", 3), 180, "3 replicas")
    victim = next(c for c in managed_containers(sandbox) if c["controller"] == "resynced" and c["container"] == "app")
    helper = ssh(sandbox, victim["address"], HELPERS)
    pids = helper.stdout.split()
    assert len(pids) == 1, helper.stdout
    made_by_master(master, victim)
    before = len(passes_that_ran(master))
    # the container goes while the helper is frozen (its session still open, so nothing reopens before the removal
    # is done), then the helper goes: the event is lost with it, and only the reopened session's resync can heal
    ssh(sandbox, victim["address"], f"kill -STOP {pids[0]}; docker rm -f {victim['id']} >/dev/null; kill -KILL {pids[0]}")
    wait_for(lambda: _rc_running(sandbox, "resynced", 3) and victim["id"] not in
             {c["id"] for c in managed_containers(sandbox)}, 120, "the container removed unwatched replaced")
    log = master.log.read_text()
    assert f"watch of {victim['minion']} closed" in log
    heal = [line for line in passes_that_ran(master)[before:] if _heals(line, victim)]
    assert heal and f"{victim['minion']}: resync: the watch started" in heal[0], heal
    reopened = ssh(sandbox, victim["address"], HELPERS)
    assert len(reopened.stdout.split()) == 1 and reopened.stdout.split() != pids
    delete(master, "resynced", sandbox)


HELPERS = "ps -eo pid,comm,args | awk '$2 ~ /^python3/ && / -u -c / {print $1}'"  # the watch's helper


def _runs_of(home: Path) -> list[int]:
    """ansible-playbook processes of this sandbox's home (their private run dir is under it)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            args = Path(entry.path, "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "cp-vars.yml" in args and str(home) in args:  # its private vars file, as the runner tracks it
            found.append(int(entry.name))
    return found


def _described(pids: list[int]) -> list[str]:
    """Each process as ``pid ppid wchan started-at (ticks) args``, for a failure to show where it waits."""
    lines = []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            wchan = Path(f"/proc/{pid}/wchan").read_text()
            args = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        lines.append(f"{pid} {stat[1]} {wchan} {stat[19]} {args[-200:]}")
    return lines


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed"])
def test_no_ansible_playbook_outlives_a_master_stopped_while_its_run_waits_on_a_stopped_minion(
        sandbox_home, sandbox, stop):
    m = Master(sandbox_home, "--insecure-loopback", "--observe", "watch").start()
    lost = "minion-3"
    try:
        wait_for(lambda: m.passes() >= 1, 60, "the master's first pass")
        create(m, rc_manifest(f"orphan-{stop.name.lower()}", 6, image="redis",
                              command=["redis-server", "--protected-mode", "no"]))
        wait_for(lambda: _runs_of(sandbox_home), 120, "the master's ansible-playbook to start", 0.02)
        cli("sandbox", "stop", lost, home=sandbox_home)
        m.kill(stop)
        try:
            wait_for(lambda: not _runs_of(sandbox_home), 60, "no ansible-playbook left a minute after the master")
        except AssertionError as lost_runs:
            raise AssertionError(f"{lost_runs}: {_described(_runs_of(sandbox_home))}") from None
    finally:
        m.kill()
        cli("sandbox", "start", lost, home=sandbox_home)
    cleanup = Master(sandbox_home, "--insecure-loopback").start()
    try:
        delete(cleanup, f"orphan-{stop.name.lower()}", sandbox)
    finally:
        cleanup.kill()
