"""A lock on the fleet itself, so two applies never act at once, even from two CI runners, and losing any one
lock host stops nothing.

The lock is a lease on a majority of the lock hosts (``lock_hosts``: ``cp_lock_hosts``, else ``cp_lock_host``,
else the first three minions in inventory order), which every runner computes from the inventory alone. Two
majorities share a host, and a host keeps one lease at a time, so two runs never both hold the lock.

On each lock host a lease is a directory (atomic ``mkdir``) holding its owner's note; every operation runs
under an ``flock`` of a guard file there, so reading the holder and replacing it (taking over an expired
lease, compare-and-delete) is one step no other runner can split. Expiries are the lock host's own clock. A
runner asks all lock hosts at once and decides as soon as a majority answered; a host that does not answer
finishes in the background. Once a majority granted, the leases are sealed with a fencing token above every
counter those hosts hold; every write on a minion carries it, and a minion refuses a token lower than the
highest it has seen (``roles/cp_pods/module_utils/cp_fence.py``), so a holder paused past its lease cannot
write after its successor. A holder renews while it works (a thread); a holder whose process is gone on this
very runner (same runner id, kept in the state dir, and a dead PID) is broken at once, by its token.
The correctness argument and the clock assumptions: ``docs/architecture.md``, "The fleet lock".

The lock directory's parent counts the lock's generations: making and removing the lock changes its
mtime, whichever version of cluster-pilot does it (so does writing the object records, only ever done under
the lock). Observation reads whether the lock is held and that mtime on each minion; an acquisition
answers the mtime it found before making the lock. A run that saw the lock free and its parent untouched
for longer than its whole observation took, and finds the same mtime when it takes the lock, knows that no
run changed the fleet while or since it looked (``unchanged_since``): it does not look again.
"""

from __future__ import annotations

import json
import os
import queue
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from cluster_pilot.errors import UserError
from cluster_pilot.host.observed import LockSeen
from cluster_pilot.host.paths import LOCK_DIR
from cluster_pilot.model import Node
from cluster_pilot.host.ssh import HostDidNotAnswer, control_dir, run_python

LOCK_HOST_VAR = "cp_lock_host"  # one lock host (the earlier design's variable): a majority of one
LOCK_HOSTS_VAR = "cp_lock_hosts"
DEFAULT_LOCK_HOSTS = 3
TTL = 30.0  # seconds a holder's lease lasts unless renewed; renewed every third of it
DRIFT = 0.1  # a holder counts its lease as ended this share of the TTL early: a host's clock may run fast

# Runs on each lock host: ``op`` is pure but for the files under ``path`` (the unit tests run it locally
# with a clock of their own); reads {"op", "owner", "ttl", "break", "fence"} on stdin, answers one JSON line.
# ``path + ".fence"`` keeps the highest fencing token this host has sealed a lease with (never lowered).
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

def replace(target, text):
    tmp = target + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)

def write(path, owner):
    replace(os.path.join(path, "owner"), json.dumps(owner))

def counter(path):
    try:
        with open(path + ".fence") as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0

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
    seen = counter(path)
    if kind == "acquire":
        owner["expires"] = now + ttl
        owner.pop("fence", None)  # not sealed yet: no token until a majority answered
        before = os.stat(os.path.dirname(path)).st_mtime_ns
        if not present:
            os.mkdir(path)
            write(path, owner)
            return {"held": True, "now": now, "before": before, "fence": seen}
        mine = bool(h) and h.get("token") == owner.get("token")
        if mine or expired(path, h, now, ttl) or (h and req.get("break") and h.get("token") == req["break"]):
            write(path, owner)
            return {"held": True, "took_over": None if mine else h, "now": now, "before": before, "fence": seen}
        return {"held": False, "holder": h, "now": now, "fence": seen}
    if kind == "seal":
        fence = int(req["fence"])
        if h and h.get("token") == owner.get("token") and (fence > seen or h.get("fence") == fence):
            replace(path + ".fence", str(fence))
            h["fence"], h["expires"] = fence, now + ttl
            write(path, h)
            return {"sealed": True, "now": now, "fence": fence}
        return {"sealed": False, "holder": h, "now": now, "fence": seen}
    if kind == "renew":
        if h and h.get("token") == owner.get("token"):
            h["expires"] = now + ttl
            write(path, h)
            return {"renewed": True, "now": now, "fence": seen}
        return {"renewed": False, "holder": h, "now": now, "fence": seen}
    if kind == "release":
        if present and (req.get("force") or (h and h.get("token") == owner.get("token"))):
            shutil.rmtree(path, ignore_errors=True)
            return {"released": True, "holder": h, "now": now, "fence": seen}
        return {"released": False, "holder": h, "now": now, "fence": seen}
    live = h if h and not expired(path, h, now, ttl) else None
    return {"holder": h, "live": bool(live), "now": now, "fence": seen}

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


Answers = dict[str, "dict | UserError"]


def majority(count: int) -> int:
    return count // 2 + 1


class _Round:
    """One request to every host at once (a thread each); ``until`` collects the answers. A host still being
    asked when the caller has decided finishes in the background, bounded by its SSH timeout, so a dead host
    never delays a decision."""

    def __init__(self, call: Call, nodes: Sequence[Node], state_dir: Path, request: dict) -> None:
        self.total = len(nodes)
        self.answers: Answers = {}
        self._done: queue.Queue = queue.Queue()
        for node in nodes:
            threading.Thread(target=self._ask, args=(call, node, state_dir, request), name=f"fleet-lock-{node.name}",
                             daemon=True).start()

    def _ask(self, call: Call, node: Node, state_dir: Path, request: dict) -> None:
        try:
            self._done.put((node.name, call(node, state_dir, request)))
        except UserError as exc:
            self._done.put((node.name, exc))
        except Exception as exc:  # a bug must not leave the caller waiting for an answer that never comes
            self._done.put((node.name, UserError(f"lock host {node.name}: {exc}")))

    def until(self, enough: Callable[[Answers], bool], linger: float = 0.0) -> Answers:
        """The answers once ``enough`` says they decide, or every host answered; then ``linger`` seconds more
        for the others."""
        while len(self.answers) < self.total and not enough(self.answers):
            name, answer = self._done.get()
            self.answers[name] = answer
        until = time.monotonic() + linger
        while len(self.answers) < self.total and (left := until - time.monotonic()) > 0:
            try:
                name, answer = self._done.get(timeout=left)
            except queue.Empty:
                break
            self.answers[name] = answer
        return dict(self.answers)


def _ask_hosts(call: Call, nodes: Sequence[Node], state_dir: Path, request: dict,
               enough: Callable[[Answers], bool], linger: float = 0.0) -> Answers:
    return _Round(call, nodes, state_dir, request).until(enough, linger)


def _count(answers: Answers, key: str) -> tuple[int, int]:
    """(hosts that said yes to ``key``, hosts that said no or did not answer)."""
    yes = sum(1 for a in answers.values() if isinstance(a, dict) and a.get(key))
    return yes, len(answers) - yes


def _decided(key: str, total: int, need: int) -> Callable[[Answers], bool]:
    def enough(answers: Answers) -> bool:
        yes, no = _count(answers, key)
        return yes >= need or no > total - need
    return enough


def _unreachable(answers: Answers) -> dict[str, str]:
    return {name: str(a) for name, a in sorted(answers.items()) if isinstance(a, UserError)}


class FleetLock:
    """The lock over a majority of ``nodes`` (``lock_hosts``): a lease on each, taken in parallel; held once
    a majority granted it and took its fencing token (``fence``: one more than the highest any of them had
    seen), renewed on a majority, let go everywhere."""

    def __init__(self, nodes: Node | Sequence[Node], state_dir: Path, command: str = "apply", ttl: float = TTL,
                 call: Call = _call, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, renew_in_thread: bool = True) -> None:
        self.nodes = [nodes] if isinstance(nodes, Node) else list(nodes)
        self.need = majority(len(self.nodes))
        self.state_dir = state_dir
        self.ttl = ttl
        self.call = call
        self.clock = clock
        self.sleep = sleep
        import getpass  # here, not at the top: most commands that import this module never take the lock
        import socket

        self.runner = runner_id(state_dir)
        self.owner = {"who": getpass.getuser(), "host": socket.gethostname(), "pid": os.getpid(),
                      "since": time.time(), "token": os.urandom(16).hex(), "runner": self.runner,
                      "command": command}
        self.held = False
        self.fence = 0  # the fencing token of this holding: every write on a minion carries it
        self._lost = False  # a renewal found that a majority of hosts no longer holds this run's lease
        self.valid_until = 0.0  # by this runner's monotonic clock: past it the lease may have ended somewhere
        self.before: dict[str, int] = {}  # per lock host granting the lease: its parent dir's mtime (ns) then
        self._renew_thread = renew_in_thread
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def node(self) -> Node:
        return self.nodes[0]

    @property
    def lost(self) -> bool:
        """True once this run can no longer count on its lease: a renewal was refused by too many hosts, or
        no renewal reached a majority within the lease (measured from when it was sent, on this clock)."""
        return self._lost or (self.held and self.clock() >= self.valid_until)

    def _ask(self, request: dict, enough: Callable[[Answers], bool], nodes: Sequence[Node] | None = None,
             linger: float = 0.0) -> Answers:
        return _ask_hosts(self.call, self.nodes if nodes is None else nodes, self.state_dir,
                          {"ttl": self.ttl, "owner": self.owner, **request}, enough, linger)

    def _valid_from(self, sent: float) -> None:
        self.valid_until = sent + self.ttl * (1 - DRIFT)

    def acquire(self, timeout: float, on_wait: Callable[[Holder | None], None] = lambda h: None) -> None:
        deadline = self.clock() + timeout
        told = False
        breaking = ""
        total = len(self.nodes)
        while True:
            sent = self.clock()
            asked = _Round(self.call, self.nodes, self.state_dir,
                           {"ttl": self.ttl, "owner": self.owner, "op": "acquire", "break": breaking})
            answers = asked.until(_decided("held", total, self.need))
            granted = [n for n in self.nodes if isinstance(answers.get(n.name), dict) and answers[n.name].get("held")]
            if len(granted) >= self.need and self._seal(granted, answers, sent):
                return
            asked.until(lambda a: False, linger=1.0)  # a lease granted late is let go below with the others
            self._let_go()
            holders = [h for a in answers.values() if isinstance(a, dict) and not a.get("held")
                       if (h := _holder(a.get("holder"), a.get("now"))) is not None]
            dead = [h for h in holders if _dead_here(h, self.runner) and h.token != breaking]
            if dead:
                breaking = dead[0].token  # compare-and-delete: only that holder is replaced
                continue
            if self.clock() >= deadline:
                raise UserError(self._why(answers, holders, timeout))
            if holders and not told:
                on_wait(holders[0])
                told = True
            self.sleep(0.5 + random.random() / 2)  # two runners that split the hosts between them part ways

    def _seal(self, granted: list[Node], answers: Answers, sent: float) -> bool:
        """Give the granted leases a token above every counter the answering hosts hold; held once a majority
        took it."""
        fence = 1 + max(int(a.get("fence") or 0) for a in answers.values() if isinstance(a, dict))
        sealed = self._ask({"op": "seal", "fence": fence}, _decided("sealed", len(granted), self.need), granted)
        if _count(sealed, "sealed")[0] < self.need:
            return False
        self.held, self.fence = True, fence
        self.before = {n.name: int(answers[n.name]["before"]) for n in granted
                       if isinstance(answers[n.name], dict) and answers[n.name].get("before") is not None}
        self._valid_from(sent)
        self._start_renewing()
        return True

    def _why(self, answers: Answers, holders: list[Holder], timeout: float) -> str:
        names = ", ".join(n.name for n in self.nodes)
        if holders:
            who = holders[0].describe()
            return (f"the fleet is locked by {who}; waited {timeout:.0f} s (if that run is gone, "
                    f"'cluster-pilot lock release' breaks the lock)")
        down = _unreachable(answers)
        said = "; ".join(f"{name}: {why}" for name, why in down.items()) or "no lock host granted the lease"
        return (f"cannot take the fleet lock: it needs {self.need} of its {len(self.nodes)} lock hosts ({names}), "
                f"and {len(down)} did not answer ({said}); waited {timeout:.0f} s; nothing was changed (bring "
                f"one back, or name others in {LOCK_HOSTS_VAR})")

    def _let_go(self) -> None:
        """Release this owner's leases wherever they are, without waiting for hosts that do not answer."""
        self._ask({"op": "release"}, lambda a: len(a) >= self.need, linger=0.25)

    def renew(self) -> bool:
        """Push the expiry on; False once a majority of the lock hosts can no longer be this run's."""
        sent = self.clock()
        answers = self._ask({"op": "renew"}, _decided("renewed", len(self.nodes), self.need))
        renewed, _ = _count(answers, "renewed")
        refused = sum(1 for a in answers.values() if isinstance(a, dict) and not a.get("renewed"))
        if renewed >= self.need:
            self._valid_from(sent)
        elif refused > len(self.nodes) - self.need:
            self._lost = True
        return not self.lost

    def _start_renewing(self) -> None:
        if not self._renew_thread:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(self.ttl / 3):
                if not self.renew():
                    return

        self._thread = threading.Thread(target=loop, name="fleet-lock-renew", daemon=True)
        self._thread.start()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=35)
            self._thread = None
        if self.held:
            self._let_go()
            self.held = False

    def __enter__(self) -> "FleetLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def unchanged_since(seen: LockSeen | None, looked: float | None, before: int | None) -> bool:
    """Whether no run held the lock during an observation that took ``looked`` seconds and read it as
    ``seen``, nor after it until this run took it, finding its parent's mtime ``before``: free then,
    untouched since before the first host was asked (a second of margin between the two clocks), and
    untouched until now. Unknown (an observation pieced together, an older lock host): look again."""
    return (seen is not None and looked is not None and before is not None and not seen.held
            and seen.idle > looked + 1.0 and before == seen.stamp)


def _named(nodes: Sequence[Node], var: str) -> list[str] | None:
    """The minion names ``var`` gives (a list, or one name or a comma-separated text), the same on every
    minion (a group variable), or None when no minion sets it."""
    values = {json.dumps(n.vars.get(var)) for n in nodes if n.vars.get(var)}
    if len(values) > 1:
        raise UserError(f"{var} differs between minions: set it once, for the group")
    if not values:
        return None
    value = json.loads(values.pop())
    names = [str(v).strip() for v in value] if isinstance(value, list) else [
        part.strip() for part in str(value).split(",")]
    names = [n for n in names if n]
    known = {n.name for n in nodes}
    for name in names:
        if name not in known:
            raise UserError(f"{var} {name!r} is not a minion of the inventory")
    if not names or len(set(names)) != len(names):
        raise UserError(f"{var} must name distinct minions of the inventory")
    return names


def lock_hosts(nodes: Sequence[Node]) -> list[Node]:
    """The fleet lock's hosts, one pure function of the inventory so that every CI runner, the master and
    ``lock status`` agree whether or not the hosts answer: ``cp_lock_hosts`` when set, else ``cp_lock_host``
    (one host, the earlier design), else the first three minions in inventory order (all, with fewer)."""
    if not nodes:
        raise UserError("the inventory has no minions: nothing can be locked or changed")
    by_name = {n.name: n for n in nodes}
    for var in (LOCK_HOSTS_VAR, LOCK_HOST_VAR):
        names = _named(nodes, var)
        if names is not None:
            if var == LOCK_HOST_VAR and len(names) != 1:
                raise UserError(f"{LOCK_HOST_VAR} names one minion; use {LOCK_HOSTS_VAR} for several")
            return [by_name[n] for n in names]
    return list(nodes[:DEFAULT_LOCK_HOSTS])


@dataclass(frozen=True)
class HostView:
    """One lock host's answer to ``show``: its holder if any (live or not), or why it did not answer."""

    name: str
    holder: Holder | None = None
    live: bool = False
    fence: int = 0
    error: str = ""


@dataclass(frozen=True)
class Verdict:
    """What a majority of the lock hosts says: ``holder`` (live on a majority), or free, or undecided."""

    hosts: tuple[HostView, ...]
    need: int
    holder: Holder | None = None
    free: bool = False

    def describe(self) -> str:
        if self.holder is not None:
            return f"held by {self.holder.describe()}"
        if self.free:
            return "free"
        down = [h for h in self.hosts if h.error]
        return (f"undecided: no majority ({self.need} of {len(self.hosts)}) agrees"
                + (f"; not answering: {', '.join(h.name for h in down)}" if down else ""))


def verdict(views: Sequence[HostView]) -> Verdict:
    """Pure: the holder whose live lease a majority of the hosts keeps; free when a majority keeps none."""
    need = majority(len(views))
    live = [v.holder for v in views if v.live and v.holder is not None]
    for h in live:
        if sum(1 for other in live if other.token == h.token) >= need:
            return Verdict(tuple(views), need, holder=h)
    free = sum(1 for v in views if not v.error and not v.live)
    return Verdict(tuple(views), need, free=free >= need)


def _view(name: str, answer: "dict | UserError") -> HostView:
    if isinstance(answer, UserError):
        return HostView(name, error=str(answer))
    return HostView(name, _holder(answer.get("holder"), answer.get("now")), bool(answer.get("live")),
                    int(answer.get("fence") or 0))


def show(nodes: Sequence[Node], state_dir: Path, call: Call = _call) -> Verdict:
    answers = _ask_hosts(call, nodes, state_dir, {"op": "show", "owner": {}}, lambda a: False)
    return verdict([_view(n.name, answers[n.name]) for n in nodes])


def force_release(nodes: Sequence[Node], state_dir: Path, call: Call = _call) -> list[HostView]:
    answers = _ask_hosts(call, nodes, state_dir, {"op": "release", "owner": {}, "force": True}, lambda a: False)
    return [_view(n.name, answers[n.name]) for n in nodes]
