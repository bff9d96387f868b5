"""Pure stages after scheduling: observation grouping, planning, rendering. No host involved."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from cluster_pilot.model import (Container, EnvVar, Meta, Node, Pod, PodSpec, PodTemplate, Port, ReplicationController,
                                 Resources, Volume, VolumeMount, from_json, to_json)
from cluster_pilot.host.observed import HostView, Observation, group_pods
from cluster_pilot.plan.planner import Remove, plan, running_pods, spec_hash
from cluster_pilot.apply.render import (Settings, container_name, playbook_vars, render, render_create,
                                        render_remove, unsafe_yaml)
from cluster_pilot.scheduler import schedule

NODES = [Node(f"m{i}", f"10.0.0.{i}", Resources(2000, 4 << 30, 40), {"zone": "a"}) for i in (1, 2)]


def rc(image="busybox", replicas=2, host_port=None):
    spec = PodSpec((Container("web", image, ("httpd", "-f"), ports=(Port(80, host_port),), cpu_millis=100),))
    return ReplicationController(Meta("web", {"app": "web"}), replicas, {"app": "web"},
                                 PodTemplate({"app": "web"}, spec))


def empty():
    return Observation({n.name: HostView(n.name, True) for n in NODES})


def running(desired, state="running"):
    """Docker's container list after the creations a plan of ``desired`` makes, as the probe reports it."""
    containers = []
    creates = plan(schedule_of(desired), empty()).creates
    for create in creates:
        body = render_create(create, Settings())
        for c in body["containers"]:
            containers.append({"Id": f"{c['name']}-id", "Names": ["/" + c["name"]], "Image": c["body"]["Image"],
                               "Labels": c["body"]["Labels"], "State": state, "_node": create.node})
    hosts = {}
    for n in NODES:
        mine = [c for c in containers if c["_node"] == n.name]
        hosts[n.name] = HostView(n.name, True, group_pods(n.name, mine))
    return Observation(hosts)


def schedule_of(placements):
    from cluster_pilot.scheduler import Schedule

    return Schedule(tuple(placements))


def test_fresh_fleet_plans_one_create_per_replica_and_nothing_when_it_runs():
    objects = [rc()]
    s = schedule(objects, NODES, [])
    p = plan(s, empty())
    assert [c.action for c in p.changes()] == ["create", "create"]
    assert {c.node for c in p.creates} == {"m1", "m2"}  # spread
    seen = running(s.placements)
    s2 = schedule(objects, NODES, running_pods(seen))
    again = plan(s2, seen)
    assert again.empty and len(again.kept) == 2


def test_changed_image_replaces_in_place_creating_before_removing():
    s = schedule([rc()], NODES, [])
    seen = running(s.placements)
    s2 = schedule([rc(image="busybox:2")], NODES, running_pods(seen))
    p = plan(s2, seen)
    assert sorted(c.action for c in p.changes()) == ["replace", "replace"]
    assert all(not r.first for r in p.removes)  # no host port: the old version drains after the new one runs


def test_replacing_a_pod_with_host_ports_frees_them_first():
    s = schedule([rc(host_port=8080)], NODES, [])
    seen = running(s.placements)
    p = plan(schedule([rc(image="busybox:2", host_port=8080)], NODES, running_pods(seen)), seen)
    assert p.removes and all(r.first for r in p.removes)


def test_a_broken_pod_is_replaced_and_its_same_version_removed_first():
    s = schedule([rc(replicas=1)], NODES, [])
    seen = running(s.placements, state="exited")
    p = plan(schedule([rc(replicas=1)], NODES, running_pods(seen)), seen)
    assert len(p.creates) == 1 and len(p.removes) == 1 and p.removes[0].first


def test_scale_down_removes_surplus_and_prune_is_scoped_to_the_applyset():
    s = schedule([rc(replicas=2)], NODES, [])
    seen = running(s.placements)
    p = plan(schedule([rc(replicas=1)], NODES, running_pods(seen)), seen)
    assert [c.action for c in p.changes()] == ["remove"]
    unasked = plan(schedule([], NODES, running_pods(seen)), seen)
    assert unasked.empty  # without --prune, pods of objects not named are left alone
    pruned = plan(schedule([], NODES, running_pods(seen)), seen, prune_applyset="default")
    assert len(pruned.removes) == 2
    other = plan(schedule([], NODES, running_pods(seen)), seen, prune_applyset="other-set")
    assert other.empty


def test_delete_removes_the_pods_of_the_object_everywhere():
    s = schedule([rc(replicas=2)], NODES, [])
    seen = running(s.placements)
    p = plan(schedule([], NODES, running_pods(seen)), seen, deleting=[("ReplicationController", "web")])
    assert sorted(r.reason for r in p.removes) == ["deleted", "deleted"]


def test_unreachable_hosts_get_no_action():
    s = schedule([rc(replicas=2)], NODES, [])
    seen = running(s.placements)
    hosts = dict(seen.hosts)
    hosts["m2"] = HostView("m2", False, error="down")
    partial = Observation(hosts)
    p = plan(schedule([rc(replicas=2)], partial.with_nodes(NODES), running_pods(partial)), partial)
    assert all(a.node == "m1" for a in (*p.creates, *p.removes))


def test_render_makes_docker_bodies_sharing_the_infra_namespace():
    pod = Pod(Meta("redisMaster", {"name": "redis"}),
              PodSpec((Container("redis", "redis", env=(EnvVar("A", "b"),), ports=(Port(6379, 6379),),
                                 memory_bytes=64 << 20, volume_mounts=(VolumeMount("data", "/data"),)),
                       Container("side", "busybox")),
                      volumes=(Volume("data"),)))
    h = spec_hash(pod, None)
    create = plan(schedule([pod], NODES, []), empty()).creates[0]
    body = render_create(create, Settings())
    infra, redis, side = body["containers"]
    assert infra["name"] == container_name("redisMaster", "POD", h)
    assert infra["body"]["HostConfig"]["PortBindings"] == {"6379/tcp": [{"HostIp": "", "HostPort": "6379"}]}
    assert redis["body"]["HostConfig"]["NetworkMode"] == f"container:{infra['name']}"
    assert side["body"]["HostConfig"]["IpcMode"] == f"container:{infra['name']}"
    assert "PortBindings" not in redis["body"]["HostConfig"] and "Hostname" not in redis["body"]
    assert redis["body"]["HostConfig"]["Memory"] == 64 << 20
    assert redis["body"]["Env"] == ["A=b"]
    assert redis["body"]["HostConfig"]["Mounts"] == [
        {"Type": "bind", "Source": f"/var/lib/cluster-pilot/pods/redisMaster/{h}/volumes/data", "Target": "/data",
         "ReadOnly": False}]
    assert "Binds" not in redis["body"]["HostConfig"]
    assert body["dirs"] == [f"/var/lib/cluster-pilot/pods/redisMaster/{h}/volumes/data"] and body["binds"] == []


def test_a_host_path_reaches_docker_through_its_anchor_as_a_structured_mount_never_a_bind_text():
    """``SRC:DST:MODE`` text could be reshaped by a path holding ``:``; the anchor is what ``cp_pods`` checks and
    binds, so a restart cannot follow a swapped path."""
    pod = Pod(Meta("web"), PodSpec((Container("app", "busybox", volume_mounts=(
        VolumeMount("host", "/srv", read_only=True),)),), volumes=(Volume("host", "hostDir", "/srv/data/x"),)))
    create = plan(schedule([pod], NODES, []), empty()).creates[0]
    body = render_create(create, Settings())
    anchored = f"/run/cluster-pilot/binds/web/{create.spec_hash}/host"
    (app,) = body["containers"]
    assert app["body"]["HostConfig"]["Mounts"] == [{"Type": "bind", "Source": anchored, "Target": "/srv",
                                                    "ReadOnly": True}]
    assert body["binds"] == [{"source": "/srv/data/x", "anchor": anchored}] and body["dirs"] == []
    removal = render_remove(Remove("m1", "web", create.spec_hash, ("c1",), "deleted"))
    assert removal["binds"] == f"/run/cluster-pilot/binds/web/{create.spec_hash}"


def test_pods_with_a_host_path_are_made_anew_for_anchored_binds_and_no_other(monkeypatch):
    from cluster_pilot.plan import planner

    host = Pod(Meta("h"), PodSpec((Container("a", "busybox"),), volumes=(Volume("v", "hostDir", "/srv/x"),)))
    empty_dir = Pod(Meta("e"), PodSpec((Container("a", "busybox"),), volumes=(Volume("v"),)))
    before = spec_hash(host, None), spec_hash(empty_dir, None)
    monkeypatch.setattr(planner, "BINDS_VERSION", "older")
    assert spec_hash(host, None) != before[0] and spec_hash(empty_dir, None) == before[1]


def test_manifest_values_reach_ansible_as_unsafe_opaque_data():
    evil = "{{ lookup('pipe', 'touch /tmp/cp-pwned') }}"
    spec = PodSpec((Container("x", "busybox", ("sh", "-c", "echo $(touch /tmp/p2); touch /tmp/p3"),
                              env=(EnvVar("E", evil), EnvVar("N", "80"))),))
    pod = Pod(Meta("x"), spec)
    s = schedule([pod], NODES, [])
    p = plan(s, empty())
    text = unsafe_yaml(playbook_vars(render(p)))
    doc = yaml.safe_load(text.replace("!unsafe", ""))
    batch = json.loads(next(iter(doc["cp_hosts"].values()))["converge"][0]["create"])
    (app,) = (c["body"] for c in batch[0]["containers"])
    assert app["Env"] == [f"E={evil}", "N=80"]  # verbatim, and "80" still a string
    assert app["Entrypoint"] == ["sh", "-c", "echo $(touch /tmp/p2); touch /tmp/p3"]
    for line in text.splitlines():
        if "{{" in line:
            assert "!unsafe" in line


def test_model_json_round_trip_is_exact():
    obj = rc(host_port=8080)
    assert from_json(json.loads(json.dumps(to_json(obj)))) == obj


def test_without_roll_running_controller_pods_keep_their_spec_and_new_replicas_get_the_new_one():
    s = schedule([rc(replicas=2)], NODES, [])
    seen = running(s.placements)
    changed = rc(image="busybox:2", replicas=3)
    p = plan(schedule([changed], NODES, running_pods(seen)), seen, roll=False)
    assert [c.action for c in p.changes()] == ["create"]
    assert p.creates[0].pod.spec.containers[0].image == "busybox:2"


def test_an_evicted_pod_frees_its_host_port_before_its_replacement_starts_there():
    one = [Node("m1", "10.0.0.1", Resources(2000, 4 << 30, 40))]
    s = schedule([rc(replicas=1, host_port=8080)], one, [])
    creates = plan(s, Observation({"m1": HostView("m1", True)})).creates
    body = render_create(creates[0], Settings())
    containers = [{"Id": c["name"], "Names": ["/" + c["name"]], "Image": "busybox", "Labels": c["body"]["Labels"],
                   "State": "running"} for c in body["containers"]]
    seen = Observation({"m1": HostView("m1", True, group_pods("m1", containers))})
    old = creates[0].name
    running_now = [p for p in running_pods(seen) if p.name != old]
    p = plan(schedule([rc(replicas=1, host_port=8080)], one, running_now, retired=[old]), seen, evict=[old])
    assert len(p.creates) == 1 and p.creates[0].name != old
    assert [(r.pod, r.first) for r in p.removes] == [(old, True)]


def test_services_get_backends_on_dynamic_ports_and_removed_pods_are_drained_first():
    from cluster_pilot.model import Service, ServicePort
    from cluster_pilot.plan.proxy import discovery_env

    svc = Service(Meta("web", {}), (ServicePort(8000, 80),), {"app": "web"})
    s = schedule([rc(replicas=2), svc], NODES, [])
    p = plan(s, empty(), services=[svc], addresses={"m1": "10.0.0.1", "m2": "10.0.0.2"})
    assert all(port.host_port >= 30000 for c in p.creates for port in c.ports)
    doc = json.loads(p.proxy)
    assert [(b["address"], b["port"]) for b in doc["services"][0]["backends"]] == sorted(
        (f"10.0.0.{c.node[-1]}", c.ports[0].host_port) for c in p.creates)
    assert set(p.proxy_nodes) == {"m1", "m2"}
    seen = running(s.placements)
    down = plan(schedule([rc(replicas=1), svc], NODES, running_pods(seen)), seen, services=[svc])
    assert len(down.removes) == 1
    assert len(json.loads(down.proxy)["services"][0]["backends"]) == 1  # the leaving pod is out of the proxy
    env = dict(discovery_env([svc], "10.0.0.9"))
    assert env["WEB_SERVICE_HOST"] == "10.0.0.9" and env["WEB_PORT_8000_TCP"] == "tcp://10.0.0.9:8000"


def test_a_broken_pod_is_recreated_on_its_old_dynamic_port_so_no_proxy_changes():
    from cluster_pilot.model import Service, ServicePort
    from cluster_pilot.plan.proxy import document_hash

    svc = Service(Meta("web", {}), (ServicePort(8000, 80),), {"app": "web"})
    first = plan(schedule([rc(replicas=1), svc], NODES, []), empty(), services=[svc])
    body = render_create(first.creates[0], Settings())
    node = first.creates[0].node
    healthy = [{"Id": c["name"], "Names": ["/" + c["name"]], "Image": "busybox", "Labels": c["body"]["Labels"],
                "State": "running"} for c in body["containers"]]
    broken = [c | {"State": "exited", "Status": "Exited (137) 1 second ago"} for c in healthy]  # killed, left down
    hosts = {n.name: HostView(n.name, True, proxy=document_hash(first.proxy)) for n in NODES}
    hosts[node] = HostView(node, True, group_pods(node, broken), proxy=document_hash(first.proxy))
    seen = Observation(hosts)
    heal = plan(schedule([rc(replicas=1), svc], NODES, running_pods(seen)), seen, services=[svc])
    assert len(heal.creates) == 1 and heal.removes[0].first
    assert heal.creates[0].ports == first.creates[0].ports
    assert heal.proxy_nodes == () and heal.drain == ""  # same backend address: the proxies stay as they are


def _pod_after(policy: str, app_state: str, status: str = "", labelled: bool = True, controller: bool = False):
    spec = PodSpec((Container("app", "busybox", ("true",)),), restart_policy=policy)
    desired = rc() if controller else Pod(Meta("job", {"app": "job"}), spec)
    s = schedule([desired], NODES[:1], [])
    body = render_create(plan(s, empty()).creates[0], Settings())
    containers = []
    for c in body["containers"]:
        labels = dict(c["body"]["Labels"])
        if not labelled:
            labels.pop("io.cluster-pilot.restart-policy", None)  # a pod made before the label existed
        infra = labels["io.cluster-pilot.container"] == "POD"
        containers.append({"Id": c["name"], "Names": ["/" + c["name"]], "Image": "busybox", "Labels": labels,
                           "State": "running" if infra else app_state, "Status": "Up 1 second" if infra else status})
    (pod,) = group_pods("m1", containers)
    return pod


def test_an_exited_container_that_its_policy_says_should_run_makes_the_pod_broken():
    # a rebooted host: the infra container is back, the app container failed to join it and stays down
    assert not _pod_after("Always", "exited", "Exited (143) 3 seconds ago").complete
    assert not _pod_after("Always", "exited", "Exited (143) 3 seconds ago", controller=True, labelled=False).complete
    assert not _pod_after("OnFailure", "exited", "Exited (1) 2 seconds ago").complete
    assert _pod_after("OnFailure", "exited", "Exited (0) 2 seconds ago").complete  # done, as asked
    assert _pod_after("Never", "exited", "Exited (1) 2 seconds ago").complete  # final, as asked
    assert _pod_after("Always", "restarting", "Restarting (1) 1 second ago").complete  # dockerd is on it
    assert _pod_after("Always", "exited", "Exited (143) 3 seconds ago", labelled=False).complete  # older bare pod
    assert _pod_after("Always", "running", "Up 2 seconds").complete


def test_a_run_that_reports_every_action_done_needs_no_second_look():
    from cluster_pilot.apply.pipeline import reported_done
    from cluster_pilot.apply.runner import HostResult, RunResult

    assert reported_done(RunResult({"m1": HostResult("m1", 3, 3), "m2": HostResult("m2", 0)}, "successful"))
    assert not reported_done(RunResult({"m1": HostResult("m1", 3, 2)}, "successful"))  # one pod unreported
    assert not reported_done(RunResult({"m1": HostResult("m1", 3, 3, failed=True)}, "failed"))
    assert not reported_done(RunResult({"m1": HostResult("m1", 3, 3, unreachable=True)}, "successful"))
    assert not reported_done(RunResult({"m1": HostResult("m1", 3, 3)}, "canceled"))


def test_the_records_ride_in_the_last_remove_run_of_every_host_that_rewrites_them_when_a_proxy_switches():
    from cluster_pilot.apply.render import Rendered

    one = [{"pod": "old-1", "ids": ["a"], "dir": "/d/old-1"}]
    create = [{"pod": "web-1"}]
    rendered = Rendered({"m1": {"remove": [one, one]}, "m2": {"create": [create], "remove": []},
                         "m3": {"remove": [one]}}, ("m1", "m2", "m3"), '{"services": []}',
                        records_hosts=("m1", "m2"), records_document='{"objects": {}}')
    hosts = playbook_vars(rendered)["cp_hosts"]
    assert [i["records"] for i in hosts["m1"]["remove"]] == [False, True]  # after its last removals
    assert hosts["m2"]["remove"] == [{"remove": "[]", "records": True}]  # nothing removed: a run of its own
    assert [i["records"] for i in hosts["m2"]["converge"]] == [False]  # not before every proxy switched
    assert hosts["m3"]["remove"] == [{"remove": json.dumps(one, sort_keys=True), "records": False}]
    assert playbook_vars(rendered)["cp_records_json"] == '{"objects": {}}'


def test_with_no_proxy_switch_a_host_with_nothing_to_remove_writes_its_records_in_its_converge_run():
    from cluster_pilot.apply.render import Rendered

    one = [{"pod": "old-1", "ids": ["a"], "dir": "/d/old-1"}]
    create = [{"pod": "web-1"}]
    rendered = Rendered({"m1": {"create": [create, create]}, "m2": {}, "m3": {"create": [create], "remove": [one]},
                         "m4": {"create": [create]}}, (), "", records_hosts=("m1", "m2", "m3"),
                        records_document='{"objects": {}}')
    variables = playbook_vars(rendered)
    hosts = variables["cp_hosts"]
    assert [i["records"] for i in hosts["m1"]["converge"]] == [False, True] and hosts["m1"]["remove"] == []
    assert hosts["m2"] == {"converge": [{"remove": "[]", "create": "[]", "records": True}], "remove": []}
    assert [i["records"] for i in hosts["m3"]["converge"]] == [False]  # it removes a pod: records after that
    assert [i["records"] for i in hosts["m3"]["remove"]] == [True]
    assert [i["records"] for i in hosts["m4"]["converge"]] == [False]  # its copy is current
    assert variables["cp_stages"]["remove"] == ["m3"]
    cold = Rendered({"m1": {"create": [create]}, "m2": {"create": [create]}}, (), "", records_hosts=("m1", "m2"),
                    records_document="{}")
    assert playbook_vars(cold)["cp_stages"] == {"drain": [], "converge": ["m1", "m2"], "proxy": [], "remove": []}


def test_each_stage_touches_only_the_hosts_with_work_in_it():
    from cluster_pilot.apply.render import STAGES, Rendered

    create = [{"pod": "web-1"}]
    cold = Rendered({"m1": {"create": [create]}, "m2": {"create": [create]}}, (), "")
    assert playbook_vars(cold)["cp_stages"] == {"drain": [], "converge": ["m1", "m2"], "proxy": [], "remove": []}
    served = Rendered({"m1": {"create": [create]}, "m2": {}}, ("m1", "m2"), '{"services": []}')
    assert playbook_vars(served)["cp_stages"] == {"drain": [], "converge": ["m1"], "proxy": ["m1", "m2"],
                                                  "remove": []}  # every proxy switches, one host makes a pod
    draining = Rendered({"m1": {"remove_first": [create], "remove": [create]}, "m2": {}}, ("m1", "m2"), "{}",
                        drain_document='{"services": []}')
    assert playbook_vars(draining)["cp_stages"] == {"drain": ["m1", "m2"], "converge": ["m1"],
                                                    "proxy": ["m1", "m2"], "remove": ["m1"]}
    records = Rendered({"m1": {}, "m2": {}}, ("m1",), "{}", records_hosts=("m2",), records_document="{}")
    assert playbook_vars(records)["cp_stages"] == {"drain": [], "converge": [], "proxy": ["m1"], "remove": ["m2"]}
    playbook = Path(__file__).resolve().parents[2] / "playbooks" / "apply.yml"
    plays = yaml.safe_load(playbook.read_text())
    assert [play["hosts"] for play in plays] == [f"{{{{ cp_stages.{stage} | default([]) }}}}" for stage in STAGES]
    assert tuple(playbook_vars(draining)["cp_stages"]) == STAGES
