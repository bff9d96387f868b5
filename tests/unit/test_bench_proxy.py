"""The pure parts of ``bench proxy``: reading wrk's output and giving every run a destination of its own."""

from __future__ import annotations

import pytest

from cluster_pilot.bench import BenchFailed
from cluster_pilot.bench.proxy import LOAD, ONE, SPREAD, _service, _workload, parse_wrk, pod_port, service_port

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
