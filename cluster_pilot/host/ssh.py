"""SSH to a minion exactly as Ansible would (the inventory's own settings), over a control master shared by
observation, the lock and the Ansible run that follows, so the second connection to a host costs no handshake."""

from __future__ import annotations

import shlex
from pathlib import Path

from cluster_pilot.model import Node


def ssh_command(node: Node, control_dir: Path, remote: str) -> list[str]:
    """The ``ssh`` invocation Ansible itself would make for this host, plus a shared control master."""
    v = node.vars
    cmd = ["ssh", "-o", "BatchMode=yes", "-o", "ControlMaster=auto", "-o", f"ControlPath={control_dir}/%C",
           "-o", "ControlPersist=60s", "-o", "ConnectTimeout=5", "-o", "ServerAliveInterval=2",
           "-o", "ServerAliveCountMax=2"]
    if v.get("ansible_port"):
        cmd += ["-p", str(v["ansible_port"])]
    if v.get("ansible_ssh_private_key_file"):
        cmd += ["-i", str(Path(str(v["ansible_ssh_private_key_file"])).expanduser())]
    for key in ("ansible_ssh_common_args", "ansible_ssh_extra_args"):
        if v.get(key):
            cmd += shlex.split(str(v[key]))
    user = v.get("ansible_user")
    cmd += [f"{user}@{node.address}" if user else node.address, remote]
    return cmd


def control_dir(state_dir: Path) -> Path:
    """Short path: a socket path over ~100 bytes is refused by the kernel."""
    d = state_dir / "cm"
    d.mkdir(parents=True, exist_ok=True)
    return d
