"""The pod format: what render writes on a host is exactly what observation reads back, the names and values
stay those that running hosts carry, and the copy shipped to the host agrees with the original."""

from __future__ import annotations

import ast
import json
import sys
import urllib.parse

from hypothesis import given
from hypothesis import strategies as st

from cluster_pilot.host import podformat
from cluster_pilot.host.observed import group_pods
from cluster_pilot.host.probe import PROBE
from cluster_pilot.host.podformat import (INFRA, PodRecord, Published, container_name, member_labels, network_owner,
                                          owner_labels,
                                          read_member, read_record)
from cluster_pilot.model import Container, Meta, Node, Port, PodSpec, PodTemplate, ReplicationController, Resources
from cluster_pilot.plan.planner import plan
from cluster_pilot.apply.render import Settings, render_create
from cluster_pilot.scheduler import schedule
from tests.unit.ansible_modules import ROLES, load_file, load_module

HOST_COPY = ROLES / "cp_pods" / "module_utils" / "cp_podformat.py"


def _create(*containers: Container):
    node = Node("m1", "10.0.0.1", Resources(2000, 4 << 30, 40))
    rc = ReplicationController(Meta("web", {"app": "web"}), 1, {"app": "web"},
                               PodTemplate({"b": "2", "a": "1"}, PodSpec(containers)))
    (create,) = plan(schedule([rc], [node], []), _empty(node)).creates
    return create


_WEB = Container("web", "nginx", ports=(Port(80, 8080, name="http"),), cpu_millis=100, memory_bytes=64 << 20)


def _record_labels(create, containers: str, requests: str = "100,67108864") -> dict[str, str]:
    return {"io.cluster-pilot.kind": "ReplicationController",
            "io.cluster-pilot.pod-labels": '{"a": "1", "b": "2"}',
            "io.cluster-pilot.requests": requests,
            "io.cluster-pilot.ports": '[["web", 80, "TCP", 8080, "http"]]',
            "io.cluster-pilot.containers": containers,
            "io.cluster-pilot.applyset": "ci",
            "io.cluster-pilot.restart-policy": "Always"}


def test_an_infra_container_carries_the_labels_hosts_carry_today():
    """Byte for byte what pods made before this module carry, so existing hosts keep being read."""
    create = _create(_WEB, Container("side", "busybox"))
    infra, web, side = render_create(create, Settings(applyset="ci"))["containers"]
    assert infra["name"] == f"cp_{create.name}_POD_{create.spec_hash}"
    assert web["name"] == f"cp_{create.name}_web_{create.spec_hash}"
    membership = {"io.cluster-pilot.pod": create.name, "io.cluster-pilot.controller": "web",
                  "io.cluster-pilot.spec-hash": create.spec_hash}
    assert web["body"]["Labels"] == membership | {"io.cluster-pilot.container": "web"}
    assert infra["body"]["Labels"] == membership | {"io.cluster-pilot.container": "POD"} | _record_labels(
        create, '["web", "side"]')


def test_a_single_container_pod_is_one_container_owning_its_namespace_ports_and_record():
    create = _create(_WEB)
    rendered = render_create(create, Settings(applyset="ci"))
    (web,) = rendered["containers"]
    assert web["name"] == f"cp_{create.name}_web_{create.spec_hash}"
    assert rendered["images"] == ["nginx"]  # no infra image to pull either
    assert web["body"]["Labels"] == {"io.cluster-pilot.pod": create.name, "io.cluster-pilot.controller": "web",
                                     "io.cluster-pilot.spec-hash": create.spec_hash,
                                     "io.cluster-pilot.container": "web"} | _record_labels(create, '["web"]')
    host = web["body"]["HostConfig"]
    assert "NetworkMode" not in host and "IpcMode" not in host
    assert host["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}
    assert host["RestartPolicy"] == {"Name": "always"} and host["Memory"] == 64 << 20
    assert web["body"]["Hostname"] == create.name and web["body"]["ExposedPorts"] == {"80/tcp": {}}
    listed = [{"Id": "1", "Names": ["/" + web["name"]], "State": "running", "Labels": web["body"]["Labels"]}]
    (pod,) = group_pods("m1", listed)
    assert (pod.owner, pod.expected, pod.complete, pod.ports) == ("web", ("web",), True, create.ports)


def test_the_network_owner_is_the_infra_container_only_for_pods_of_several_containers():
    assert network_owner(["app"]) == "app"
    assert network_owner(["app", "side"]) == INFRA


def _empty(node: Node):
    from cluster_pilot.host.observed import HostView, Observation

    return Observation({node.name: HostView(node.name, True)})


_names = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
_records = st.builds(
    PodRecord, pod=_names, spec_hash=st.text("0123456789abcdef", min_size=1, max_size=16),
    controller=st.none() | _names, kind=st.sampled_from(["Pod", "ReplicationController"]),
    labels=st.dictionaries(_names, st.text(max_size=8), max_size=3),
    containers=st.lists(_names, min_size=1, max_size=3, unique=True).map(tuple),
    cpu_millis=st.integers(0, 64000), memory_bytes=st.integers(0, 1 << 40),
    ports=st.lists(st.builds(Published, _names, st.integers(1, 65535), st.sampled_from(["TCP", "UDP"]),
                             st.integers(1, 65535), st.none() | _names), max_size=3).map(tuple),
    applyset=_names, restart_policy=st.sampled_from(["Always", "OnFailure", "Never"]))


@given(_records)
def test_what_the_owner_labels_say_reads_back_as_the_same_record(record):
    assert read_record(owner_labels(record)) == record
    owner = INFRA if len(record.containers) > 1 else record.containers[0]
    assert read_member(owner_labels(record)) == podformat.Member(record.pod, owner, record.spec_hash)


def test_labels_of_older_or_damaged_pods_read_as_empty_values():
    labels = member_labels("web-1", "web", "app", "h1") | {podformat.LABEL_PORTS: "not json",
                                                           podformat.LABEL_REQUESTS: "x,64"}
    record = read_record(labels)
    assert (record.ports, record.cpu_millis, record.memory_bytes) == ((), 0, 64)
    assert record.restart_policy == "Always"  # a controller's pod, made before the label existed
    assert read_record(member_labels("job", None, "app", "h1")).restart_policy == ""
    assert read_member({"other": "label"}) is None


def test_observation_groups_a_pod_with_its_infra_container_first_whatever_dockerd_lists_first():
    record = PodRecord("web-1", "h1", "web", "ReplicationController", {"app": "web"}, ("app", "side"))
    listed = [{"Id": name, "Names": ["/" + container_name("web-1", name, "h1")], "State": "running",
               "Labels": owner_labels(record) if name == INFRA else member_labels("web-1", "web", name, "h1")}
              for name in ("side", INFRA, "app")]
    (pod,) = group_pods("m1", listed)
    assert [c.container for c in pod.containers] == [INFRA, "app", "side"]
    assert (pod.expected, pod.labels, pod.kind, pod.complete) == (("app", "side"), {"app": "web"}, record.kind, True)


def test_the_probe_asks_dockerd_for_the_containers_labelled_as_pod_members():
    wanted = urllib.parse.quote(json.dumps({"label": [podformat.LABEL_POD]}))
    assert f"/containers/json?all=1&filters={wanted} HTTP/1.0" in PROBE and "@" not in PROBE


def test_the_copy_on_the_host_agrees_with_the_pod_format_and_needs_only_the_standard_library():
    copy = load_file(HOST_COPY, "cp_podformat_copy")
    names = [n for n in vars(copy) if n.isupper()]
    assert names, "the copy defines constants"
    assert {n: getattr(copy, n) for n in names} == {n: getattr(podformat, n) for n in names}
    imported = {a.name.split(".")[0] for node in ast.walk(ast.parse(HOST_COPY.read_text()))
                if isinstance(node, (ast.Import, ast.ImportFrom))
                for a in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}


def test_the_cp_pods_module_takes_its_constants_from_the_copy():
    assert load_module("cp_pods", "cp_pods").POD_DIR == podformat.POD_DIR
