"""The master's memory of minions: grace, loss, return (pure parts of the reconcile loop)."""

from __future__ import annotations

from cluster_pilot.master.reconcile import Memory, Metrics, with_grace
from cluster_pilot.host.observe import HostView, ObservedContainer, ObservedPod, Observation
from cluster_pilot.plan.planner import running_pods


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


def test_metrics_are_prometheus_text():
    m = Metrics(passes=3, runs=1, errors=0, duration_sum=1.5)
    text = m.prometheus(ready=2, minions=3)
    assert "cluster_pilot_reconcile_duration_seconds_count 3" in text
    assert 'cluster_pilot_actions_total{action="create"} 0' in text
    assert "cluster_pilot_minions_ready 2" in text and text.endswith("\n")
