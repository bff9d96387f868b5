"""The heal benchmark: a real ``cluster-pilot master`` (a subprocess with a home of its own) on the user's minions.

- killed pod to running: a pod's app container removed with ``docker rm -f``; done when the API shows the pod
  Running again on the minion's new container (its ``start`` event, read from dockerd on the minion). The
  master's own trace (``pass marks`` in its log) splits each heal: event to plan, plan to ansible-playbook
  start, the cp_pods module run, Docker's create-to-start of the new containers;
- lost minion to full count: a minion stopped, in turn one that is no lock host and the first lock host (the
  fleet lock lives on a majority of its lock hosts, so losing one must not stop a heal); done when the API shows
  the controller's replicas Running on the other minions;
- idle cost: CPU seconds per minute of the master, its SSH clients and its control masters, for
  ``--observe watch`` and ``--observe poll`` one after the other, on the first 3 minions and on all of them.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from cluster_pilot.api.kinds import CONTROLLERS, PODS
from cluster_pilot.apply.timings import ENV as TIMINGS_ENV
from cluster_pilot.bench import BenchFailed
from cluster_pilot.bench.apply import _task_spans
from cluster_pilot.host.lock import lock_hosts
from cluster_pilot.host.podformat import LABEL_CONTAINER, LABEL_POD
from cluster_pilot.host.ssh import control_dir, ssh_command
from cluster_pilot.model import Node


@dataclass(frozen=True)
class Heal:
    seconds: float  # removal to Running in the API
    split: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class HealFigures:
    minions: int
    heals: tuple[Heal, ...]
    lost: tuple[float, ...]  # a minion that is no lock host stopped to the controller at full count elsewhere
    idle: tuple[tuple[str, int, float], ...]  # (observe mode, minions, CPU seconds per minute)
    idle_window_s: float
    resync: tuple[tuple[int, tuple[float, ...]], ...] = ()  # (minions, the watching master's whole resync passes, s)
    lost_lock: tuple[float, ...] = ()  # the same with the first lock host stopped, in the same run


def wait(condition: Callable[[], object], timeout: float, what: str, step: float = 0.05) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchFailed(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)  # poll step of a deadline wait


class MasterProcess:
    """``cluster-pilot master`` on loopback, in ``home``, with its trace in its log."""

    def __init__(self, home: Path, inventory: Path, port: int, mode: str) -> None:
        self.home, self.port, self.log = home, port, home / f"master-{mode}.log"
        env = {**os.environ, "CLUSTER_PILOT_HOME": str(home), TIMINGS_ENV: str(home / "trace.json")}
        self.proc = subprocess.Popen([sys.executable, "-m", "cluster_pilot", "master", "--listen",
                                      f"127.0.0.1:{port}", "-i", str(inventory), "--insecure-loopback",
                                      "--observe", mode], env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=open(self.log, "wb"))
        wait(self._listening, 120, "the master to listen", 0.2)

    def _listening(self) -> bool:
        if self.proc.poll() is not None:
            raise BenchFailed(f"the master exited: {self.log.read_text()[-500:]}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def call(self, path: str, body: dict | None = None, method: str = "GET") -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/api/v1beta1/{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as resp:
            return json.loads(resp.read() or b"{}")

    def pods(self, rc: str) -> dict[str, tuple[str, str]]:
        """pod -> (minion, status), for one controller's pods."""
        items = self.call(f"{PODS.v1beta1}?labels=name%3D{rc}").get("items", [])
        return {i["id"]: (i["currentState"].get("host", ""), i["currentState"].get("status", "")) for i in items}

    def passes(self) -> float:
        """Reconcile passes done so far (from ``/metrics``)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=60) as resp:
            text = resp.read().decode()
        return next(float(line.split()[-1]) for line in text.splitlines()
                    if line.startswith("cluster_pilot_reconcile_duration_seconds_count"))

    def settled(self, quiet: float = 3.0) -> None:
        """Wait until no pass has run for ``quiet`` seconds: the passes a deployment causes (its run, the look
        at the minions it changed) are over, and what follows is idle."""
        last: list[tuple[float, float]] = []

        def quiet_for() -> bool:
            count, now = self.passes(), time.monotonic()
            if not last or last[-1][0] != count:
                last[:] = [(count, now)]
            return now - last[0][1] >= quiet

        wait(quiet_for, 120, f"{quiet:.0f} s without a pass", 0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=120)


def cpu_seconds(root: int, cm_dir: Path) -> float:
    """CPU time of ``root`` and everything below it (reaped children included), plus the SSH control masters
    of ``cm_dir`` (detached: their parent is init)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
            args = Path(entry.path, "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        pid = int(entry.name)
        mine = pid == root or _below(pid, root) or (str(cm_dir) in args and "[mux]" in args)
        if mine:
            total += int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if pid == root else 0)
    return total / tick


def _below(pid: int, root: int) -> bool:
    for _ in range(16):
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
        if pid == root:
            return True
        if pid <= 1:
            return False
    return False


def _rc(name: str, replicas: int) -> dict:
    labels = {"name": name}
    return {"kind": CONTROLLERS.name, "apiVersion": "v1beta1", "id": name, "labels": labels,
            "desiredState": {"replicas": replicas, "replicaSelector": labels, "podTemplate": {
                "labels": labels, "desiredState": {"manifest": {"version": "v1beta1", "containers": [
                    {"name": "app", "image": "busybox", "command": ["sleep", "2147483647"]}]}}}}}


def sub_inventory(nodes: Sequence[Node], path: Path) -> Path:
    hosts = {n.name: {k: v for k, v in n.vars.items() if k.startswith(("ansible_", "cp_"))} for n in nodes}
    path.write_text(json.dumps({"all": {"children": {"minions": {"hosts": hosts}}}}, default=str))
    return path


def _full(master: MasterProcess, rc: str, replicas: int, avoid: str = "") -> bool:
    pods = master.pods(rc)
    return sum(1 for host, status in pods.values() if status == "Running" and host != avoid) == replicas


def _ssh(node: Node, home: Path, remote: str, timeout: float = 60) -> str:
    return subprocess.run(ssh_command(node, control_dir(home), remote), capture_output=True, text=True,
                          timeout=timeout).stdout


def _stamp(text: str) -> float:
    """Docker's RFC 3339 time with nanoseconds -> epoch seconds."""
    head, _, frac = text.strip().rstrip("Z").partition(".")
    from datetime import datetime, timezone

    return datetime.fromisoformat(head).replace(tzinfo=timezone.utc).timestamp() + float(f"0.{frac or 0}")


def resync_passes(log: Path) -> tuple[float, ...]:
    """The seconds of each whole resync pass the master logged, the first (sessions still opening) left out."""
    found = [float(line.rsplit(" of ", 1)[1].split()[0]) for line in log.read_text().splitlines()
             if "resync: " in line and "observed whole in a pass of" in line]
    return tuple(found[1:])


def _passes(log: Path) -> list[dict]:
    return [json.loads(line.split("pass marks ", 1)[1]) for line in log.read_text().splitlines() if "pass marks " in line]


def heal_split(trace: dict, docker: float, running: float) -> tuple[tuple[str, float], ...]:
    """One heal pass's marks -> (stage, seconds); ``docker``: the new containers' create-to-start time."""
    marks = [tuple(m) for m in trace["marks"]]
    first = {}
    for t, name, _ in marks:
        first.setdefault(name, t)
    started, ended = first.get("playbook_on_start::"), first.get("playbook_on_stats::")
    module = sum(end - start for what, start, end in _task_spans(marks) if what.startswith("cp_pods"))
    if started is None or ended is None or trace.get("event") is None:
        return ()
    return (("event to plan", trace["planned"] - trace["event"]),
            ("plan to ansible-playbook start", started - trace["planned"]),
            ("cp_pods module run", module),
            ("  of which Docker create-to-start", docker),
            ("rest of the playbook", ended - started - module),
            ("playbook end to Running in the API", running - ended))


def one_heal(master: MasterProcess, node: Node, home: Path, rc: str) -> Heal:
    pod = next(p for p, (host, status) in master.pods(rc).items() if host == node.name and status == "Running")
    ids = _ssh(node, home, f"docker ps -q --no-trunc --filter label={LABEL_POD}={pod} "
                           f"--filter label={LABEL_CONTAINER}=app").split()
    t0 = time.time()
    _ssh(node, home, f"docker rm -f {ids[0]} >/dev/null")
    events = subprocess.Popen(ssh_command(node, control_dir(home), f"docker events --since {t0:.3f} --filter "
                                          f"label={LABEL_POD}={pod} --filter event=start --format '{{{{.ID}}}}'"),
                              stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        new = events.stdout.readline().strip() if events.stdout else ""
    finally:
        events.kill()
        events.wait()
    if not new:
        raise BenchFailed(f"{pod} on {node.name} was not started again")
    wait(lambda: master.pods(rc).get(pod, ("", ""))[1] == "Running", 120, f"{pod} Running in the API")
    seconds = time.time() - t0
    times = _ssh(node, home, f"docker inspect --format '{{{{.Created}}}} {{{{.State.StartedAt}}}}' "
                             f"$(docker ps -q --filter label={LABEL_POD}={pod})").split()
    docker = max(map(_stamp, times[1::2])) - min(map(_stamp, times[0::2])) if times else 0.0
    traces = [t for t in _passes(master.log) if t.get("event") and t["event"] >= t0 - 1]
    return Heal(seconds, heal_split(traces[0], docker, t0 + seconds) if traces else ())


def one_loss(master: MasterProcess, sandbox, name: str, rc: str, replicas: int) -> float:
    t0 = time.monotonic()
    sandbox.stop(name)
    try:
        wait(lambda: _full(master, rc, replicas, avoid=name), 180, f"{rc} at full count without {name}", 0.1)
        return time.monotonic() - t0
    finally:
        sandbox.start(name)
        wait(lambda: _full(master, rc, replicas) and all(h != name for h, _ in master.pods(rc).values()), 180,
             f"{name}'s stale pods gone", 0.2)


def idle_cost(master: MasterProcess, window: float) -> float:
    """CPU seconds per minute while nothing happens."""
    cm = control_dir(master.home)
    before = cpu_seconds(master.proc.pid, cm)
    time.sleep(window)  # the measurement window
    return (cpu_seconds(master.proc.pid, cm) - before) * 60 / window


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(nodes: Sequence[Node], inventory_file: Path, home: Path, sandbox, kills: int = 10, stops: int = 3,
            window: float = 30.0, say: Callable[[str], None] = lambda text: None) -> HealFigures:
    """Idle cost on 3 minions and on all (watch, then poll, each with a controller of one pod per minion);
    the heals and losses with the watching master on all of them."""
    work = Path(tempfile.mkdtemp(prefix="bench-heal-", dir=home))
    port, idle = _free_port(), []
    fleets = [(3, sub_inventory(nodes[:3], work / "inventory-3.json"))] if len(nodes) > 3 else []
    heals: list[Heal] = []
    lost: list[float] = []
    lost_lock: list[float] = []
    resync: list[tuple[int, tuple[float, ...]]] = []
    for count, inventory in [*fleets, (len(nodes), inventory_file)]:
        for mode in ("watch", "poll"):
            master = MasterProcess(work, inventory, port, mode)
            rc = f"heal-{mode}-{count}"
            try:
                master.call(CONTROLLERS.v1beta1, _rc(rc, count), "POST")
                wait(lambda: _full(master, rc, count), 600, f"{rc} running", 0.5)
                wait(lambda: not [n for n in os.listdir(work) if n.startswith("cp-run-")], 120, "the runs to end")
                if mode == "watch":  # poll passes every second: never quiet, and that is its idle cost
                    master.settled()
                idle.append((mode, count, idle_cost(master, window)))
                say(f"idle {mode} on {count} minions: {idle[-1][2]:.2f} CPU s/min")
                if mode == "watch":
                    resync.append((count, resync_passes(master.log)))
                if mode == "watch" and count == len(nodes):
                    for i in range(kills):
                        heals.append(one_heal(master, nodes[i % len(nodes)], home, rc))
                        say(f"heal {i + 1}: {heals[-1].seconds:.2f} s")
                    locks = {n.name for n in lock_hosts(nodes)}
                    spare = [n.name for n in nodes if n.name not in locks]
                    for i in range(stops):
                        if spare:
                            lost.append(one_loss(master, sandbox, spare[i % len(spare)], rc, count))
                            say(f"lost minion {i + 1} (no lock host): full count after {lost[-1]:.2f} s")
                        first = lock_hosts(nodes)[0].name
                        lost_lock.append(one_loss(master, sandbox, first, rc, count))
                        say(f"lost minion {i + 1} ({first}, the first lock host): full count after "
                            f"{lost_lock[-1]:.2f} s")
            finally:
                try:
                    master.call(f"{CONTROLLERS.v1beta1}/{rc}", method="DELETE")
                    wait(lambda: not master.pods(rc), 180, f"{rc}'s pods to go", 0.5)
                finally:
                    master.stop()
    return HealFigures(len(nodes), tuple(heals), tuple(lost), tuple(idle), window, tuple(resync), tuple(lost_lock))


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def medians(heals: Sequence[Heal]) -> list[tuple[str, float]]:
    stages: dict[str, list[float]] = {}
    for h in heals:
        for stage, seconds in h.split:
            stages.setdefault(stage, []).append(seconds)
    return [(stage, statistics.median(values)) for stage, values in stages.items()]
