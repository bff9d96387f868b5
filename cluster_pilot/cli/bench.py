"""``cluster-pilot bench ...``: parse the options, call the measurement in ``cluster_pilot.bench``, print its
figures. Each benchmark module is imported on use, so ``bench scheduler`` does not pay for uvicorn or Ansible."""

from __future__ import annotations

import os
import statistics
from typing import TYPE_CHECKING, Sequence

import click

from cluster_pilot.cli.options import inventory_option, load_nodes, open_state
from cluster_pilot.quantity import cpu_millis

if TYPE_CHECKING:
    from cluster_pilot.bench.apply import ProcessFigures, ProcessRun
    from cluster_pilot.bench.proxy import DnsFigures, ProxyFigures, ProxyResults, ProxySettings, WrkRun


@click.group()
def bench() -> None:
    """Measure a stage and print its figures."""


@bench.command()
@click.option("--objects", "count", type=click.IntRange(3, 120_000), default=10_000, show_default=True)
@click.option("--repeat", type=click.IntRange(1, 20), default=1, show_default=True, help="Runs; the best is shown.")
def manifests(count: int, repeat: int) -> None:
    """Validate COUNT generated objects of mixed kinds and styles; print the time and the rate."""
    from cluster_pilot.bench.manifests import measure

    f = measure(count, repeat)
    listing = ", ".join(f"{n} {k}" for k, n in f.kinds.items())
    click.echo(f"validated {f.objects} objects ({listing}) in {f.files} files: "
               f"{f.seconds:.2f} s, {f.rate:,.0f} objects/s (goal: 10,000 in under 2 s)")


@bench.command()
@click.option("--nodes", "node_count", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--pods", "pod_count", type=click.IntRange(min=1), default=10000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def scheduler(node_count: int, pod_count: int, seed: int) -> int:
    """Place --pods pods on --nodes minions as if nothing ran yet; the last line is the rate."""
    from cluster_pilot.bench.scheduler import measure

    f = measure(node_count, pod_count, seed)
    click.echo(f"fleet: {f.nodes} minions; workload: {f.controllers} controllers, {f.bare_pods} bare pods, "
               f"{f.services} services (seed {f.seed})")
    click.echo(f"placed {f.placed}, unschedulable {f.unschedulable}")
    click.echo(f"peak memory: {f.peak_mib:.0f} MiB (max RSS of the process)")
    click.echo(f"scheduled {f.pods} pods on {f.nodes} nodes in {f.seconds:.3f} s: {f.rate:,.0f} pods/s")
    return 0


@bench.command("apply")
@inventory_option
@click.option("--pods-per-host", type=click.IntRange(1, 40), default=10, show_default=True)
@click.option("--repeat", type=click.IntRange(1, 20), default=5, show_default=True,
              help="Interleaved runs of each whole-process figure; medians are shown (on 2 shared cores a "
                   "3-minion cold apply's Docker work alone varies 3.5-5.4 s from run to run).")
@click.option("--in-process/--no-in-process", default=True, show_default=True,
              help="Also measure converge() called in this process, against the same floors over warm SSH.")
def apply_bench(inventory, pods_per_host, repeat, in_process) -> int:
    """Whole-process cold and no-op ``cluster-pilot apply`` (and one image change) against a user's floors,
    with where the time went; then the in-process figures."""
    from cluster_pilot.bench.apply import measure_process

    inventory_file, nodes = load_nodes(inventory)
    home, _ = open_state()
    for line in _apply_process_report(measure_process(nodes, inventory_file, home, pods_per_host, repeat)):
        click.echo(line)
    if in_process:
        from cluster_pilot.bench.apply import measure

        f = measure(nodes, inventory_file, home, pods_per_host)
        click.echo(f"in process: {f.pods} pods, warm SSH")
        click.echo(f"  raw floor (parallel ssh + docker run -d): {f.raw_floor_s:.2f} s")
        click.echo(f"  cold converge: {f.cold_s:.2f} s  ratio {f.cold_s / f.raw_floor_s:.2f}")
        click.echo(f"  observation floor (parallel ssh docker ps, warm): {f.observation_floor_s * 1000:.0f} ms")
        click.echo(f"  no-op converge: {f.noop_s * 1000:.0f} ms  ratio {f.noop_s / f.observation_floor_s:.2f}")
        click.echo(f"  one pod's image changed: {f.one_change_s:.2f} s, {f.untouched}/{f.others} other pods "
                   f"untouched, ok={f.one_change_ok}")
    return 0


def _apply_process_report(f: ProcessFigures) -> list[str]:
    from cluster_pilot.bench.apply import median, median_run

    def runs(values: Sequence[float]) -> str:
        return ", ".join(f"{v:.2f}" for v in values)

    def where(run: ProcessRun) -> list[str]:
        return [f"    {label:<32} {seconds:7.3f} s" for label, seconds in run.split]

    floor, cold = median(f.user_floors), median_run(f.colds)
    noop_floor, noop, warm = median(f.noop_floors), median_run(f.noops), median_run(f.warm_noops)
    return [
        f"whole process (modules compiled, as installed): {f.hosts} minions, {f.pods} single-container replicas; "
        f"load average {f.load[0]:.1f} "
        f"before, {f.load[1]:.1f} after; medians of {len(f.colds)} interleaved runs",
        f"user floor (docker run -d one after another per host, fresh ssh, hosts in parallel): {floor:.2f} s "
        f"(runs: {runs(f.user_floors)})",
        f"cold apply: {cold.seconds:.2f} s  ratio {cold.seconds / floor:.2f} (goal <= 1.3) "
        f"(runs: {runs([r.seconds for r in f.colds])})",
        *where(cold),
        f"no-op floor (fresh parallel ssh docker ps): {noop_floor * 1000:.0f} ms (runs: {runs(f.noop_floors)})",
        f"no-op apply, fresh ssh: {noop.seconds * 1000:.0f} ms  ratio {noop.seconds / noop_floor:.2f} (goal <= 1.5) "
        f"(runs: {runs([r.seconds for r in f.noops])})",
        *where(noop),
        f"no-op apply right after another (ssh control masters open): {warm.seconds * 1000:.0f} ms  ratio "
        f"{warm.seconds / noop_floor:.2f}",
        f"one pod's image changed: {f.one_change.seconds:.2f} s, {f.untouched}/{f.others} other pods untouched",
        *where(f.one_change),
    ]


@bench.command("api")
@click.option("--pods", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@click.option("--duration", type=click.IntRange(1, 60), default=5, show_default=True)
@click.option("--connections", type=click.IntRange(1, 256), default=8, show_default=True)
def api_bench(pods: int, duration: int, connections: int) -> int:
    """Requests per second and latency of GET /api/v1beta1/pods with N pods."""
    from cluster_pilot.bench.api import measure

    f = measure(pods, duration, connections)
    click.echo(f"GET /api/v1beta1/pods with {pods} pods, {connections} connections, {duration} s: "
               f"{f.requests_per_s:.1f} requests/s, median {f.median}, p99 {f.p99}, non-2xx {f.non_2xx}")
    return 0


def _cpu_millis(ctx: click.Context, param: click.Parameter, value: str) -> int:
    try:
        return cpu_millis(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


@bench.command("proxy")
@inventory_option
@click.option("--replicas", type=click.IntRange(1, 64), default=3, show_default=True,
              help="Backends of the service in (c).")
@click.option("--pod-cpu", "pod_cpu", default="200m", show_default=True, callback=_cpu_millis,
              help="CPU limit of each pod (a quantity: 250m, 0.5, 1); 0 for none.")
@click.option("--port", type=click.IntRange(1, 29999), default=18080, show_default=True,
              help="First service port; each backend's service takes 3 x --runs ports from here on, on every "
                   "minion.")
@click.option("--duration", type=click.FloatRange(0.5, 600), default=5.0, show_default=True,
              help="Seconds of each wrk run.")
@click.option("--runs", type=click.IntRange(1, 10), default=3, show_default=True, help="wrk runs per target.")
@click.option("--threads", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option("--connections", type=click.IntRange(1, 10000), default=8, show_default=True,
              help="Connections per backend of the runs under load.")
@click.option("--backend", "backends", multiple=True, type=click.Choice(["busybox", "nginx", "nginx-close"]),
              help="Backends to measure, in this order (repeatable); default: all three.")
@click.option("--lookups", type=click.IntRange(0, 100_000), default=200, show_default=True,
              help="DNS lookups of a service name timed from a pod; 0 for none.")
def proxy(inventory, replicas, pod_cpu, port, duration, runs, threads, connections, backends, lookups) -> int:
    """Requests/s and latency through a service's proxy, as ratios to the pod it proxies, per backend:
    busybox httpd (one connection per request), nginx with keep-alive, nginx with one request per connection.

    \b
    (a)  straight to one pod's published port       (a1) the same, one request at a time
    (b)  the service, that pod its only backend     (b1) the same, one request at a time
    (c)  the service with --replicas backends
    Goals: (b)/(a) and (c)/(replicas x (a)) >= 0.9; (b1)-(a1) < 1 ms of median latency. Pods are held to
    --pod-cpu so that each backend, not this machine's shared CPUs, is what runs measure; the CPU use of
    this machine is printed per run. Last, the median time a pod takes to look a service name up.
    """
    from cluster_pilot.bench.proxy import BACKENDS, ProxySettings, measure

    chosen = tuple(b for key in backends for b in BACKENDS if b.key == key) or BACKENDS
    settings = ProxySettings(replicas, pod_cpu, port, duration, runs, threads, connections, chosen, lookups)
    if connections < threads:
        raise click.BadParameter("must be at least --threads", param_hint="--connections")
    if settings.last_port > 29999:
        raise click.BadParameter(f"the service needs ports {port}..{settings.last_port}, below the dynamic range "
                                 "30000-32767", param_hint="--port")
    inventory_file, nodes = load_nodes(inventory)
    if not nodes:
        raise click.ClickException(f"no minions in {inventory_file}")
    home, _ = open_state()
    results = measure(nodes, inventory_file, home, settings, lambda message: click.echo(message, err=True))
    for line in proxy_results_report(results, settings, len(nodes)):
        click.echo(line)
    return 0


def proxy_results_report(results: ProxyResults, s: ProxySettings, minions: int) -> list[str]:
    """Every backend's lines under a heading, then the DNS figure."""
    lines: list[str] = []
    for figures in results.backends:
        lines += [f"== {figures.backend.what}", *_proxy_report(figures, s, minions)]
    return lines + ([] if results.dns is None else [_dns_line(results.dns)])


def _dns_line(d: DnsFigures) -> str:
    if not d.lookups_ms:
        return f"DNS: lookups of {d.name} from a pod on {d.node} failed: {d.error}"
    failed = f"; stopped after {len(d.lookups_ms)}: {d.error}" if d.error else ""
    return (f"DNS: {d.name} -> {d.address} from a pod on {d.node}: median {d.median_ms:.3f} ms, "
            f"p99 {d.p99_ms:.3f} ms over {len(d.lookups_ms)} lookups (getaddrinfo, search path){failed}")


def _runs_line(label: str, runs: Sequence[WrkRun]) -> str:
    from cluster_pilot.bench.proxy import best

    kept = best(runs)
    errors = sum(r.errors for r in runs)
    each = ", ".join(f"{r.requests_per_s:.0f}{'*' if r.limited else ''}" for r in runs)
    return (f"{label}: {kept.requests_per_s:.0f} req/s  median {kept.median_ms:.3f} ms  p99 {kept.p99_ms:.3f} ms"
            f"  CPU {kept.cpu_busy:.0%}  (runs req/s: {each}; errors: {errors})")


def _proxy_report(f: ProxyFigures, s: ProxySettings, minions: int) -> list[str]:
    """The lines of ``bench proxy``: where it ran, every target's runs, the goals' ratios, and notes on what
    of this machine may have bounded a figure."""
    from cluster_pilot.bench.proxy import LOAD, ONE, SPREAD, best

    a, b, c, a1, b1 = map(best, (f.direct, f.single, f.spread, f.direct_one, f.single_one))
    held = f"each held to {s.pod_cpu}m CPU" if s.pod_cpu else "no CPU limit: pods, proxies and wrk share this machine"

    def ports(numbers: Sequence[int]) -> str:
        return f"{f.address}:{','.join(map(str, numbers))}"

    lines = [
        f"minions: {minions}; pod {f.pod} on {f.node} ({f.address}); {s.replicas} replicas on "
        f"{len(f.replica_nodes)} minion(s), {held}; {f.backend.what}",
        f"wrk: {s.runs} run(s) x {s.duration:g} s per target, {s.threads} threads and {s.connections} connections "
        f"per backend under load ({s.connections * s.replicas} in (c)); kept: the best run by requests/s; "
        "each run on ports of its own",
        _runs_line(f"(a) direct to the pod ({ports(f.direct_ports[LOAD])})", f.direct),
        _runs_line(f"(b) service, 1 backend ({ports(f.via[LOAD])})", f.single),
        _runs_line(f"(c) service, {s.replicas} backends ({ports(f.via[SPREAD])})", f.spread),
        _runs_line(f"(a1) direct, one connection ({ports(f.direct_ports[ONE])})", f.direct_one),
        _runs_line(f"(b1) service, one connection ({ports(f.via[ONE])})", f.single_one),
        f"ratio (b)/(a) per backend: {b.requests_per_s / a.requests_per_s:.3f} (goal >= 0.9)",
        f"ratio (c)/({s.replicas} x (a)) per backend: {c.requests_per_s / (s.replicas * a.requests_per_s):.3f} "
        "(goal >= 0.9)",
        f"added median latency (b1)-(a1), one request at a time: {b1.median_ms - a1.median_ms:.3f} ms (goal < 1 ms)",
        f"added median latency under load (b)-(a): {b.median_ms - a.median_ms:.3f} ms "
        "(wrk's clock starts after connect: straight to a busy pod the queue is in connect())",
    ]
    return lines + _proxy_notes(f, s, (a, b, c))


def _proxy_notes(f: ProxyFigures, s: ProxySettings, loaded: Sequence[WrkRun]) -> list[str]:
    notes = []
    if not s.pod_cpu:
        notes.append(f"note: pods unlimited: the ratios compare the proxy's CPU per request with the pod's and "
                     f"wrk's on this machine's {os.cpu_count()} CPUs, not what a backend can serve")
    saturated = [label for label, r in zip(("(a)", "(b)", "(c)"), loaded) if r.cpu_busy >= 0.95]
    if s.pod_cpu and saturated:
        notes.append(f"note: this machine's CPUs were busy >= 95% in {', '.join(saturated)}: there the machine, not "
                     "the pods' CPU limit, was the bound; a lower --pod-cpu measures the proxy against its backends")
    limits = sorted({r.limited for r in (*f.direct, *f.single, *f.spread, *f.direct_one, *f.single_one)
                     if r.limited})
    if limits:
        notes.append(f"note: runs marked * came near a limit of this machine ({'; '.join(limits)}): within 10% of "
                     f"the ~{f.port_limit} local ports one destination can use (TIME_WAIT), or of the conntrack "
                     "table; their rate is bounded by that, not by the proxy: use a shorter --duration")
    return notes


@bench.command("heal")
@click.option("--minions", "minion_count", type=click.IntRange(3), default=None,
              help="Use the sandbox's first N minions [default: all of them].")
@click.option("--kills", type=click.IntRange(1, 100), default=10, show_default=True)
@click.option("--stops", type=click.IntRange(0, 10), default=3, show_default=True)
@click.option("--window", type=click.FloatRange(5, 600), default=30.0, show_default=True,
              help="Seconds each idle CPU figure is measured over.")
def heal(minion_count, kills, stops, window) -> int:
    """A real master on the sandbox: killed pod to Running (median, p95, where the time went), stopped minion to
    full count, and the master's idle CPU with --observe watch and poll, on 3 minions and on N."""
    from cluster_pilot.bench.heal import measure, medians, percentile, sub_inventory
    from cluster_pilot.sandbox import Sandbox

    inventory_file, every = load_nodes(None)
    home, _ = open_state()
    nodes = every[:minion_count] if minion_count else every
    if len(nodes) < len(every):
        inventory_file = sub_inventory(nodes, home / f"bench-heal-inventory-{len(nodes)}.json")
    load = os.getloadavg()[0]
    f = measure(nodes, inventory_file, home, Sandbox(home), kills, stops, window, say=click.echo)
    seconds = [h.seconds for h in f.heals]
    click.echo(f"heal on {f.minions} minions (load average {load:.1f} before, {os.getloadavg()[0]:.1f} after): "
               f"killed pod to Running in the API, {len(seconds)} kills: median {statistics.median(seconds):.2f} s, "
               f"p95 {percentile(seconds, 0.95):.2f} s (goal: median <= 3 s)")
    for stage, value in medians(f.heals):
        click.echo(f"    {stage:<40} {value:7.3f} s (median)")
    for what, losses in (("a minion that is no lock host", f.lost), ("the first lock host", f.lost_lock)):
        if losses:
            click.echo(f"lost {what} to full count, {len(losses)} stops: {', '.join(f'{s:.1f}' for s in losses)} s, "
                       f"median {statistics.median(losses):.1f} s (goal <= 10 s)")
    cost = {(mode, n): c for mode, n, c in f.idle}
    for n in sorted({n for _, n in cost}):
        click.echo(f"idle master on {n} minions: watch {cost[('watch', n)]:.2f} CPU s/min, poll "
                   f"{cost[('poll', n)]:.2f} CPU s/min ({f.idle_window_s:.0f} s windows)")
    for n, passes in f.resync:
        took = f"median {statistics.median(passes):.3f} s over {len(passes)}" if passes else "none in the window"
        click.echo(f"resync of {n} minions (every minion observed whole over its watch session): {took}")
    counts = sorted({n for _, n in cost})
    if len(counts) > 1:
        lo, hi = counts[0], counts[-1]
        click.echo(f"idle growth {lo} -> {hi} minions: watch x{cost[('watch', hi)] / cost[('watch', lo)]:.2f}, "
                   f"poll x{cost[('poll', hi)] / cost[('poll', lo)]:.2f} (goal: watch < x2)")
    return 0


@bench.command("chaos")
@click.option("--store", required=True, metavar="URL",
              help="postgresql://... of a database for this soak alone: its two masters share it.")
@click.option("--duration", type=click.FloatRange(10, 3600), default=120.0, show_default=True,
              help="Seconds of faults.")
@click.option("--seed", type=int, default=None, help="The RNG's seed [default: a random one, printed].")
@click.option("--port", type=click.IntRange(1, 29999), default=18090, show_default=True,
              help="The soak's service port on every minion.")
@click.option("--converge-bound", type=click.FloatRange(10, 3600), default=120.0, show_default=True,
              help="Seconds after the last fault within which everything must be at full count.")
def chaos(store, duration, seed, port, converge_bound) -> int:
    """Two masters over one PostgreSQL store on the sandbox, random faults (a minion stopped, dockerd restarted,
    the leader SIGKILLed, an SSH connection cut, a CI runner killed mid-apply) while controllers are created,
    scaled and rolled; then the faults injected, the invariants' violations (goal 0), the time to converge after
    the last fault and the share of the service's requests served. Exit 1 on a violation."""
    from cluster_pilot.bench.chaos import ChaosSettings, measure, report
    from cluster_pilot.sandbox import Sandbox

    inventory_file, nodes = load_nodes(None)
    home, _ = open_state()
    settings = ChaosSettings(duration=duration, seed=seed, port=port, converge_bound=converge_bound)
    f = measure(nodes, inventory_file, home, Sandbox(home), store, settings, say=lambda t: click.echo(t, err=True))
    for line in report(f):
        click.echo(line)
    return 1 if f.violations else 0
