"""A manifest cannot take a minion: ``apply`` refuses a bind of the host's root and a service on sshd's port
before anything touches a host, and every minion is left exactly as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import cli, rc_manifest, ssh, write_manifest

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

    from cluster_pilot.apply.runner import descendants
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
