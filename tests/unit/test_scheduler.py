"""The scheduler's rules, one by one, and its messages."""

from __future__ import annotations

import random
import re

from cluster_pilot.scheduler import RunningPod, Schedule, schedule
from tests.unit.scheduler_builders import node, pod, rc, running, service


def where(result: Schedule) -> dict[str, str]:
    return {p.name: p.node for p in result.placements}


def per_node(result: Schedule, controller: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for p in result.placements:
        if p.controller == controller:
            counts[p.node] = counts.get(p.node, 0) + 1
    return counts


# feasibility


def test_no_minions_at_all():
    result = schedule([pod("web")], [])
    assert result.placements == ()
    (u,) = result.unschedulable
    assert u.pod == "web" and u.controller is None
    assert u.message == "0/0 minions are available for web: no minions in the inventory"


def test_node_not_ready_is_never_chosen():
    result = schedule([pod("web")], [node("a", ready=False), node("b")])
    assert where(result) == {"web": "b"}


def test_only_not_ready_nodes_explains_so():
    result = schedule([pod("web")], [node("a", ready=False), node("b", ready=False)])
    assert result.unschedulable[0].reasons == ("2 not ready",)


def test_host_port_taken_once_per_node():
    result = schedule([pod("a", ports=(8080,)), pod("b", ports=(8080,))], [node("n1")])
    assert where(result) == {"a": "n1"}
    (u,) = result.unschedulable
    assert u.message == "0/1 minions are available for b: 1 hostPort 8080 in use"


def test_tcp_and_udp_ports_are_apart():
    objects = [pod("dns-tcp", ports=((53, "TCP"),)), pod("dns-udp", ports=((53, "UDP"),))]
    result = schedule(objects, [node("n1")])
    assert where(result) == {"dns-tcp": "n1", "dns-udp": "n1"}


def test_udp_port_in_use_names_the_protocol():
    result = schedule([pod("a", ports=((53, "UDP"),)), pod("b", ports=((53, "UDP"),))], [node("n1")])
    assert result.unschedulable[0].reasons == ("1 hostPort 53/UDP in use",)


def test_port_held_by_a_running_pod_counts():
    held = running("other", "n1", ports=((8080, "tcp"),))
    result = schedule([pod("web", ports=(8080,))], [node("n1"), node("n2")], [held])
    assert where(result) == {"web": "n2"}


def test_pod_asking_twice_for_a_port_can_never_start():
    result = schedule([pod("web", ports=(8080, 8080))], [node("n1")])
    assert result.unschedulable[0].reasons == ("the pod asks twice for hostPort 8080",)


def test_cpu_counts_the_pods_already_running():
    nodes = [node("n1", cpu="4"), node("n2", cpu="4")]
    result = schedule([pod("big", cpu="2")], nodes, [running("x", "n1", cpu="3"), running("y", "n2", cpu="1500m")])
    assert where(result) == {"big": "n2"}


def test_memory_and_pod_count_fit():
    nodes = [node("n1", memory="1Gi"), node("n2", memory="4Gi", pods=1)]
    result = schedule([pod("a", memory="2Gi"), pod("b", memory="512Mi")], nodes)
    assert where(result) == {"a": "n2", "b": "n1"}


def test_the_example_message_of_the_issue():
    nodes = [node("m1", cpu="1"), node("m2", cpu="1"), node("m3", cpu="4")]
    objects = [pod("web-7f3", cpu="2", ports=(8080,))]
    result = schedule(objects, nodes, [running("old", "m3", ports=((8080, "TCP"),))])
    message = "0/3 minions are available for web-7f3: 2 insufficient cpu, 1 hostPort 8080 in use"
    assert result.unschedulable[0].message == message


def test_every_missing_resource_of_a_node_is_counted():
    nodes = [node("m1", cpu="1", memory="1Gi", pods=1)]
    result = schedule([pod("web", cpu="2", memory="2Gi")], nodes, [running("x", "m1")])
    assert result.unschedulable[0].reasons == ("1 insufficient cpu", "1 insufficient memory", "1 too many pods")


def test_node_selector_must_match_node_labels():
    nodes = [node("a", disk="hdd"), node("b", disk="ssd"), node("c")]
    result = schedule([pod("db", selector={"disk": "ssd"})], nodes)
    assert where(result) == {"db": "b"}


def test_node_selector_mismatch_is_explained():
    nodes = [node("a", disk="hdd"), node("b")]
    result = schedule([pod("db", selector={"disk": "ssd", "zone": "z1"})], nodes)
    assert result.unschedulable[0].reasons == ("2 not matching nodeSelector disk=ssd,zone=z1",)


def test_v1beta1_host_pins_the_pod():
    nodes = [node("a"), node("b"), node("c")]
    result = schedule([pod("web", host="b"), pod("other")], nodes)
    assert where(result)["web"] == "b"


def test_pinned_host_full_or_absent():
    nodes = [node("a", cpu="1"), node("b")]
    result = schedule([pod("full", host="a", cpu="2"), pod("lost", host="zz")], nodes)
    reasons = {u.pod: u for u in result.unschedulable}
    assert reasons["full"].reasons == ("1 insufficient cpu", "1 not the pinned host a")
    assert reasons["lost"].message == (
        "0/2 minions are available for lost: 2 not the pinned host zz (zz is not in the inventory)"
    )


# ranking


def test_least_requested_node_wins():
    nodes = [node("a"), node("b"), node("c")]
    result = schedule([pod("web", cpu="500m")], nodes, [running("x", "a", cpu="1"), running("y", "c", memory="1Gi")])
    assert where(result) == {"web": "b"}


def test_least_requested_counts_the_pod_itself_on_unequal_nodes():
    # before the pod, the small node is emptier; with it, the big one is
    nodes = [node("big", cpu="16", memory="64Gi"), node("small", cpu="1", memory="1Gi")]
    result = schedule([pod("web", cpu="800m", memory="800Mi")], nodes, [running("x", "big", cpu="1")])
    assert where(result) == {"web": "big"}


def test_ties_go_to_the_first_node_by_name():
    result = schedule([pod("web")], [node("c"), node("b"), node("a")])
    assert where(result) == {"web": "a"}


def test_replicas_spread_over_nodes_before_load_counts():
    nodes = [node("a"), node("b"), node("c")]
    # b and c are loaded, yet the second and third replica go there rather than next to the first
    busy = [running("x", "b", cpu="3"), running("y", "c", cpu="3")]
    result = schedule([rc("web", 3, cpu="100m")], nodes, busy)
    assert per_node(result, "web") == {"a": 1, "b": 1, "c": 1}


def test_replicas_spread_over_zones():
    nodes = [node("a1", zone="a"), node("a2", zone="a"), node("b1", zone="b"), node("b2", zone="b")]
    result = schedule([rc("web", 2)], nodes)
    zones = sorted(p.node[0] for p in result.placements)
    assert zones == ["a", "b"]


def test_zone_spread_never_doubles_up_a_node():
    # one node in zone a, three in zone b: four replicas take one node each
    nodes = [node("a1", zone="a"), node("b1", zone="b"), node("b2", zone="b"), node("b3", zone="b")]
    result = schedule([rc("web", 4)], nodes)
    assert sorted(per_node(result, "web").values()) == [1, 1, 1, 1]


def test_service_spreads_pods_of_different_controllers():
    nodes = [node("a"), node("b")]
    objects = [rc("v1", 1, labels={"svc": "f"}), rc("v2", 1, labels={"svc": "f"}), service("front", svc="f")]
    result = schedule(objects, nodes)
    assert sorted(p.node for p in result.placements) == ["a", "b"]


def test_without_a_service_unrelated_pods_share_the_emptiest_node():
    nodes = [node("a"), node("b")]
    result = schedule([rc("v1", 1), rc("v2", 1)], nodes, [running("x", "b", cpu="100m")])
    assert sorted(p.node for p in result.placements) == ["a", "a"]


def test_same_input_in_any_order_gives_the_same_schedule():
    nodes = [node(f"n{i}", cpu=str(2 + i % 3), zone=f"z{i % 2}") for i in range(6)]
    objects = [rc("web", 5, cpu="300m", labels={"tier": "f"}), rc("api", 4, memory="1Gi"), pod("solo", cpu="1"),
               pod("pinned", host="n3"), service("front", tier="f")]
    running_pods = [running("web-aaaaa", "n1", "web"), running("x", "n2", cpu="1")]
    first = schedule(objects, nodes, running_pods)
    rng = random.Random(7)
    for _ in range(5):
        rng.shuffle(objects), rng.shuffle(nodes), rng.shuffle(running_pods)
        assert schedule(objects, nodes, running_pods) == first


# replica counts


def test_missing_replicas_are_created_with_generated_names():
    result = schedule([rc("web", 3)], [node("a"), node("b")])
    names = [p.name for p in result.placements]
    assert len(set(names)) == 3
    assert all(re.fullmatch(r"web-[0-9a-f]{5}", n) for n in names)
    assert all(p.controller == "web" and not p.existing for p in result.placements)
    assert result.placements[0].pod.meta.labels == {"app": "web"}


def test_generated_names_are_stable_and_avoid_taken_ones():
    first = schedule([rc("web", 2)], [node("a")])
    taken = first.placements[0].name
    again = schedule([rc("web", 2), pod(taken)], [node("a")])
    assert first == schedule([rc("web", 2)], [node("a")])
    replica_names = {p.name for p in again.placements if p.controller == "web"}
    assert taken not in replica_names and len(replica_names) == 2


def test_running_replicas_count_and_stay_put():
    nodes = [node("a"), node("b")]
    objects = [rc("web", 3)]
    existing = [running("web-1", "a", "web"), running("web-2", "a", "web")]
    result = schedule(objects, nodes, existing)
    kept = [p for p in result.placements if p.existing]
    assert sorted((p.name, p.node) for p in kept) == [("web-1", "a"), ("web-2", "a")]
    (new,) = result.created
    assert new.node == "b"
    assert result.removals == ()


def test_a_changed_spec_still_counts_as_a_replica():
    changed = RunningPod("web-1", "a", {"app": "web"}, "web", spec_hash="old")
    result = schedule([rc("web", 1, cpu="1")], [node("a")], [changed])
    assert [(p.name, p.existing) for p in result.placements] == [("web-1", True)]
    assert result.placements[0].pod.spec.containers[0].cpu_millis == 1000


def test_surplus_goes_not_ready_first():
    existing = [running("web-1", "a", "web"), running("web-2", "b", "web", ready=False), running("web-3", "c", "web")]
    result = schedule([rc("web", 2)], [node("a"), node("b"), node("c")], existing)
    assert [p.name for p in result.removals] == ["web-2"]


def test_surplus_comes_off_the_most_loaded_nodes():
    nodes = [node("a"), node("b"), node("c")]
    existing = [running("web-1", "a", "web"), running("web-2", "b", "web"), running("web-3", "c", "web"),
                running("web-4", "c", "web"), running("hog", "b", cpu="3")]
    result = schedule([rc("web", 2)], nodes, existing)
    assert sorted((p.name, p.node) for p in result.removals) == [("web-2", "b"), ("web-4", "c")]


def test_scale_to_zero_removes_every_replica():
    existing = [running(f"web-{i}", "a", "web") for i in range(4)]
    result = schedule([rc("web", 0)], [node("a")], existing)
    assert len(result.removals) == 4 and result.placements == ()


def test_removed_surplus_frees_room_for_others():
    existing = [running("a-1", "n1", "a", cpu="3"), running("a-2", "n1", "a", cpu="3", ready=False)]
    result = schedule([rc("a", 1, cpu="3"), pod("b", cpu="3")], [node("n1", cpu="6")], existing)
    assert where(result)["b"] == "n1" and [p.name for p in result.removals] == ["a-2"]


def test_orphan_pod_matching_the_selector_is_adopted():
    orphan = running("old", "a", controller=None, labels={"app": "web"})
    result = schedule([rc("web", 1)], [node("a")], [orphan])
    assert [(p.name, p.controller, p.existing) for p in result.placements] == [("old", "web", True)]


def test_pods_of_objects_nobody_wants_hold_resources_but_stay():
    stranger = running("stranger", "a", controller="gone-rc", cpu="3")
    result = schedule([pod("web", cpu="2")], [node("a"), node("b")], [stranger])
    assert where(result) == {"web": "b"} and result.removals == ()


def test_duplicate_of_a_pod_is_removed():
    twins = [running("web", "a"), running("web", "b")]
    result = schedule([pod("web")], [node("a"), node("b")], twins)
    assert [(p.name, p.node, p.existing) for p in result.placements] == [("web", "a", True)]
    assert [(p.name, p.node) for p in result.removals] == [("web", "b")]


# nodes gone or not ready


def test_pods_on_a_gone_node_are_replaced():
    existing = [running("web-1", "gone", "web"), running("web-2", "a", "web"), running("solo", "gone")]
    result = schedule([rc("web", 2), pod("solo")], [node("a"), node("b")], existing)
    assert sorted(p.name for p in result.removals) == ["solo", "web-1"]
    assert where(result)["solo"] in {"a", "b"}
    assert sorted(per_node(result, "web").values()) == [1, 1]
    assert "web-1" not in where(result)


def test_pods_on_a_not_ready_node_are_replaced():
    existing = [running("web-1", "a", "web")]
    result = schedule([rc("web", 1)], [node("a", ready=False), node("b")], existing)
    assert [p.name for p in result.removals] == ["web-1"]
    assert [p.node for p in result.placements] == ["b"]


def test_existing_pods_never_move_to_balance():
    existing = [running(f"web-{i}", "a", "web") for i in range(3)]
    result = schedule([rc("web", 3)], [node("a"), node("b"), node("c")], existing)
    assert all(p.existing and p.node == "a" for p in result.placements) and result.removals == ()


def test_a_pod_whose_node_no_longer_matches_its_selector_moves():
    existing = [running("db", "a")]
    result = schedule([pod("db", selector={"disk": "ssd"})], [node("a"), node("b", disk="ssd")], existing)
    assert where(result) == {"db": "b"} and [p.node for p in result.removals] == ["a"]


def test_unschedulable_replicas_are_listed_each():
    result = schedule([rc("web", 3, cpu="3")], [node("a"), node("b")])
    assert len(result.placements) == 2
    (u,) = result.unschedulable
    assert u.controller == "web" and u.reasons == ("2 insufficient cpu",)
    assert u.message.startswith(f"0/2 minions are available for {u.pod}: ")
