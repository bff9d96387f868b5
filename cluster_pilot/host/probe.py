"""The observation probe, and asking the hosts with it ahead of everything else.

Observation (``observe``) reads what the probe prints; this module is light on purpose (constants, ``ssh``,
the standard library): ``cluster-pilot apply`` starts the ssh clients from here (``ask_ahead``) before it
imports the model, the command line or the manifests, 60-75 ms of a 3-minion no-op's ~0.6 s.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterable, Mapping

from cluster_pilot.host.paths import DOCKER_SOCKET, HEALTH_STATE, LABEL_POD, LOCK_DIR, PROXY_DOCUMENT, RECORDS_DOCUMENT
from cluster_pilot.host.ssh import Asked, control_dir

_LIST = "/containers/json?all=1&filters=" + urllib.parse.quote(json.dumps({"label": [LABEL_POD]}))

# Runs on each host with its python3 and prints one JSON document: dockerd's container list as dockerd wrote
# it (spliced in, never parsed there), the proxy document's hash, the records, the fleet lock's state
# (``observed.LockSeen``: only the lock host's counts) and cp-health's state (restarts, readiness). Plain
# HTTP/1.0 over the socket and nothing imported it can do without: http.client, urllib and decoding the list
# doubled the probe's CPU on the host (57 -> 30 ms, as much as ``docker ps`` itself). The master's watch
# helper runs it too, calling ``answer()`` per look.
_PROBE = r"""
import json, socket, sys
def ask():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(@DOCKER_SOCKET@)
    s.sendall(b"GET @LIST@ HTTP/1.0\r\nHost: docker\r\n\r\n")
    chunks = []
    while True:
        b = s.recv(1 << 18)
        if not b:
            return b"".join(chunks)
        chunks.append(b)
def lock():
    import os, time
    try:
        st = os.stat(os.path.dirname(@LOCK_DIR@))
    except OSError:
        return None
    return [os.path.isdir(@LOCK_DIR@), st.st_mtime_ns, time.time() - st.st_mtime_ns / 1e9]
def read(path, binary):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        return None if binary else "\0" + (e.strerror or type(e).__name__)
    if binary:
        import hashlib
        return hashlib.sha256(data).hexdigest()
    return data.decode("utf-8", "replace")
def answer():
    try:
        head, _, body = ask().partition(b"\r\n\r\n")
        status = head.split(b" ", 2)[1:2]
        if status != [b"200"]:
            text = (b" ".join(status) or b"?").decode("ascii", "replace")
            said = "dockerd answered %s: %s" % (text, body[:200].decode("utf-8", "replace"))
            return json.dumps({"error": said}).encode()
        tail = json.dumps({"proxy": read(@PROXY_DOCUMENT@, True), "records": read(@RECORDS_DOCUMENT@, False),
                           "lock": lock(), "health": read(@HEALTH_STATE@, False)})
        return b'{"containers": ' + body.strip() + b", " + tail[1:].encode()
    except Exception as e:
        return json.dumps({"error": "dockerd does not answer: %s" % e}).encode()
if __name__ == "__main__":
    sys.stdout.buffer.write(answer() + b"\n")
"""


def probe_script(docker_socket: str = DOCKER_SOCKET, proxy_document: str = PROXY_DOCUMENT,
                 records_document: str = RECORDS_DOCUMENT, lock_dir: str = LOCK_DIR,
                 health_state: str = HEALTH_STATE) -> str:
    """The probe, its paths filled in (a test points them at a fake dockerd)."""
    return (_PROBE.replace("@DOCKER_SOCKET@", json.dumps(docker_socket)).replace("@LIST@", _LIST)
            .replace("@PROXY_DOCUMENT@", json.dumps(proxy_document))
            .replace("@RECORDS_DOCUMENT@", json.dumps(records_document)).replace("@LOCK_DIR@", json.dumps(lock_dir))
            .replace("@HEALTH_STATE@", json.dumps(health_state)))


PROBE = probe_script()


def asking(hosts: Iterable[Any], state_dir: Path, timeout: float) -> tuple:
    """What an observation's ssh clients depend on: each host's name, address and SSH settings, the state dir
    (its control masters) and the timeout. ``hosts``: nodes, or anything with those three attributes."""
    return (tuple((h.name, h.address, json.dumps(dict(h.vars), sort_keys=True, default=str)) for h in hosts),
            str(state_dir), timeout)


WINDOW = 64  # hosts asked at once (each an ssh client with three pipes)

# The ssh clients a process started before loading the rest of itself (``ask_ahead``), by ``asking`` key,
# with when they were asked: the first observation of the same hosts asked the same way takes them.
_ahead: list[tuple[tuple, float, dict[str, Asked]]] = []


def ask_ahead(hosts: Iterable[Mapping[str, Any]], state_dir: Path, timeout: float = 20.0) -> None:
    """Ask the hosts (the first ``WINDOW``) now. ``hosts``: the inventory cache's raw entries (name, address,
    vars): a ``Node`` would import the model first."""
    plain = [SimpleNamespace(name=h["name"], address=h["address"], vars=h["vars"]) for h in hosts]
    cm_dir = control_dir(state_dir)
    started = time.monotonic()
    _ahead[:] = [(asking(plain, state_dir, timeout), started,
                  {h.name: Asked(h, cm_dir, PROBE, timeout=timeout) for h in plain[:WINDOW]})]


def take_ahead(hosts: Iterable[Any], state_dir: Path, timeout: float) -> tuple[float, dict[str, Asked]] | None:
    """When these hosts, asked the same way, were asked ahead, and their ssh clients; once. The key is made
    only when something was asked ahead (a master observes on every pass and never does)."""
    if not _ahead:
        return None
    key = asking(hosts, state_dir, timeout)
    for i, (asked_for, started, clients) in enumerate(_ahead):
        if asked_for == key:
            del _ahead[i]
            return started, clients
    return None
