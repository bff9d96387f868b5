"""``bench proxy`` on a real sandbox: it runs, prints every figure of every backend and the DNS figure (needs the\nservice network), and leaves nothing behind. No timing thresholds but one: nginx serves over 1,000 requests/s."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import cli, managed_containers, ssh

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

NUMBER = r"(-?[0-9]+(?:\.[0-9]+)?)"
TARGET = NUMBER + r" req/s  median " + NUMBER + r" ms  p99 " + NUMBER + r" ms  CPU " + NUMBER + "%"


def figure(pattern: str, output: str) -> tuple[float, ...]:
    m = re.search(pattern, output, re.M)
    assert m, f"no line matching {pattern!r} in:\n{output}"
    return tuple(float(g) for g in m.groups())


def test_bench_proxy_prints_every_backends_figures_and_the_dns_figure_and_cleans_up(sandbox_home, sandbox):
    out = cli("bench", "proxy", "--duration", "1", "--runs", "1", "--lookups", "20", home=sandbox_home,
              timeout=1200).stdout

    sections = re.split(r"^== .*$", out, flags=re.M)[1:]
    assert re.findall(r"^== (.*)$", out, re.M) == [
        "busybox httpd, one connection per request (it answers Connection: close)", "nginx, keep-alive",
        "nginx, one request per connection (wrk sends Connection: close)"], out
    for section in sections:
        for label in (r"\(a\) direct to the pod \([0-9.]+:\d+\)", r"\(b\) service, 1 backend \([0-9.]+:\d+\)",
                      r"\(c\) service, 3 backends \([0-9.]+:\d+\)", r"\(a1\) direct, one connection \([0-9.]+:\d+\)",
                      r"\(b1\) service, one connection \([0-9.]+:\d+\)"):
            rps, median, p99, cpu = figure(rf"^{label}: {TARGET}", section)
            assert rps > 0 and median > 0 and p99 > 0 and 0 < cpu <= 100, (label, out)
        assert "each held to 200m CPU" in section, section
        for pattern in (r"^ratio \(b\)/\(a\) per backend: ", r"^ratio \(c\)/\(3 x \(a\)\) per backend: "):
            ratio, = figure(pattern + NUMBER, section)
            assert ratio > 0, section
        for pattern in (r"^added median latency \(b1\)-\(a1\), one request at a time: ",
                        r"^added median latency under load \(b\)-\(a\): "):
            figure(pattern + NUMBER + " ms", section)  # may be negative: no sign asserted
        assert len(re.findall(r"; errors: \d+\)$", section, re.M)) == 5, section
    nginx_rps, *_ = figure(rf"^\(a\) direct to the pod \([0-9.]+:\d+\): {TARGET}", sections[1])
    assert nginx_rps > 1000, sections[1]  # the fast backend serves thousands of requests/s
    median, p99 = figure(r"^DNS: cp-bench-proxy -> 10\.[0-9.]+ from a pod on minion-\d: median " + NUMBER + " ms, p99 "
                         + NUMBER + " ms over 20 lookups", out)
    assert 0 < median <= p99, out

    assert not [c for c in managed_containers(sandbox) if c["controller"].startswith("cp-bench-proxy")
                or c["pod"] == "cp-bench-dns"]
    for m in sandbox.status():
        if m.ready:
            config = ssh(sandbox, m.address, "cat /etc/cluster-pilot/haproxy.cfg")
            assert config.returncode == 0 and "cp-bench-proxy" not in config.stdout, (m.name, config.stdout)
