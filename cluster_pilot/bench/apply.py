"""The apply benchmark: apply against the floors a hand-written script would get, measured in the same run.

- cold apply ÷ raw floor: the same containers (infra + app per pod) started by plain ``docker run -d`` over
  one parallel SSH session per host;
- no-op apply ÷ observation floor: parallel ``ssh host docker ps``;
- the wall time of changing one pod's image, every other pod untouched.
"""

from __future__ import annotations

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

from cluster_pilot.apply.pipeline import Options, converge
from cluster_pilot.bench import BenchFailed
from cluster_pilot.host.observe import observe
from cluster_pilot.host.podformat import LABEL_CONTROLLER, LABEL_POD
from cluster_pilot.host.ssh import control_dir, ssh_command
from cluster_pilot.model import Container, Meta, Node, Pod, PodSpec, PodTemplate, ReplicationController

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


def _parallel_ssh(nodes: Sequence[Node], home: Path, remote_for: Callable[[Node], str]) -> float:
    cm = control_dir(home)
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        procs = list(pool.map(lambda n: subprocess.run(ssh_command(n, cm, remote_for(n)), capture_output=True,
                                                       text=True, timeout=600), nodes))
    elapsed = time.monotonic() - t0
    for p in procs:
        if p.returncode != 0:
            raise BenchFailed(f"floor measurement failed: {p.stderr.strip()[:200]}")
    return elapsed


def _clean(nodes: Sequence[Node], home: Path) -> None:
    _parallel_ssh(nodes, home, lambda n: f"ids=$(docker ps -aq --filter label={LABEL_POD} --filter "
                                         f"label={LABEL_CONTROLLER}={BENCH}; docker ps -aq --filter "
                                         "name=cpfloor-); [ -z \"$ids\" ] || docker rm -f $ids >/dev/null")


def _raw_floor(nodes: Sequence[Node], home: Path, n: int) -> float:
    return _parallel_ssh(nodes, home, lambda node: " && ".join(
        f"docker run -d --name cpfloor-{i}-pod busybox sleep 2147483647 >/dev/null && "
        f"docker run -d --name cpfloor-{i}-app --network container:cpfloor-{i}-pod busybox sleep 2147483647 >/dev/null"
        for i in range(n)))


def measure(nodes: Sequence[Node], inventory_file: Path, home: Path, pods_per_host: int) -> ApplyFigures:
    rc = _workload(pods_per_host, len(nodes))
    _clean(nodes, home)
    raw = _raw_floor(nodes, home, pods_per_host)
    _clean(nodes, home)
    observe(nodes, home)  # warm the SSH control masters, as the floors' own sessions are warm too
    t0 = time.monotonic()
    cold = converge([rc], nodes, inventory_file, home, Options())
    cold_s = time.monotonic() - t0
    if not cold.ok:
        raise BenchFailed("cold apply failed: " + "; ".join(
            m for h in (cold.run.hosts.values() if cold.run else []) for m in h.messages))

    floor_obs = min(_parallel_ssh(nodes, home, lambda node: "docker ps -q >/dev/null") for _ in range(5))
    noops = []
    for _ in range(5):
        t0 = time.monotonic()
        again = converge([rc], nodes, inventory_file, home, Options())
        noops.append(time.monotonic() - t0)
        assert again.run is None and again.plan.empty, "a no-op apply planned changes"

    # one pod's new image: a bare pod beside the controller, changed alone
    single = Pod(Meta(f"{BENCH}-single", {"bench-single": "1"}),
                 PodSpec((Container("app", "busybox", ("sleep", "2147483647")),)))
    converge([rc, single], nodes, inventory_file, home, Options())
    before = {p.name: p.spec_hash for p in observe(nodes, home).pods}
    changed = replace(single, spec=PodSpec((Container("app", "busybox:latest", ("sleep", "2147483646")),)))
    t0 = time.monotonic()
    one = converge([rc, changed], nodes, inventory_file, home, Options())
    one_s = time.monotonic() - t0
    after = {p.name: p.spec_hash for p in observe(nodes, home).pods}
    untouched = sum(1 for name, h in before.items() if name != single.meta.name and after.get(name) == h)
    converge([], nodes, inventory_file, home, Options(),
             deleting=[("ReplicationController", BENCH), ("Pod", single.meta.name)])
    return ApplyFigures(len(nodes), pods_per_host * len(nodes), raw, cold_s, floor_obs, min(noops), one_s,
                        untouched, len(before) - 1, one.ok)
