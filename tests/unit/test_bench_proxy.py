"""The pure parts of ``bench proxy``: reading wrk's output, giving every run a destination of its own, and the
report the command prints from the figures."""

from __future__ import annotations

import pytest

from cluster_pilot.bench import BenchFailed
from cluster_pilot.bench.proxy import (LOAD, ONE, SPREAD, ProxyFigures, ProxySettings, WrkRun, _service, _workload,
                                       parse_wrk, pod_port, service_port)
from cluster_pilot.cli.bench import _proxy_report

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
