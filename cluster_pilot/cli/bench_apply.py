"""``cluster-pilot bench apply``: apply against the floors a hand-written script would get, measured in the same run.

- cold apply ÷ raw floor: the same containers (infra + app per pod) started by plain ``docker run -d`` over
  one parallel SSH session per host;
- no-op apply ÷ observation floor: parallel ``ssh host docker ps``;
- the wall time of changing one pod's image, every other pod untouched.
"""

from __future__ import annotations

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import click

from cluster_pilot.cli.options import inventory_option, load_nodes, open_state
from cluster_pilot.model import Container, Meta, Pod, PodSpec, PodTemplate, ReplicationController
from cluster_pilot.host.observe import observe
from cluster_pilot.host.ssh import control_dir, ssh_command
from cluster_pilot.apply.pipeline import Options, converge

BENCH = "cp-bench"


def _workload(pods_per_host: int, hosts: int, image: str = "busybox") -> ReplicationController:
    spec = PodSpec((Container("app", image, ("sleep", "2147483647")),))
    labels = {"bench": BENCH}
    return ReplicationController(Meta(BENCH, labels), pods_per_host * hosts, labels, PodTemplate(labels, spec))


def _parallel_ssh(nodes, remote_for) -> float:
    cm = control_dir(open_state()[0])
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        procs = list(pool.map(lambda n: subprocess.run(ssh_command(n, cm, remote_for(n)), capture_output=True,
                                                       text=True, timeout=600), nodes))
    elapsed = time.monotonic() - t0
    for p in procs:
        if p.returncode != 0:
            raise click.ClickException(f"floor measurement failed: {p.stderr.strip()[:200]}")
    return elapsed


def _clean(nodes) -> None:
    _parallel_ssh(nodes, lambda n: f"ids=$(docker ps -aq --filter label=io.cluster-pilot.pod --filter "
                                   f"label=io.cluster-pilot.controller={BENCH}; docker ps -aq --filter name=cpfloor-); "
                                   "[ -z \"$ids\" ] || docker rm -f $ids >/dev/null")


@click.command("apply")
@inventory_option
@click.option("--pods-per-host", type=click.IntRange(1, 40), default=10, show_default=True)
def apply_bench(inventory, pods_per_host) -> int:
    """Cold, no-op and one-image-change apply times, as ratios to floors measured here and now."""
    inventory_file, nodes = load_nodes(inventory)
    home, _ = open_state()
    rc = _workload(pods_per_host, len(nodes))
    _clean(nodes)
    n = pods_per_host
    raw = _parallel_ssh(nodes, lambda node: " && ".join(
        f"docker run -d --name cpfloor-{i}-pod busybox sleep 2147483647 >/dev/null && "
        f"docker run -d --name cpfloor-{i}-app --network container:cpfloor-{i}-pod busybox sleep 2147483647 >/dev/null"
        for i in range(n)))
    _clean(nodes)
    observe(nodes, home)  # warm the SSH control masters, as the floors' own sessions are warm too
    t0 = time.monotonic()
    cold = converge([rc], nodes, inventory_file, home, Options())
    cold_s = time.monotonic() - t0
    if not cold.ok:
        raise click.ClickException("cold apply failed: " + "; ".join(
            m for h in (cold.run.hosts.values() if cold.run else []) for m in h.messages))

    floor_obs = min(_parallel_ssh(nodes, lambda node: "docker ps -q >/dev/null") for _ in range(5))
    noops = []
    for _ in range(5):
        t0 = time.monotonic()
        again = converge([rc], nodes, inventory_file, home, Options())
        noops.append(time.monotonic() - t0)
        assert again.run is None and again.plan.empty, "a no-op apply planned changes"
    noop_s = min(noops)

    # one pod's new image: a bare pod beside the controller, changed alone
    single = Pod(Meta(f"{BENCH}-single", {"bench-single": "1"}), PodSpec((Container("app", "busybox", ("sleep", "2147483647")),)))
    converge([rc, single], nodes, inventory_file, home, Options())
    before = {p.name: p.spec_hash for p in observe(nodes, home).pods}
    changed = replace(single, spec=PodSpec((Container("app", "busybox:latest", ("sleep", "2147483646")),)))
    t0 = time.monotonic()
    one = converge([rc, changed], nodes, inventory_file, home, Options())
    one_s = time.monotonic() - t0
    after = {p.name: p.spec_hash for p in observe(nodes, home).pods}
    untouched = sum(1 for name, h in before.items() if name != single.meta.name and after.get(name) == h)
    converge([], nodes, inventory_file, home, Options(), deleting=[("ReplicationController", BENCH), ("Pod", single.meta.name)])

    pods = n * len(nodes)
    click.echo(f"hosts: {len(nodes)}, pods: {pods} ({2 * pods} containers with the infra containers)")
    click.echo(f"raw floor (parallel ssh + docker run -d): {raw:.2f} s")
    click.echo(f"cold apply: {cold_s:.2f} s  ratio {cold_s / raw:.2f} (goal <= 1.5)")
    click.echo(f"observation floor (parallel ssh docker ps): {floor_obs * 1000:.0f} ms")
    click.echo(f"no-op apply: {noop_s * 1000:.0f} ms  ratio {noop_s / floor_obs:.2f} (goal <= 2)")
    click.echo(f"one pod's image changed: {one_s:.2f} s, {untouched}/{len(before) - 1} other pods untouched, "
               f"ok={one.ok}")
    return 0
