"""A lock on the fleet itself, so two applies never act at once, even from two CI runners.

As Kamal does, the lock lives on a host of the fleet (the first by name that answers): an
atomic ``mkdir`` holding a note of who took it and when. A holder on this very machine whose process is gone
is stale and broken at once; any other holder is waited for, up to a deadline, then named in the error.
"""

from __future__ import annotations

import getpass
import json
import os
import shlex
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from cluster_pilot.errors import UserError
from cluster_pilot.model import Node
from cluster_pilot.host.ssh import control_dir, ssh_command

LOCK_DIR = "/var/lib/cluster-pilot/apply.lock"

# Runs on the lock host; reads {"op", "owner"} on stdin, answers one JSON line.
_REMOTE = r"""
import json, os, shutil, sys
req = json.load(sys.stdin)
path = %r
os.makedirs(os.path.dirname(path), exist_ok=True)
def holder():
    try:
        with open(os.path.join(path, "owner")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}
if req["op"] == "acquire":
    try:
        os.mkdir(path)
    except FileExistsError:
        print(json.dumps({"held": False, "holder": holder()}))
    else:
        with open(os.path.join(path, "owner"), "w") as f:
            json.dump(req["owner"], f)
        print(json.dumps({"held": True}))
elif req["op"] == "release":
    h = holder()
    if req.get("force") or h.get("token") == req["owner"].get("token") or not h:
        shutil.rmtree(path, ignore_errors=True)
        print(json.dumps({"released": True, "holder": h}))
    else:
        print(json.dumps({"released": False, "holder": h}))
else:
    print(json.dumps({"holder": holder() if os.path.isdir(path) else None}))
""" % LOCK_DIR


@dataclass(frozen=True)
class Holder:
    who: str
    host: str
    pid: int
    since: float
    token: str
    command: str = ""

    def describe(self) -> str:
        age = time.time() - self.since
        return f"{self.who} on {self.host} (pid {self.pid}, {self.command or 'apply'}) for {age:.0f} s"


def _call(node: Node, state_dir: Path, request: dict) -> dict:
    python = str(node.vars.get("ansible_python_interpreter") or "python3")
    cmd = ssh_command(node, control_dir(state_dir), f"{shlex.quote(python)} -c {shlex.quote(_REMOTE)}")
    try:
        proc = subprocess.run(cmd, input=json.dumps(request), capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        raise UserError(f"lock host {node.name} did not answer within 30 s") from None
    if proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise UserError(f"cannot reach lock host {node.name}: {detail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _holder(doc: dict | None) -> Holder | None:
    if not doc:
        return None
    try:
        return Holder(str(doc["who"]), str(doc["host"]), int(doc["pid"]), float(doc["since"]), str(doc["token"]),
                      str(doc.get("command", "")))
    except (KeyError, TypeError, ValueError):
        return None


def _stale(h: Holder | None) -> bool:
    if h is None or h.host != socket.gethostname():
        return False
    try:
        os.kill(h.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class FleetLock:
    def __init__(self, node: Node, state_dir: Path, command: str = "apply") -> None:
        self.node = node
        self.state_dir = state_dir
        self.owner = {"who": getpass.getuser(), "host": socket.gethostname(), "pid": os.getpid(),
                      "since": time.time(), "token": uuid.uuid4().hex, "command": command}
        self.held = False

    def acquire(self, timeout: float, on_wait: Callable[[Holder | None], None] = lambda h: None) -> None:
        deadline = time.monotonic() + timeout
        told = False
        while True:
            answer = _call(self.node, self.state_dir, {"op": "acquire", "owner": self.owner})
            if answer.get("held"):
                self.held = True
                return
            holder = _holder(answer.get("holder"))
            if _stale(holder):
                _call(self.node, self.state_dir, {"op": "release", "owner": self.owner, "force": True})
                continue
            if time.monotonic() >= deadline:
                who = holder.describe() if holder else "an unknown holder"
                raise UserError(f"the fleet is locked by {who}; waited {timeout:.0f} s (if that run is gone, "
                                f"'cluster-pilot lock release' breaks the lock)")
            if not told:
                on_wait(holder)
                told = True
            time.sleep(0.5)

    def release(self) -> None:
        if self.held:
            _call(self.node, self.state_dir, {"op": "release", "owner": self.owner})
            self.held = False

    def __enter__(self) -> "FleetLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def lock_host(nodes: Sequence[Node], reachable: set[str] | None = None) -> Node:
    """The first host by name that answers: every runner picks the same one."""
    for n in sorted(nodes, key=lambda n: n.name):
        if reachable is None or n.name in reachable:
            return n
    raise UserError("no host of the inventory answers: nothing can be locked or changed")


def show(node: Node, state_dir: Path) -> Holder | None:
    return _holder(_call(node, state_dir, {"op": "show", "owner": {}}).get("holder"))


def force_release(node: Node, state_dir: Path) -> Holder | None:
    return _holder(_call(node, state_dir, {"op": "release", "owner": {}, "force": True}).get("holder"))
