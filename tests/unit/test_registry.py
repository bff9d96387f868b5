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
    assert b.controllers == [{"name": "web", "desired": 3, "running": 2, "owner": ""}]
    assert [(e["pod"], e["up"]) for e in b.services[0]["endpoints"]] == [
        ("other-x", True), ("web-a", True), ("web-b", True)]


def _cli_applied(master) -> None:
    """The fleet's records on m1 hold a controller and a service a CLI apply set manages (the master's store
    has neither), as after the README's first command."""
    from cluster_pilot.host.records import Owner, Records, update
    from cluster_pilot.model import Service, ServicePort

    other = ReplicationController(Meta("other"), 1, {"app": "web"}, PodTemplate({"app": "web"}, SPEC))
    svc = Service(Meta("cli-svc"), (ServicePort(80),), {"app": "web"})
    records = update(Records(), [other, svc], (), Owner("default"), version=7).records
    seen = master.reconciler.last
    master.reconciler.last = Observation(
        {n: HostView(v.node, v.reachable, v.pods, records=records.encode() if n == "m1" else None)
         for n, v in seen.hosts.items()})


def test_the_master_lists_what_a_cli_apply_set_manages_read_only_and_marked(master):
    from cluster_pilot.master.routes.services import Services
    from cluster_pilot.master.ui.board import board

    _cli_applied(master)
    rcs = {i["id"]: i for i in Controllers(master).items()}
    assert sorted(rcs) == ["other", "web"]
    assert rcs["other"]["managedBy"] == "apply set 'default'" and rcs["other"]["readOnly"] is True
    assert rcs["other"]["currentState"]["replicas"] == 1 and "managedBy" not in rcs["web"]
    assert Controllers(master).item("other")["desiredState"]["replicas"] == 1
    assert [(i["id"], i.get("managedBy")) for i in Services(master).items()] == [("cli-svc", "apply set 'default'")]
    assert Pods(master).item("other-x")["managedBy"] == "apply set 'default'"
    assert "managedBy" not in Pods(master).item("web-a")
    b = board(master.registry(), {}, [])
    assert [(c["name"], c["owner"]) for c in b.controllers] == [("other", "apply set 'default'"), ("web", "")]
    assert [(s["name"], s["owner"]) for s in b.services] == [("cli-svc", "apply set 'default'")]
    assert [r.name for r in master.store.list()] == ["solo", "waiting", "web"]  # nothing copied into the store


def test_writes_to_what_a_cli_apply_set_manages_are_refused_with_its_owner(master, monkeypatch):
    import json
    import urllib.error
    import urllib.request

    from cluster_pilot.master.api import Settings, create_app
    from tests.unit.test_kubecfg import start

    _cli_applied(master)
    monkeypatch.setattr(master.reconciler, "term", 1)  # it leads: evictions are the leader's
    url, server, thread = start(create_app(master.store, master.reconciler, Settings(token="t")))

    def call(method: str, path: str, payload: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(url + path, data, method=method, headers={
            "Authorization": "Bearer t", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, json.load(answer)
        except urllib.error.HTTPError as refused:
            return refused.code, json.load(refused)

    body = {"id": "other", "kind": "ReplicationController", "desiredState": {"replicas": 5,
            "replicaSelector": {"app": "web"}, "podTemplate": {"labels": {"app": "web"}, "desiredState": {
                "manifest": {"version": "v1beta1", "containers": [{"name": "app", "image": "busybox"}]}}}}}
    try:
        for method, path, payload in (("PUT", "/api/v1beta1/replicationControllers/other", body),
                                      ("DELETE", "/api/v1beta1/replicationControllers/other", None),
                                      ("DELETE", "/api/v1beta1/services/cli-svc", None),
                                      ("DELETE", "/api/v1beta1/pods/other-x", None),
                                      ("POST", "/api/v1beta1/replicationControllers", body)):
            code, answer = call(method, path, payload)
            assert code == 409, (method, path, answer)
            assert "is managed by apply set 'default'; change it with cluster-pilot apply" in answer["message"]
        assert master.reconciler.snapshot().leaving == frozenset()  # the CLI's pod was not evicted
        assert call("DELETE", "/api/v1beta1/pods/web-a")[0] == 200  # the master's own: still deletable
    finally:
        server.should_exit = True
        thread.join(10)


def test_the_first_write_to_an_empty_store_is_listed_at_once(tmp_path):
    """Pods caches its list by the store's version: the empty store's must differ from the first write's (1)."""
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("minions:\n  hosts:\n    m1: {ansible_host: 10.0.0.1}\n")
    store = SQLiteStore(tmp_path / "empty.db")
    ctx = Context(store, Reconciler(store, inventory, tmp_path, load_inventory))
    pods = Pods(ctx)
    assert pods.items() == []
    store.put("Pod", "first", to_json(Pod(Meta("first"), SPEC)))
    assert [i["id"] for i in pods.items()] == ["first"]
