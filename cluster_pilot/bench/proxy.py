"""``cluster-pilot bench proxy``: what a service's HAProxy costs, against the pod it proxies, measured in one run.

Deployed through the real pipeline (``converge``), per backend: a ReplicationController of replicas serving a
small static file (the pod's hostname), and a Service targeting them. The backends (``BACKENDS``): busybox
``httpd`` (one connection per request: it answers ``Connection: close``, and forks per connection: a few
hundred requests/s); ``nginx`` (thousands of requests/s) with keep-alive; and ``nginx`` again with one request
per connection (wrk sends ``Connection: close``). ``wrk`` on this machine measures requests/s and latency
(median, p99), for each backend:

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

Each backend has a controller, a service and service ports of its own (``cp-bench-proxy`` for busybox,
``cp-bench-proxy-nginx``, ...). Last, a pod of the ``guestbook`` image (it has python3) times lookups of the
first backend's service name through the pod's resolver, the minion's DNS: the median and p99 of
``getaddrinfo`` (one query each, no cache in the pod). A fleet without service DNS reports why it failed.

Traffic goes only to the inventory's minions. The controllers, services and the DNS pod are removed at the
end, even when a step fails; every other service the fleet records stays on the proxies throughout.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import shlex
import socket
import statistics
import struct
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

from cluster_pilot.apply.pipeline import Options, Outcome, Request, converge

from cluster_pilot.host.records import fleet_records
from cluster_pilot.bench import BenchFailed
from cluster_pilot.host.logs import exec_remote, locate, ssh_to
from cluster_pilot.host.observe import observe
from cluster_pilot.host.observed import ObservedPod
from cluster_pilot.host.ssh import control_dir
from cluster_pilot.model import (POD, REPLICATION_CONTROLLER, SERVICE, Container, Meta, Node, Pod, PodSpec,
                                 PodTemplate, Port, ReplicationController, Service, ServicePort)

BENCH = "cp-bench-proxy"
DNS_POD = "cp-bench-dns"
BASE_PORT = 80  # the pod's container ports: 80, 81, ... one server each


@dataclass(frozen=True)
class Backend:
    """What serves behind a service, and whether wrk keeps its connections open."""

    key: str  # as --backend names it
    image: str
    keep_alive: bool
    what: str  # as the report describes it

    @property
    def name(self) -> str:
        """Its controller's and service's name."""
        return BENCH if self.key == "busybox" else f"{BENCH}-{self.key}"

    @property
    def labels(self) -> dict[str, str]:
        return {"bench": self.name}


BACKENDS = (
    Backend("busybox", "busybox", False, "busybox httpd, one connection per request (it answers Connection: close)"),
    Backend("nginx", "nginx", True, "nginx, keep-alive"),
    Backend("nginx-close", "nginx", False, "nginx, one request per connection (wrk sends Connection: close)"),
)


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
    backends: tuple[Backend, ...] = BACKENDS
    lookups: int = 200  # DNS lookups timed from a pod; 0: none

    @property
    def last_port(self) -> int:
        """The services' last port: each backend's takes 3 x runs ports, on every minion."""
        return self.first_port(len(self.backends)) - 1

    def first_port(self, backend: int) -> int:
        """The first service port of the ``backend``-th backend: every run of every backend has its own."""
        return self.port + backend * len(KINDS) * self.runs


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
    backend: Backend = BACKENDS[0]


@dataclass(frozen=True)
class DnsFigures:
    name: str  # the name looked up, as a pod's program writes it
    node: str  # the minion of the pod that looked it up
    lookups_ms: tuple[float, ...]
    address: str = ""  # what it resolved to
    error: str = ""  # why lookups failed (no service DNS on this fleet?)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.lookups_ms) if self.lookups_ms else 0.0

    @property
    def p99_ms(self) -> float:
        ordered = sorted(self.lookups_ms)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else 0.0


@dataclass(frozen=True)
class ProxyResults:
    backends: tuple[ProxyFigures, ...]
    dns: DnsFigures | None


# Kinds of run: each has its own pod ports (one httpd each) and service ports, ``runs`` of each, so that no
# run meets the TIME_WAIT of another, neither from wrk to its target nor from a proxy to a pod.
LOAD, ONE, SPREAD = KINDS = (0, 1, 2)  # (a)/(b) under load; (a1)/(b1) one connection; (c) all replicas


def pod_port(kind: int, runs: int, i: int) -> int:
    return BASE_PORT + kind * runs + i


def service_port(port: int, kind: int, runs: int, i: int) -> int:
    return port + kind * runs + i


def nginx_config(ports: int) -> str:
    """One worker (a pod is held to a fraction of a CPU), no access log, every port serving /www."""
    listen = " ".join(f"listen {BASE_PORT + i};" for i in range(ports))
    return ("user www-data; worker_processes 1; pid /tmp/nginx.pid; error_log stderr;\n"
            "events { worker_connections 4096; }\n"
            "http { access_log off; keepalive_requests 1000000; keepalive_timeout 65s;\n"
            f"  server {{ {listen} root /www; }} }}\n")


def _serve(backend: Backend, ports: int) -> tuple[str, ...]:
    page = "mkdir -p /www && hostname > /www/index.html && "
    if backend.image == "nginx":
        config = shlex.quote(nginx_config(ports))
        return ("sh", "-c", f"{page}printf %s {config} > /tmp/bench.conf && "
                            "exec nginx -c /tmp/bench.conf -g 'daemon off;'")
    extra = "".join(f"httpd -p {BASE_PORT + i} -h /www && " for i in range(1, ports))
    return ("sh", "-c", f"{page}{extra}exec httpd -f -p {BASE_PORT} -h /www")


def _workload(replicas: int, runs: int, cpu_millis: int, backend: Backend = BACKENDS[0]) -> ReplicationController:
    ports = len(KINDS) * runs
    spec = PodSpec((Container("web", backend.image, _serve(backend, ports), cpu_limit_millis=cpu_millis,
                              ports=tuple(Port(BASE_PORT + i, name=f"http-{i}") for i in range(ports))),))
    labels = backend.labels
    return ReplicationController(Meta(backend.name, labels), replicas, labels, PodTemplate(labels=labels, spec=spec))


def _service(port: int, runs: int, backend: Backend = BACKENDS[0]) -> Service:
    ports = tuple(ServicePort(service_port(port, kind, runs, i), pod_port(kind, runs, i))
                  for kind in KINDS for i in range(runs))
    return Service(Meta(backend.name, backend.labels, api_version="v1beta1"), ports, backend.labels)


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


def _limits(address: str, port: int, limit: int, connections: int) -> str:
    """``connections``: how many the run opened (every request, without keep-alive)."""
    entries, most = _conntrack()
    found = ["local ports"] if max(_time_wait(address, port), connections) >= 0.9 * limit else []
    return ", ".join(found + (["conntrack"] if most and entries >= 0.9 * most else []))


def wrk_command(wrk: str, url: str, duration: float, threads: int, connections: int, keep_alive: bool) -> list[str]:
    """Without keep-alive, wrk asks for ``Connection: close``: the server ends every connection after its answer."""
    return [wrk, "--latency", "-t", str(threads), "-c", str(connections), "-d", f"{duration:g}s", "--timeout", "5s",
            *([] if keep_alive else ["-H", "Connection: close"]), url]


def _wrk(wrk: str, address: str, port: int, duration: float, threads: int, connections: int, limit: int,
         keep_alive: bool = True) -> WrkRun:
    _wait_quiet(address, port, limit)
    url = f"http://{address}:{port}/"
    cmd = wrk_command(wrk, url, duration, threads, connections, keep_alive)
    busy0, total0 = _cpu_times()
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=duration + 60)
    busy1, total1 = _cpu_times()
    if proc.returncode != 0:
        raise BenchFailed(f"wrk {url} exited {proc.returncode}: {proc.stderr.strip()[:400]}")
    run = parse_wrk(proc.stdout)
    opened = connections if keep_alive else run.requests
    return replace(run, limited=_limits(address, port, limit, opened),
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


def _bench_pods(nodes: Sequence[Node], home: Path, controller: str) -> list[ObservedPod]:
    return sorted((p for p in observe(nodes, home).pods if p.controller == controller and p.complete),
                  key=lambda p: p.name)


def _ours(name: str) -> bool:
    return name == DNS_POD or name == BENCH or name.startswith(BENCH + "-")


def _ports_free(ports: Sequence[int], nodes: Sequence[Node], home: Path) -> None:
    """No service the fleet records and no pod of another owner holds a port the bench's services need."""
    wanted = set(ports)
    seen = observe(nodes, home)
    for svc in fleet_records(seen)[0].objects(SERVICE):
        clash = wanted & {sp.port for sp in svc.ports}
        if clash and not _ours(svc.meta.name):
            raise BenchFailed(f"port {min(clash)} is service {svc.meta.name}'s: pick another --port")
    for p in seen.pods:
        clash = wanted & {hp for hp, _ in p.host_ports}
        if clash and not _ours(p.controller or p.name):
            raise BenchFailed(f"port {min(clash)} is bound by pod {p.name} on {p.node}: pick another --port")


def _clean_up(nodes: Sequence[Node], inventory_file: Path, home: Path, say: Callable[[str], None]) -> None:
    """Remove every backend's controller and service and the DNS pod; warn, never mask a failure."""
    deleting = [(kind, b.name) for b in BACKENDS for kind in (REPLICATION_CONTROLLER, SERVICE)] + [(POD, DNS_POD)]
    try:
        _check(converge(Request.of(deleting=deleting), nodes, inventory_file, home, Options()), "clean-up")
    except Exception as e:  # noqa: BLE001 - the bench's own failure, if any, is the one to raise
        say(f"warning: {e}; objects of {BENCH} may remain: a later run of this bench removes them")


def best(runs: Sequence[WrkRun]) -> WrkRun:
    """The run kept per target: noise on a shared host only slows, so the fastest is the least disturbed."""
    return max(runs, key=lambda r: r.requests_per_s)


@dataclass(frozen=True)
class _Bench:
    """One backend's run of the bench: where it deploys, what it asks for, and how it calls wrk."""
    nodes: Sequence[Node]
    inventory_file: Path
    home: Path
    settings: ProxySettings
    backend: Backend
    service: Service
    wrk: str
    limit: int

    def deploy(self, replicas: int, what: str) -> list[ObservedPod]:
        """Through the real pipeline; the proxies serve what the fleet records, this service included."""
        workload = _workload(replicas, self.settings.runs, self.settings.pod_cpu, self.backend)
        _check(converge(Request.of([workload, self.service]), self.nodes, self.inventory_file, self.home, Options()),
               f"{self.backend.key}: {what}")
        return _bench_pods(self.nodes, self.home, self.backend.name)

    def measure(self, address: str, target: int, backends: int = 1, one: bool = False) -> WrkRun:
        """Under load, ``connections`` per backend: each backend sees the load the pod sees in (a)."""
        s = self.settings
        return _wrk(self.wrk, address, target, s.duration, 1 if one else s.threads,
                    1 if one else s.connections * backends, self.limit, self.backend.keep_alive)


def measure(nodes: Sequence[Node], inventory_file: Path, home: Path, settings: ProxySettings,
            say: Callable[[str], None]) -> ProxyResults:
    """Per backend, deploy and measure (a), (b), (a1), (b1), then (c); then the DNS lookups; remove the bench's
    objects even when a step fails. Every other service the fleet records stays on the proxies throughout."""
    wrk = _wrk_binary(say)
    _ports_free(range(settings.port, settings.last_port + 1), nodes, home)
    limit = _port_limit()
    try:
        figures = []
        for i, backend in enumerate(settings.backends):
            service = _service(settings.first_port(i), settings.runs, backend)
            say(f"bench proxy: {backend.what}")
            figures.append(_measure(_Bench(nodes, inventory_file, home, settings, backend, service, wrk, limit)))
        dns = _measure_dns(nodes, inventory_file, home, settings) if settings.lookups else None
        return ProxyResults(tuple(figures), dns)
    finally:
        _clean_up(nodes, inventory_file, home, say)


def _measure(bench: _Bench) -> ProxyFigures:
    runs, replicas = bench.settings.runs, bench.settings.replicas
    first = bench.service.ports[0].port
    # one replica: the service's only backend is the pod measured directly
    pods = bench.deploy(1, "deploying 1 replica and the service")
    if len(pods) != 1:
        raise BenchFailed(f"expected 1 running pod of {bench.backend.name}, found {len(pods)}")
    pod = pods[0]
    address = {n.name: n.address for n in bench.nodes}[pod.node]
    published = {p.container_port: p.host_port for p in pod.ports}
    direct_ports = {kind: [published.get(pod_port(kind, runs, i)) for i in range(runs)] for kind in (LOAD, ONE)}
    if None in direct_ports[LOAD] + direct_ports[ONE]:
        raise BenchFailed(f"pod {pod.name} does not publish all of its ports: {pod.ports}")
    via = {kind: [service_port(first, kind, runs, i) for i in range(runs)] for kind in KINDS}
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
        raise BenchFailed(f"expected {replicas} running pods of {bench.backend.name} including {pod.name}, "
                          f"found {[p.name for p in pods]}")
    for i in range(runs):
        _wait_serving(address, via[SPREAD][i], replicas, f"the service with {replicas} backends")
    spread = [bench.measure(address, via[SPREAD][i], backends=replicas) for i in range(runs)]
    return ProxyFigures(pod.name, pod.node, address, tuple(sorted({p.node for p in pods})), direct_ports, via,
                        tuple(direct), tuple(single), tuple(spread), tuple(direct_one), tuple(single_one), bench.limit,
                        bench.backend)


# Run inside the pod by its own python3: ``getaddrinfo`` as a program calls it (search path, one A query each).
_LOOKUPS = """
import json, socket, sys, time
name, count, times, address, error = sys.argv[1], int(sys.argv[2]), [], "", ""
for _ in range(count):
    start = time.perf_counter()
    try:
        address = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
    except OSError as e:
        error = f"{name}: {e}"
        break
    times.append((time.perf_counter() - start) * 1000)
print(json.dumps({"ms": times, "address": address, "error": error}))
"""


def dns_probe_pod() -> Pod:
    """A pod with python3 (the guestbook image) that waits for the bench to run lookups in it."""
    sleep = ("python3", "-c", "import time; time.sleep(10 ** 9)")
    return Pod(Meta(DNS_POD, {"bench": DNS_POD}), PodSpec((Container("probe", "guestbook", sleep),)))


def read_lookups(name: str, node: str, output: str) -> DnsFigures:
    """The probe's last line: every lookup's milliseconds, the address found, or the error that stopped it."""
    try:
        doc = json.loads(output.strip().splitlines()[-1])
        return DnsFigures(name, node, tuple(float(t) for t in doc["ms"]), doc["address"], doc["error"])
    except (ValueError, KeyError, IndexError, TypeError):
        return DnsFigures(name, node, (), error=f"unreadable probe output: {output.strip()[:200]!r}")


def _measure_dns(nodes: Sequence[Node], inventory_file: Path, home: Path, settings: ProxySettings) -> DnsFigures:
    """Median time to look a service name up from a pod, through the minion's DNS."""
    name = settings.backends[0].name if settings.backends else BENCH
    _check(converge(Request.of([dns_probe_pod()]), nodes, inventory_file, home, Options()),
           "deploying the DNS probe pod")
    target = locate(observe(nodes, home), DNS_POD, "probe")
    node = {n.name: n for n in nodes}[target.node]
    remote = exec_remote(target.id, ["python3", "-c", _LOOKUPS, name, str(settings.lookups)], False, False)
    proc = subprocess.run(ssh_to(node, control_dir(home), remote), capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120)
    if proc.returncode != 0:
        return DnsFigures(name, target.node, (), error=f"the probe exited {proc.returncode}: {proc.stderr.strip()[:200]}")
    return read_lookups(name, target.node, proc.stdout)
