"""Why a container is in the state it is in, read from its minion (``docker inspect``), never guessed.

Observation stays one SSH round trip per host and reads only dockerd's container list, which has no restart
count, exit reason or image ID. ``describe`` and ``get pods`` ask for those here, on demand: one batched
``docker inspect`` per host (every asked container in one call), all hosts at once, over the control master
observation already opened.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

from cluster_pilot.model import Node
from cluster_pilot.host.observed import ObservedPod, health_restarts
from cluster_pilot.host.paths import HEALTH_STATE
from cluster_pilot.host.podformat import INFRA
from cluster_pilot.host.ssh import control_dir, ssh_command

_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$")


@dataclass(frozen=True)
class ContainerStatus:
    """One container as Kubernetes describes it: ``state`` running, waiting or terminated, with a reason."""

    id: str
    state: str  # running | waiting | terminated
    reason: str  # "", Error, OOMKilled, Completed, CrashLoop, Created
    exit_code: int | None  # of the last exit, when dockerd still knows it
    restarts: int
    created: float | None  # epoch seconds
    started: float | None
    finished: float | None
    image_id: str
    error: str = ""  # dockerd's own message (e.g. the command was not found)
    last_reason: str = ""  # why the last run ended (Error, OOMKilled, Completed), when it is known

    def to_json(self) -> dict[str, Any]:
        last = {"lastState": {"state": "terminated", "reason": self.last_reason, "exitCode": self.exit_code}} \
            if self.last_reason else {}
        return {"state": self.state, "reason": self.reason, "exitCode": self.exit_code, **last,
                "restartCount": self.restarts, "startedAt": _iso(self.started), "finishedAt": _iso(self.finished),
                "imageID": self.image_id, **({"message": self.error} if self.error else {})}


def parse_time(text: str | None) -> float | None:
    """Docker's RFC 3339 with nanoseconds -> epoch seconds; its zero time (never started or finished) -> None."""
    m = _RFC3339.match(text or "")
    if m is None or m.group(1).startswith("0001-"):
        return None
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.fromisoformat(m.group(1) + zone).timestamp() + float("0" + (m.group(2) or ".0")[:7])


def _iso(stamp: float | None) -> str | None:
    return None if stamp is None else datetime.fromtimestamp(stamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_of(doc: Mapping[str, Any]) -> ContainerStatus:
    """One ``docker inspect`` object -> its status. dockerd's ``Restarting`` is a container between two runs
    of a crash loop, waiting for its restart delay."""
    s = doc.get("State") or {}
    code = s.get("ExitCode")
    status = s.get("Status", "")
    running = bool(s.get("Running")) and not s.get("Restarting")
    if running:
        state, reason = "running", ""
    elif s.get("Restarting"):
        state, reason = "waiting", "CrashLoop"
    elif status == "created":
        state, reason = "waiting", "Created"
    else:
        state, reason = "terminated", _ended(s)
    started = parse_time(s.get("StartedAt"))
    finished = parse_time(s.get("FinishedAt"))
    # a running container's ExitCode is reset to 0 at each start: the last exit is known only while it is down
    last = None if running or started is None else code
    return ContainerStatus(id=str(doc.get("Id", "")), state=state, reason=reason, exit_code=last,
                           restarts=int(doc.get("RestartCount") or 0), created=parse_time(doc.get("Created")),
                           started=started, finished=finished if not running else None,
                           image_id=str(doc.get("Image", "")), error=str(s.get("Error") or ""),
                           last_reason="" if last is None else _ended(s))


def _ended(s: Mapping[str, Any]) -> str:
    return "OOMKilled" if s.get("OOMKilled") else ("Completed" if s.get("ExitCode") == 0 else "Error")


_SPLIT = "--cp-health--"


def inspect_host(node: Node, cm_dir: Path, ids: Sequence[str], timeout: float = 20.0) -> dict[str, ContainerStatus]:
    """One ``docker inspect`` of every id on one host; ids that vanished meanwhile are simply left out."""
    if not ids:
        return {}
    # and cp-health's restarts (a liveness restart is not one of dockerd's), after a line of its own
    remote = ("docker inspect " + " ".join(shlex.quote(i) for i in ids) + f" 2>/dev/null; echo; echo {_SPLIT}; "
              f"cat {HEALTH_STATE} 2>/dev/null")
    try:
        proc = subprocess.run(ssh_command(node, cm_dir, remote), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return {}
    listing, _, health = (proc.stdout or "").partition(f"\n{_SPLIT}\n")
    try:
        docs = json.loads(listing.strip() or "[]")
    except ValueError:
        return {}
    probed = health_restarts(health)
    found = {}
    for doc in docs:
        st = status_of(doc)
        if probed.get(st.id):
            st = replace(st, restarts=st.restarts + probed[st.id])
        found.update({i: st for i in ids if st.id.startswith(i)})
    return found


def inspect(nodes: Sequence[Node], ids_by_node: Mapping[str, Sequence[str]], state_dir: Path,
            timeout: float = 20.0) -> dict[str, ContainerStatus]:
    """Container id -> status, every host asked at once (one SSH round trip each)."""
    asked = [n for n in nodes if ids_by_node.get(n.name)]
    if not asked:
        return {}
    cm_dir = control_dir(state_dir)
    with ThreadPoolExecutor(max_workers=min(64, len(asked))) as pool:
        parts = pool.map(lambda n: inspect_host(n, cm_dir, ids_by_node[n.name], timeout), asked)
    return {k: v for part in parts for k, v in part.items()}


def container_ids(pods: Sequence[ObservedPod]) -> dict[str, list[str]]:
    """node -> ids of every container of these pods: what one batched inspect per host asks for."""
    out: dict[str, list[str]] = {}
    for p in pods:
        out.setdefault(p.node, []).extend(c.id for c in p.containers)
    return out


def restarts(p: ObservedPod, statuses: Mapping[str, ContainerStatus]) -> int | None:
    """Restarts of the pod's own containers (not its infra container); None when none was inspected."""
    known = [statuses[c.id].restarts for c in p.containers if c.container != INFRA and c.id in statuses]
    return sum(known) if known else None


def created(p: ObservedPod, statuses: Mapping[str, ContainerStatus]) -> float | None:
    """When the pod was made: the creation of the container owning its network namespace."""
    owner = next((c for c in p.containers if c.container == p.owner), None)
    st = statuses.get(owner.id) if owner else None
    return st.created if st else None


def format_age(seconds: float | None) -> str:
    """``42s``, ``5m``, ``3h``, ``2d``: kubectl's short ages."""
    if seconds is None:
        return "?"
    s = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size * (2 if unit != "m" else 1):
            return f"{s // size}{unit}"
    return f"{s}s"
