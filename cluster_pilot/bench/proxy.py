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
from typing import Callable, Sequence

from cluster_pilot.apply.pipeline import Options, Outcome, converge, services_wanted
from cluster_pilot.bench import BenchFailed
from cluster_pilot.host.observe import ObservedPod, observe
from cluster_pilot.model import (REPLICATION_CONTROLLER, Container, Meta, Node, PodSpec, PodTemplate, Port,
                                 ReplicationController, Service, ServicePort)

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


@dataclass(frozen=True)
class ProxySettings:
    replicas: int  # backends of the service in (c)
    pod_cpu: int  # CPU limit of each pod in millicores; 0 for none
    port: int  # the first service port
    duration: float  # seconds of each wrk run
    runs: int  # wrk runs per target
    threads: int
    connections: int  # per backend, in the runs under load

    @property
    def last_port(self) -> int:
        """The service's last port: it takes 3 x runs ports from ``port`` on, on every minion."""
        return service_port(self.port, SPREAD, self.runs, self.runs - 1)


@dataclass(frozen=True)
class ProxyFigures:
    pod: str  # the pod of (a) and (b)
    node: str  # its minion
    address: str  # the minion's, where every run is sent
    replica_nodes: tuple[str, ...]  # the minions of the --replicas pods in (c)
    direct_ports: dict[int, list[int]]  # LOAD and ONE -> the pod's published host port per run
    via: dict[int, list[int]]  # every kind -> the service port per run
    direct: tuple[WrkRun, ...]  # (a)
    single: tuple[WrkRun, ...]  # (b)
    spread: tuple[WrkRun, ...]  # (c)
    direct_one: tuple[WrkRun, ...]  # (a1)
    single_one: tuple[WrkRun, ...]  # (b1)
    port_limit: int  # local ports one destination can use before TIME_WAIT bounds a run


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
        raise BenchFailed(f"unreadable wrk duration {text!r}")
    return float(m.group(1)) * _UNITS_MS[m.group(2)]


def parse_wrk(output: str) -> WrkRun:
    """The figures of ``wrk --latency`` output: requests/s, 50% and 99% latency, requests, errors."""
    rps = re.search(r"^Requests/sec:\s*([0-9.]+)", output, re.M)
    p50 = re.search(r"^\s*50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s*99%\s+(\S+)", output, re.M)
    total = re.search(r"^\s*(\d+) requests in", output, re.M)
    if not (rps and p50 and p99 and total):
        raise BenchFailed(f"unreadable wrk output:\n{output.strip()[:800]}")
    errors = 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if sock:
        errors += sum(int(g) for g in sock.groups())
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if bad:
        errors += int(bad.group(1))
    return WrkRun(float(rps.group(1)), _duration_ms(p50.group(1)), _duration_ms(p99.group(1)),
                  int(total.group(1)), errors)


def _wrk_binary(say: Callable[[str], None]) -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise BenchFailed("wrk is not installed: run 'apt-get install wrk' as root (scripts/setup does)")
    say("wrk is not installed: installing the Debian package")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "wrk"]):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=600)
        if proc.returncode != 0:
            raise BenchFailed(f"{' '.join(cmd)} failed: {proc.stderr.strip()[-400:]}")
    found = shutil.which("wrk")
    if not found:
        raise BenchFailed("wrk is still not on PATH after apt-get install wrk")
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
        raise BenchFailed(f"wrk {url} exited {proc.returncode}: {proc.stderr.strip()[:400]}")
    run = parse_wrk(proc.stdout)
    return replace(run, limited=_limits(address, port, limit, run.requests),
                   cpu_busy=(busy1 - busy0) / max(1, total1 - total0))


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
            raise BenchFailed(f"{what} ({address}:{port}) did not serve {distinct} pod(s) within "
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
    raise BenchFailed(f"{what} failed: " + ("; ".join(why) or "unknown reason"))


def _bench_pods(nodes: Sequence[Node], home: Path) -> list[ObservedPod]:
    return sorted((p for p in observe(nodes, home).pods if p.controller == BENCH and p.complete),
                  key=lambda p: p.name)


def _ports_free(ports: Sequence[int], nodes: Sequence[Node], home: Path, recorded: Sequence[Service]) -> None:
    wanted = set(ports)
    for svc in recorded:
        clash = wanted & {sp.port for sp in svc.ports}
        if clash:
            raise BenchFailed(f"port {min(clash)} is service {svc.meta.name}'s: pick another --port")
    for p in observe(nodes, home).pods:
        clash = wanted & {hp for hp, _ in p.host_ports}
        if p.controller != BENCH and clash:
            raise BenchFailed(f"port {min(clash)} is bound by pod {p.name} on {p.node}: "
                                       "pick another --port")


def _clean_up(nodes: Sequence[Node], inventory_file: Path, home: Path, recorded: Sequence[Service],
              say: Callable[[str], None]) -> None:
    """Remove the controller's pods and the bench service from every proxy; warn, never mask a failure."""
    try:
        outcome = converge([], nodes, inventory_file, home, Options(), deleting=[(REPLICATION_CONTROLLER, BENCH)],
                           services=services_wanted([], recorded))
        _check(outcome, "clean-up")
    except Exception as e:  # noqa: BLE001 - the bench's own failure, if any, is the one to raise
        say(f"warning: {e}; the pods of {BENCH} may remain: a later run of this bench removes them")


def best(runs: Sequence[WrkRun]) -> WrkRun:
    """The run kept per target: noise on a shared host only slows, so the fastest is the least disturbed."""
    return max(runs, key=lambda r: r.requests_per_s)


@dataclass(frozen=True)
class _Bench:
    """One run of the bench: where it deploys, what it asks for, and how it calls wrk."""
    nodes: Sequence[Node]
    inventory_file: Path
    home: Path
    settings: ProxySettings
    service: Service
    services: Sequence[Service]  # every recorded service and the bench's own: what the proxies serve
    wrk: str
    limit: int

    def deploy(self, replicas: int, what: str) -> list[ObservedPod]:
        workload = _workload(replicas, self.settings.runs, self.settings.pod_cpu)
        _check(converge([workload, self.service], self.nodes, self.inventory_file, self.home, Options(),
                        services=self.services), what)
        return _bench_pods(self.nodes, self.home)

    def measure(self, address: str, target: int, backends: int = 1, one: bool = False) -> WrkRun:
        """Under load, ``connections`` per backend: each backend sees the load the pod sees in (a)."""
        s = self.settings
        return _wrk(self.wrk, address, target, s.duration, 1 if one else s.threads,
                    1 if one else s.connections * backends, self.limit)


def measure(nodes: Sequence[Node], inventory_file: Path, home: Path, recorded: Sequence[Service],
            settings: ProxySettings, say: Callable[[str], None]) -> ProxyFigures:
    """Deploy, measure (a), (b), (a1), (b1), then (c), and remove the bench's objects even when a step fails.
    ``recorded`` are the services ``apply`` recorded: they stay on the proxies throughout."""
    wrk = _wrk_binary(say)
    recorded = [s for s in recorded if s.meta.name != BENCH]
    _ports_free(range(settings.port, settings.last_port + 1), nodes, home, recorded)
    service = _service(settings.port, settings.runs)
    bench = _Bench(nodes, inventory_file, home, settings, service, services_wanted([service], recorded), wrk,
                   _port_limit())
    try:
        return _measure(bench)
    finally:
        _clean_up(nodes, inventory_file, home, recorded, say)


def _measure(bench: _Bench) -> ProxyFigures:
    runs, replicas = bench.settings.runs, bench.settings.replicas
    # one replica: the service's only backend is the pod measured directly
    pods = bench.deploy(1, "deploying 1 replica and the service")
    if len(pods) != 1:
        raise BenchFailed(f"expected 1 running bench pod, found {len(pods)}")
    pod = pods[0]
    address = {n.name: n.address for n in bench.nodes}[pod.node]
    published = {p.container_port: p.host_port for p in pod.ports}
    direct_ports = {kind: [published.get(pod_port(kind, runs, i)) for i in range(runs)] for kind in (LOAD, ONE)}
    if None in direct_ports[LOAD] + direct_ports[ONE]:
        raise BenchFailed(f"pod {pod.name} does not publish all of its ports: {pod.ports}")
    via = {kind: [service_port(bench.settings.port, kind, runs, i) for i in range(runs)] for kind in KINDS}
    for kind in (LOAD, ONE):
        for i in range(runs):
            _wait_serving(address, direct_ports[kind][i], 1, f"pod {pod.name}")
            _wait_serving(address, via[kind][i], 1, "the service")
    direct, single, direct_one, single_one = [], [], [], []
    for i in range(runs):  # alternate, so that drift hits both alike
        direct.append(bench.measure(address, direct_ports[LOAD][i]))
        single.append(bench.measure(address, via[LOAD][i]))
        direct_one.append(bench.measure(address, direct_ports[ONE][i], one=True))
        single_one.append(bench.measure(address, via[ONE][i], one=True))

    # all replicas: the same pod stays, the others join the service
    pods = bench.deploy(replicas, f"scaling to {replicas} replicas")
    if len(pods) != replicas or pod.name not in {p.name for p in pods}:
        raise BenchFailed(f"expected {replicas} running bench pods including {pod.name}, "
                          f"found {[p.name for p in pods]}")
    for i in range(runs):
        _wait_serving(address, via[SPREAD][i], replicas, f"the service with {replicas} backends")
    spread = [bench.measure(address, via[SPREAD][i], backends=replicas) for i in range(runs)]
    return ProxyFigures(pod.name, pod.node, address, tuple(sorted({p.node for p in pods})), direct_ports, via,
                        tuple(direct), tuple(single), tuple(spread), tuple(direct_one), tuple(single_one), bench.limit)
