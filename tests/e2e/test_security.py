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
