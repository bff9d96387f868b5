"""The master's watch on its minions: one long-lived SSH session per minion whose helper streams the managed
containers' events and a heartbeat line every second, so the master hears of a dead pod at once and of a dead
minion within its grace, and answers ``look N`` with an observation over the session already open.

The helper runs with the host's python3 (stdlib only) over the inventory's own SSH settings and the shared
control master. It asks dockerd over its socket: ``/events`` filtered to containers labelled
``io.cluster-pilot.pod`` (``die``, ``destroy``, ``oom``), and ``/_ping`` before each beat, so a minion whose
SSH answers while dockerd does not says so (``docker: false``). When the events stream had to be reopened
(dockerd restarted), events may have been missed: the helper says ``resync``. It ends when its session does
(stdin closed, or stdout gone).
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence, Union

from cluster_pilot.host.probe import PROBE
from cluster_pilot.host.podformat import LABEL_CONTAINER, LABEL_POD
from cluster_pilot.host.ssh import python_command, ssh_command
from cluster_pilot.model import Node

TRIGGERS = ("die", "destroy", "oom")  # a managed container's events that may leave a pod broken

HELPER = r"""
import http.client, json, os, socket, sys, threading, time, urllib.parse
SOCK = "/var/run/docker.sock"
probe = {"__name__": "probe"}
exec(@PROBE@, probe)
OUT = sys.stdout
lock = threading.Lock()
def write(text):
    try:
        with lock:
            OUT.write(text + "\n")
            OUT.flush()
    except Exception:
        os._exit(0)
def emit(doc):
    write(json.dumps(doc, separators=(",", ":")))
class C(http.client.HTTPConnection):
    def __init__(self, timeout):
        http.client.HTTPConnection.__init__(self, "localhost", timeout=timeout)
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(SOCK)
def ping():
    try:
        c = C(0.9)
        c.request("GET", "/_ping")
        ok = c.getresponse().status == 200
        c.close()
        return ok
    except Exception:
        return False
def beats():
    n = 0
    while True:
        ok = ping()
        if n:
            time.sleep(1.0 - time.time() % 1.0)
        n += 1
        emit({"beat": n, "docker": ok})
def looks():
    for line in sys.stdin:
        words = line.split()
        if words[:1] == ["look"] and len(words) == 2 and words[1].isdigit():
            try:
                doc = probe["answer"]().decode("utf-8", "replace")
            except BaseException as e:
                doc = json.dumps({"error": "the look failed: %s" % e})
            write('{"n":%s,"look":%s}' % (words[1], doc))
    os._exit(0)
def events():
    q = urllib.parse.quote(json.dumps({"type": ["container"], "label": ["@LABEL_POD@"], "event": @TRIGGERS@}))
    opened = 0
    while True:
        try:
            c = C(None)
            c.request("GET", "/events?filters=" + q)
            r = c.getresponse()
            if r.status == 200:
                opened += 1
                emit({"hello": 1} if opened == 1 else {"resync": "the events stream was reopened"})
                while True:
                    line = r.readline()
                    if not line:
                        break
                    e = json.loads(line)
                    actor = e.get("Actor") or {}
                    attrs = actor.get("Attributes") or {}
                    emit({"event": e.get("Action") or e.get("status"), "id": actor.get("ID") or e.get("id"),
                          "pod": attrs.get("@LABEL_POD@"), "container": attrs.get("@LABEL_CONTAINER@"),
                          "at": (e.get("timeNano") or 0) / 1e9})
        except Exception:
            pass
        time.sleep(0.5)
threading.Thread(target=beats, daemon=True).start()
threading.Thread(target=looks, daemon=True).start()
events()
""".replace("@LABEL_POD@", LABEL_POD).replace("@LABEL_CONTAINER@", LABEL_CONTAINER).replace(
    "@TRIGGERS@", json.dumps(list(TRIGGERS))).replace("@PROBE@", repr(PROBE))


@dataclass(frozen=True)
class Beat:
    seq: int
    docker: bool  # dockerd answered its ping


@dataclass(frozen=True)
class Event:
    action: str
    pod: str
    container: str
    id: str
    at: float  # when dockerd saw it (the minion's wall clock), 0.0 when not told


@dataclass(frozen=True)
class Resync:
    """The master must observe this minion again: the helper (re)started, or its events stream was reopened."""

    reason: str


@dataclass(frozen=True)
class Look:
    """The helper's answer to ``look N``: the observation script's document (``host.probe.PROBE``)."""

    doc: dict
    n: int  # which request it answers: a late answer to an earlier one is not taken for a newer


@dataclass(frozen=True)
class Closed:
    """The session ended (said by our side, never by the helper)."""

    reason: str


Message = Union[Beat, Event, Resync, Look, Closed]


def parse_line(line: str | bytes) -> Message | None:
    """One line of the helper's stream, or None for anything else (ssh banners, a torn line)."""
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    if "beat" in doc:
        seq = doc["beat"]
        return Beat(seq, doc.get("docker") is True) if isinstance(seq, int) else None
    if "look" in doc:
        n = doc.get("n")
        return Look(doc["look"], n) if isinstance(doc["look"], dict) and isinstance(n, int) else None
    if "hello" in doc:
        return Resync("the watch started")
    if "resync" in doc:
        return Resync(str(doc["resync"]))
    if "event" in doc:
        action, pod = doc.get("event"), doc.get("pod")
        if not isinstance(action, str) or not isinstance(pod, str) or not pod:
            return None
        at = doc.get("at")
        return Event(action, pod, str(doc.get("container") or ""), str(doc.get("id") or ""),
                     float(at) if isinstance(at, (int, float)) else 0.0)
    return None


Listener = Callable[[str, Message], None]

COALESCE = 0.05  # after a read of beats only: the other minions' beats of this second arrive meanwhile
STDERR_KEPT = 4096


class _Session:
    """One minion's ssh client and what has been read of it."""

    def __init__(self, node: Node, proc: subprocess.Popen) -> None:
        self.node, self.proc = node, proc
        self.out = bytearray()
        self.err = bytearray()
        self.open_streams = 2


class Watcher:
    """Keeps the helper running on every minion it is given and hands each message to ``listener``, all from
    one thread: the helpers beat on the second, so one wake reads every minion's beat and the master's cost
    hardly grows with the fleet. A session that ends is reopened after ``retry`` seconds (the helper's first
    line asks for a resync). ``look`` asks helpers for an observation over their open sessions: no new
    process on either side."""

    def __init__(self, cm_dir: Path, listener: Listener, retry: float = 1.0) -> None:
        self.cm_dir, self.listener, self.retry = cm_dir, listener, retry
        self.opened: dict[str, int] = {}  # sessions started per minion, for the tests and the bench
        self._lock = threading.Condition()
        self._want: dict[str, Node] = {}
        self._live: dict[str, _Session] = {}
        self._due: dict[str, float] = {}  # minion -> when to (re)open its session
        self._asked: dict[str, int] = {}  # minion -> the look it was asked and has not answered
        self._seq = 0
        self._looked: dict[str, dict] = {}
        self._stop = threading.Event()
        self._selector = selectors.DefaultSelector()
        self._poke_r, self._poke_w = os.pipe()
        os.set_blocking(self._poke_r, False)
        os.set_blocking(self._poke_w, False)
        self._selector.register(self._poke_r, selectors.EVENT_READ, None)
        self._thread = threading.Thread(target=self._run, name="watch", daemon=True)

    def start(self) -> "Watcher":
        self._thread.start()
        return self

    def sync(self, nodes: Sequence[Node]) -> None:
        """Watch exactly these minions (a changed address or setting reopens that minion's session)."""
        want = {n.name: n for n in nodes}
        with self._lock:
            if want == self._want:
                return
            for name, node in want.items():
                if self._want.get(name) != node:
                    self._due[name] = 0.0
            self._want = want
        self._poke()

    def look(self, names: Sequence[str], timeout: float) -> dict[str, dict]:
        """Ask these minions' helpers to observe; the answers that came within ``timeout`` (a minion without
        an open session, or whose helper is stuck, is left out: the caller asks it another way)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            asked = set()
            for name in names:
                session = self._live.get(name)
                self._seq += 1
                if session is not None and _write(session.proc, f"look {self._seq}\n".encode()):
                    asked.add(name)
                    self._asked[name] = self._seq
                    self._looked.pop(name, None)
            while asked - set(self._looked) and (left := deadline - time.monotonic()) > 0:
                self._lock.wait(left)
            for name in asked:
                self._asked.pop(name, None)
            return {name: self._looked.pop(name) for name in asked if name in self._looked}

    def pid(self, name: str) -> int | None:
        with self._lock:
            session = self._live.get(name)
            return session.proc.pid if session is not None else None

    def stop(self) -> None:
        self._stop.set()
        self._poke()
        self._thread.join(timeout=5)
        with self._lock:
            for session in self._live.values():
                session.proc.kill()
                session.proc.wait()
            self._live.clear()

    def _poke(self) -> None:
        try:
            os.write(self._poke_w, b"x")
        except BlockingIOError:
            pass

    def _run(self) -> None:
        while not self._stop.is_set():
            self._open_and_close()
            beats_only = True
            for key, _ in self._selector.select(self._next_due()):
                if key.data is None:
                    _drain(self._poke_r)
                    beats_only = False
                else:
                    beats_only &= self._read(*key.data)
            if beats_only:
                self._stop.wait(COALESCE)
        self._selector.close()

    def _next_due(self) -> float:
        with self._lock:
            waiting = [t for name, t in self._due.items() if name in self._want and name not in self._live]
        return max(0.0, min(waiting) - time.monotonic()) if waiting else 1.0

    def _open_and_close(self) -> None:
        now = time.monotonic()
        with self._lock:
            for name in [n for n, s in self._live.items() if self._want.get(n) != s.node]:
                self._end(self._live.pop(name), grace=0.0)
            for name, node in self._want.items():
                if name not in self._live and self._due.get(name, 0.0) <= now:
                    self._live[name] = self._open(node)

    def _open(self, node: Node) -> _Session:
        remote = python_command(node, HELPER, "-u")
        proc = subprocess.Popen(ssh_command(node, self.cm_dir, remote), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            os.set_blocking(stream.fileno(), False)
        session = _Session(node, proc)
        self._selector.register(proc.stdout, selectors.EVENT_READ, (session, False))
        self._selector.register(proc.stderr, selectors.EVENT_READ, (session, True))
        self.opened[node.name] = self.opened.get(node.name, 0) + 1
        return session

    def _read(self, session: _Session, stderr: bool) -> bool:
        """Read what one stream has; True when it carried nothing but beats."""
        stream = session.proc.stderr if stderr else session.proc.stdout
        assert stream is not None
        try:
            chunk = os.read(stream.fileno(), 65536)
        except BlockingIOError:
            return True
        if not chunk:
            self._selector.unregister(stream)
            session.open_streams -= 1
            if session.open_streams == 0:
                self._closed(session)
            return False
        if stderr:
            session.err = (session.err + chunk)[-STDERR_KEPT:]
            return True
        session.out += chunk
        *lines, rest = session.out.split(b"\n")
        session.out = bytearray(rest)
        beats_only = True
        for line in lines:
            message = parse_line(line)
            if isinstance(message, Look):
                with self._lock:
                    if self._asked.get(session.node.name) == message.n:
                        self._looked[session.node.name] = message.doc
                        self._lock.notify_all()
            elif message is not None:
                beats_only &= isinstance(message, Beat)
                self.listener(session.node.name, message)
        return beats_only

    def _closed(self, session: _Session) -> None:
        name = session.node.name
        with self._lock:
            if self._live.get(name) is session:
                del self._live[name]
                self._due[name] = time.monotonic() + self.retry
        self._end(session, grace=2.0)
        said = session.err.decode(errors="replace").strip().splitlines()
        self.listener(name, Closed(said[-1] if said else f"ssh exited {session.proc.returncode}"))

    def _end(self, session: _Session, grace: float) -> None:
        """Close our side of a session; its ssh client gets ``grace`` seconds to exit, then is killed."""
        for stream in (session.proc.stdout, session.proc.stderr):
            if stream is not None and stream.fileno() in self._selector.get_map():
                self._selector.unregister(stream)
        if session.proc.stdin is not None:
            try:
                session.proc.stdin.close()
            except OSError:
                pass
        try:
            session.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            session.proc.kill()
            session.proc.wait()


def _write(proc: subprocess.Popen, data: bytes) -> bool:
    try:
        return proc.stdin is not None and os.write(proc.stdin.fileno(), data) == len(data)
    except (BlockingIOError, BrokenPipeError, OSError, ValueError):
        return False


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass
