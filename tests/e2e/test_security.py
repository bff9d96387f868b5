"""A manifest cannot take a minion: ``apply`` refuses a bind of the host's root and a service on sshd's port
before anything touches a host, and every minion is left exactly as it was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import cli, managed_containers, rc_manifest, ssh, write_manifest

pytestmark = pytest.mark.e2e

STATE = ("docker ps -a --no-trunc --format '{{.ID}} {{.Names}} {{.State}}' | sort; "
         "ls -la --time-style=full-iso /etc/cluster-pilot 2>/dev/null; md5sum /etc/cluster-pilot/* 2>/dev/null; "
         "ss -ltn | awk '{print $4}' | sort")


def minion_states(sandbox) -> dict[str, str]:
    """What runs and listens on every minion, and its proxy files, read with plain tools over SSH."""
    states = {}
    for m in sandbox.status():
        assert m.ready, f"{m.name} is not ready"
        out = ssh(sandbox, m.address, STATE)
        assert out.returncode == 0, out.stderr
        states[m.name] = out.stdout
    return states


def test_a_root_bind_and_a_service_on_the_ssh_port_are_refused_and_touch_no_minion(sandbox_home, sandbox,
                                                                                   tmp_path: Path):
    before = minion_states(sandbox)
    root = rc_manifest("takeover", 1)
    manifest = root["desiredState"]["podTemplate"]["desiredState"]["manifest"]
    manifest["containers"][0]["volumeMounts"] = [{"name": "host", "mountPath": "/host"}]
    manifest["volumes"] = [{"name": "host", "source": {"hostDir": {"path": "/"}}}]
    root_file = write_manifest(tmp_path / "root.json", root)
    refused = cli("apply", "-f", str(root_file), home=sandbox_home, check=False)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"{root_file}:" in refused.stderr and "host path / is never allowed" in refused.stderr
    assert "Traceback" not in refused.stderr

    service = {"kind": "Service", "apiVersion": "v1beta1", "id": "sshd-thief", "port": 22,
               "selector": {"name": "sshthief"}, "containerPort": 80}
    backend = rc_manifest("sshthief", 1)
    files = [write_manifest(tmp_path / "svc.json", service), write_manifest(tmp_path / "rc.json", backend)]
    refused = cli("apply", "-f", str(files[0]), "-f", str(files[1]), home=sandbox_home, check=False)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"{files[0]}:" in refused.stderr and "port 22 is reserved" in refused.stderr

    assert minion_states(sandbox) == before


def test_a_killed_apply_leaves_no_environment_value_in_the_state_dir(sandbox_home, sandbox, tmp_path):
    """cluster-pilot SIGKILLed while ansible-playbook runs: nothing under the state dir holds the pod's env."""
    import os
    import signal
    import subprocess
    import sys

    from cluster_pilot.apply.processes import descendants
    from tests.waits import wait_for

    secret = "s3cret-" + os.urandom(8).hex()
    doc = rc_manifest("killed-secret", 1)
    doc["desiredState"]["podTemplate"]["desiredState"]["manifest"]["containers"][0]["env"] = [
        {"name": "TOKEN", "value": secret}]
    path = write_manifest(tmp_path / "killed.json", doc)
    apply = subprocess.Popen([sys.executable, "-m", "cluster_pilot", "apply", "-f", str(path)],
                             env=dict(os.environ, CLUSTER_PILOT_HOME=str(sandbox_home)),
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             cwd=tmp_path)  # the code PYTHONPATH names, not the checkout's of the cwd
    try:
        def playbook_running():
            for pid in descendants(apply.pid):
                try:
                    if b"apply.yml" in Path(f"/proc/{pid}/cmdline").read_bytes():
                        return descendants(apply.pid)
                except OSError:
                    continue
            return None

        tree = wait_for(playbook_running, 120, "ansible-playbook running under the apply", interval=0.02)
        apply.send_signal(signal.SIGKILL)
        for pid in tree:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        apply.wait(30)
        holders = []
        for root, dirs, files in os.walk(sandbox_home):
            for name in files:
                file = Path(root, name)
                try:
                    if file.is_file() and not file.is_symlink() and secret.encode() in file.read_bytes():
                        holders.append(str(file))
                except OSError:
                    continue
        assert holders == [], f"the pod's environment value is left in clear in {holders}"
    finally:
        if apply.poll() is None:
            apply.kill()
        cli("delete", "-f", str(path), home=sandbox_home, check=False)


def test_a_host_path_swapped_for_a_link_to_the_root_is_not_followed_when_dockerd_restarts_the_pod(
        sandbox_home, sandbox, tmp_path):
    """The audit's critical finding: a pod mounts /srv/data/x, a plain directory; then someone who may write
    under /srv/data makes x a link to /; dockerd restarting the container in place must not give it the root.
    After a reboot (the anchors' tmpfs gone) a restart fails rather than mount something unchecked; the pod's
    removal leaves the host path's data alone."""
    import json

    import yaml

    from tests.waits import wait_for

    doc = yaml.safe_load(sandbox.inventory.read_text())
    for host in doc["all"]["children"]["minions"]["hosts"].values():
        host["cp_allowed_host_paths"] = ["/srv/data"]
    inventory = tmp_path / "allowed.yml"
    inventory.write_text(yaml.safe_dump(doc))
    everyone = sandbox.status()
    for m in everyone:
        assert ssh(sandbox, m.address, "mkdir -p /srv/data/x && echo kept > /srv/data/x/kept").returncode == 0
    pod = write_manifest(tmp_path / "swapped.json", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "swapped"},
        "spec": {"containers": [{"name": "app", "image": "busybox", "command": ["sleep", "2147483647"],
                                 "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                 "volumes": [{"name": "data", "hostPath": {"path": "/srv/data/x"}}]}})
    try:
        cli("apply", "-f", str(pod), "-i", str(inventory), home=sandbox_home)
        (c,) = [c for c in managed_containers(sandbox) if c["pod"] == "swapped"]

        def on_minion(command: str):
            return ssh(sandbox, c["address"], command)

        def state() -> dict:
            return json.loads(on_minion(f"docker inspect -f '{{{{json .State}}}}' {c['id']}").stdout)

        def restarts() -> int:
            return int(on_minion(f"docker inspect -f '{{{{.RestartCount}}}}' {c['id']}").stdout)

        assert on_minion(f"docker exec {c['id']} ls /data").stdout.split() == ["kept"]
        assert on_minion("mv /srv/data/x /srv/data/x.old && ln -s / /srv/data/x").returncode == 0
        on_minion(f"kill -KILL {state()['Pid']}")
        wait_for(lambda: restarts() >= 1 and state()["Running"], 60, "dockerd to restart the pod's container")
        seen = on_minion(f"docker exec {c['id']} ls /data")
        assert seen.stdout.split() == ["kept"], f"after the swap and a restart the pod sees {seen.stdout.split()}"
        assert on_minion(f"docker exec {c['id']} test -e /data/run/docker.sock").returncode != 0

        assert on_minion("umount -l /run/cluster-pilot/binds").returncode == 0  # as a reboot leaves it
        on_minion(f"kill -KILL {state()['Pid']}")
        failed = wait_for(lambda: (lambda st: not st["Running"] and "/run/cluster-pilot/binds/" in st["Error"]
                                   and st)(state()), 60, "the restart after the anchors went to fail")
        assert "no such file" in failed["Error"] or "does not exist" in failed["Error"], failed["Error"]
    finally:
        cli("delete", "-f", str(pod), "-i", str(inventory), home=sandbox_home, check=False)
    assert not [c for c in managed_containers(sandbox) if c["pod"] == "swapped"]
    for m in everyone:
        kept = ssh(sandbox, m.address, "cat /srv/data/x.old/kept 2>/dev/null || cat /srv/data/x/kept; "
                                       "grep -c binds/swapped /proc/self/mountinfo; rm -rf /srv/data")
        assert kept.stdout.split() == ["kept", "0"], (m.name, kept.stdout, kept.stderr)


LOCKED = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "locked"},
          "spec": {"securityContext": {"runAsUser": 1000, "fsGroup": 2000}, "hostname": "vault-0",
                   "volumes": [{"name": "data", "emptyDir": {}}],
                   "containers": [{"name": "app", "image": "busybox", "command": ["sleep", "2147483647"],
                                   "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                                   "env": [{"name": n, "valueFrom": {"fieldRef": {"fieldPath": f}}} for n, f in (
                                       ("POD", "metadata.name"), ("NODE", "spec.nodeName"),
                                       ("HOST_IP", "status.hostIP"))],
                                   "securityContext": {"runAsNonRoot": True, "readOnlyRootFilesystem": True,
                                                       "allowPrivilegeEscalation": False,
                                                       "capabilities": {"drop": ["ALL"]}}}]}}


def test_a_security_context_that_tightens_is_applied_and_a_root_image_under_run_as_non_root_never_starts(
        sandbox_home, sandbox, tmp_path: Path):
    locked = write_manifest(tmp_path / "locked.json", LOCKED)
    cli("apply", "-f", str(locked), home=sandbox_home)
    (c,) = [c for c in managed_containers(sandbox) if c["pod"] == "locked"]
    run = lambda command: ssh(sandbox, c["address"], f"docker exec {c['id']} {command}")  # noqa: E731
    assert run("id -u").stdout.strip() == "1000" and run("hostname").stdout.strip() == "vault-0"
    assert run("sh -c 'echo $POD/$NODE/$HOST_IP'").stdout.strip() == f"locked/{c['minion']}/{c['address']}"
    assert run("touch /written").returncode != 0  # the root filesystem is read-only
    assert run("sh -c 'touch /data/f && stat -c %g /data/f'").stdout.strip() == "2000"  # fsGroup's volume
    inspected = ssh(sandbox, c["address"], "docker inspect -f '{{json .HostConfig}}' " + c["id"]).stdout
    host = json.loads(inspected)
    assert (host["ReadonlyRootfs"], host["CapDrop"], host["SecurityOpt"], host["GroupAdd"]) == (
        True, ["ALL"], ["no-new-privileges"], ["2000"]), host

    root = {**LOCKED, "metadata": {"name": "rooted"}, "spec": {"containers": [{
        "name": "app", "image": "busybox", "command": ["sleep", "2147483647"],
        "securityContext": {"runAsNonRoot": True}}]}}
    rooted = write_manifest(tmp_path / "rooted.json", root)
    refused = cli("apply", "-f", str(rooted), home=sandbox_home, check=False)
    assert refused.returncode == 1 and "runAsNonRoot is set and image busybox runs as root" in \
        refused.stdout + refused.stderr, refused.stdout + refused.stderr
    assert not [c for c in managed_containers(sandbox) if c["pod"] == "rooted" and c["state"] == "running"]
    cli("delete", "-f", str(locked), "-f", str(rooted), home=sandbox_home)
