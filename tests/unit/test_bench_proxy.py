"""The pure parts of ``bench proxy``: reading wrk's output, giving every run a destination of its own, and the
report the command prints from the figures."""

from __future__ import annotations

import shlex

import pytest

from cluster_pilot.bench import BenchFailed
from cluster_pilot.bench.proxy import (BACKENDS, LOAD, ONE, SPREAD, DnsFigures, ProxyFigures, ProxyResults,
                                       ProxySettings, WrkRun, _service, _workload, nginx_config, parse_wrk, pod_port,
                                       read_lookups, service_port, wrk_command)
from cluster_pilot.cli.bench import _proxy_report, proxy_results_report

WRK = """Running 2s test @ http://172.28.1.11:30000/
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.10ms   10.21ms  89.11ms   95.12%
    Req/Sec   350.00     40.00   420.00     70.00%
  Latency Distribution
     50%  362.00us
     75%    2.10ms
     90%    3.20ms
     99%    1.03s
  1398 requests in 2.01s, 300.11KB read
  Socket errors: connect 1, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 4
Requests/sec:    693.41
Transfer/sec:    149.31KB
"""


def test_parse_wrk_reads_rate_latencies_and_every_error():
    run = parse_wrk(WRK)
    assert run.requests_per_s == pytest.approx(693.41)
    assert run.median_ms == pytest.approx(0.362)
    assert run.p99_ms == pytest.approx(1030.0)
    assert run.requests == 1398
    assert run.errors == 1 + 2 + 3 + 4


def test_parse_wrk_rejects_output_without_figures():
    with pytest.raises(BenchFailed, match="unreadable wrk output"):
        parse_wrk("wrk: unable to connect to 172.28.1.11:30000 Connection refused\n")


@pytest.mark.parametrize("runs", [1, 3, 10])
def test_every_run_has_destinations_of_its_own_on_both_legs(runs):
    kinds = (LOAD, ONE, SPREAD)
    to_pod = [pod_port(kind, runs, i) for kind in kinds for i in range(runs)]  # wrk or the proxy -> pod
    via = [service_port(18080, kind, runs, i) for kind in kinds for i in range(runs)]  # wrk -> proxy
    assert len(set(to_pod)) == len(to_pod) == 3 * runs
    assert len(set(via)) == len(via) == 3 * runs
    served = {p.container_port for p in _workload(1, runs, 200).template.spec.containers[0].ports}
    assert set(to_pod) == served  # the pod serves every port a run targets
    targets = [sp.target_port for sp in _service(18080, runs).ports]
    assert sorted(targets) == sorted(to_pod) and len(set(targets)) == len(targets)  # no pod port twice


def test_the_workload_carries_the_cpu_limit_not_a_request():
    (container,) = _workload(3, 2, 200).template.spec.containers
    assert container.cpu_limit_millis == 200 and container.cpu_millis == 0


def _run(rps: float, median_ms: float, limited: str = "", cpu: float = 0.5) -> WrkRun:
    return WrkRun(rps, median_ms, 3 * median_ms, int(rps * 2), 0, limited, cpu)


def test_the_report_keeps_the_best_run_and_computes_the_goals_ratios():
    settings = ProxySettings(replicas=3, pod_cpu=200, port=18080, duration=2, runs=2, threads=2, connections=8)
    figures = ProxyFigures(
        "web-1", "minion-2", "172.28.1.12", ("minion-1", "minion-2", "minion-3"),
        {LOAD: [30001, 30002], ONE: [30003, 30004]}, {k: [18080 + 2 * k, 18081 + 2 * k] for k in (LOAD, ONE, SPREAD)},
        direct=(_run(900, 2.0), _run(1000, 1.5)), single=(_run(950, 1.9), _run(800, 1.0)),
        spread=(_run(2700, 2.5, "local ports", cpu=0.97), _run(2000, 2.0)),
        direct_one=(_run(400, 0.5),), single_one=(_run(350, 0.8),), port_limit=14116)
    lines = _proxy_report(figures, settings, minions=3)
    assert lines[0].startswith("minions: 3; pod web-1 on minion-2 (172.28.1.12); 3 replicas on 3 minion(s), "
                               "each held to 200m CPU")
    assert lines[2] == ("(a) direct to the pod (172.28.1.12:30001,30002): 1000 req/s  median 1.500 ms  p99 4.500 ms"
                        "  CPU 50%  (runs req/s: 900, 1000; errors: 0)")
    assert lines[4].startswith("(c) service, 3 backends (172.28.1.12:18084,18085): 2700 req/s")
    assert lines[4].endswith("(runs req/s: 2700*, 2000; errors: 0)")  # * marks the run near a limit
    assert "ratio (b)/(a) per backend: 0.950 (goal >= 0.9)" in lines
    assert "ratio (c)/(3 x (a)) per backend: 0.900 (goal >= 0.9)" in lines
    assert "added median latency (b1)-(a1), one request at a time: 0.300 ms (goal < 1 ms)" in lines
    notes = [line for line in lines if line.startswith("note: ")]
    assert len(notes) == 2 and "busy >= 95% in (c)" in notes[0] and "(local ports)" in notes[1]
    assert "~14116 local ports" in notes[1]


def test_every_backend_has_service_ports_of_its_own():
    settings = ProxySettings(replicas=3, pod_cpu=200, port=18080, duration=2, runs=3, threads=2, connections=8)
    assert [b.key for b in settings.backends] == ["busybox", "nginx", "nginx-close"]
    services = [_service(settings.first_port(i), settings.runs, b) for i, b in enumerate(settings.backends)]
    ports = [sp.port for svc in services for sp in svc.ports]
    assert len(set(ports)) == len(ports) == 27
    assert min(ports) == 18080 and max(ports) == settings.last_port == 18106
    assert [s.meta.name for s in services] == ["cp-bench-proxy", "cp-bench-proxy-nginx", "cp-bench-proxy-nginx-close"]
    assert [dict(s.selector) for s in services] == [{"bench": s.meta.name} for s in services]  # each its own pods
    assert all(s.meta.api_version == "v1beta1" for s in services)  # v1beta1: on every minion's own address


def test_the_nginx_backend_serves_every_port_from_a_config_of_its_own():
    nginx = BACKENDS[1]
    rc = _workload(1, 2, 200, nginx)
    (container,) = rc.template.spec.containers
    assert container.image == "nginx" and rc.meta.name == "cp-bench-proxy-nginx"
    assert [p.container_port for p in container.ports] == list(range(80, 86))
    script = container.command[2]
    assert script.endswith("exec nginx -c /tmp/bench.conf -g 'daemon off;'")
    config = nginx_config(6)
    assert all(f"listen {p};" in config for p in range(80, 86)) and "listen 86;" not in config
    assert "access_log off;" in config and "worker_processes 1;" in config
    assert shlex.split(script)[0:3] == ["mkdir", "-p", "/www"] and f"printf %s {shlex.quote(config)} >" in script


def test_wrk_sends_connection_close_only_for_backends_without_keep_alive():
    kept = wrk_command("wrk", "http://10.0.0.1:80/", 2, 2, 16, keep_alive=True)
    closed = wrk_command("wrk", "http://10.0.0.1:80/", 2, 2, 16, keep_alive=False)
    assert kept == ["wrk", "--latency", "-t", "2", "-c", "16", "-d", "2s", "--timeout", "5s", "http://10.0.0.1:80/"]
    assert closed == [*kept[:-1], "-H", "Connection: close", kept[-1]]
    assert [b.keep_alive for b in BACKENDS] == [False, True, False]


def test_dns_lookups_are_read_from_the_probes_last_line():
    out = 'warming up\n{"ms": [0.5, 0.3, 0.4, 9.0], "address": "10.254.0.7", "error": ""}\n'
    d = read_lookups("cp-bench-proxy", "minion-2", out)
    assert (d.median_ms, d.p99_ms, d.address) == (pytest.approx(0.45), 9.0, "10.254.0.7")
    failed = read_lookups("x", "minion-1", '{"ms": [], "address": "", "error": "x: Name does not resolve"}')
    assert failed.lookups_ms == () and failed.error == "x: Name does not resolve"
    assert "unreadable probe output" in read_lookups("x", "minion-1", "Traceback ...").error


def test_the_report_has_every_backend_under_a_heading_and_the_dns_figure_last():
    settings = ProxySettings(replicas=1, pod_cpu=200, port=18080, duration=2, runs=1, threads=1, connections=8)
    runs = {k: [18080 + k] for k in (LOAD, ONE, SPREAD)}
    figures = [ProxyFigures("p", "minion-1", "172.28.1.11", ("minion-1",), {LOAD: [30001], ONE: [30002]}, runs,
                            (_run(4000, 1),), (_run(3800, 1.1),), (_run(3900, 1),), (_run(900, 0.2),),
                            (_run(800, 0.3),), 14116, backend) for backend in BACKENDS[1:]]
    dns = DnsFigures("cp-bench-proxy-nginx", "minion-3", (0.2, 0.3, 0.4), "10.254.0.9")
    lines = proxy_results_report(ProxyResults(tuple(figures), dns), settings, minions=3)
    assert [line for line in lines if line.startswith("== ")] == [
        "== nginx, keep-alive", "== nginx, one request per connection (wrk sends Connection: close)"]
    assert lines[1].endswith("each held to 200m CPU; nginx, keep-alive")
    assert lines[-1] == ("DNS: cp-bench-proxy-nginx -> 10.254.0.9 from a pod on minion-3: median 0.300 ms, "
                         "p99 0.400 ms over 3 lookups (getaddrinfo, search path)")
    failed = DnsFigures("cp-bench-proxy", "minion-1", (), error="cp-bench-proxy: Name does not resolve")
    assert proxy_results_report(ProxyResults((), failed), settings, 3) == [
        "DNS: lookups of cp-bench-proxy from a pod on minion-1 failed: cp-bench-proxy: Name does not resolve"]


def test_the_command_line_offers_exactly_the_backends_the_bench_has():
    from cluster_pilot.cli.bench import proxy as command

    [option] = [p for p in command.params if p.name == "backends"]
    assert list(option.type.choices) == [b.key for b in BACKENDS]
