"""A run's own events say what it did: every pod action and the proxy action counted, so a run that did
everything it planned is not observed again (``pipeline.reported_done``)."""

from __future__ import annotations

import yaml

from cluster_pilot.apply.pipeline import reported_done
from cluster_pilot.apply.runner import PROXY_ROLE, HostResult, RunResult, _events
from cluster_pilot.resources import resource_dir


def _proxy_task() -> str:
    """The name the role's module task has today, as ansible-runner reports it."""
    (task,) = [t for t in yaml.safe_load((resource_dir("roles") / PROXY_ROLE / "tasks" / "main.yml").read_text())
               if "cp_proxy_apply" in t]
    return task["name"]


def test_pods_created_and_the_proxy_switched_are_every_action_of_the_host():
    results = {"m1": HostResult("m1", total=3)}
    handle = _events(results, lambda host, done, total: None)
    handle({"event": "runner_item_on_ok", "event_data": {"host": "m1", "role": "cp_pods", "task": "Converge pods",
                                                         "res": {"created": ["web-1", "web-2"]}}})
    assert results["m1"].done == 2 and not reported_done(RunResult(results, "successful"))
    handle({"event": "runner_on_ok", "event_data": {"host": "m1", "role": PROXY_ROLE, "task": _proxy_task(),
                                                    "res": {"changed": True}}})
    assert results["m1"].done == 3 and reported_done(RunResult(results, "successful"))


def test_the_playbook_imports_the_proxy_role_by_that_name():
    plays = yaml.safe_load((resource_dir("playbooks") / "apply.yml").read_text())
    roles = {t["ansible.builtin.import_role"]["name"] for t in plays[0]["tasks"] if "ansible.builtin.import_role" in t}
    assert PROXY_ROLE in roles


def test_a_failed_item_says_which_pods_failed_and_why_and_which_started():
    results = {"m1": HostResult("m1", total=2)}
    handle = _events(results, lambda host, done, total: None)
    handle({"event": "runner_item_on_failed", "event_data": {"host": "m1", "role": "cp_pods", "res": {
        "created": ["web-1"], "failed_pods": [{"pod": "bad", "error": "pull nosuch: not found"}], "msg": "bad: ..."}}})
    run = RunResult(results, "failed")
    assert run.failed_pods() == {"bad": "pull nosuch: not found"} and run.created() == {"web-1"}
