"""SSH to a minion exactly as Ansible would (the inventory's own settings), over a control master shared by
observation, the lock and the Ansible run that follows, so the second connection to a host costs no handshake."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from cluster_pilot.errors import UserError

if TYPE_CHECKING:  # nodes, or anything with name, address and vars (``probe.ask_ahead``)
    from cluster_pilot.model import Node


# Whoever opens a host's control master first sets these for every session over it (ours and Ansible's
# alike); keepalives: a minion that dies is found out within ~6 s, not after TCP's own minutes.
SHARED_OPTIONS = ("ControlMaster=auto", "ControlPersist=60s", "ServerAliveInterval=2", "ServerAliveCountMax=3")


def ssh_command(node: Node, control_dir: Path, remote: str) -> list[str]:
    """The ``ssh`` invocation Ansible itself would make for this host, plus a shared control master."""
    v = node.vars
    cmd = ["ssh", "-o", "BatchMode=yes", "-o", f"ControlPath={control_dir}/%C", "-o", "ConnectTimeout=5"]
    for option in SHARED_OPTIONS:
        cmd += ["-o", option]
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


# A socket path holds at most 107 bytes; ssh adds "/" + %C (40) and, while it creates one, 17 more.
_MAX_CONTROL_DIR = 107 - 1 - 40 - 17


def control_dir(state_dir: Path) -> Path:
    """Where the control sockets live: ``STATE/cm``, or a short private dir named for the state dir when that
    path is too long for a socket (a CI workspace's deep home would otherwise make every minion unreachable)."""
    d = state_dir / "cm"
    if len(os.fsencode(str(d))) > _MAX_CONTROL_DIR:
        digest = hashlib.sha256(os.fsencode(str(state_dir.resolve()))).hexdigest()[:16]
        d = Path(tempfile.gettempdir()) / f"cp-cm-{os.getuid()}-{digest}"
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    if d.stat().st_uid != os.getuid():
        raise UserError(f"{d}: the SSH control directory belongs to another user; remove it")
    if d.stat().st_mode & 0o077:
        d.chmod(0o700)
    return d


class HostDidNotAnswer(Exception):
    """Why a host gave no usable answer: no answer in time, ssh's own last error line, or unreadable output."""


def python_command(node: Node, script: str, *flags: str) -> str:
    """The remote command running ``script`` with the host's python (``ansible_python_interpreter``, as
    Ansible's own modules run; ``python3`` for Ansible's ``auto`` keywords). The roles' action plugin chooses so
    too."""
    python = str(node.vars.get("ansible_python_interpreter") or "python3")
    python = "python3" if python.startswith("auto") else python  # Ansible's discovery keywords
    return " ".join([shlex.quote(python), *flags, "-c", shlex.quote(script)])


def run_python(node: Node, cm_dir: Path, script: str, stdin: str = "", timeout: float = 20.0) -> dict:
    """Run a stdlib-only ``script`` with the host's python (``python3 -c``), ``stdin`` as its input; its last
    output line, a JSON object, is the answer. Observation and the lock talk to hosts this one way."""
    return Asked(node, cm_dir, script, stdin, timeout).answer()


class Asked:
    """``run_python`` in two steps: the ssh client starts at once, and ``answer`` waits for it, so a caller
    asks every host, does its own work, then collects the answers (no thread of its own per host)."""

    def __init__(self, node: Node, cm_dir: Path, script: str, stdin: str = "", timeout: float = 20.0) -> None:
        cmd = ssh_command(node, cm_dir, python_command(node, script))
        self.deadline = time.monotonic() + timeout
        self.timeout = timeout
        self.stdin = stdin
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def answer(self) -> dict:
        try:
            raw, raw_err = self.proc.communicate(self.stdin.encode(),
                                                 timeout=max(0.0, self.deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise HostDidNotAnswer(f"no answer within {self.timeout:.0f} s") from None
        out, err = raw.decode("utf-8", "replace"), raw_err.decode("utf-8", "replace")  # whatever our locale
        if self.proc.returncode != 0:
            raise HostDidNotAnswer((err.strip().splitlines() or [f"ssh exited {self.proc.returncode}"])[-1])
        try:
            answer = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise HostDidNotAnswer("unreadable answer from the host") from None
        if not isinstance(answer, dict):
            raise HostDidNotAnswer("unreadable answer from the host")
        return answer
