"""The registry: the one reading of an observation beside the store that the API and ``get`` both print."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster_pilot.cli.get import View, collect
from cluster_pilot.host.inventory import load_inventory
from cluster_pilot.host.observed import HostView, Observation, ObservedContainer, ObservedPod
from cluster_pilot.master.reconcile import Reconciler
from cluster_pilot.master.registry import Registry
from cluster_pilot.master.routes.context import Context
from cluster_pilot.master.routes.controllers import Controllers
from cluster_pilot.master.routes.pods import Pods
from cluster_pilot.model import (REPLICATION_CONTROLLER, Container, Meta, Pod, PodSpec, PodTemplate,
                                 ReplicationController, to_json)
from cluster_pilot.store import SQLiteStore

SPEC = PodSpec((Container("app", "busybox"),))


def running(name: str, node: str, controller: str | None, labels: dict[str, str],
            image: str = "busybox") -> ObservedPod:
    containers = (ObservedContainer(name + "-i", "x", name, "POD", "h", "running", "busybox"),
                  ObservedContainer(name + "-a", "y", name, "app", "h", "running", image))
    return ObservedPod(name, node, "h", controller, "ReplicationController" if controller else "Pod", labels,
                       containers, ("app",))


@pytest.fixture
def master(tmp_path: Path):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("minions:\n  hosts:\n    m1: {ansible_host: 10.0.0.1}\n    m2: {ansible_host: 10.0.0.2}\n")
    store = SQLiteStore(tmp_path / "store.db")
    rc = ReplicationController(Meta("web"), 3, {"app": "web"}, PodTemplate({"app": "web"}, SPEC))
    store.put(rc.kind, "web", to_json(rc))
    for name, labels in (("solo", {"app": "solo"}), ("waiting", {"app": "web"})):
        pod = Pod(Meta(name, labels), SPEC)
        store.put(pod.kind, name, to_json(pod))
    reconciler = Reconciler(store, inventory, tmp_path, load_inventory)  # never started
    reconciler.last = Observation({
        "m1": HostView("m1", True, (running("web-a", "m1", "web", {"app": "web"}),
                                    running("solo", "m1", None, {"app": "solo"}),
                                    running("other-x", "m1", "other", {"app": "web"}, "nginx"))),
        "m2": HostView("m2", True, (running("web-b", "m2", "web", {"app": "web"}),)),
    })
    return Context(store, reconciler)


def test_each_running_pod_counts_for_one_controller_and_a_waiting_bare_pod_for_none(master):
    registry = master.registry()
    counted = {c.name: sorted(e.name for e in c.pods) for c in registry.controllers()}
    # other-x matches web's selector but names a controller of its own: it stays that one's, as the
    # scheduler counts it; "waiting" (a stored bare pod that does not run) matches it too and counts nowhere
    assert counted == {"other": ["other-x"], "web": ["web-a", "web-b"]}
    assert [(e.name, e.status, e.host, e.host_ip) for e in registry.pods] == [
        ("other-x", "Running", "m1", "10.0.0.1"), ("solo", "Running", "m1", "10.0.0.1"),
        ("web-a", "Running", "m1", "10.0.0.1"), ("web-b", "Running", "m2", "10.0.0.2"), ("waiting", "Waiting", "", "")]


def test_the_api_and_get_print_the_same_counts(master):
    api = {i["id"]: i["currentState"]["replicas"] for i in Controllers(master).items()}
    seen = master.reconciler.snapshot().seen
    rows = collect(REPLICATION_CONTROLLER, View(master.store, master.reconciler.nodes(), seen))
    assert api == {"web": 2} and {r["id"]: r["current"] for r in rows} == {"web": 2, "other": 1}


def test_a_pod_deleted_through_the_api_is_gone_from_lists_and_counts_at_once(master):
    pods = Pods(master)
    assert pods.item("web-a") is not None
    master.reconciler.evict("web-a")
    assert master.reconciler.snapshot().leaving == frozenset({"web-a"})
    assert pods.item("web-a") is None and b'"web-a"' not in pods.body()
    assert {i["id"]: i["currentState"]["replicas"] for i in Controllers(master).items()} == {"web": 1}


def test_a_minion_past_its_grace_keeps_its_pods_listed_as_unknown_and_is_not_ready(master):
    lost = Observation({"m1": HostView("m1", False, (running("solo", "m1", None, {"app": "solo"}),), error="timeout"),
                        "m2": HostView("m2", False, (running("web-b", "m2", "web", {"app": "web"}),), stale=True)})
    registry = Registry(master.store.list(), master.reconciler.nodes(), lost)
    assert {e.name: e.status for e in registry.pods if e.observed} == {"solo": "Unknown", "web-b": "Running"}
    assert [(m.node.name, m.ready) for m in registry.minions()] == [("m1", False), ("m2", True)]


def test_the_dashboard_reads_the_same_registry(master):
    from cluster_pilot.master.ui.board import board
    from cluster_pilot.model import Service, ServicePort

    svc = Service(Meta("front"), (ServicePort(80),), {"app": "web"})
    master.store.put(svc.kind, "front", to_json(svc))
    b = board(master.registry(), {}, [])
    assert [(m["name"], [p["name"] for p in m["pods"]]) for m in b.minions] == [
        ("m1", ["other-x", "solo", "web-a"]), ("m2", ["web-b"])]
    # the controllers the store has, counted as the API counts them (other-x belongs to "other", not "web")
    assert b.controllers == [{"name": "web", "desired": 3, "running": 2}]
    assert [(e["pod"], e["up"]) for e in b.services[0]["endpoints"]] == [
        ("other-x", True), ("web-a", True), ("web-b", True)]
