"""``apply`` on real minions: safety, no-op, minimal change, interruptions, concurrency, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import cli, managed_containers, pods_of, rc_manifest, ssh, wait_for, write_manifest

pytestmark = pytest.mark.e2e


def apply(home: Path, *files: Path, check: bool = True, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    args = ["apply"]
    for f in files:
        args += ["-f", str(f)]
    return cli(*args, *extra, home=home, check=check)


def complete_pods(sandbox, controller: str) -> dict[str, list[dict]]:
    return {p: cs for p, cs in pods_of(sandbox, controller).items() if all(c["state"] == "running" for c in cs)}


def test_manifest_values_are_data_never_code(sandbox_home, sandbox, tmp_path):
    evil_env = "{{ lookup('pipe', 'touch /tmp/cp-pwned') }}"
    command = ["sh", "-c", "echo $(touch /tmp/cp-pwned2) ; touch /tmp/cp-pwned3 ; exec sleep 2147483647",
               "$(touch /tmp/cp-pwned2)", "; touch /tmp/cp-pwned3"]
    pod = {"kind": "Pod", "apiVersion": "v1beta1", "id": "injection", "labels": {"name": "injection"},
           "desiredState": {"manifest": {"version": "v1beta1", "containers": [{
               "name": "app", "image": "busybox", "command": command,
               "env": [{"name": "EVIL", "value": evil_env}, {"name": "PORTISH", "value": "8080"}]}]}}}
    f = write_manifest(tmp_path / "injection.json", pod)
    for p in ("/tmp/cp-pwned", "/tmp/cp-pwned2", "/tmp/cp-pwned3"):
        Path(p).unlink(missing_ok=True)
    apply(sandbox_home, f)
    app = next(c for c in managed_containers(sandbox) if c["pod"] == "injection" and c["container"] == "app")
    inspect = json.loads(ssh(sandbox, app["address"], f"docker inspect {app['id']}").stdout)[0]
    assert f"EVIL={evil_env}" in inspect["Config"]["Env"]
    assert "PORTISH=8080" in inspect["Config"]["Env"]
    assert inspect["Config"]["Entrypoint"] + (inspect["Config"]["Cmd"] or []) == command
    for p in ("/tmp/cp-pwned", "/tmp/cp-pwned2", "/tmp/cp-pwned3"):
        assert not Path(p).exists(), f"{p} appeared on the controller"
    for m in sandbox.status():
        if m.ready:
            assert ssh(sandbox, m.address, "ls /tmp/cp-pwned /tmp/cp-pwned2 /tmp/cp-pwned3 2>/dev/null").stdout == ""
    cli("delete", "pods/injection", home=sandbox_home)
    assert not [c for c in managed_containers(sandbox) if c["pod"] == "injection"]


def test_second_apply_is_a_no_op_and_an_image_change_replaces_only_its_pods(sandbox_home, sandbox, tmp_path):
    a = write_manifest(tmp_path / "a.json", rc_manifest("keep", 3))
    b = write_manifest(tmp_path / "b.json", rc_manifest("change", 3))
    apply(sandbox_home, a, b)
    assert len(complete_pods(sandbox, "keep")) == 3 and len(complete_pods(sandbox, "change")) == 3

    again = apply(sandbox_home, a, b)
    assert "no changes" in again.stderr
    assert "actions" not in again.stderr  # no Ansible run, so no per-host results

    kept_ids = sorted(c["id"] for cs in pods_of(sandbox, "keep").values() for c in cs)
    write_manifest(b, rc_manifest("change", 3, image="busybox:latest"))
    out = apply(sandbox_home, a, b)
    assert "3 replaced" in out.stderr, out.stderr
    assert sorted(c["id"] for cs in pods_of(sandbox, "keep").values() for c in cs) == kept_ids
    changed = pods_of(sandbox, "change")
    assert len(changed) == 3 and all(c["image"] == "busybox:latest" for cs in changed.values() for c in cs
                                     if c["container"] == "app")
    cli("delete", "rc/keep", home=sandbox_home)
    cli("delete", "rc/change", home=sandbox_home)
    assert not pods_of(sandbox, "keep") and not pods_of(sandbox, "change")


def _start_apply(home: Path, f: Path) -> subprocess.Popen:
    env = dict(os.environ, CLUSTER_PILOT_HOME=str(home))
    return subprocess.Popen([sys.executable, "-m", "cluster_pilot", "apply", "-f", str(f)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{pid}: {cmdline[:200]}")
    return found


def _assert_exactly(sandbox, controller: str, replicas: int) -> None:
    pods = pods_of(sandbox, controller)
    assert len(pods) == replicas, sorted(pods)
    for name, containers in pods.items():
        roles = sorted(c["container"] for c in containers)
        # one version per pod, no duplicate, no orphan; a single-container pod has no infra container
        assert roles == ["app"], (name, containers)
        assert all(c["state"] == "running" for c in containers)


def test_sigint_in_the_middle_then_the_next_apply_converges(sandbox_home, sandbox, tmp_path):
    f = write_manifest(tmp_path / "sig.json", rc_manifest("sigint", 15))
    proc = _start_apply(sandbox_home, f)
    wait_for(lambda: pods_of(sandbox, "sigint") or proc.poll() is not None, 60, "the first containers to appear")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 or "apply done" in err
    assert "Traceback" not in err
    # nothing of the interrupted run goes on behind the next one's back: neither ansible-playbook nor any of
    # its workers is left (they carry the run's private directory on their command lines)
    assert not _processes_mentioning(f"{sandbox_home}/cp-run-")
    apply(sandbox_home, f)
    _assert_exactly(sandbox, "sigint", 15)
    cli("delete", "rc/sigint", home=sandbox_home)


def test_a_minion_lost_mid_apply_fails_naming_it_and_the_next_apply_converges(sandbox_home, sandbox, tmp_path):
    # mid-apply: as soon as its Ansible run starts (the run's private dir on a command line); with enough pods
    # that the run is still going when the minion has stopped, however fast the pods start
    f = write_manifest(tmp_path / "lost.json", rc_manifest("lost", 30))
    proc = _start_apply(sandbox_home, f)
    wait_for(lambda: _processes_mentioning(f"{sandbox_home}/cp-run-") or proc.poll() is not None, 60,
             "the run to start", 0.05)
    cli("sandbox", "stop", "minion-3", home=sandbox_home)
    try:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 1, err
        assert "minion-3" in err
        others = {c["minion"] for cs in pods_of(sandbox, "lost").values() for c in cs}
        assert others and "minion-3" not in others
    finally:
        cli("sandbox", "start", "minion-3", home=sandbox_home)
    apply(sandbox_home, f)
    _assert_exactly(sandbox, "lost", 30)
    cli("delete", "rc/lost", home=sandbox_home)


def test_a_rebooted_minions_pods_are_repaired_by_the_next_apply(sandbox_home, sandbox, tmp_path):
    """A reboot brings the infra containers back, but dockerd sometimes gives up on the containers joining
    their namespaces (it starts them in parallel, before the namespace is there). Here the pods have one
    container each (no infra container), and the same end is made certain: after the restart the containers
    are stopped with plain docker, left exited as dockerd leaves such a container. The next apply must replace exactly those pods, and every pod runs complete after it."""
    f = write_manifest(tmp_path / "reboot.json", rc_manifest("reboot", 6))
    apply(sandbox_home, f)
    on_3 = {name for name, cs in pods_of(sandbox, "reboot").items() if cs[0]["minion"] == "minion-3"}
    assert on_3, "spreading puts pods on every minion"
    cli("sandbox", "stop", "minion-3", home=sandbox_home)
    cli("sandbox", "start", "minion-3", home=sandbox_home)
    (address,) = [m.address for m in sandbox.status() if m.name == "minion-3"]
    apps = "--filter label=io.cluster-pilot.controller=reboot --filter label=io.cluster-pilot.container=app"
    stopped = ssh(sandbox, address, f"docker stop -t 1 $(docker ps -aq {apps})")
    assert stopped.returncode == 0, stopped.stderr
    left_down = {c["id"] for c in managed_containers(sandbox) if c["controller"] == "reboot"
                 and c["container"] == "app" and c["state"] == "exited"}
    assert {c["pod"] for c in managed_containers(sandbox) if c["id"] in left_down} == on_3
    out = apply(sandbox_home, f).stderr
    _assert_exactly(sandbox, "reboot", 6)  # every pod complete and running, one version each
    assert not left_down & {c["id"] for c in managed_containers(sandbox)}, "the exited containers were replaced"
    assert "apply done" in out and "no changes" not in out, out
    cli("delete", "rc/reboot", home=sandbox_home)


def test_two_concurrent_applies_take_turns(sandbox_home, sandbox, tmp_path):
    f = write_manifest(tmp_path / "both.json", rc_manifest("both", 6))
    first, second = _start_apply(sandbox_home, f), _start_apply(sandbox_home, f)
    outs = [p.communicate(timeout=300) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outs
    errs = " ".join(e for _, e in outs)
    assert "waiting for the fleet lock" in errs or "no changes" in errs, errs
    _assert_exactly(sandbox, "both", 6)
    cli("delete", "rc/both", home=sandbox_home)


def test_bad_input_touches_no_host(sandbox_home, sandbox, tmp_path):
    before = sorted(c["id"] for c in managed_containers(sandbox))
    good = write_manifest(tmp_path / "good.json", rc_manifest("never", 2))
    bad = tmp_path / "bad.json"
    doc = rc_manifest("never2", 2, ports=[{"containerPort": "80a"}])
    write_manifest(bad, doc)
    proc = apply(sandbox_home, good, bad, check=False)
    assert proc.returncode == 1
    assert "bad.json:" in proc.stderr and "containerPort" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(c["id"] for c in managed_containers(sandbox)) == before


def test_a_single_container_pod_keeps_its_published_port_across_a_restart_and_is_not_replaced(
        sandbox_home, sandbox, tmp_path):
    """A pod of one container has no infra container: the container owns its network namespace, and dockerd's
    restart keeps its port binding, so the pod answers again on the same port and no apply replaces it."""
    pod = {"kind": "Pod", "apiVersion": "v1beta1", "id": "survivor", "labels": {"name": "survivor"},
           "desiredState": {"manifest": {"version": "v1beta1", "containers": [{
               "name": "db", "image": "redis", "command": ["redis-server", "--protected-mode", "no"],
               "ports": [{"containerPort": 6379, "hostPort": 16379}]}]}}}
    f = write_manifest(tmp_path / "survivor.json", pod)
    apply(sandbox_home, f)
    (only,) = [c for c in managed_containers(sandbox) if c["pod"] == "survivor"]
    assert only["container"] == "db" and only["state"] == "running"

    def say(command: str) -> str:
        script = ("import socket; s = socket.create_connection(('127.0.0.1', 16379), 2); "
                  f"s.sendall(b'{command}\\r\\n'); print(s.recv(16).decode().strip())")
        return ssh(sandbox, only["address"], f'python3 -c "{script}"').stdout

    def answers() -> bool:
        return say("PING").strip() == "+PONG"

    wait_for(answers, 30, "redis to answer on the published port")
    say("SHUTDOWN NOSAVE")  # the server exits: dockerd restarts the container, as a crash
    restarts = f"docker inspect -f '{{{{.RestartCount}}}}' {only['id']}"
    wait_for(lambda: ssh(sandbox, only["address"], restarts).stdout.strip() not in ("", "0"), 60,
             "dockerd to restart the container")
    wait_for(answers, 30, "the same port to answer again")
    assert "no changes" in apply(sandbox_home, f).stderr
    assert [c["id"] for c in managed_containers(sandbox) if c["pod"] == "survivor"] == [only["id"]]
    cli("delete", "pods/survivor", home=sandbox_home)


def _looks(trace: Path) -> int:
    return [name for _, name, _ in json.loads(trace.read_text())].count("observing")


def test_a_run_looks_again_under_the_lock_only_when_another_held_it_since_its_first_look(
        sandbox_home, sandbox, tmp_path):
    from cluster_pilot.cli.options import load_nodes
    from cluster_pilot.host.lock import FleetLock, lock_hosts
    from cluster_pilot.host.observed import LockSeen

    from cluster_pilot.host.observe import observe

    _, nodes = load_nodes(sandbox_home / "sandbox" / "inventory.yml")
    lock_nodes = lock_hosts(nodes)

    def left_alone() -> bool:
        seen = observe(lock_nodes, tmp_path).hosts
        return all((seen[n.name].lock or LockSeen(True, 0, 0)).idle > 5 for n in lock_nodes)

    # the run before this one let the lock go a moment ago: a look now could not tell it from one in progress
    wait_for(left_alone, 30, "the lock to be left alone for 5 s on every lock host")
    env = dict(os.environ, CLUSTER_PILOT_HOME=str(sandbox_home), CLUSTER_PILOT_TIMINGS=str(tmp_path / "alone.json"))
    f = write_manifest(tmp_path / "looks.json", rc_manifest("looks", 2))
    alone = subprocess.run([sys.executable, "-m", "cluster_pilot", "apply", "-f", str(f)], env=env,
                           capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert alone.returncode == 0 and "apply done" in alone.stderr, alone.stderr
    assert _looks(tmp_path / "alone.json") == 1  # nobody held the lock since: the first look stands

    other = FleetLock(lock_nodes, tmp_path / "other-runner", renew_in_thread=False)
    other.acquire(30)
    try:
        env["CLUSTER_PILOT_TIMINGS"] = str(tmp_path / "waited.json")
        f = write_manifest(tmp_path / "looks.json", rc_manifest("looks", 3))
        waiting = subprocess.Popen([sys.executable, "-m", "cluster_pilot", "apply", "-f", str(f)], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                   stdin=subprocess.DEVNULL)
        told = ""
        for line in waiting.stderr:  # until it says it waits (or, failing that, ends)
            told += line
            if "waiting for the fleet lock" in line:
                break
    finally:
        other.release()
    rest = waiting.communicate(timeout=300)[1]
    assert waiting.returncode == 0 and "waiting for the fleet lock" in told, told + rest
    assert _looks(tmp_path / "waited.json") == 2  # it looked while another run held the lock: looked again
    _assert_exactly(sandbox, "looks", 3)
    cli("delete", "rc/looks", home=sandbox_home)
