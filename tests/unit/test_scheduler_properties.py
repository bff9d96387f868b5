"""Properties of the scheduler over random fleets, workloads and observed states (hypothesis).

The observed states are made the way they arise: a first schedule of some workload runs, then some of its
pods fail readiness, some nodes leave or stop being ready, and the wanted workload changes.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster_pilot.model import Meta, Node, Pod, PodTemplate, ReplicationController, Resources
from cluster_pilot.scheduler import RunningPod, Schedule, schedule
from cluster_pilot.scheduler import core as scheduler_core
from cluster_pilot.scheduler.reference import place_by_scanning
from tests.unit.scheduler_builders import rc, service, spec

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CPUS = ("0", "100m", "250m", "500m", "1", "2")
MEMORY = ("0", "64Mi", "256Mi", "1Gi", "3Gi")
PORTS = ((), ((80, "TCP"),), ((80, "UDP"),), ((81, "TCP"),), ((80, "TCP"), (80, "UDP")))
SELECTORS = (None, None, None, {"disk": "ssd"}, {"zone": "a"})


@st.composite
def fleets(draw, equal: bool = False) -> list[Node]:
    count = draw(st.integers(1, 8))
    nodes = []
    for n in range(count):
        if equal:
            cpu, memory, pods = 4000, 8 << 30, 110
        else:
            cpu = draw(st.sampled_from((1000, 2000, 4000)))
            memory = draw(st.sampled_from((2 << 30, 8 << 30)))
            pods = draw(st.integers(1, 8))
        labels = {} if equal else {"zone": draw(st.sampled_from("abc")), "disk": draw(st.sampled_from(("ssd", "hdd")))}
        ready = True if equal else draw(st.booleans()) or draw(st.booleans())
        nodes.append(Node(f"n{n}", f"10.0.0.{n}", Resources(cpu, memory, pods), labels, ready))
    return nodes


@st.composite
def pod_specs(draw, node_names: list[str]):
    host = draw(st.sampled_from([None] * 6 + node_names + ["absent"]))
    return spec(cpu=draw(st.sampled_from(CPUS)), memory=draw(st.sampled_from(MEMORY)),
                ports=draw(st.sampled_from(PORTS)), selector=draw(st.sampled_from(SELECTORS)), host=host)


@st.composite
def workloads(draw, node_names: list[str]) -> list:
    objects: list = []
    for n in range(draw(st.integers(0, 4))):
        labels = {"app": f"rc{n}", "tier": draw(st.sampled_from(("front", "back")))}
        template = PodTemplate(labels, draw(pod_specs(node_names)))
        objects.append(ReplicationController(Meta(f"rc{n}"), draw(st.integers(0, 7)), {"app": f"rc{n}"}, template))
    for n in range(draw(st.integers(0, 4))):
        objects.append(Pod(Meta(f"pod{n}", {"tier": "front"}), draw(pod_specs(node_names))))
    if draw(st.booleans()):
        objects.append(service("front", tier="front"))
    return objects


@st.composite
def situations(draw):
    """(nodes, wanted objects, running pods): the running pods come from an earlier schedule."""
    nodes = draw(fleets())
    names = [n.name for n in nodes]
    earlier = draw(workloads(names))
    before = schedule(earlier, [Node(n.name, n.address, n.capacity, n.labels) for n in nodes])
    running = [
        RunningPod(p.name, p.node, dict(p.pod.meta.labels), p.controller, p.pod.spec.cpu_millis,
                   p.pod.spec.memory_bytes, p.pod.spec.host_ports, draw(st.booleans()) or draw(st.booleans()))
        for p in before.placements
    ]
    if draw(st.booleans()):
        wanted = draw(workloads(names))
    else:
        wanted = [ReplicationController(o.meta, draw(st.integers(0, 7)), o.selector, o.template)
                  if isinstance(o, ReplicationController) else o for o in earlier]
    kept_nodes = [n for n in nodes if draw(st.integers(0, 9)) > 0] or nodes[:1]
    return kept_nodes, wanted, running


def end_state(result: Schedule, nodes: list[Node], running: list[RunningPod]):
    """What each ready node holds once the schedule is carried out: (cpu, memory, pods, ports)."""
    ready = {n.name for n in nodes if n.ready}
    removed = {(p.name, p.node) for p in result.removals}
    held: dict[str, list] = {name: [0, 0, 0, []] for name in ready}
    for p in running:
        if p.node in ready and (p.name, p.node) not in removed:
            h = held[p.node]
            h[0] += p.cpu_millis
            h[1] += p.memory_bytes
            h[2] += 1
            h[3] += [(port, proto.upper()) for port, proto in p.host_ports]
    for p in result.created:
        h = held[p.node]
        h[0] += p.pod.spec.cpu_millis
        h[1] += p.pod.spec.memory_bytes
        h[2] += 1
        h[3] += list(p.pod.spec.host_ports)
    return held


@SETTINGS
@given(situations())
def test_no_node_over_capacity_and_no_port_clash(situation):
    nodes, wanted, running = situation
    result = schedule(wanted, nodes, running)
    capacity = {n.name: n.capacity for n in nodes}
    for name, (cpu, memory, pods, ports) in end_state(result, nodes, running).items():
        assert cpu <= capacity[name].cpu_millis
        assert memory <= capacity[name].memory_bytes
        assert pods <= capacity[name].pods
        assert len(ports) == len(set(ports)), ports


@SETTINGS
@given(situations())
def test_every_placement_honours_readiness_selector_and_pin(situation):
    nodes, wanted, running = situation
    result = schedule(wanted, nodes, running)
    by_name = {n.name: n for n in nodes}
    for p in result.placements:
        node = by_name[p.node]
        # a bare pod stays bound to its minion when it stops answering (lost, never moved)
        assert node.ready or (p.existing and p.controller is None)
        assert _matches(p.pod.spec.node_selector, node.labels)
        assert p.pod.spec.host in (None, p.node)


@SETTINGS
@given(situations())
def test_replica_counts_and_names(situation):
    nodes, wanted, running = situation
    result = schedule(wanted, nodes, running)
    names = [p.name for p in result.placements] + [u.pod for u in result.unschedulable]
    assert len(names) == len(set(names))
    for obj in wanted:
        if isinstance(obj, ReplicationController):
            mine = [p for p in result.placements if p.controller == obj.meta.name]
            pending = [u for u in result.unschedulable if u.controller == obj.meta.name]
            assert len(mine) + len(pending) == obj.replicas
            for p in mine:
                assert p.existing or re.fullmatch(re.escape(obj.meta.name) + r"-[0-9a-f]{5}", p.name)
                assert dict(p.pod.meta.labels) == dict(obj.template.labels)
        elif isinstance(obj, Pod):
            assert names.count(obj.meta.name) == 1
    for p in result.placements:
        if p.existing:
            assert any(r.name == p.name and r.node == p.node for r in running)


@SETTINGS
@given(situations(), st.randoms(use_true_random=False))
def test_deterministic_whatever_the_order(situation, rng):
    nodes, wanted, running = situation
    first = schedule(wanted, nodes, running)
    for seq in (nodes, wanted, running):
        rng.shuffle(seq)
    assert schedule(wanted, nodes, running) == first


@SETTINGS
@given(situations())
def test_every_unschedulable_pod_fits_nowhere_for_true_reasons(situation):
    nodes, wanted, running = situation
    result = schedule(wanted, nodes, running)
    held = end_state(result, nodes, running)
    specs = {p.meta.name: p.spec for p in wanted if isinstance(p, Pod)}
    for u in result.unschedulable:
        pod_spec = specs[u.pod] if u.controller is None else next(
            o.template.spec for o in wanted if isinstance(o, ReplicationController) and o.meta.name == u.controller)
        lost = pod_spec.host is not None and pod_spec.host not in {n.name for n in nodes}
        suffix = f" ({pod_spec.host} is not in the inventory)" if lost else ""
        assert u.message == f"0/{len(nodes)} minions are available for {u.pod}: " + ", ".join(u.reasons) + suffix
        failing: Counter[str] = Counter()
        for n in nodes:
            fails = _failures(n, pod_spec, held.get(n.name))
            assert fails, f"{u.pod} fits on {n.name}"
            failing.update(fails)
        for reason in u.reasons:
            count, cause = reason.split(" ", 1)
            if cause.startswith("the pod asks twice"):
                continue
            assert failing[cause] >= int(count), (reason, failing)


def _failures(node: Node, pod_spec, held) -> set[str]:
    """Every cause for which ``pod_spec`` does not fit ``node`` in the end state, worded as the scheduler does."""
    ports = pod_spec.host_ports
    if len(set(ports)) < len(ports):
        return {"the pod asks twice"}
    if not node.ready:
        return {"not ready"}
    if pod_spec.host is not None and pod_spec.host != node.name:
        return {f"not the pinned host {pod_spec.host}"}
    if not _matches(pod_spec.node_selector, node.labels):
        return {"not matching nodeSelector " + ",".join(f"{k}={v}" for k, v in sorted(pod_spec.node_selector.items()))}
    cpu, memory, pods, used_ports = held
    fails = set()
    if cpu + pod_spec.cpu_millis > node.capacity.cpu_millis:
        fails.add("insufficient cpu")
    if memory + pod_spec.memory_bytes > node.capacity.memory_bytes:
        fails.add("insufficient memory")
    if pods + 1 > node.capacity.pods:
        fails.add("too many pods")
    for port, proto in set(ports) & set(used_ports):
        fails.add(f"hostPort {port}/UDP in use" if proto == "UDP" else f"hostPort {port} in use")
    return fails


@SETTINGS
@given(fleets(equal=True), st.lists(st.integers(0, 25), min_size=1, max_size=4), st.data())
def test_replicas_spread_within_one_of_even_on_equal_nodes(nodes, sizes, data):
    objects = [rc(f"rc{n}", size, cpu=data.draw(st.sampled_from(("0", "10m", "20m"))), memory="1Mi")
               for n, size in enumerate(sizes)]
    result = schedule(objects, nodes)
    assert result.unschedulable == ()
    for obj in objects:
        counts = Counter(p.node for p in result.placements if p.controller == obj.meta.name)
        per_node = [counts.get(n.name, 0) for n in nodes]
        assert max(per_node) - min(per_node) <= 1, (obj.meta.name, per_node)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(situations())
def test_the_index_chooses_exactly_what_a_full_scan_chooses(situation):
    nodes, wanted, running = situation
    indexed = schedule(wanted, nodes, running)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(scheduler_core, "place", place_by_scanning)
        scanned = schedule(wanted, nodes, running)
    assert indexed == scanned


def _matches(selector, labels) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())
