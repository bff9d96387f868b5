"""``cluster-pilot bench scheduler``: schedule a synthetic fleet and workload and print the rate."""

from __future__ import annotations

import resource
import time

import click


@click.command()
@click.option("--nodes", "node_count", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--pods", "pod_count", type=click.IntRange(min=1), default=10000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def scheduler(node_count: int, pod_count: int, seed: int) -> int:
    """Place --pods pods on --nodes minions as if nothing ran yet; the last line is the rate."""
    from cluster_pilot.model import ReplicationController, Service
    from cluster_pilot.scheduler import schedule
    from cluster_pilot.scheduler.synthetic import fleet, workload

    nodes = fleet(node_count, seed)
    objects = workload(pod_count, seed)
    controllers = sum(isinstance(o, ReplicationController) for o in objects)
    services = sum(isinstance(o, Service) for o in objects)
    click.echo(f"fleet: {node_count} minions; workload: {controllers} controllers, "
               f"{pod_count - sum(o.replicas for o in objects if isinstance(o, ReplicationController))} bare pods, "
               f"{services} services (seed {seed})")
    start = time.perf_counter()
    result = schedule(objects, nodes)
    elapsed = time.perf_counter() - start
    click.echo(f"placed {len(result.placements)}, unschedulable {len(result.unschedulable)}")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    click.echo(f"peak memory: {peak_mib:.0f} MiB (max RSS of the process)")
    rate = pod_count / elapsed
    click.echo(f"scheduled {pod_count} pods on {node_count} nodes in {elapsed:.3f} s: {rate:,.0f} pods/s")
    return 0
