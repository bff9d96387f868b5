"""A lock on the fleet itself, so two applies never act at once, even from two CI runners.

As Kamal does, the lock lives on a host of the fleet: always the same one, which every runner computes the
same way (``cp_lock_host``, else the first minion in inventory order). When it does not answer, an apply
waits and then fails; it never locks elsewhere, where a second runner could lock too.

On the lock host the lock is a directory (atomic ``mkdir``) holding its owner's note; every operation runs
under an ``flock`` of a guard file there, so reading the holder and replacing it (taking over an expired
lock, compare-and-delete) is one step no other runner can split. Times are the lock host's own clock, so
runners' clocks never matter. A holder renews its expiry while it works (a thread); a lock whose expiry
passed, or a directory with no owner older than the expiry, is taken over. A holder whose process is gone
on this very runner (same runner id, kept in the state dir, and a dead PID) is broken at once; its token
is checked when it is, so a new holder is never broken by mistake.

The lock directory's parent counts the lock's generations: making and removing the lock changes its
mtime, whichever version of cluster-pilot does it (so does writing the object records, only ever done under
the lock). Observation reads whether the lock is held and that mtime on the lock host; an acquisition
answers the mtime it found before making the lock. A run that saw the lock free and its parent untouched
for longer than its whole observation took, and finds the same mtime when it takes the lock, knows that no
run changed the fleet while or since it looked (``unchanged_since``): it does not look again.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from cluster_pilot.errors import UserError
from cluster_pilot.host.paths import LOCK_DIR
from cluster_pilot.model import Node
from cluster_pilot.host.ssh import HostDidNotAnswer, control_dir, run_python

LOCK_HOST_VAR = "cp_lock_host"
TTL = 30.0  # seconds a holder's lock lasts unless renewed; renewed every third of it

# Runs on the lock host: ``op`` is pure but for the files under ``path`` (the unit tests run it locally
# with a clock of their own); reads {"op", "owner", "ttl", "break"} on stdin, answers one JSON line.
REMOTE = r"""
import fcntl, json, os, shutil, sys, time
OLD_TTL = 600.0  # a note without an expiry (an older runner's): its start plus this

def holder(path):
    try:
        with open(os.path.join(path, "owner")) as f:
            h = json.load(f)
        return h if isinstance(h, dict) and h.get("token") else {}
    except (OSError, ValueError):
        return {}

def write(path, owner):
    tmp = os.path.join(path, ".owner.tmp")
    with open(tmp, "w") as f:
        json.dump(owner, f)
    os.replace(tmp, os.path.join(path, "owner"))

def expired(path, h, now, ttl):
    if not h:
        return os.stat(path).st_mtime + ttl <= now  # made, but its owner never noted: stale after the expiry
    return float(h.get("expires", float(h.get("since", 0)) + OLD_TTL)) <= now

def op(req, path, now):
    ttl = float(req.get("ttl", 30))
    owner = dict(req.get("owner") or {})
    kind = req["op"]
    present = os.path.isdir(path)
    h = holder(path) if present else None
    if kind == "acquire":
        owner["expires"] = now + ttl
        before = os.stat(os.path.dirname(path)).st_mtime_ns
        if not present:
            os.mkdir(path)
            write(path, owner)
            return {"held": True, "now": now, "before": before}
        if expired(path, h, now, ttl) or (h and req.get("break") and h.get("token") == req["break"]):
            write(path, owner)
            return {"held": True, "took_over": h, "now": now, "before": before}
        return {"held": False, "holder": h, "now": now}
    if kind == "renew":
        if h and h.get("token") == owner.get("token"):
            h["expires"] = now + ttl
            write(path, h)
            return {"renewed": True, "now": now}
        return {"renewed": False, "holder": h, "now": now}
    if kind == "release":
        if present and (req.get("force") or (h and h.get("token") == owner.get("token"))):
            shutil.rmtree(path, ignore_errors=True)
            return {"released": True, "holder": h, "now": now}
        return {"released": False, "holder": h, "now": now}
    return {"holder": h, "now": now}

def main(path):
    req = json.load(sys.stdin)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".guard", "a") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        print(json.dumps(op(req, path, time.time())))

if __name__ == "__main__":
    main(LOCK_DIR)
"""

Call = Callable[[Node, Path, dict], dict]


@dataclass(frozen=True)
class Holder:
    who: str
    host: str
    pid: int
    since: float
    token: str
    command: str = ""
    runner: str = ""  # the holder's runner id (random, kept in its state dir)
    expires_in: float | None = None  # seconds, by the lock host's clock

    def describe(self) -> str:
        age = time.time() - self.since
        left = "" if self.expires_in is None else f", expires in {max(0.0, self.expires_in):.0f} s unless renewed"
        return f"{self.who} on {self.host} (pid {self.pid}, {self.command or 'apply'}) for {age:.0f} s{left}"


def _call(node: Node, state_dir: Path, request: dict) -> dict:
    script = f"LOCK_DIR = {LOCK_DIR!r}\n" + REMOTE
    try:
        return run_python(node, control_dir(state_dir), script, json.dumps(request), timeout=30)
    except HostDidNotAnswer as exc:
        raise UserError(f"cannot reach lock host {node.name}: {exc}") from None


def _holder(doc: dict | None, now: float | None = None) -> Holder | None:
    if not doc:
        return None
    try:
        expires = doc.get("expires")
        return Holder(str(doc["who"]), str(doc["host"]), int(doc["pid"]), float(doc["since"]), str(doc["token"]),
                      str(doc.get("command", "")), str(doc.get("runner", "")),
                      None if expires is None or now is None else float(expires) - now)
    except (KeyError, TypeError, ValueError):
        return None


def runner_id(state_dir: Path) -> str:
    """This runner's random id, made once per state dir: two CI containers sharing a hostname and a PID
    still differ."""
    path = state_dir / "runner-id"
    try:
        return path.read_text().strip()
    except OSError:
        state_dir.mkdir(parents=True, exist_ok=True)
        rid = os.urandom(16).hex()
        path.write_text(rid + "\n")
        return rid


def _dead_here(h: Holder | None, me: str) -> bool:
    """A holder of this very runner whose process is gone; any other holder waits for its expiry."""
    if h is None or not h.runner or h.runner != me:
        return False
    try:
        os.kill(h.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class FleetLock:
    def __init__(self, node: Node, state_dir: Path, command: str = "apply", ttl: float = TTL,
                 call: Call = _call, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, renew_in_thread: bool = True) -> None:
        self.node = node
        self.state_dir = state_dir
        self.ttl = ttl
        self.call = call
        self.clock = clock
        self.sleep = sleep
        import getpass  # here, not at the top: every observation imports this module (LockSeen)
        import socket

        self.runner = runner_id(state_dir)
        self.owner = {"who": getpass.getuser(), "host": socket.gethostname(), "pid": os.getpid(),
                      "since": time.time(), "token": os.urandom(16).hex(), "runner": self.runner,
                      "command": command}
        self.held = False
        self.lost = False  # a renewal found another holder: this run's lock expired under it
        self.before: int | None = None  # the lock dir's parent's mtime (ns) when this run took the lock
        self._renew_thread = renew_in_thread
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _ask(self, request: dict) -> dict:
        return self.call(self.node, self.state_dir, {"ttl": self.ttl, "owner": self.owner, **request})

    def acquire(self, timeout: float, on_wait: Callable[[Holder | None], None] = lambda h: None) -> None:
        deadline = self.clock() + timeout
        told = False
        breaking = ""
        while True:
            try:
                answer = self._ask({"op": "acquire", "break": breaking})
            except UserError as exc:
                if self.clock() >= deadline:
                    raise UserError(f"{exc}; waited {timeout:.0f} s; nothing was changed (the fleet lock lives "
                                    f"only on {self.node.name}: bring it back, or set {LOCK_HOST_VAR})") from None
                self.sleep(1.0)
                continue
            if answer.get("held"):
                self.held = True
                self.before = answer.get("before")
                self._start_renewing()
                return
            holder = _holder(answer.get("holder"), answer.get("now"))
            if _dead_here(holder, self.runner) and holder is not None and holder.token != breaking:
                breaking = holder.token  # compare-and-delete: only that holder is replaced
                continue
            if self.clock() >= deadline:
                who = holder.describe() if holder else "an unknown holder"
                raise UserError(f"the fleet is locked by {who}; waited {timeout:.0f} s (if that run is gone, "
                                f"'cluster-pilot lock release' breaks the lock)")
            if not told:
                on_wait(holder)
                told = True
            self.sleep(0.5)

    def renew(self) -> bool:
        """Push the expiry on; False once another holder has taken the lock over."""
        answer = self._ask({"op": "renew"})
        if not answer.get("renewed"):
            self.lost = True
        return not self.lost

    def _start_renewing(self) -> None:
        if not self._renew_thread:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(self.ttl / 3):
                try:
                    if not self.renew():
                        return
                except UserError:
                    continue  # the next try may reach the host; the expiry leaves room for two misses

        self._thread = threading.Thread(target=loop, name="fleet-lock-renew", daemon=True)
        self._thread.start()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=35)
            self._thread = None
        if self.held:
            self._ask({"op": "release"})
            self.held = False

    def __enter__(self) -> "FleetLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


@dataclass(frozen=True)
class LockSeen:
    """The lock as observation read it on the lock host: whether it was held, its parent's mtime (ns) and
    how long before that read the parent last changed (by the lock host's clock)."""

    held: bool
    stamp: int
    idle: float


def unchanged_since(seen: LockSeen | None, looked: float | None, before: int | None) -> bool:
    """Whether no run held the lock during an observation that took ``looked`` seconds and read it as
    ``seen``, nor after it until this run took it, finding its parent's mtime ``before``: free then,
    untouched since before the first host was asked (a second of margin between the two clocks), and
    untouched until now. Unknown (an observation pieced together, an older lock host): look again."""
    return (seen is not None and looked is not None and before is not None and not seen.held
            and seen.idle > looked + 1.0 and before == seen.stamp)


def lock_host(nodes: Sequence[Node]) -> Node:
    """``cp_lock_host`` when the inventory sets it, else the first minion in inventory order: every runner
    of one inventory picks the same host, whether or not it answers."""
    if not nodes:
        raise UserError("the inventory has no minions: nothing can be locked or changed")
    named = {str(n.vars.get(LOCK_HOST_VAR)) for n in nodes if n.vars.get(LOCK_HOST_VAR)}
    if len(named) > 1:
        raise UserError(f"{LOCK_HOST_VAR} differs between minions ({', '.join(sorted(named))}): set it once, "
                        "for the group")
    if named:
        name = named.pop()
        found = [n for n in nodes if n.name == name]
        if not found:
            raise UserError(f"{LOCK_HOST_VAR} {name!r} is not a minion of the inventory")
        return found[0]
    return nodes[0]


def show(node: Node, state_dir: Path) -> Holder | None:
    answer = _call(node, state_dir, {"op": "show", "owner": {}})
    return _holder(answer.get("holder"), answer.get("now"))


def force_release(node: Node, state_dir: Path) -> Holder | None:
    answer = _call(node, state_dir, {"op": "release", "owner": {}, "force": True})
    return _holder(answer.get("holder"), answer.get("now"))
