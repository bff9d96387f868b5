"""A watch on one minion: one long-lived SSH session whose helper streams the managed containers' events and a
heartbeat line every second, so the master hears of a dead pod at once and of a dead minion within its grace.

The helper runs with the host's python3 (stdlib only) over the inventory's own SSH settings and the shared
control master. It asks dockerd over its socket: ``/events`` filtered to containers labelled
``io.cluster-pilot.pod`` (``die``, ``destroy``, ``oom``), and ``/_ping`` before each beat, so a minion whose
SSH answers while dockerd does not says so (``docker: false``). When the events stream had to be reopened
(dockerd restarted), events may have been missed: the helper says ``resync``. It ends when its session does
(stdin closed, or stdout gone).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Union

from cluster_pilot.host.podformat import LABEL_CONTAINER, LABEL_POD
from cluster_pilot.host.ssh import ssh_command
from cluster_pilot.model import Node

TRIGGERS = ("die", "destroy", "oom")  # a managed container's events that may leave a pod broken

HELPER = r"""
import http.client, json, os, socket, sys, threading, time, urllib.parse
SOCK = "/var/run/docker.sock"
lock = threading.Lock()
def emit(doc):
    try:
        with lock:
            sys.stdout.write(json.dumps(doc, separators=(",", ":")) + "\n")
            sys.stdout.flush()
    except Exception:
        os._exit(0)
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
    n, t = 0, time.monotonic()
    while True:
        n += 1
        emit({"beat": n, "docker": ping()})
        t += 1.0
        time.sleep(max(0.0, t - time.monotonic()))
def session_gone():
    while sys.stdin.buffer.read(4096):
        pass
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
threading.Thread(target=session_gone, daemon=True).start()
events()
""".replace("@LABEL_POD@", LABEL_POD).replace("@LABEL_CONTAINER@", LABEL_CONTAINER).replace(
    "@TRIGGERS@", json.dumps(list(TRIGGERS)))


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
class Closed:
    """The session ended (said by our side, never by the helper)."""

    reason: str


Message = Union[Beat, Event, Resync, Closed]


def parse_line(line: str) -> Message | None:
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


class Session:
    """Keeps the helper running on one minion and hands each message to ``listener`` (from its own thread).
    A session that ends is reopened after ``retry`` seconds; the helper's first line asks for a resync."""

    def __init__(self, node: Node, cm_dir: Path, listener: Listener, retry: float = 1.0) -> None:
        self.node, self.cm_dir, self.listener, self.retry = node, cm_dir, listener, retry
        self._stop = threading.Event()
        self._proc: subprocess.Popen | None = None
        self._thread = threading.Thread(target=self._run, name=f"watch-{node.name}", daemon=True)
        self.opened = 0  # sessions started, for the tests and the bench

    def start(self) -> "Session":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
        self._thread.join(timeout=5)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _run(self) -> None:
        python = str(self.node.vars.get("ansible_python_interpreter") or "python3")
        remote = f"{shlex.quote(python)} -u -c {shlex.quote(HELPER)}"
        while not self._stop.is_set():
            self._proc = subprocess.Popen(ssh_command(self.node, self.cm_dir, remote), stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
            self.opened += 1
            assert self._proc.stdout is not None
            for line in self._proc.stdout:
                message = parse_line(line)
                if message is not None:
                    self.listener(self.node.name, message)
            if self._proc.stdin is not None:
                self._proc.stdin.close()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            err = (self._proc.stderr.read() if self._proc.stderr else "").strip().splitlines()
            self._proc.stderr.close() if self._proc.stderr else None
            self.listener(self.node.name, Closed(err[-1] if err else f"ssh exited {self._proc.returncode}"))
            self._stop.wait(self.retry)

