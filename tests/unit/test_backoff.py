"""Back-off for pods that cannot run: the schedule and its resets (pure), the planner leaving a waiting pod out
while it plans the rest, and the master's loop keeping the memory, listing and telling it."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster_pilot.apply.pipeline import Outcome, look_all
from cluster_pilot.apply.runner import HostResult, RunResult
from cluster_pilot.host.inventory import load_inventory
from cluster_pilot.host.observed import HostView, Observation
from cluster_pilot.master.backoff import (CREATE, IMAGE_PULL, BackOff, after_run, backoff_events, delay, held,
                                          next_wake, reason_of)
from cluster_pilot.master.reconcile import Reconciler
from cluster_pilot.master.routes.context import Context
from cluster_pilot.master.routes.pods import Pods
from cluster_pilot.model import (Container, Meta, Node, Pod, PodSpec, PodTemplate, ReplicationController, Resources,
                                 to_json)
from cluster_pilot.plan.planner import Create, plan, running_pods, spec_hash
from cluster_pilot.scheduler import schedule
from cluster_pilot.store import SQLiteStore
from cluster_pilot.store.events import EventLog

PULL = "pull cp-no-such-image:404: manifest unknown"
REFUSED = "POST /containers/abc/start: 400 exec: \"/no/such/binary\": no such file or directory"


def bare(name: str, image: str) -> Pod:
    return Pod(Meta(name, {"app": name}), PodSpec((Container("app", image),)))


def create(name: str, image: str = "busybox", node: str = "m1") -> Create:
    pod = bare(name, image)
    return Create(node, pod, None, spec_hash(pod, None))


# --- the schedule (pure) -----------------------------------------------------------------------------------------
def test_the_wait_doubles_from_10_s_to_a_cap_of_5_minutes():
    assert [delay(n) for n in range(1, 9)] == [10, 20, 40, 80, 160, 300, 300, 300]
    assert delay(10_000) == 300


def test_a_failed_pull_is_an_image_pull_back_off_anything_else_dockerd_refuses_a_create_container_error():
    assert reason_of(PULL) == IMAGE_PULL and reason_of(REFUSED) == CREATE
    unknown_host = 'POST /images/create: 500 Get "https://registry-1.docker.io/v2/": dial tcp: no such host'
    assert reason_of(unknown_host) == IMAGE_PULL


def test_each_failure_of_the_same_version_doubles_the_wait_and_holds_the_pod_until_it_ends():
    bad = create("bad", "cp-no-such-image:404")
    wanted = {"bad": bad.spec_hash}
    state = after_run({}, [bad], {"bad": PULL}, [], wanted, now=100.0)
    assert state == {"bad": BackOff(bad.spec_hash, "m1", None, 1, 110.0, IMAGE_PULL, PULL)}
    assert held(state, 109.9) == {("bad", bad.spec_hash)} and held(state, 110.0) == frozenset()
    for attempt, now, wait in ((2, 110.0, 20), (3, 130.0, 40), (4, 170.0, 80)):
        state = after_run(state, [bad], {"bad": PULL}, [], wanted, now)
        assert (state["bad"].attempts, state["bad"].next_try) == (attempt, now + wait)
    assert after_run(state, [], {}, [], wanted, 200.0) == state  # a pass that tried nothing changes nothing


def test_the_memory_is_reset_when_the_spec_changes_when_the_pod_starts_and_when_it_is_no_longer_wanted():
    bad = create("bad", "cp-no-such-image:404")
    state = after_run({}, [bad], {"bad": PULL}, [], {"bad": bad.spec_hash}, 0.0)
    state = after_run(state, [bad], {"bad": PULL}, [], {"bad": bad.spec_hash}, 10.0)
    assert state["bad"].attempts == 2

    fixed = create("bad", "busybox")
    assert after_run(state, [], {}, [], {"bad": fixed.spec_hash}, 11.0) == {}  # a new version: tried at once
    again = after_run(state, [fixed], {"bad": REFUSED}, [], {"bad": fixed.spec_hash}, 11.0)
    assert (again["bad"].attempts, again["bad"].reason, again["bad"].next_try) == (1, CREATE, 21.0)

    assert after_run(state, [bad], {}, ["bad"], {"bad": bad.spec_hash}, 30.0) == {}  # it started
    assert after_run(state, [], {}, [], {}, 30.0) == {}  # deleted
    cut = after_run(state, [bad], {"bad": "not done: the run was abandoned"}, [], {"bad": bad.spec_hash}, 30.0)
    assert cut == state  # a run cut short is not the pod's failure


def test_a_pass_is_due_when_the_earliest_wait_that_a_pass_held_ends():
    state = {"a": BackOff("h", "m1", None, 1, 10.0, IMAGE_PULL, PULL),
             "b": BackOff("h", "m1", None, 3, 40.0, CREATE, REFUSED)}
    assert next_wake(state, 0.0) == 10.0 and next_wake(state, 10.0) == 40.0 and next_wake(state, 40.0) is None


def test_every_failed_attempt_is_one_event_with_the_reason_dockerds_words_and_the_wait():
    first = {"bad": BackOff("h", "m2", None, 1, 10.0, IMAGE_PULL, PULL)}
    (event,) = backoff_events({}, first, 0.0)
    assert (event.kind, event.name, event.reason, event.node) == ("Pod", "bad", IMAGE_PULL, "m2")
    assert event.message == f"{PULL}; attempt 1, next try in 10 s"
    assert backoff_events(first, first, 5.0) == []  # a pass that held it says nothing more


# --- the planner --------------------------------------------------------------------------------------------------
NODES = [Node(f"m{i}", f"10.0.0.{i}", Resources(2000, 4 << 30, 40)) for i in (1, 2)]


def web(replicas: int = 1) -> ReplicationController:
    return ReplicationController(Meta("web", {"app": "web"}), replicas, {"app": "web"},
                                 PodTemplate({"app": "web"}, PodSpec((Container("app", "busybox"),))))


def test_a_held_pod_gets_no_action_and_every_other_pod_is_still_planned():
    fleet = Observation({n.name: HostView(n.name, True) for n in NODES})
    bad = bare("bad", "cp-no-such-image:404")
    sched = schedule([web(), bad], NODES, running_pods(fleet))
    assert sorted(c.name.split("-")[0] for c in plan(sched, fleet).creates) == ["bad", "web"]

    hold = {("bad", spec_hash(bad, None))}
    held_plan = plan(sched, fleet, hold=hold)
    assert [c.name.split("-")[0] for c in held_plan.creates] == ["web"]  # the healthy controller heals
    assert "bad" in {p.name for p in held_plan.kept} and not held_plan.removes

    changed = bare("bad", "busybox")
    again = plan(schedule([web(), changed], NODES, running_pods(fleet)), fleet, hold=hold)
    assert "bad" in {c.name for c in again.creates}  # a new spec is not the version that waits


# --- the master's loop --------------------------------------------------------------------------------------------
@pytest.fixture
def master(tmp_path: Path, monkeypatch):
    """A master (never started) whose passes plan for real over a fleet where ``web``'s pod is gone every time
    (a container killed each pass) and whose runs fail to pull ``bad``'s image."""
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("minions:\n  hosts:\n    m1: {ansible_host: 10.0.0.1}\n")
    store = SQLiteStore(tmp_path / "store.db")
    for obj in (web(), bare("bad", "cp-no-such-image:404")):
        store.put(obj.kind, obj.meta.name, to_json(obj))
    reconciler = Reconciler(store, inventory, tmp_path, load_inventory, events=EventLog(store))
    now = [1000.0]
    reconciler.clock = lambda: now[0]
    runs: list[list[str]] = []

    def converge(request, nodes, inventory, state_dir, options, hooks, watch, first):
        fleet = Observation({n.name: HostView(n.name, True) for n in nodes})
        found = look_all(request, nodes, state_dir, options, fleet, watch)
        result = HostResult("m1", len(found.plan.creates))
        for c in found.plan.creates:
            if c.name == "bad":
                result.failed, result.failed_pods["bad"] = True, PULL
            else:
                result.created.append(c.name)
        runs.append(sorted(c.name.split("-")[0] for c in found.plan.creates))
        return Outcome(found.seen, found.schedule, found.plan, run=RunResult({"m1": result}, "failed"))

    monkeypatch.setattr("cluster_pilot.master.reconcile.converge", converge)
    return reconciler, now, runs, Context(store, reconciler)


def test_a_pod_that_cannot_run_is_retried_on_its_schedule_while_another_heals_every_pass(master):
    reconciler, now, runs, ctx = master
    for t in (0, 1, 5, 10.5, 20, 30.4, 30.6):
        now[0] = 1000.0 + t
        reconciler.run_once()
    assert runs == [["bad", "web"], ["web"], ["web"], ["bad", "web"], ["web"], ["web"], ["bad", "web"]]
    assert reconciler.backoff["bad"].attempts == 3

    item = Pods(ctx).item("bad")
    assert item["currentState"]["status"] == IMAGE_PULL and PULL in item["currentState"]["message"]
    events = [(e.reason, e.message) for e in reconciler.events.list("Pod", "bad")]
    assert [r for r, _ in events if r == IMAGE_PULL] == [IMAGE_PULL] * 3
    assert "Created" not in [r for r, _ in events]  # a failed creation is not reported as made
    assert [r for r, _ in events].count("Scheduled") == 1  # at its first try only
    assert events[-1][1].endswith("attempt 3, next try in 40 s")


def test_listings_show_the_reason_for_a_bare_pod_a_controllers_pod_that_never_started_and_what_a_try_left():
    from cluster_pilot.host.observed import ObservedContainer, ObservedPod
    from cluster_pilot.master.registry import Registry
    from cluster_pilot.store import Record

    rc, pod = web(), bare("bad", "cp-no-such-image:404")
    records = [Record(rc.kind, "web", to_json(rc), 1), Record(pod.kind, "bad", to_json(pod), 2)]
    created = ObservedContainer("x", "y", "odd", "app", "h2", "created", "busybox")  # dockerd refused its start
    fleet = Observation({"m1": HostView("m1", True, (ObservedPod("odd", "m1", "h2", None, "Pod", {}, (created,),
                                                                 ("app",)),))})
    waiting = {"bad": BackOff("h", "m1", None, 2, 30.0, IMAGE_PULL, PULL),
               "web-abcde": BackOff("h", "m1", "web", 1, 10.0, CREATE, REFUSED),
               "odd": BackOff("h2", "m1", None, 1, 10.0, CREATE, REFUSED)}
    listed = {e.name: (e.status, e.message) for e in Registry(records, NODES, fleet, waiting=waiting).pods}
    assert listed == {"bad": (IMAGE_PULL, f"{IMAGE_PULL}: {PULL} (attempt 2)"),
                      "web-abcde": (CREATE, f"{CREATE}: {REFUSED} (attempt 1)"),
                      "odd": (CREATE, f"{CREATE}: {REFUSED} (attempt 1)")}
    assert {e.name: e.status for e in Registry(records, NODES, fleet).pods} == {"bad": "Waiting", "odd": "Waiting"}
