"""``bench proxy`` on a real sandbox: it runs, prints every figure, and leaves nothing behind. No timing thresholds."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import cli, managed_containers, ssh

pytestmark = pytest.mark.e2e

NUMBER = r"(-?[0-9]+(?:\.[0-9]+)?)"
TARGET = NUMBER + r" req/s  median " + NUMBER + r" ms  p99 " + NUMBER + r" ms  CPU " + NUMBER + "%"


def figure(pattern: str, output: str) -> tuple[float, ...]:
    m = re.search(pattern, output, re.M)
    assert m, f"no line matching {pattern!r} in:\n{output}"
    return tuple(float(g) for g in m.groups())


def test_bench_proxy_prints_its_figures_and_cleans_up(sandbox_home, sandbox):
    out = cli("bench", "proxy", "--duration", "2", "--runs", "1", home=sandbox_home, timeout=600).stdout

    for label in (r"\(a\) direct to the pod \([0-9.]+:\d+\)", r"\(b\) service, 1 backend \([0-9.]+:\d+\)",
                  r"\(c\) service, 3 backends \([0-9.]+:\d+\)", r"\(a1\) direct, one connection \([0-9.]+:\d+\)",
                  r"\(b1\) service, one connection \([0-9.]+:\d+\)"):
        rps, median, p99, cpu = figure(rf"^{label}: {TARGET}", out)
        assert rps > 0 and median > 0 and p99 > 0 and 0 < cpu <= 100, (label, out)
    assert "each held to 200m CPU" in out, out
    for pattern in (r"^ratio \(b\)/\(a\) per backend: ", r"^ratio \(c\)/\(3 x \(a\)\) per backend: "):
        ratio, = figure(pattern + NUMBER, out)
        assert ratio > 0, out
    for pattern in (r"^added median latency \(b1\)-\(a1\), one request at a time: ",
                    r"^added median latency under load \(b\)-\(a\): "):
        figure(pattern + NUMBER + " ms", out)  # may be negative: no sign asserted
    assert len(re.findall(r"; errors: \d+\)$", out, re.M)) == 5, out

    assert not [c for c in managed_containers(sandbox) if c["controller"] == "cp-bench-proxy"]
    for m in sandbox.status():
        if m.ready:
            config = ssh(sandbox, m.address, "cat /etc/cluster-pilot/haproxy.cfg")
            assert config.returncode == 0 and "cp-bench-proxy" not in config.stdout, (m.name, config.stdout)
