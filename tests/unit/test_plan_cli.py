"""``cluster-pilot plan``: exit codes, the JSON shape, the text view; manifests come from a stand-in loader."""

from __future__ import annotations

import json
import types

import pytest

from cluster_pilot.cli import cli, run
from cluster_pilot.cli.plan import as_json, as_text, exit_code
from cluster_pilot.apply.pipeline import empty_fleet
from cluster_pilot.model import Container, Meta, Pod, PodSpec
from cluster_pilot.plan.planner import Create, Plan, Remove, plan as make_plan
from cluster_pilot.scheduler import schedule
from tests.unit.scheduler_builders import node, pod, rc

INVENTORY = """\
minions:
  hosts:
    m1: {cp_capacity: {cpu: "2", memory: 4Gi}, cp_labels: {zone: a}}
    m2: {cp_capacity: {cpu: "2", memory: 4Gi}, cp_labels: {zone: b}}
"""


@pytest.fixture
def inventory(tmp_path):
    path = tmp_path / "hosts.yml"
    path.write_text(INVENTORY)
    return str(path)


@pytest.fixture
def manifests(monkeypatch):
    """Stands in for cluster_pilot.manifests: ``objects[:]`` is what the next plan loads; ``paths`` what it got."""
    fake = types.SimpleNamespace(objects=[], paths=[])

    def load_paths(paths, kind_hint=None, policy=None):
        fake.paths.append(list(paths))
        return list(fake.objects)

    import cluster_pilot.manifests  # the real package stays (the inventory reads its policy module)

    monkeypatch.setattr(cluster_pilot.manifests, "load_paths", load_paths)
    return fake


def plan(capsys, *args: str) -> tuple[int, str, str]:
    code = run(cli, "cluster-pilot", ["plan", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_changes_exit_2_with_the_json_shape(capsys, inventory, manifests):
    manifests.objects = [rc("web", 2, cpu="500m"), pod("solo")]
    code, out, err = plan(capsys, "-f", "web.json", "-f", "solo.yaml", "-i", inventory, "--assume-empty", "-o", "json")
    assert (code, err) == (2, "")
    assert manifests.paths == [["web.json", "solo.yaml"]]
    doc = json.loads(out)
    assert set(doc) == {"placements", "unschedulable", "changes", "objects"}
    assert doc["objects"] == [{"action": "create", "kind": "ReplicationController", "name": "web"}]
    assert all(c["pod"] for c in doc["changes"])  # offline: no proxy or records lines
    assert doc["unschedulable"] == []
    assert sorted(p["node"] for p in doc["placements"] if p["controller"] == "web") == ["m1", "m2"]
    assert all(set(p) == {"pod", "node", "controller"} for p in doc["placements"])
    assert {"pod": "solo", "node": "m1", "controller": None} in doc["placements"]
    assert sorted((c["action"], c["pod"], c["node"]) for c in doc["changes"] if c["pod"]) == sorted(
        ("create", p["pod"], p["node"]) for p in doc["placements"])


def test_nothing_wanted_exit_0(capsys, inventory, manifests):
    code, out, _ = plan(capsys, "-f", "empty.json", "-i", inventory, "--assume-empty")
    assert code == 0 and out.strip() == "no changes (0 pods as wanted)"


def test_unschedulable_exit_1_unless_allowed(capsys, inventory, manifests):
    manifests.objects = [pod("small", cpu="1"), pod("huge", cpu="3")]
    code, out, err = plan(capsys, "-f", "x.json", "-i", inventory, "--assume-empty", "-o", "json")
    assert code == 1
    assert json.loads(out)["unschedulable"] == [{"pod": "huge", "reasons": ["2 insufficient cpu"]}]
    assert "1 pod fits on no minion" in err
    code, out, err = plan(capsys, "-f", "x.json", "-i", inventory, "--assume-empty", "--allow-pending")
    assert (code, err) == (2, "")
    assert "! 0/2 minions are available for huge: 2 insufficient cpu" in out


def test_without_assume_empty_it_observes_and_names_hosts_it_cannot_reach(capsys, inventory, manifests):
    manifests.objects = [pod("solo")]
    code, out, err = plan(capsys, "-f", "x.json", "-i", inventory)
    assert code == 1  # no minion answers, so the pod fits nowhere
    assert "not reachable: m1, m2" in err
    assert "0/2 minions are available for solo: 2 node(s) not ready" in out or "not ready" in out


def test_bad_inventory_exit_1_one_line(capsys, tmp_path, manifests):
    code, out, err = plan(capsys, "-f", "x.json", "-i", str(tmp_path / "missing.yml"), "--assume-empty")
    assert code == 1 and out == ""
    assert err == f"cluster-pilot: error: inventory {tmp_path / 'missing.yml'}: no such file or directory\n"


def test_default_inventory_is_the_sandbox(capsys, manifests):
    from cluster_pilot.home import default_inventory

    default_inventory().parent.mkdir(parents=True, exist_ok=True)
    default_inventory().write_text(INVENTORY)
    manifests.objects = [pod("solo")]
    code, out, _ = plan(capsys, "-f", "x.json", "--assume-empty")
    assert code == 2 and "+ solo on m1" in out


def test_text_view_and_exit_codes_from_a_plan():
    nodes = [node("a"), node("b")]
    sched = schedule([rc("web", 2), pod("solo", cpu="5")], nodes, [])
    todo = make_plan(sched, empty_fleet(nodes))
    lines = as_text(todo, sched).splitlines()
    assert sorted(line.split(" [")[0].strip() for line in lines[:2]) == sorted(
        f"+ {p.name} on {p.node}" for p in sched.placements)
    assert lines[2] == "  ! 0/2 minions are available for solo: 2 insufficient cpu"
    assert lines[3] == "2 to create, 0 to replace, 0 to remove, 1 unschedulable, 0 unchanged"
    assert exit_code(todo, allow_pending=False) == 1 and exit_code(todo, allow_pending=True) == 2


def test_the_json_of_each_kind_of_change_keeps_its_fields_and_their_order():
    def bare(name: str, *images: str) -> Pod:
        return Pod(Meta(name, {}), PodSpec(tuple(Container(f"c{i}", image) for i, image in enumerate(images))))

    todo = Plan(creates=(Create("m1", bare("a", "x", "y"), "rc", "h1"), Create("m2", bare("b", "z"), None, "h2")),
                removes=(Remove("m1", "a", "h0", ("1",), "replaced"), Remove("m3", "c", "h3", ("2",), "pruned")),
                proxy_nodes=("m1",))
    doc = json.loads(as_json(todo, types.SimpleNamespace(placements=[], unschedulable=[])))
    assert json.dumps(doc["changes"]) == (
        '[{"action": "replace", "pod": "a", "node": "m1", "controller": "rc", "images": ["x", "y"]}, '
        '{"action": "create", "pod": "b", "node": "m2", "controller": null, "images": ["z"]}, '
        '{"action": "remove", "pod": "c", "node": "m3", "reason": "pruned"}, '
        '{"action": "proxy", "pod": "", "node": "m1"}]')


def test_no_changes_when_nothing_is_wanted():
    sched = schedule([], [node("a")], [])
    todo = make_plan(sched, empty_fleet([node("a")]))
    assert as_text(todo, sched) == "no changes (0 pods as wanted)" and exit_code(todo, False) == 0


def test_with_the_real_manifest_loader(capsys, inventory, tmp_path):
    pytest.importorskip("cluster_pilot.manifests")
    manifest = tmp_path / "web.json"
    manifest.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
        "spec": {"containers": [{"name": "web", "image": "nginx", "resources": {"requests": {"cpu": "3"}}}]},
    }))
    code, out, _ = plan(capsys, "-f", str(manifest), "-i", inventory, "--assume-empty", "-o", "json")
    assert code == 1
    assert json.loads(out)["unschedulable"] == [{"pod": "web", "reasons": ["2 insufficient cpu"]}]


def test_an_offline_plan_lists_pods_and_objects_not_proxies_or_records(capsys, inventory, manifests):
    from cluster_pilot.model import Service, ServicePort

    manifests.objects = [rc("web", 2), Service(Meta("front", {}), (ServicePort(8000, 80),), {"app": "web"})]
    code, out, err = plan(capsys, "-f", "x.json", "-i", inventory, "--assume-empty")
    assert code == 2 and err == ""
    lines = out.splitlines()
    assert all(line.startswith("  + web-") and line.endswith(" [nginx]") for line in lines[:2]), lines
    assert lines[2:] == ["  + replicationController web", "  + service front",
                         "2 to create, 0 to replace, 0 to remove, 0 unchanged"]


def test_an_observing_plan_names_objects_and_minions_whose_proxy_or_records_change():
    from cluster_pilot.host.records import ObjectChange

    todo = Plan(creates=(Create("m1", Pod(Meta("a", {}), PodSpec((Container("c", "x"),))), None, "h"),),
                proxy_nodes=("m2",), records_nodes=("m1", "m2"))
    text = as_text(todo, types.SimpleNamespace(unschedulable=[]),
                   [ObjectChange("delete", "Service", "old"), ObjectChange("update", "ReplicationController", "w")])
    assert text.splitlines() == ["  + a on m1 [x]", "  - service old", "  ~ replicationController w",
                                 "  ~ service proxy on m2", "  ~ object records on m1, m2",
                                 "1 to create, 0 to replace, 0 to remove, 0 unchanged"]
    offline = as_text(todo, types.SimpleNamespace(unschedulable=[]), offline=True)
    assert "proxy" not in offline and "records" not in offline
