"""``cluster-pilot bench proxy``: what a service's HAProxy costs, against the pod it proxies, measured in one run.

Deployed through the real pipeline (``converge``): a ReplicationController of busybox ``httpd`` replicas
serving a small static file (the pod's hostname), and a Service targeting them. ``wrk`` on this machine
measures requests/s and latency (median, p99):

- (a) straight to one pod's published host port on its minion;
- (b) through the service port on that same minion while the service has that one pod as its only backend;
- (c) through the service port on that minion with all ``--replicas`` backends.

(a) and (b) are run alternately so that drift of a shared machine hits both alike. Goals (issue 7):
(b)/(a) >= 0.9 in requests/s per backend, and (b)-(a) < 1 ms of median latency. Every run's figures are
printed; the run kept per target is the one with the most requests/s (noise on a shared host only slows).

Fresh ports per run: busybox ``httpd`` answers ``Connection: close``, so every request is a new TCP
connection, and wrk, closing first, leaves it in TIME_WAIT on this machine for 60 s. Connections to one
address:port can then use only so many local ports (about half the ephemeral range: ~14,000 with Linux's
defaults); past that a client waits for TIME_WAIT to expire and a run measures that wait (~230 req/s), not
the proxy. So the pod runs one ``httpd`` per run on container ports 80, 81, ... (each published on its own
host port) and the service has one port per run and target (``--port``, ``--port`` + 1, ...): every run
has a destination of its own. Before a run the bench also waits (at most 70 s) until TIME_WAIT towards its
destination is low, and a run that came close to the limit anyway is marked in the output.

Tails: busybox ``httpd`` listens with a backlog of 9, so at 32 connections its accept queue overflows and
dropped SYNs are retried after 1 s, on the direct path (by wrk's kernel) and behind the proxy (by the
minion's): a p99 near 1 s is the backend's, not the proxy's; the medians and rates are what to compare.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import click

from cluster_pilot.cli.options import inventory_option, load_nodes, open_state
from cluster_pilot.model import (REPLICATION_CONTROLLER, Container, Meta, Node, PodSpec, PodTemplate, Port,
                                 ReplicationController, Service, ServicePort)
from cluster_pilot.observe import ObservedPod, observe
from cluster_pilot.pipeline import Options, Outcome, converge, services_wanted

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
    port_limited: bool = False  # TIME_WAIT towards the destination neared the local port limit


def _serve(ports: int) -> tuple[str, ...]:
    extra = "".join(f"httpd -p {BASE_PORT + i} -h /www && " for i in range(1, ports))
    return ("sh", "-c", f"mkdir -p /www && hostname > /www/index.html && {extra}exec httpd -f -p {BASE_PORT} -h /www")


def _workload(replicas: int, ports: int) -> ReplicationController:
    spec = PodSpec((Container("web", "busybox", _serve(ports),
                              ports=tuple(Port(BASE_PORT + i, name=f"http-{i}") for i in range(ports))),))
    return ReplicationController(Meta(BENCH, LABELS), replicas, LABELS, PodTemplate(labels=LABELS, spec=spec))


def _service(port: int, runs: int) -> Service:
    """Ports ``port`` .. ``port + 2 runs - 1``: run i of (b) uses port + i, run i of (c) port + runs + i."""
    ports = tuple(ServicePort(port + j, BASE_PORT + j % runs) for j in range(2 * runs))
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


def _wait_ports(address: str, port: int, limit: int, timeout: float = 70.0) -> None:
    deadline = time.monotonic() + timeout
    while _time_wait(address, port) > limit // 10 and time.monotonic() < deadline:
        time.sleep(1)  # TIME_WAIT lasts 60 s: wait for the older connections of an earlier run to expire


def _wrk(wrk: str, address: str, port: int, duration: float, threads: int, connections: int, limit: int) -> WrkRun:
    _wait_ports(address, port, limit)
    url = f"http://{address}:{port}/"
    cmd = [wrk, "--latency", "-t", str(threads), "-c", str(connections), "-d", f"{duration:g}s",
           "--timeout", "5s", url]
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=duration + 60)
    if proc.returncode != 0:
        raise click.ClickException(f"wrk {url} exited {proc.returncode}: {proc.stderr.strip()[:400]}")
    run = parse_wrk(proc.stdout)
    if _time_wait(address, port) >= 0.9 * limit:
        run = WrkRun(run.requests_per_s, run.median_ms, run.p99_ms, run.requests, run.errors, port_limited=True)
    return run


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


def _best(runs: Sequence[WrkRun]) -> WrkRun:
    return max(runs, key=lambda r: r.requests_per_s)


def _line(label: str, runs: Sequence[WrkRun]) -> str:
    best = _best(runs)
    errors = sum(r.errors for r in runs)
    each = ", ".join(f"{r.requests_per_s:.0f}{'*' if r.port_limited else ''}" for r in runs)
    return (f"{label}: {best.requests_per_s:.0f} req/s  median {best.median_ms:.3f} ms  p99 {best.p99_ms:.3f} ms"
            f"  (runs req/s: {each}; errors: {errors})")


@click.command("proxy")
@inventory_option
@click.option("--replicas", type=click.IntRange(1, 64), default=3, show_default=True,
              help="Backends of the service in (c).")
@click.option("--port", type=click.IntRange(1, 29999), default=18080, show_default=True,
              help="First service port; the service takes 2 x --runs ports from here, on every minion.")
@click.option("--duration", type=click.FloatRange(0.5, 600), default=5.0, show_default=True,
              help="Seconds of each wrk run.")
@click.option("--runs", type=click.IntRange(1, 10), default=3, show_default=True, help="wrk runs per target.")
@click.option("--threads", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option("--connections", type=click.IntRange(1, 10000), default=32, show_default=True)
def proxy(inventory, replicas, port, duration, runs, threads, connections) -> int:
    """Requests/s and latency through a service's proxy, as ratios to the pod it proxies."""
    from cluster_pilot.cli.apply import recorded_services

    if connections < threads:
        raise click.BadParameter("must be at least --threads", param_hint="--connections")
    if port + 2 * runs - 1 > 29999:
        raise click.BadParameter(f"the service needs ports {port}..{port + 2 * runs - 1}, below the dynamic "
                                 "range 30000-32767", param_hint="--port")
    inventory_file, nodes = load_nodes(inventory)
    if not nodes:
        raise click.ClickException(f"no minions in {inventory_file}")
    home, store = open_state()
    wrk = _wrk_binary()
    recorded = [s for s in recorded_services(store) if s.meta.name != BENCH]
    _ports_free(range(port, port + 2 * runs), nodes, home, recorded)
    service = _service(port, runs)
    with_bench = services_wanted([service], recorded)
    addresses = {n.name: n.address for n in nodes}
    limit = _port_limit()

    def measure(address: str, target: int) -> WrkRun:
        return _wrk(wrk, address, target, duration, threads, connections, limit)

    try:
        # one replica: the service's only backend is the pod measured directly
        _check(converge([_workload(1, runs), service], nodes, inventory_file, home, Options(), services=with_bench),
               "deploying 1 replica and the service")
        pods = _bench_pods(nodes, home)
        if len(pods) != 1:
            raise click.ClickException(f"expected 1 running bench pod, found {len(pods)}")
        pod = pods[0]
        published = {p.container_port: p.host_port for p in pod.ports}
        direct_ports = [published.get(BASE_PORT + i) for i in range(runs)]
        if None in direct_ports:
            raise click.ClickException(f"pod {pod.name} does not publish all of its ports: {pod.ports}")
        address = addresses[pod.node]
        for i in range(runs):
            _wait_serving(address, direct_ports[i], 1, f"pod {pod.name}")
            _wait_serving(address, port + i, 1, "the service")
        direct, single = [], []
        for i in range(runs):  # alternate, so that drift hits both alike
            direct.append(measure(address, direct_ports[i]))
            single.append(measure(address, port + i))

        # all replicas: the same pod stays, the others join the service
        _check(converge([_workload(replicas, runs), service], nodes, inventory_file, home, Options(),
                        services=with_bench), f"scaling to {replicas} replicas")
        pods = _bench_pods(nodes, home)
        if len(pods) != replicas or pod.name not in {p.name for p in pods}:
            raise click.ClickException(f"expected {replicas} running bench pods including {pod.name}, "
                                       f"found {[p.name for p in pods]}")
        for i in range(runs):
            _wait_serving(address, port + runs + i, replicas, f"the service with {replicas} backends")
        spread = [measure(address, port + runs + i) for i in range(runs)]
    finally:
        _clean_up(nodes, inventory_file, home, recorded)

    a, b, c = _best(direct), _best(single), _best(spread)
    on = sorted({p.node for p in pods})
    click.echo(f"minions: {len(nodes)}; pod {pod.name} on {pod.node} ({address}); {replicas} replicas on "
               f"{len(on)} minion(s); busybox httpd, one connection per request (Connection: close)")
    click.echo(f"wrk: {runs} run(s) x {duration:g} s per target, {threads} threads, {connections} connections; "
               "kept: the best run by requests/s; each run on ports of its own")
    click.echo(_line(f"(a) direct to the pod ({address}:{','.join(map(str, direct_ports))})", direct))
    click.echo(_line(f"(b) service, 1 backend ({address}:{','.join(str(port + i) for i in range(runs))})", single))
    click.echo(_line(f"(c) service, {replicas} backends "
                     f"({address}:{','.join(str(port + runs + i) for i in range(runs))})", spread))
    click.echo(f"ratio (b)/(a) per backend: {b.requests_per_s / a.requests_per_s:.3f} (goal >= 0.9)")
    click.echo(f"added median latency (b)-(a): {b.median_ms - a.median_ms:.3f} ms (goal < 1 ms)")
    click.echo(f"added p99 latency (b)-(a): {b.p99_ms - a.p99_ms:.3f} ms")
    click.echo(f"ratio (c)/(a): {c.requests_per_s / a.requests_per_s:.3f} "
               f"(the backends share this machine's {os.cpu_count()} CPUs with wrk and the proxies)")
    if any(r.port_limited for r in (*direct, *single, *spread)):
        click.echo(f"note: runs marked * came within 10% of the ~{limit} local ports one destination can use "
                   "(TIME_WAIT); their rate is limited by that, not by the proxy: use a shorter --duration")
    return 0
