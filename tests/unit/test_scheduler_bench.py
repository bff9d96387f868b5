"""``cluster-pilot bench scheduler`` and its synthetic input."""

from __future__ import annotations

import re

import pytest

from cluster_pilot.cli import cli, run
from cluster_pilot.model import Pod, ReplicationController
from cluster_pilot.scheduler import core as scheduler_core
from cluster_pilot.scheduler import schedule
from cluster_pilot.scheduler.synthetic import fleet, workload
from cluster_pilot.scheduler.reference import place_by_scanning


def test_bench_prints_the_rate_last(capsys):
    assert run(cli, "cluster-pilot", ["bench", "scheduler", "--nodes", "40", "--pods", "300", "--seed", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"scheduled 300 pods on 40 nodes in \d+\.\d{3} s: [\d,]+ pods/s", lines[-1])
    assert any(re.fullmatch(r"peak memory: \d+ MiB .*", line) for line in lines)


def test_synthetic_workload_asks_for_exactly_the_pods_and_is_reproducible():
    objects = workload(1234, seed=5)
    total = sum(o.replicas for o in objects if isinstance(o, ReplicationController))
    total += sum(isinstance(o, Pod) for o in objects)
    assert total == 1234
    assert workload(1234, seed=5) == objects and fleet(50, seed=5) == fleet(50, seed=5)


@pytest.mark.parametrize("seed", [0, 1])
def test_index_matches_a_full_scan_on_a_realistic_fleet(seed, monkeypatch):
    nodes, objects = fleet(60, seed), workload(1500, seed)
    indexed = schedule(objects, nodes)
    assert indexed.unschedulable  # the synthetic fleet is tight enough to refuse some pods
    monkeypatch.setattr(scheduler_core, "place", place_by_scanning)
    assert schedule(objects, nodes) == indexed
