"""The master's memory of minions: grace, loss, return (pure parts of the reconcile loop)."""

from __future__ import annotations

from types import SimpleNamespace

from cluster_pilot.master.reconcile import Memory, Metrics, with_grace
from cluster_pilot.model import Container, Meta, Pod, PodSpec
from cluster_pilot.host.observed import HostView, ObservedContainer, ObservedPod, Observation
from cluster_pilot.plan.planner import Create, Plan, Remove, running_pods


def pod(name: str, node: str, controller: str | None) -> ObservedPod:
    containers = (ObservedContainer("i", "x", name, "POD", "h", "running", "busybox"),
                  ObservedContainer("a", "y", name, "app", "h", "running", "busybox"))
    return ObservedPod(name, node, "h", controller, "ReplicationController" if controller else "Pod", {}, containers,
                       ("app",))


def test_a_silent_minion_keeps_its_pods_for_the_grace_then_is_lost_and_its_controller_pods_evicted_on_return():
    memory = Memory()
    up = Observation({"m2": HostView("m2", True, (pod("web-1", "m2", "web"), pod("solo", "m2", None)))})
    view, evict = with_grace(up, memory, now=0.0, grace=10)
    assert view.hosts["m2"].reachable and not evict

    silent = Observation({"m2": HostView("m2", False, error="timeout")})
    view, evict = with_grace(silent, memory, now=5.0, grace=10)
    assert view.hosts["m2"].stale and {p.name for p in view.pods} == {"web-1", "solo"}
    assert all(p.ready for p in running_pods(view))

    view, evict = with_grace(silent, memory, now=11.0, grace=10)
    assert not view.hosts["m2"].stale and not view.hosts["m2"].reachable
    assert memory.lost == {"m2": frozenset({"web-1"})}  # the bare pod is lost with it, never moved
    assert not any(p.ready for p in running_pods(view))

    back = Observation({"m2": HostView("m2", True, (pod("web-1", "m2", "web"), pod("solo", "m2", None)))})
    view, evict = with_grace(back, memory, now=30.0, grace=10)
    assert evict == {"web-1"} and not memory.lost


def test_metrics_are_prometheus_text_of_this_masters_own():
    m, other = Metrics(), Metrics()
    for seconds in (0.5, 1.0):
        m.passed(seconds)
    m.errors.inc()
    other.passed(9.0)
    text = m.exposition(ready=2, minions=3).decode()
    samples = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line and not line.startswith("#")}
    assert samples["cluster_pilot_reconcile_duration_seconds_count"] == 2
    assert samples["cluster_pilot_reconcile_duration_seconds_sum"] == 1.5
    assert samples["cluster_pilot_reconcile_last_duration_seconds"] == 1.0
    assert samples["cluster_pilot_reconcile_errors_total"] == 1 and samples["cluster_pilot_ansible_runs_total"] == 0
    assert {a: samples[f'cluster_pilot_actions_total{{action="{a}"}}'] for a in ("create", "replace", "remove", "proxy")} \
        == {"create": 0, "replace": 0, "remove": 0, "proxy": 0}
    assert samples["cluster_pilot_minions_ready"] == 2 and samples["cluster_pilot_minions"] == 3
    assert [line for line in text.splitlines() if line.startswith("# TYPE")] == [
        "# TYPE cluster_pilot_reconcile_duration_seconds summary",
        "# TYPE cluster_pilot_reconcile_last_duration_seconds gauge",
        "# TYPE cluster_pilot_ansible_runs_total counter",
        "# TYPE cluster_pilot_reconcile_errors_total counter",
        "# TYPE cluster_pilot_actions_total counter",
        "# TYPE cluster_pilot_minions_ready gauge",
        "# TYPE cluster_pilot_minions gauge",
    ]  # the names /metrics has always had, nothing beside them


def test_a_run_counts_its_plans_changes_by_action():
    m = Metrics()
    pod = Pod(Meta("solo"), PodSpec((Container("app", "busybox"),)))
    todo = Plan(creates=(Create("m1", pod, None, "h"),), removes=(Remove("m2", "old", "h", (), "pruned"),),
                proxy_nodes=("m1", "m2"))
    m.ran(SimpleNamespace(plan=todo, ok=False))
    text = m.exposition(ready=0, minions=0).decode()
    for line in ('cluster_pilot_actions_total{action="create"} 1.0', 'cluster_pilot_actions_total{action="remove"} 1.0',
                 'cluster_pilot_actions_total{action="proxy"} 2.0', 'cluster_pilot_actions_total{action="replace"} 0.0',
                 "cluster_pilot_ansible_runs_total 1.0", "cluster_pilot_reconcile_errors_total 1.0"):
        assert line in text.splitlines()


def test_an_eviction_is_forgotten_only_once_its_minion_answered_without_the_pod():
    from cluster_pilot.master.reconcile import evictions_done

    where = {"web-a": "m1", "web-b": "m2"}
    # m1 answered without web-a: done; m2 did not answer (stopped, dockerd restarting, SSH cut): web-b kept
    assert evictions_done({"web-a", "web-b"}, set(), {"m1"}, where) == {"web-a"}
    assert evictions_done({"web-a"}, {"web-a"}, {"m1"}, where) == set()  # still there: still evicting
    assert evictions_done({"web-a", "web-b"}, set(), set(), where) == set()  # a pass that looked nowhere
    assert evictions_done({"ghost"}, set(), {"m1"}, where) == {"ghost"}  # seen nowhere, some minion answered
    assert evictions_done({"ghost"}, set(), set(), where) == set()
