"""What runs where, read from the hosts themselves: one SSH round trip per host, every host at once.

The hosts are the truth. Every managed container carries ``io.cluster-pilot.*`` labels, and the container that
owns a pod's network namespace also carries the pod's labels, requests and ports, so a runner with no local
state rebuilds the whole picture from one observation. SSH uses the inventory's own settings and an OpenSSH
control master shared with the Ansible run that may follow, so the second connection to a host costs no
handshake.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Collection, Mapping, Sequence

from cluster_pilot.model import Node
from cluster_pilot.host.podformat import (INFRA, LABEL_CONTAINERS, LABEL_POD, LABEL_POD_LABELS, LABEL_PORTS,
                                          LABEL_PREFIX, Member, Published, holds_record, read_member, read_record)
from cluster_pilot.host.lock import LOCK_DIR, LockSeen
from cluster_pilot.host.records import RECORDS_DOCUMENT
from cluster_pilot.host.ssh import Asked, HostDidNotAnswer, control_dir

PROXY_DOCUMENT = "/etc/cluster-pilot/proxy.json"

DOCKER_SOCKET = "/var/run/docker.sock"
_LIST = "/containers/json?all=1&filters=" + urllib.parse.quote(json.dumps({"label": [LABEL_POD]}))

# Runs on each host with its python3 and prints one JSON document: dockerd's container list as dockerd wrote
# it (spliced in, never parsed there), the proxy document's hash, the records and the fleet lock's state
# (``lock.LockSeen``: only the lock host's counts). Plain HTTP/1.0 over the socket and nothing imported it
# can do without: http.client, urllib and decoding the list doubled the probe's CPU on the host (57 -> 30 ms,
# as much as ``docker ps`` itself). The master's watch helper runs it too, calling ``answer()`` per look.
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
    except OSError:
        return None
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
                           "lock": lock()})
        return b'{"containers": ' + body.strip() + b", " + tail[1:].encode()
    except Exception as e:
        return json.dumps({"error": "dockerd does not answer: %s" % e}).encode()
if __name__ == "__main__":
    sys.stdout.buffer.write(answer() + b"\n")
"""


def probe_script(docker_socket: str = DOCKER_SOCKET, proxy_document: str = PROXY_DOCUMENT,
                 records_document: str = RECORDS_DOCUMENT, lock_dir: str = LOCK_DIR) -> str:
    """The probe, its paths filled in (a test points them at a fake dockerd)."""
    return (_PROBE.replace("@DOCKER_SOCKET@", json.dumps(docker_socket)).replace("@LIST@", _LIST)
            .replace("@PROXY_DOCUMENT@", json.dumps(proxy_document))
            .replace("@RECORDS_DOCUMENT@", json.dumps(records_document)).replace("@LOCK_DIR@", json.dumps(lock_dir)))


PROBE = probe_script()


@dataclass(frozen=True)
class ObservedContainer:
    id: str
    name: str
    pod: str
    container: str
    spec_hash: str
    state: str  # Docker's: created, running, restarting, exited, paused, dead
    image: str
    labels: Mapping[str, str] = field(default_factory=dict, compare=False)
    exit_code: int | None = None  # of an exited container


@dataclass(frozen=True)
class ObservedPod:
    """The containers of one pod version (pod name + spec hash) on one host."""

    name: str
    node: str
    spec_hash: str
    controller: str | None
    kind: str
    labels: Mapping[str, str]
    containers: tuple[ObservedContainer, ...]
    expected: tuple[str, ...]  # container names the pod was created with
    cpu_millis: int = 0
    memory_bytes: int = 0
    ports: tuple[Published, ...] = ()
    applyset: str = ""
    restart_policy: str = ""  # "" on bare pods made before the label existed: an exited container is final
    owner: str = INFRA  # the container owning the pod's network namespace (podformat.network_owner); "" if gone

    @property
    def host_ports(self) -> tuple[tuple[int, str], ...]:
        return tuple((p.host_port, p.protocol) for p in self.ports)

    @property
    def complete(self) -> bool:
        """The namespace's owner is there (an infra container also up) and every container exists and was
        started: dockerd restarts a crashed one itself (a crash loop is the pod's own business, not a reason
        to recreate it); a container never started, dead, or an infra container that is down (its network
        namespace gone) makes the pod broken. So does a container that exited which its restart policy says
        should run: dockerd does not bring it back (a host that rebooted starts the infra containers, while
        the others, joining a namespace not yet there, fail once and stay down)."""
        names = {c.container for c in self.containers}
        owner = next((c for c in self.containers if self.owner and c.container == self.owner), None)
        owner_up = owner is not None and (owner.container != INFRA or owner.state in ("running", "restarting"))
        return owner_up and set(self.expected) <= names and not any(
            c.state in ("created", "dead", "removing") or self._left_down(c) for c in self.containers)

    def _left_down(self, c: ObservedContainer) -> bool:
        if c.state != "exited":
            return False
        return self.restart_policy == "Always" or (self.restart_policy == "OnFailure" and c.exit_code != 0)

    @property
    def status(self) -> str:
        """Seed-era pod status: Running, Waiting or Terminated."""
        states = {c.state for c in self.containers}
        if not self.complete:
            return "Terminated" if states & {"exited", "dead"} else "Waiting"
        return "Running" if states == {"running"} else "Waiting"


@dataclass(frozen=True)
class HostView:
    node: str
    reachable: bool
    pods: tuple[ObservedPod, ...] = ()
    error: str = ""
    proxy: str | None = None  # hash of the proxy document the host serves, None when it has none
    stale: bool = False  # not answering now, but within its grace period: pods as last seen, still ready
    records: str | None = None  # the object records document the host keeps (see host.records)
    warnings: tuple[str, ...] = ()  # containers whose labels could not be read, named
    lock: LockSeen | None = None  # the fleet lock as this host keeps it (only the lock host's matters)


@dataclass(frozen=True)
class Observation:
    hosts: Mapping[str, HostView]
    # from asking the first host to the last answer, when one look made it all (see lock.unchanged_since)
    seconds: float | None = field(default=None, compare=False)

    @property
    def pods(self) -> tuple[ObservedPod, ...]:
        return tuple(p for h in self.hosts.values() for p in h.pods)

    @property
    def unreachable(self) -> dict[str, str]:
        """Hosts that did not answer, with why."""
        return {n: v.error for n, v in self.hosts.items() if not v.reachable}

    def current(self) -> dict[str, ObservedPod]:
        """One version per pod name, a complete one where there is (what listings show)."""
        out: dict[str, ObservedPod] = {}
        for p in self.pods:
            if p.name not in out or (p.complete and not out[p.name].complete):
                out[p.name] = p
        return out

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(w for h in self.hosts.values() for w in h.warnings)

    def with_nodes(self, nodes: Sequence[Node]) -> list[Node]:
        """Nodes with readiness as observed: a host that did not answer (and is not in grace) is not ready."""
        return [replace(n, ready=self.hosts[n.name].reachable or self.hosts[n.name].stale) if n.name in self.hosts
                else n for n in nodes]


def group_pods(node: str, containers: Sequence[Mapping]) -> tuple[ObservedPod, ...]:
    """Docker's container list -> pods, keyed by pod name and spec hash; the namespace's owner first."""
    return read_pods(node, containers)[0]


def read_pods(node: str, containers: Sequence[Mapping]) -> tuple[tuple[ObservedPod, ...], tuple[str, ...]]:
    """``group_pods``, and a warning per container whose ``io.cluster-pilot.*`` labels cannot be read
    (damaged, or another tool's): such a pod is skipped, never a reason to fail a plan or a master pass."""
    groups: dict[tuple[str, str], list[ObservedContainer]] = {}
    warnings: list[str] = []
    for c in containers:
        labels = c.get("Labels") or {}
        member = read_member(labels)
        if member is None:
            continue
        oc = ObservedContainer(
            id=str(c.get("Id", "")), name=(c.get("Names") or ["/?"])[0].lstrip("/"), pod=member.pod,
            container=member.container, spec_hash=member.spec_hash, state=c.get("State", ""),
            image=c.get("Image", ""), labels=labels, exit_code=_exit_code(c.get("Status", "")))
        groups.setdefault((oc.pod, oc.spec_hash), []).append(oc)
    pods = []
    for (name, spec_hash), members in sorted(groups.items()):
        members.sort(key=lambda m: (m.container != INFRA, not _owns(m), m.container))
        try:
            pods.append(_pod(node, name, spec_hash, members))
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            warnings.append(f"{node}: container {members[0].name}: unreadable {LABEL_PREFIX}* labels ({exc}); "
                            f"pod {name!r} ignored")
    return tuple(pods), tuple(warnings)


def _pod(node: str, name: str, spec_hash: str, members: list[ObservedContainer]) -> ObservedPod:
    labels = members[0].labels  # the namespace owner's, or what is left when it is gone
    for key in (LABEL_POD_LABELS, LABEL_CONTAINERS, LABEL_PORTS):
        if labels.get(key):
            json.loads(labels[key])  # read_record is lenient; a label that is not JSON at all is damage
    record = read_record(labels)
    if not isinstance(record.labels, dict) or not all(isinstance(v, str) for v in record.labels.values()):
        raise ValueError(f"{LABEL_POD_LABELS} is not an object of strings")
    if not all(isinstance(v, str) for v in record.containers):
        raise ValueError(f"{LABEL_CONTAINERS} is not a list of names")
    return ObservedPod(
        name=name, node=node, spec_hash=spec_hash, controller=record.controller, kind=record.kind,
        labels=record.labels, containers=tuple(members), expected=record.containers,
        cpu_millis=record.cpu_millis, memory_bytes=record.memory_bytes, ports=record.ports,
        applyset=record.applyset, restart_policy=record.restart_policy,
        owner=members[0].container if _owns(members[0]) else "")


def _owns(c: ObservedContainer) -> bool:
    return holds_record(Member(c.pod, c.container, c.spec_hash), c.labels)


def _exit_code(status: str) -> int | None:
    """From Docker's status text: "Exited (143) 3 seconds ago" -> 143, "Restarting (3) 1 second ago" -> 3."""
    m = re.match(r"(?:Exited|Restarting) \((-?\d+)\)", status)
    return int(m.group(1)) if m else None


def read_view(name: str, doc: Mapping) -> HostView:
    """One host's ``PROBE`` document, however it came (an SSH exec, or the master's watch session)."""
    if "error" in doc:
        return HostView(name, False, error=str(doc["error"]))
    if not isinstance(doc.get("containers"), list):
        return HostView(name, False, error="its answer names no containers")
    pods, warnings = read_pods(name, doc["containers"])
    return HostView(name, True, pods, proxy=doc.get("proxy"), records=doc.get("records"), warnings=warnings,
                    lock=_lock(doc.get("lock")))


def _view(node: Node, asked: Asked) -> HostView:
    try:
        return read_view(node.name, asked.answer())
    except HostDidNotAnswer as exc:
        return HostView(node.name, False, error=str(exc))


def _lock(seen: object) -> LockSeen | None:
    try:
        held, stamp, idle = seen  # type: ignore[misc]
        return LockSeen(bool(held), int(stamp), float(idle))
    except (TypeError, ValueError):
        return None


def observe_host(node: Node, cm_dir: Path, timeout: float = 20.0) -> HostView:
    return _view(node, Asked(node, cm_dir, PROBE, timeout=timeout))


WINDOW = 64  # hosts asked at once (each an ssh client with three pipes)

# An observation a process started before loading the rest of itself (``ask_ahead``), taken by the first
# ``observe_soon`` that asks the same hosts the same way.
_ahead: list[tuple[tuple, Callable[[], Observation]]] = []


def _asking(nodes: Sequence[Node], state_dir: Path, timeout: float, skip: Collection[str]) -> tuple:
    return (tuple(nodes), str(state_dir), timeout, frozenset(skip))


def ask_ahead(nodes: Sequence[Node], state_dir: Path, timeout: float = 20.0) -> None:
    """Start observing now, for the driver's ``observe_soon`` to take: ``cluster-pilot apply`` asks the hosts
    before its command line library, the pipeline and the manifests are even imported (``__main__``)."""
    _ahead[:] = [(_asking(nodes, state_dir, timeout, ()), _start(nodes, state_dir, timeout, ()))]


def observe_soon(nodes: Sequence[Node], state_dir: Path, timeout: float = 20.0,
                 skip: Collection[str] = ()) -> Callable[[], Observation]:
    """Ask every host now (the first ``WINDOW`` of them; each answer read starts the next) and return how
    to collect the answers: those ``skip`` names (known to be down) are not asked and reported down.

    The ssh clients run on their own while the caller works: a driver starts them before it loads the rest
    of itself and validates its inputs, so the SSH round trips overlap that work (for a no-op apply, most
    of its time). Observation only reads: an input found bad still changes nothing. An observation asked
    ahead of the same hosts (``ask_ahead``) is taken instead, once.
    """
    key = _asking(nodes, state_dir, timeout, skip)
    for i, (asked_for, collect) in enumerate(_ahead):
        if asked_for == key:
            del _ahead[i]
            return collect
    return _start(nodes, state_dir, timeout, skip)


def _start(nodes: Sequence[Node], state_dir: Path, timeout: float,
           skip: Collection[str]) -> Callable[[], Observation]:
    cm_dir = control_dir(state_dir)
    pending = [n for n in nodes if n.name not in skip]
    started = time.monotonic()
    asked = [(n, Asked(n, cm_dir, PROBE, timeout=timeout)) for n in pending[:WINDOW]]
    later = pending[WINDOW:]

    def collect() -> Observation:
        views = {n.name: HostView(n.name, False, error="down (not asked)") for n in nodes if n.name in skip}
        while asked:
            node, question = asked.pop(0)
            if later:
                asked.append((later[0], Asked(later.pop(0), cm_dir, PROBE, timeout=timeout)))
            views[node.name] = _view(node, question)
        return Observation({n.name: views[n.name] for n in nodes}, time.monotonic() - started)

    return collect


def observe(nodes: Sequence[Node], state_dir: Path, timeout: float = 20.0,
            skip: Collection[str] = ()) -> Observation:
    """Every host at once (see ``observe_soon``)."""
    return observe_soon(nodes, state_dir, timeout, skip)()
