"""``bench proxy`` on a real sandbox: it runs, prints every figure, and leaves nothing behind. No timing thresholds."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import cli, managed_containers, ssh

pytestmark = pytest.mark.e2e

NUMBER = r"(-?[0-9]+(?:\.[0-9]+)?)"
TARGET = NUMBER + r" req/s  median " + NUMBER + r" ms  p99 " + NUMBER + r" ms"


def figure(pattern: str, output: str) -> tuple[float, ...]:
    m = re.search(pattern, output, re.M)
    assert m, f"no line matching {pattern!r} in:\n{output}"
    return tuple(float(g) for g in m.groups())


def test_bench_proxy_prints_its_figures_and_cleans_up(sandbox_home, sandbox):
    out = cli("bench", "proxy", "--duration", "2", "--runs", "1", home=sandbox_home, timeout=600).stdout

    for label in (r"\(a\) direct to the pod \([0-9.]+:\d+\)", r"\(b\) service, 1 backend \([0-9.]+:\d+\)",
                  r"\(c\) service, 3 backends \([0-9.]+:\d+\)"):
        rps, median, p99 = figure(rf"^{label}: {TARGET}", out)
        assert rps > 0 and median > 0 and p99 > 0, (label, out)
    ratio, = figure(r"^ratio \(b\)/\(a\) per backend: " + NUMBER, out)
    assert ratio > 0, out
    figure(r"^added median latency \(b\)-\(a\): " + NUMBER + " ms", out)  # may be negative: no sign asserted
    spread, = figure(r"^ratio \(c\)/\(a\): " + NUMBER, out)
    assert spread > 0, out
    assert len(re.findall(r"; errors: \d+\)$", out, re.M)) == 3, out

    assert not [c for c in managed_containers(sandbox) if c["controller"] == "cp-bench-proxy"]
    for m in sandbox.status():
        if m.ready:
            config = ssh(sandbox, m.address, "cat /etc/cluster-pilot/haproxy.cfg")
            assert config.returncode == 0 and "cp-bench-proxy" not in config.stdout, (m.name, config.stdout)
