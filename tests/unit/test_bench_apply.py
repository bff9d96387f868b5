"""Where a whole ``cluster-pilot apply`` spent its time, read from its timing trace."""

from __future__ import annotations

import pytest

from cluster_pilot.bench.apply import split


def _trace(*points):
    return [(t, name, host) for t, name, host in points]


def test_a_cold_run_is_split_into_its_stages_and_the_parts_sum_to_the_whole():
    marks = _trace(
        (1.0, "python", ""), (1.2, "imported", ""), (1.5, "observing", ""), (2.0, "locking", ""),
        (2.1, "observing", ""), (2.6, "run", ""), (2.7, "ansible launch", ""),
        (4.0, "playbook_on_start::", ""),
        (4.1, "playbook_on_task_start::Take pods that must stop first out of every proxy", ""),
        (4.2, "runner_on_skipped::Take pods that must stop first out of every proxy", "m1"),
        (4.3, "playbook_on_task_start:cp_pods:Create pods", ""),
        (4.4, "runner_on_start:cp_pods:Create pods", "m1"), (9.0, "runner_on_ok:cp_pods:Create pods", "m1"),
        (9.3, "playbook_on_task_start:cp_proxy:Converge the service proxy", ""),
        (9.9, "runner_on_ok:cp_proxy:Converge the service proxy", "m1"),
        (9.95, "playbook_on_task_start:cp_pods:Remove pods and write the object records", ""),
        (9.98, "runner_item_on_ok:cp_pods:Remove pods and write the object records", "m1"),
        (9.99, "runner_on_ok:cp_pods:Remove pods and write the object records", "m1"),
        (10.0, "playbook_on_stats::", ""), (10.5, "verifying", ""), (11.0, "converged", ""), (11.1, "exit", ""))
    parts = dict(split(marks, 0.5, 11.3))
    assert parts["interpreter start"] == pytest.approx(0.5)
    assert parts["observation"] == pytest.approx(0.5) and parts["lock"] == pytest.approx(0.1)
    assert parts["observation under the lock"] == pytest.approx(0.5)
    assert parts["render, ansible-playbook start"] == pytest.approx(1.5)
    assert parts["cp_pods module (Docker work)"] == pytest.approx(5.0 + 0.05)
    assert parts["proxy"] == pytest.approx(0.65)
    assert "object records (cp_records)" not in parts  # a task of its own no more
    assert parts["Ansible per-task overhead"] == pytest.approx(0.2)
    assert parts["verification"] == pytest.approx(0.5)
    assert sum(parts.values()) == pytest.approx(11.3 - 0.5)


def test_a_no_op_has_no_lock_and_no_ansible():
    marks = _trace((1.0, "python", ""), (1.2, "imported", ""), (1.5, "observing", ""), (2.0, "converged", ""),
                   (2.05, "exit", ""))
    parts = split(marks, 0.8, 2.1)
    assert [label for label, _ in parts] == ["interpreter start", "imports", "load and validate", "observation",
                                            "store and report", "process exit"]
    assert sum(s for _, s in parts) == pytest.approx(2.1 - 0.8)


def test_a_no_op_that_asked_the_hosts_ahead_shows_that_step_before_the_imports():
    marks = _trace((1.0, "python", ""), (1.05, "asked", ""), (1.2, "imported", ""), (1.4, "observing", ""),
                   (1.6, "converged", ""), (1.61, "exit", ""))
    parts = split(marks, 0.96, 1.65)
    assert [label for label, _ in parts][:3] == ["interpreter start", "inventory, hosts asked", "imports"]
    assert dict(parts)["inventory, hosts asked"] == pytest.approx(0.05)
    assert dict(parts)["observation"] == pytest.approx(0.2)
    assert sum(s for _, s in parts) == pytest.approx(1.65 - 0.96)


def test_a_run_that_did_not_look_again_under_the_lock_shows_the_lock_alone():
    marks = _trace((1.0, "python", ""), (1.2, "imported", ""), (1.4, "observing", ""), (1.7, "locking", ""),
                   (1.8, "run", ""), (2.0, "converged", ""), (2.01, "exit", ""))
    parts = dict(split(marks, 0.96, 2.05))
    assert parts["observation"] == pytest.approx(0.3) and parts["lock"] == pytest.approx(0.1)
    assert "observation under the lock" not in parts
