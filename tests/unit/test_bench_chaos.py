"""The chaos soak's pure parts: the surge bound through a scale-down, templates, violations, the report."""

from __future__ import annotations

import pytest

from cluster_pilot.bench import BenchFailed
from cluster_pilot.bench.chaos import ChaosFigures, ChaosSettings, Controller, Violations, measure, rc_body, report


def test_the_surge_bound_is_replicas_plus_one_and_the_former_count_while_a_scale_down_goes_on():
    c = Controller("a", 3, high=3)
    assert c.bound(3) == 4
    c.scaled(1)
    assert c.bound(3) == 4  # the surplus is on its way out
    assert c.bound(2) == 4
    assert c.bound(1) == 2  # seen at the new count: from now on replicas + 1
    assert c.bound(2) == 2
    c.scaled(2)
    assert c.bound(1) == 3


def test_a_new_version_is_a_new_template_and_the_service_controller_serves_http():
    one, two = rc_body("a", 2, 1), rc_body("a", 2, 2)
    assert one["desiredState"]["podTemplate"] != two["desiredState"]["podTemplate"]
    web = rc_body("w", 3, 4, serve=True)["desiredState"]["podTemplate"]["desiredState"]["manifest"]["containers"][0]
    assert web["ports"] == [{"name": "http", "containerPort": 80}] and "httpd" in web["command"][2]


def test_a_violation_is_said_once_and_counted():
    said: list[str] = []
    v = Violations(said.append)
    v.add("surge a", "surge: a ran 5 pods")
    v.add("surge a", "surge: a ran 6 pods")
    v.add("lost b", "lost: b")
    assert said == ["VIOLATION surge: a ran 5 pods", "VIOLATION lost: b"]
    assert v.named() == ("surge: a ran 5 pods (seen 2 times)", "lost: b")


def test_the_report_names_faults_violations_convergence_and_the_share_served():
    f = ChaosFigures(7, 60.0, (("minion", 1), ("leader", 2)), ("lost: b",), 12.5, 200, 190, (("create", 3),),
                     (1.0, 2.0))
    lines = report(f)
    assert "seed 7" in lines[0]
    assert "faults injected: 3 (minion 1, leader 2)" in lines
    assert "violations: 1 (goal 0)" in lines and "  - lost: b" in lines
    assert "converged after the last fault: 12.5 s" in lines
    assert lines[-1] == "service requests served: 190/200 (95.0%)"


def test_the_soak_refuses_a_store_two_masters_cannot_share(tmp_path):
    with pytest.raises(BenchFailed, match="postgresql"):
        measure([], tmp_path / "inventory.yml", tmp_path, None, "sqlite:///x.db", ChaosSettings())
