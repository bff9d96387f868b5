"""``cluster-pilot bench proxy``: what a service's HAProxy costs, against the pod it proxies, measured in one run.

Deployed through the real pipeline (``converge``): a ReplicationController of busybox ``httpd`` replicas
serving a small static file (the pod's hostname), and a Service targeting them. ``wrk`` on this machine
measures requests/s and latency (median, p99):

- (a) straight to one pod's published host port on its minion;
- (b) through the service port on that same minion while the service has that one pod as its only backend;
- (c) through the service port on that minion with all ``--replicas`` backends, and ``--connections`` per
  backend, so that each backend sees the load the pod sees in (a);
- (a1) and (b1): (a) and (b) with one connection, one request at a time.

Goals (issue 7): requests/s through the proxy per backend >= 0.9 x straight to the pod, that is (b)/(a) and
(c)/(replicas x (a)); and an added median latency, (b1)-(a1), under 1 ms. (a) and (b) alternate, so that
drift of a shared machine hits both alike; every run's figures are printed and the run kept per target is the
one with the most requests/s (noise on a shared host only slows).

Each pod is held to ``--pod-cpu`` (a CPU limit in its manifest, 200m by default): in a fleet the client, the
proxy and the backend do not share two CPUs, and the question is whether the proxy lets each backend serve
all it can. The default leaves this machine room for wrk and the proxies even in (c); every run prints how
busy this machine's CPUs were, and a note says when they, not the pods' limit, were the bound. With
``--pod-cpu 0`` the pods are unlimited and wrk, the proxies and every pod share this machine's CPUs: the
ratios then compare the proxy's CPU per request with the pod's and the client's, not the throughput a backend
gets (on 2 cores, with busybox ``httpd`` forking per connection, the hop costs about 20%); at those rates
``--duration 2`` keeps runs clear of the local port limit below.

Load is 8 connections per backend by default: busybox ``httpd`` listens with a backlog of 9, and past it SYNs
are dropped and retried after 1 s, which measures the kernel's retry timer on both paths rather than the
proxy. Latency under load is printed too but is not the goal's figure: wrk starts a request's clock once its
connection is up, so straight to a busy pod the wait for accept() is unmeasured, while behind the proxy, which
accepts at once, the same wait is inside the request. One request at a time has no queue: (b1)-(a1) is what
the hop adds.

Fresh ports per run: busybox ``httpd`` answers ``Connection: close``, so every request is a new TCP
connection, and wrk, closing first, leaves it in TIME_WAIT on this machine for 60 s. Connections to one
address:port can then use only so many local ports (about half the ephemeral range: ~14,000 with Linux's
defaults); past that a client waits for TIME_WAIT to expire and a run measures that wait (~230 req/s), not the
proxy. The proxy, a client of the pods, has the same limit towards each pod port. So the pod runs one
``httpd`` per run and kind of run on container ports 80, 81, ... (each published on its own host port) and the
service has one port per run, each targeting a pod port of its own: every run has destinations of its own, on
both legs. The connections also fill this machine's conntrack table (bridged traffic to the minions is
tracked, and a closed connection stays 120 s; full, it drops SYNs). Before a run the bench waits (at most
130 s) until TIME_WAIT towards its destination is low and the table is at most half full, and a run that came near
either limit anyway (by TIME_WAIT or its number of requests; by the table's entries at its end) is marked in
the output.

Traffic goes only to the inventory's minions. The controller and the service are removed at the end, even
when a step fails; services recorded by ``apply`` stay on the proxies throughout.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import socket
import struct
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import click

from cluster_pilot.cli.options import inventory_option, load_nodes, open_state
from cluster_pilot.model import (REPLICATION_CONTROLLER, Container, Meta, Node, PodSpec, PodTemplate, Port,
                                 ReplicationController, Service, ServicePort)
from cluster_pilot.host.observe import ObservedPod, observe
from cluster_pilot.apply.pipeline import Options, Outcome, converge, services_wanted
from cluster_pilot.quantity import cpu_millis

BENCH = "cp-bench-proxy"
LABELS = {"bench": BENCH}
BASE_PORT = 80  # the pod's container ports: 80, 81, ... one httpd each


@dataclass(frozen=True)
class WrkRun:
    requests_per_s: float
    median_ms: float
    p99_ms: float
    requests: int
    errors: int  # socket errors of any kind plus non-2xx/3xx answers
    limited: str = ""  # what of this machine, not the proxy, may have bounded the run: local ports, conntrack
    cpu_busy: float = 0.0  # this machine's CPUs busy during the run, 0..1


# Kinds of run: each has its own pod ports (one httpd each) and service ports, ``runs`` of each, so that no
# run meets the TIME_WAIT of another, neither from wrk to its target nor from a proxy to a pod.
LOAD, ONE, SPREAD = KINDS = (0, 1, 2)  # (a)/(b) under load; (a1)/(b1) one connection; (c) all replicas


def pod_port(kind: int, runs: int, i: int) -> int:
    return BASE_PORT + kind * runs + i


def service_port(port: int, kind: int, runs: int, i: int) -> int:
    return port + kind * runs + i


def _serve(ports: int) -> tuple[str, ...]:
    extra = "".join(f"httpd -p {BASE_PORT + i} -h /www && " for i in range(1, ports))
    return ("sh", "-c", f"mkdir -p /www && hostname > /www/index.html && {extra}exec httpd -f -p {BASE_PORT} -h /www")


def _workload(replicas: int, runs: int, cpu_millis: int) -> ReplicationController:
    ports = len(KINDS) * runs
    spec = PodSpec((Container("web", "busybox", _serve(ports), cpu_limit_millis=cpu_millis,
                              ports=tuple(Port(BASE_PORT + i, name=f"http-{i}") for i in range(ports))),))
    return ReplicationController(Meta(BENCH, LABELS), replicas, LABELS, PodTemplate(labels=LABELS, spec=spec))


def _service(port: int, runs: int) -> Service:
    ports = tuple(ServicePort(service_port(port, kind, runs, i), pod_port(kind, runs, i))
                  for kind in KINDS for i in range(runs))
    return Service(Meta(BENCH, LABELS), ports, LABELS)


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}


def _duration_ms(text: str) -> float:
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text.strip())
    if not m:
        raise click.ClickException(f"unreadable wrk duration {text!r}")
    return float(m.group(1)) * _UNITS_MS[m.group(2)]


def parse_wrk(output: str) -> WrkRun:
    """The figures of ``wrk --latency`` output: requests/s, 50% and 99% latency, requests, errors."""
    rps = re.search(r"^Requests/sec:\s*([0-9.]+)", output, re.M)
    p50 = re.search(r"^\s*50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s*99%\s+(\S+)", output, re.M)
    total = re.search(r"^\s*(\d+) requests in", output, re.M)
    if not (rps and p50 and p99 and total):
        raise click.ClickException(f"unreadable wrk output:\n{output.strip()[:800]}")
    errors = 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if sock:
        errors += sum(int(g) for g in sock.groups())
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if bad:
        errors += int(bad.group(1))
    return WrkRun(float(rps.group(1)), _duration_ms(p50.group(1)), _duration_ms(p99.group(1)),
                  int(total.group(1)), errors)


def _wrk_binary() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise click.ClickException("wrk is not installed: run 'apt-get install wrk' as root (scripts/setup does)")
    click.echo("wrk is not installed: installing the Debian package", err=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "wrk"]):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=600)
        if proc.returncode != 0:
            raise click.ClickException(f"{' '.join(cmd)} failed: {proc.stderr.strip()[-400:]}")
    found = shutil.which("wrk")
    if not found:
        raise click.ClickException("wrk is still not on PATH after apt-get install wrk")
    return found


def _port_limit() -> int:
    """Local ports connect() finds for one destination before it has to wait: half the ephemeral range."""
    try:
        lo, hi = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        lo, hi = 32768, 60999
    return max(1, (hi - lo + 1) // 2)


def _time_wait(address: str, port: int) -> int:
    """This machine's connections to address:port in TIME_WAIT (IPv4, read from /proc/net/tcp)."""
    want = f"{struct.unpack('<I', socket.inet_aton(address))[0]:08X}:{port:04X}"
    try:
        with open("/proc/net/tcp") as f:
            next(f, None)
            return sum(1 for line in f if (cols := line.split()) and cols[2] == want and cols[3] == "06")
    except OSError:
        return 0


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs of this machine, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return 0, 0
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def _conntrack() -> tuple[int, int]:
    """(entries, maximum) of this machine's connection tracking table, (0, 0) without one. Bridged traffic to
    the sandbox's minions is tracked here, and a closed connection stays 120 s: full, the table drops SYNs."""
    try:
        return (int(Path("/proc/sys/net/netfilter/nf_conntrack_count").read_text()),
                int(Path("/proc/sys/net/netfilter/nf_conntrack_max").read_text()))
    except (OSError, ValueError):
        return 0, 0


def _wait_quiet(address: str, port: int, limit: int, timeout: float = 130.0) -> None:
    """Until an earlier run's leftovers cannot bound this one: TIME_WAIT towards the destination is low and
    the conntrack table at most half full."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entries, most = _conntrack()
        if _time_wait(address, port) <= limit // 10 and entries <= most // 2:
            return
        time.sleep(1)  # both expire with time only (60 s and 120 s): poll step of a deadline wait


def _limits(address: str, port: int, limit: int, requests: int) -> str:
    entries, most = _conntrack()
    found = ["local ports"] if max(_time_wait(address, port), requests) >= 0.9 * limit else []
    return ", ".join(found + (["conntrack"] if most and entries >= 0.9 * most else []))


def _wrk(wrk: str, address: str, port: int, duration: float, threads: int, connections: int, limit: int) -> WrkRun:
    _wait_quiet(address, port, limit)
    url = f"http://{address}:{port}/"
    cmd = [wrk, "--latency", "-t", str(threads), "-c", str(connections), "-d", f"{duration:g}s",
           "--timeout", "5s", url]
    busy0, total0 = _cpu_times()
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=duration + 60)
    busy1, total1 = _cpu_times()
    if proc.returncode != 0:
        raise click.ClickException(f"wrk {url} exited {proc.returncode}: {proc.stderr.strip()[:400]}")
    run = parse_wrk(proc.stdout)
    return replace(run, limited=_limits(address, port, limit, run.requests), cpu_busy=(busy1 - busy0) / max(1, total1 - total0))


def _get(address: str, port: int) -> str | None:
    """One fresh connection, one GET: the body on 200, else None."""
    conn = http.client.HTTPConnection(address, port, timeout=2)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        body = resp.read().decode("utf-8", "replace").strip()
        return body if resp.status == 200 else None
    except OSError:
        return None
    finally:
        conn.close()


def _wait_serving(address: str, port: int, distinct: int, what: str, timeout: float = 60.0) -> None:
    """Until ``distinct`` different pods (by hostname) answer on address:port, every answer a 200."""
    deadline = time.monotonic() + timeout
    while True:
        bodies = [_get(address, port) for _ in range(4 * distinct)]
        if None not in bodies and len(set(bodies)) >= distinct:
            return
        if time.monotonic() > deadline:
            raise click.ClickException(f"{what} ({address}:{port}) did not serve {distinct} pod(s) within "
                                       f"{timeout:.0f} s; last answers: {sorted(set(map(str, bodies)))}")
        time.sleep(0.5)  # poll step of a deadline wait


def _check(outcome: Outcome, what: str) -> None:
    if outcome.ok:
        return
    why = []
    if outcome.blocked:
        why.append("unschedulable: " + "; ".join(str(u) for u in outcome.plan.unschedulable))
    why += [f"{h} unreachable: {e}" for h, e in outcome.unreachable.items()]
    if outcome.run is not None:
        why += [f"{h}: {m}" for h, r in outcome.run.hosts.items() for m in r.messages]
    if outcome.remaining is not None and not outcome.remaining.empty:
        why.append("the fleet still differs from the plan after the run")
    raise click.ClickException(f"{what} failed: " + ("; ".join(why) or "unknown reason"))


def _bench_pods(nodes: Sequence[Node], home: Path) -> list[ObservedPod]:
    return sorted((p for p in observe(nodes, home).pods if p.controller == BENCH and p.complete),
                  key=lambda p: p.name)


def _ports_free(ports: Sequence[int], nodes: Sequence[Node], home: Path, recorded: Sequence[Service]) -> None:
    wanted = set(ports)
    for svc in recorded:
        clash = wanted & {sp.port for sp in svc.ports}
        if clash:
            raise click.ClickException(f"port {min(clash)} is service {svc.meta.name}'s: pick another --port")
    for p in observe(nodes, home).pods:
        clash = wanted & {hp for hp, _ in p.host_ports}
        if p.controller != BENCH and clash:
            raise click.ClickException(f"port {min(clash)} is bound by pod {p.name} on {p.node}: "
                                       "pick another --port")


def _clean_up(nodes: Sequence[Node], inventory_file: Path, home: Path, recorded: Sequence[Service]) -> None:
    """Remove the controller's pods and the bench service from every proxy; warn, never mask a failure."""
    try:
        outcome = converge([], nodes, inventory_file, home, Options(), deleting=[(REPLICATION_CONTROLLER, BENCH)],
                           services=services_wanted([], recorded))
        _check(outcome, "clean-up")
    except Exception as e:  # noqa: BLE001 - the bench's own failure, if any, is the one to raise
        click.echo(f"warning: {e}; the pods of {BENCH} may remain: a later run of this bench removes them",
                   err=True)


def _cpu_millis(ctx: click.Context, param: click.Parameter, value: str) -> int:
    try:
        return cpu_millis(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def _best(runs: Sequence[WrkRun]) -> WrkRun:
    return max(runs, key=lambda r: r.requests_per_s)


def _line(label: str, runs: Sequence[WrkRun]) -> str:
    best = _best(runs)
    errors = sum(r.errors for r in runs)
    each = ", ".join(f"{r.requests_per_s:.0f}{'*' if r.limited else ''}" for r in runs)
    return (f"{label}: {best.requests_per_s:.0f} req/s  median {best.median_ms:.3f} ms  p99 {best.p99_ms:.3f} ms"
            f"  CPU {best.cpu_busy:.0%}  (runs req/s: {each}; errors: {errors})")


@click.command("proxy")
@inventory_option
@click.option("--replicas", type=click.IntRange(1, 64), default=3, show_default=True,
              help="Backends of the service in (c).")
@click.option("--pod-cpu", "pod_cpu", default="200m", show_default=True, callback=_cpu_millis,
              help="CPU limit of each pod (a quantity: 250m, 0.5, 1); 0 for none.")
@click.option("--port", type=click.IntRange(1, 29999), default=18080, show_default=True,
              help="First service port; the service takes 3 x --runs ports from here, on every minion.")
@click.option("--duration", type=click.FloatRange(0.5, 600), default=5.0, show_default=True,
              help="Seconds of each wrk run.")
@click.option("--runs", type=click.IntRange(1, 10), default=3, show_default=True, help="wrk runs per target.")
@click.option("--threads", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option("--connections", type=click.IntRange(1, 10000), default=8, show_default=True,
              help="Connections per backend of the runs under load.")
def proxy(inventory, replicas, pod_cpu, port, duration, runs, threads, connections) -> int:
    """Requests/s and latency through a service's proxy, as ratios to the pod it proxies.

    \b
    (a)  straight to one pod's published port       (a1) the same, one request at a time
    (b)  the service, that pod its only backend     (b1) the same, one request at a time
    (c)  the service with --replicas backends
    Goals: (b)/(a) and (c)/(replicas x (a)) >= 0.9; (b1)-(a1) < 1 ms of median latency. Pods are held to
    --pod-cpu so that each backend, not this machine's shared CPUs, is what runs measure; the CPU use of
    this machine is printed per run.
    """
    from cluster_pilot.cli.apply import recorded_services

    if connections < threads:
        raise click.BadParameter("must be at least --threads", param_hint="--connections")
    last = service_port(port, SPREAD, runs, runs - 1)
    if last > 29999:
        raise click.BadParameter(f"the service needs ports {port}..{last}, below the dynamic range 30000-32767",
                                 param_hint="--port")
    inventory_file, nodes = load_nodes(inventory)
    if not nodes:
        raise click.ClickException(f"no minions in {inventory_file}")
    home, store = open_state()
    wrk = _wrk_binary()
    recorded = [s for s in recorded_services(store) if s.meta.name != BENCH]
    _ports_free(range(port, last + 1), nodes, home, recorded)
    service = _service(port, runs)
    with_bench = services_wanted([service], recorded)
    addresses = {n.name: n.address for n in nodes}
    limit = _port_limit()

    def measure(address: str, target: int, backends: int = 1, one: bool = False) -> WrkRun:
        """Under load, ``connections`` per backend: each backend sees the load the pod sees in (a)."""
        return _wrk(wrk, address, target, duration, 1 if one else threads, 1 if one else connections * backends,
                    limit)

    try:
        # one replica: the service's only backend is the pod measured directly
        _check(converge([_workload(1, runs, pod_cpu), service], nodes, inventory_file, home, Options(),
                        services=with_bench), "deploying 1 replica and the service")
        pods = _bench_pods(nodes, home)
        if len(pods) != 1:
            raise click.ClickException(f"expected 1 running bench pod, found {len(pods)}")
        pod = pods[0]
        address = addresses[pod.node]
        published = {p.container_port: p.host_port for p in pod.ports}
        direct_ports = {kind: [published.get(pod_port(kind, runs, i)) for i in range(runs)] for kind in (LOAD, ONE)}
        if None in direct_ports[LOAD] + direct_ports[ONE]:
            raise click.ClickException(f"pod {pod.name} does not publish all of its ports: {pod.ports}")
        via = {kind: [service_port(port, kind, runs, i) for i in range(runs)] for kind in KINDS}
        for kind in (LOAD, ONE):
            for i in range(runs):
                _wait_serving(address, direct_ports[kind][i], 1, f"pod {pod.name}")
                _wait_serving(address, via[kind][i], 1, "the service")
        direct, single, direct_one, single_one = [], [], [], []
        for i in range(runs):  # alternate, so that drift hits both alike
            direct.append(measure(address, direct_ports[LOAD][i]))
            single.append(measure(address, via[LOAD][i]))
            direct_one.append(measure(address, direct_ports[ONE][i], one=True))
            single_one.append(measure(address, via[ONE][i], one=True))

        # all replicas: the same pod stays, the others join the service
        _check(converge([_workload(replicas, runs, pod_cpu), service], nodes, inventory_file, home, Options(),
                        services=with_bench), f"scaling to {replicas} replicas")
        pods = _bench_pods(nodes, home)
        if len(pods) != replicas or pod.name not in {p.name for p in pods}:
            raise click.ClickException(f"expected {replicas} running bench pods including {pod.name}, "
                                       f"found {[p.name for p in pods]}")
        for i in range(runs):
            _wait_serving(address, via[SPREAD][i], replicas, f"the service with {replicas} backends")
        spread = [measure(address, via[SPREAD][i], backends=replicas) for i in range(runs)]
    finally:
        _clean_up(nodes, inventory_file, home, recorded)

    a, b, c, a1, b1 = map(_best, (direct, single, spread, direct_one, single_one))
    on = sorted({p.node for p in pods})
    held = f"each held to {pod_cpu}m CPU" if pod_cpu else "no CPU limit: pods, proxies and wrk share this machine"
    click.echo(f"minions: {len(nodes)}; pod {pod.name} on {pod.node} ({address}); {replicas} replicas on "
               f"{len(on)} minion(s), {held}; busybox httpd, one connection per request (Connection: close)")
    click.echo(f"wrk: {runs} run(s) x {duration:g} s per target, {threads} threads and {connections} connections "
               f"per backend under load ({connections * replicas} in (c)); kept: the best run by requests/s; "
               "each run on ports of its own")

    def ports(numbers: Sequence[int]) -> str:
        return f"{address}:{','.join(map(str, numbers))}"

    click.echo(_line(f"(a) direct to the pod ({ports(direct_ports[LOAD])})", direct))
    click.echo(_line(f"(b) service, 1 backend ({ports(via[LOAD])})", single))
    click.echo(_line(f"(c) service, {replicas} backends ({ports(via[SPREAD])})", spread))
    click.echo(_line(f"(a1) direct, one connection ({ports(direct_ports[ONE])})", direct_one))
    click.echo(_line(f"(b1) service, one connection ({ports(via[ONE])})", single_one))
    click.echo(f"ratio (b)/(a) per backend: {b.requests_per_s / a.requests_per_s:.3f} (goal >= 0.9)")
    click.echo(f"ratio (c)/({replicas} x (a)) per backend: {c.requests_per_s / (replicas * a.requests_per_s):.3f} "
               "(goal >= 0.9)")
    click.echo(f"added median latency (b1)-(a1), one request at a time: {b1.median_ms - a1.median_ms:.3f} ms "
               "(goal < 1 ms)")
    click.echo(f"added median latency under load (b)-(a): {b.median_ms - a.median_ms:.3f} ms "
               "(wrk's clock starts after connect: straight to a busy pod the queue is in connect())")
    if not pod_cpu:
        click.echo(f"note: pods unlimited: the ratios compare the proxy's CPU per request with the pod's and "
                   f"wrk's on this machine's {os.cpu_count()} CPUs, not what a backend can serve")
    saturated = [label for label, r in (("(a)", a), ("(b)", b), ("(c)", c)) if r.cpu_busy >= 0.95]
    if pod_cpu and saturated:
        click.echo(f"note: this machine's CPUs were busy >= 95% in {', '.join(saturated)}: there the machine, not "
                   "the pods' CPU limit, was the bound; a lower --pod-cpu measures the proxy against its backends")
    limits = sorted({r.limited for r in (*direct, *single, *spread, *direct_one, *single_one) if r.limited})
    if limits:
        click.echo(f"note: runs marked * came near a limit of this machine ({'; '.join(limits)}): within 10% of "
                   f"the ~{limit} local ports one destination can use (TIME_WAIT), or of the conntrack table; "
                   "their rate is bounded by that, not by the proxy: use a shorter --duration")
    return 0
