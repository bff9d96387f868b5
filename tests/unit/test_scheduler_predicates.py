"""The scheduling rule is the list of predicates: each rejects what it should, and every user follows the list."""

from __future__ import annotations

import pytest

from cluster_pilot.scheduler import core as scheduler_core
from cluster_pilot.scheduler import explain, predicates, schedule
from cluster_pilot.scheduler.fleet import Fleet, Shape
from cluster_pilot.scheduler.predicates import PREDICATES, failures, feasible, hold, take
from cluster_pilot.scheduler.reference import place_by_scanning
from tests.unit.scheduler_builders import node, pod, rc, spec

PLAIN = Shape.of(spec(cpu="1", memory="1Gi", ports=(8080,)))


def lone_node(shape: Shape = PLAIN, held: Shape | None = None, pods: int = 110, **kw) -> Fleet:
    fleet = Fleet([node("n1", cpu="4", memory="8Gi", pods=pods, **kw)], {shape.selector})
    if held is not None:
        take(fleet, 0, held)
    return fleet


# each case: the predicate that should fail alone, the fleet and shape that make it fail, its reasons
CASES = {
    "node_ready": (lambda: lone_node(ready=False), PLAIN, ("not ready",)),
    "pinned_host": (lone_node, Shape.of(spec(host="n2")), ("not the pinned host n2",)),
    "node_selector": (
        lambda: lone_node(Shape.of(spec(selector={"disk": "ssd", "zone": "a"})), disk="hdd"),
        Shape.of(spec(selector={"disk": "ssd", "zone": "a"})),
        ("not matching nodeSelector disk=ssd,zone=a",),
    ),
    "enough_cpu": (lambda: lone_node(held=Shape.of(spec(cpu="3500m"))), PLAIN, ("insufficient cpu",)),
    "enough_memory": (lambda: lone_node(held=Shape.of(spec(memory="7680Mi"))), PLAIN, ("insufficient memory",)),
    "free_pod_slot": (lambda: lone_node(held=Shape.of(spec()), pods=1), PLAIN, ("too many pods",)),
    "free_host_ports": (
        lambda: lone_node(held=Shape.of(spec(ports=(8080, (53, "UDP"))))),
        Shape.of(spec(ports=(8080, (53, "UDP"), 9090))),
        ("hostPort 53/UDP in use", "hostPort 8080 in use"),
    ),
}


def test_every_predicate_has_a_case():
    assert sorted(CASES) == sorted(_name(p) for p in PREDICATES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_predicate_alone_rejects_what_it_should(name):
    make, shape, reasons = CASES[name]
    fleet = make()
    for predicate in PREDICATES:
        verdict = predicate(fleet, 0, shape)
        assert verdict == (reasons if _name(predicate) == name else None), _name(predicate)
    assert not feasible(fleet, 0, shape)
    assert failures(fleet, 0, shape) == reasons
    assert explain.reasons(fleet, shape) == tuple(f"1 {r}" for r in reasons)


def test_a_node_with_room_passes_every_predicate():
    fleet = lone_node(held=Shape.of(spec(cpu="3", memory="7Gi", ports=(8081,))), pods=2)
    assert [p(fleet, 0, PLAIN) for p in PREDICATES] == [None] * len(PREDICATES)
    assert feasible(fleet, 0, PLAIN) and failures(fleet, 0, PLAIN) == ()


def test_explain_lists_every_failing_fit_but_only_the_first_failing_filter():
    full = Shape.of(spec(cpu="3500m", memory="7680Mi", ports=(8080,)))
    fleet = Fleet([node("a"), node("b", disk="hdd"), node("c", ready=False)], {()})
    for i in range(3):
        take(fleet, i, full)
    pinned_elsewhere = Shape.of(spec(cpu="1", memory="1Gi", ports=(8080,), host="b"))
    assert explain.reasons(fleet, PLAIN) == (
        "2 hostPort 8080 in use", "2 insufficient cpu", "2 insufficient memory", "1 not ready")
    # a node filter hides the fits: a is counted for the pin alone, c for readiness, b for every fit
    assert explain.reasons(fleet, pinned_elsewhere) == (
        "1 hostPort 8080 in use", "1 insufficient cpu", "1 insufficient memory", "1 not ready",
        "1 not the pinned host b")


def test_hold_releases_what_it_counted():
    fleet = lone_node()
    shape = Shape.of(spec(cpu="2", memory="3Gi"))
    hold(fleet, 0, shape)
    assert (fleet.used_cpu[0], fleet.used_mem[0], fleet.used_pods[0]) == (2000, 3 << 30, 1)
    hold(fleet, 0, shape, delta=-1)
    assert (fleet.used_cpu[0], fleet.used_mem[0], fleet.used_pods[0]) == (0, 0, 0)


def cordoned(fleet: Fleet, i: int, shape: Shape) -> tuple[str, ...] | None:
    return ("cordoned",) if fleet.nodes[i].labels.get("cordon") == "true" else None


@pytest.mark.parametrize("scan", [False, True], ids=["index", "reference"])
def test_a_rule_added_to_the_list_is_obeyed_by_the_index_the_reference_and_explain(scan, monkeypatch):
    monkeypatch.setattr(predicates, "NODE_FILTERS", (*predicates.NODE_FILTERS, cordoned))
    monkeypatch.setattr(predicates, "PREDICATES", (*predicates.PREDICATES, cordoned))
    if scan:
        monkeypatch.setattr(scheduler_core, "place", place_by_scanning)
    nodes = [node("a", cordon="true"), node("b", cpu="2"), node("c", cpu="2", cordon="true")]
    result = schedule([rc("web", 3, cpu="500m"), pod("solo", cpu="1")], nodes)
    assert [p.node for p in result.placements] == ["b", "b", "b"]
    reasons = {u.reasons for u in result.unschedulable}
    assert reasons == {("2 cordoned", "1 insufficient cpu")}


def test_a_pre_filter_skips_only_predicates_that_could_not_reject():
    fleet = lone_node(held=Shape.of(spec(ports=(8080, (53, "UDP")))))
    for predicate, pre_filter in predicates.PRE_FILTERS.items():
        for shape in (PLAIN, Shape.of(spec(cpu="1")), Shape.of(spec(ports=((53, "UDP"),)))):
            if not pre_filter(shape):
                assert predicate(fleet, 0, shape) is None
    assert not predicates.can_reject(predicates.free_host_ports, Shape.of(spec(cpu="1")))
    assert predicates.can_reject(predicates.free_host_ports, PLAIN)


def _name(predicate) -> str:
    return getattr(predicate, "__name__", None) or next(
        name for name, value in vars(predicates).items() if value is predicate)
