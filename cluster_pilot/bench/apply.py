"""The apply benchmark: apply against the floors a hand-written script would get, measured in the same run.

Whole process (``measure_process``), as a user times it from Enter to the prompt: ``cluster-pilot apply`` run as
a subprocess with a home of its own (so a fresh store and fresh SSH connections), against

- the user's floor: the same replicas as plain containers, ``docker run -d`` one after another per host over one
  fresh SSH session per host, hosts in parallel;
- the no-op floor: fresh parallel ``ssh host docker ps``.

The subprocess writes a timing trace (``apply.timings``), from which ``split`` tells where the time went.

In process (``measure``): ``converge`` called here, against the same floor over warm SSH; the wall time of
changing one pod's image, every other pod untouched.
"""

from __future__ import annotations

import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

from cluster_pilot.api import to_manifest
from cluster_pilot.apply.pipeline import Options, Request, converge
from cluster_pilot.apply.runner import PROXY_ROLE
from cluster_pilot.apply.timings import ENV as TIMINGS_ENV
from cluster_pilot.bench import BenchFailed
from cluster_pilot.host.observe import observe
from cluster_pilot.host.podformat import LABEL_CONTROLLER, LABEL_POD
from cluster_pilot.host.ssh import control_dir, ssh_command
from cluster_pilot.model import Container, Meta, Node, Pod, PodSpec, PodTemplate, ReplicationController
from cluster_pilot.store import NotFound, SQLiteStore

BENCH = "cp-bench"


@dataclass(frozen=True)
class ApplyFigures:
    hosts: int
    pods: int
    raw_floor_s: float
    cold_s: float
    observation_floor_s: float
    noop_s: float
    one_change_s: float
    untouched: int  # other pods whose version the one change left alone
    others: int
    one_change_ok: bool


def _workload(pods_per_host: int, hosts: int, image: str = "busybox") -> ReplicationController:
    spec = PodSpec((Container("app", image, ("sleep", "2147483647")),))
    labels = {"bench": BENCH}
    return ReplicationController(Meta(BENCH, labels), pods_per_host * hosts, labels, PodTemplate(labels, spec))


def _fresh(command: list[str]) -> list[str]:
    """The same ssh invocation without a control master: a new connection, as a user's own ``ssh`` makes."""
    return [{"ControlMaster=auto": "ControlMaster=no"}.get(a, "ControlPath=none" if a.startswith("ControlPath=")
                                                          else a) for a in command]


def _parallel_ssh(nodes: Sequence[Node], home: Path, remote_for: Callable[[Node], str], fresh: bool = False) -> float:
    cm = control_dir(home)

    def command(n: Node) -> list[str]:
        c = ssh_command(n, cm, remote_for(n))
        return _fresh(c) if fresh else c

    def run(n: Node) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(command(n), capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            raise BenchFailed(f"{n.name} did not finish {remote_for(n)[:60]!r} in 600 s (is its dockerd "
                              "answering?)") from None

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        procs = list(pool.map(run, nodes))
    elapsed = time.monotonic() - t0
    for p in procs:
        if p.returncode != 0:
            raise BenchFailed(f"floor measurement failed: {p.stderr.strip()[:200]}")
    return elapsed


def _clean(nodes: Sequence[Node], home: Path) -> None:
    """One container after another: containers stopping together can deadlock a dockerd before 23.0, such
    as the sandbox's (see ``roles/cp_pods``'s ``SAFE_CONCURRENT_STOPS``), and ``docker rm -f A B`` stops
    them together."""
    _parallel_ssh(nodes, home, lambda n: f"for id in $(docker ps -aq --filter label={LABEL_POD} --filter "
                                         f"label={LABEL_CONTROLLER}={BENCH}; docker ps -aq --filter "
                                         f"label={LABEL_POD}={BENCH}-single; docker ps -aq --filter "
                                         "name=cpfloor-); do docker rm -f $id >/dev/null; done")


def measure(nodes: Sequence[Node], inventory_file: Path, home: Path, pods_per_host: int) -> ApplyFigures:
    rc = _workload(pods_per_host, len(nodes))
    _clean(nodes, home)
    raw = _user_floor(nodes, home, pods_per_host, fresh=False)
    _clean(nodes, home)
    observe(nodes, home)  # warm the SSH control masters, as the floors' own sessions are warm too
    t0 = time.monotonic()
    cold = converge(Request.of([rc]), nodes, inventory_file, home, Options())
    cold_s = time.monotonic() - t0
    if not cold.ok:
        raise BenchFailed("cold apply failed: " + "; ".join(
            m for h in (cold.run.hosts.values() if cold.run else []) for m in h.messages))

    floor_obs = min(_parallel_ssh(nodes, home, lambda node: "docker ps -q >/dev/null") for _ in range(5))
    noops = []
    for _ in range(5):
        t0 = time.monotonic()
        again = converge(Request.of([rc]), nodes, inventory_file, home, Options())
        noops.append(time.monotonic() - t0)
        assert again.run is None and again.plan.empty, "a no-op apply planned changes"

    # one pod's new image: a bare pod beside the controller, changed alone
    single = Pod(Meta(f"{BENCH}-single", {"bench-single": "1"}),
                 PodSpec((Container("app", "busybox", ("sleep", "2147483647")),)))
    converge(Request.of([rc, single]), nodes, inventory_file, home, Options())
    before = {p.name: p.spec_hash for p in observe(nodes, home).pods}
    changed = replace(single, spec=PodSpec((Container("app", "busybox:latest", ("sleep", "2147483646")),)))
    t0 = time.monotonic()
    one = converge(Request.of([rc, changed]), nodes, inventory_file, home, Options())
    one_s = time.monotonic() - t0
    after = {p.name: p.spec_hash for p in observe(nodes, home).pods}
    untouched = sum(1 for name, h in before.items() if name != single.meta.name and after.get(name) == h)
    converge(Request.of(deleting=[("ReplicationController", BENCH), ("Pod", single.meta.name)]), nodes, inventory_file,
             home, Options())
    return ApplyFigures(len(nodes), pods_per_host * len(nodes), raw, cold_s, floor_obs, min(noops), one_s,
                        untouched, len(before) - 1, one.ok)


@dataclass(frozen=True)
class ProcessRun:
    seconds: float
    split: tuple[tuple[str, float], ...]  # where the time went, in order; sums to ``seconds``


@dataclass(frozen=True)
class ProcessFigures:
    hosts: int
    pods: int
    user_floors: tuple[float, ...]  # every run, interleaved with the applies
    colds: tuple[ProcessRun, ...]
    noop_floors: tuple[float, ...]
    noops: tuple[ProcessRun, ...]  # fresh SSH, as the floor
    warm_noops: tuple[ProcessRun, ...]  # right after another run: SSH control masters still open
    one_change: ProcessRun
    untouched: int
    others: int
    load: tuple[float, float]  # 1-minute load average before and after


def median_run(runs: Sequence[ProcessRun]) -> ProcessRun:
    return sorted(runs, key=lambda r: r.seconds)[(len(runs) - 1) // 2]


def _task_spans(marks: Sequence[tuple[float, str, str]]) -> list[tuple[str, float, float]]:
    """Each Ansible task as (what it was, start, end): from its start to the next task's (the linear strategy
    waits for every host), named by its role: the module's Docker work (the object records written in its
    last run), the proxy, or Ansible's own."""
    starts = [(t, name.split(":", 2)) for t, name, _ in marks if name.startswith(("playbook_on_task_start:",
                                                                                   "playbook_on_stats:"))]
    ran = {name.split(":", 2)[2] for _, name, _ in marks if name.startswith("runner_on_ok:")}
    spans = []
    for (t, (_, role, task)), (end, _) in zip(starts, starts[1:]):
        if task in ran and role == "cp_pods":
            spans.append(("cp_pods module (Docker work)", t, end))
        elif task in ran and role == PROXY_ROLE:
            spans.append(("proxy", t, end))
        else:
            spans.append(("Ansible per-task overhead", t, end))
    return spans


def split(marks: Sequence[tuple[float, str, str]], launched: float, ended: float) -> tuple[tuple[str, float], ...]:
    """Where one process's time went, from its trace; a stage the run skipped is left out."""
    first = {}
    for t, name, _ in marks:
        first.setdefault(name, t)
    observed = [t for t, name, _ in marks if name == "observing"]
    spans = _task_spans(marks)
    points: list[tuple[str, float | None]] = [
        ("interpreter start", first.get("python")),
        ("inventory, hosts asked", first.get("asked")),
        ("imports", first.get("imported")),
        ("load and validate", observed[0] if observed else None),
        ("observation", first.get("locking", first.get("converged") if len(observed) == 1 else None)),
        ("lock", observed[1] if len(observed) > 1 else first.get("run") if "locking" in first else None),
        ("observation under the lock", first.get("run") if len(observed) > 1 else None),
        ("render, ansible-playbook start", spans[0][1] if spans else None),
    ]
    out: list[tuple[str, float]] = []
    last = launched
    for label, at in points:
        if at is not None:
            out.append((label, at - last))
            last = at
    if spans:
        for label in dict.fromkeys(s[0] for s in spans):
            out.append((label, sum(end - start for what, start, end in spans if what == label)))
        last = spans[-1][2]
    for label, at in (("ansible-playbook exit", first.get("verifying", first.get("converged")) if spans else None),
                      ("verification", first.get("converged") if "verifying" in first else None),
                      ("store and report", first.get("exit")), ("process exit", ended)):
        if at is not None and at >= last:
            out.append((label, at - last))
            last = at
    return tuple(out)


def _manifests(objects: Sequence[object], work: Path) -> list[str]:
    """``-f FILE`` for each object, one JSON manifest per file."""
    args = []
    for o in objects:
        path = work / f"{o.meta.name}-{abs(hash(json.dumps(to_manifest(o)))):x}.json"  # type: ignore[attr-defined]
        path.write_text(json.dumps(to_manifest(o)))  # type: ignore[arg-type]
        args += ["-f", str(path)]
    return args


@functools.cache
def _installed_env(work: Path) -> dict[str, str]:
    """The environment of an installed ``cluster-pilot``: its modules compiled, as pip compiles a wheel's at
    install. A source checkout run under ``PYTHONDONTWRITEBYTECODE`` would compile every module on every
    run, a cost no user pays; the bytecode goes to a cache in ``work``, never into the checkout."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    package = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], env=env, capture_output=True,
                   timeout=300, check=True)
    return env


def _run_cli(args: Sequence[str], home: Path, work: Path) -> ProcessRun:
    """``cluster-pilot ARGS`` as a user runs it (``_installed_env``), timed from outside, split by its own
    trace."""
    trace = work / "trace.json"
    trace.unlink(missing_ok=True)
    env = {**_installed_env(work), "CLUSTER_PILOT_HOME": str(home), TIMINGS_ENV: str(trace)}
    launched, t0 = time.time(), time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "cluster_pilot", *args], env=env, capture_output=True, text=True,
                          timeout=900)
    seconds, ended = time.monotonic() - t0, time.time()
    if proc.returncode != 0:
        raise BenchFailed(f"cluster-pilot {args[0]} failed: {proc.stderr.strip()[-300:]}")
    marks = [tuple(m) for m in json.loads(trace.read_text())] if trace.exists() else []
    return ProcessRun(seconds, split(marks, launched, ended))  # type: ignore[arg-type]


def _close_connections(nodes: Sequence[Node], home: Path) -> None:
    """End the shared SSH connections, so that the next run connects afresh, as the floors do."""
    cm = control_dir(home)
    for node in nodes:
        command = ssh_command(node, cm, "true")
        subprocess.run([*command[:-2], "-O", "exit", command[-2]], capture_output=True, timeout=30)


def _user_floor(nodes: Sequence[Node], home: Path, n: int, fresh: bool = True) -> float:
    return _parallel_ssh(nodes, home, lambda node: " && ".join(
        f"docker run -d --name cpfloor-{i} busybox sleep 2147483647 >/dev/null" for i in range(n)), fresh=fresh)


def measure_process(nodes: Sequence[Node], inventory_file: Path, home: Path, pods_per_host: int,
                    repeat: int = 3) -> ProcessFigures:
    """Cold applies and user floors interleaved (``repeat`` each), then no-ops and their floors, then one pod's
    image changed. Each ``cluster-pilot`` run uses the user's home (its caches) with its SSH connections
    closed first, as the floors connect afresh; a second no-op right after one shows the warm case."""
    rc = _workload(pods_per_host, len(nodes))
    load0 = os.getloadavg()[0]
    floors, colds, noop_floors, noops, warm = [], [], [], [], []
    single = Pod(Meta(f"{BENCH}-single", {"bench-single": "1"}),
                 PodSpec((Container("app", "busybox", ("sleep", "2147483647")),)))
    changed = replace(single, spec=PodSpec((Container("app", "busybox:latest", ("sleep", "2147483646")),)))
    with tempfile.TemporaryDirectory(prefix="cp-bench-") as tmp:
        work = Path(tmp)
        inv = ["-i", str(inventory_file)]
        apply_rc = ["apply", *_manifests([rc], work), *inv]
        try:
            # untimed: the bytecode cache being a directory of the bench's own, a first run would compile every
            # module Ansible imports (1-2 s more, seen as a first cold run slower than the others), which the
            # wheel's install does once for a user
            _run_cli(apply_rc, home, work)
            for _ in range(repeat):
                _clean(nodes, home)
                floors.append(_user_floor(nodes, home, pods_per_host))
                _clean(nodes, home)
                _close_connections(nodes, home)
                colds.append(_run_cli(apply_rc, home, work))
            for _ in range(repeat):
                noop_floors.append(_parallel_ssh(nodes, home, lambda node: "docker ps -q >/dev/null", fresh=True))
                _close_connections(nodes, home)
                noops.append(_run_cli(apply_rc, home, work))
                warm.append(_run_cli(apply_rc, home, work))
            _run_cli(["apply", *_manifests([rc, single], work), *inv], home, work)
            before = {p.name: p.spec_hash for p in observe(nodes, home).pods}
            one = _run_cli(["apply", *_manifests([rc, changed], work), *inv], home, work)
            after = {p.name: p.spec_hash for p in observe(nodes, home).pods}
        finally:
            _clean(nodes, home)
            _forget(home, [("ReplicationController", BENCH), ("Pod", single.meta.name)])
    untouched = sum(1 for name, h in before.items() if name != single.meta.name and after.get(name) == h)
    return ProcessFigures(len(nodes), rc.replicas, tuple(floors), tuple(colds), tuple(noop_floors), tuple(noops),
                          tuple(warm), one, untouched, len(before) - 1, (load0, os.getloadavg()[0]))


def _forget(home: Path, objects: Sequence[tuple[str, str]]) -> None:
    """The bench's objects out of the store its applies recorded them in."""
    store = SQLiteStore(home / "store.db")
    try:
        for kind, name in objects:
            try:
                store.delete(kind, name, actor="bench")
            except NotFound:  # not recorded (a run failed before the store): nothing to forget
                pass
    finally:
        store.close()


def median(values: Sequence[float]) -> float:
    return statistics.median(values)
