"""Both API versions into one model: the 2014 rules, the v1 rules, lenient reading of 2014-client bodies."""

from __future__ import annotations

import dataclasses
import json

import pytest

from cluster_pilot import model
from cluster_pilot.errors import UserError, ValidationFailed
from cluster_pilot.manifests import load_paths, normalise_object
from cluster_pilot.manifests.normalise import container_name_from_image, kind_from_hint
from cluster_pilot.api import to_manifest
from cluster_pilot.resources import resource_dir
from tests.unit.manifests_support import errors, objects, only

EXAMPLES = resource_dir("examples")


def test_the_seed_documents_load_exactly_as_written():
    master, slaves = load_paths([str(EXAMPLES / "seed-2014")])
    assert isinstance(master, model.Pod) and master.meta.name == "redis-master-pod"
    assert master.meta.labels == {"name": "redis-master"} and master.meta.api_version == "v1beta1"
    assert master.spec.containers[0].image == "redis" and master.spec.containers[0].ports[0].container_port == 6379
    assert isinstance(slaves, model.ReplicationController)
    assert slaves.meta.name == "redisSlaveController", "2014 ids are kept as written"
    assert slaves.replicas == 2 and slaves.selector == {"name": "redisslave"}
    assert slaves.template.labels == {"name": "redisslave"}
    [container] = slaves.template.spec.containers
    assert container.name == "redis", "a nameless container is named after its image"
    assert "REDIS_MASTER_SERVICE_HOST" in " ".join(container.command)
    assert slaves.meta.source.file.endswith("redis-slave-controller.json") and slaves.meta.source.line == 1


def _without_version(obj: model.Object) -> model.Object:
    return dataclasses.replace(obj, meta=dataclasses.replace(obj.meta, api_version="-"))


def _inside(obj: model.Object) -> model.Object:
    """An object as the fleet's pods see it: a service's name, selector and ports, not how it is reached from
    outside the fleet (v1beta1: its port on every minion; v1: ``type``, ``nodePort``, its address)."""
    obj = _without_version(obj)
    if not isinstance(obj, model.Service):
        return obj
    ports = tuple(model.ServicePort(p.port, p.target_port, p.protocol, p.name) for p in obj.ports)
    return model.Service(obj.meta, ports, obj.selector, obj.create_external_load_balancer)


def _as_in_v1beta1(obj: model.Object) -> model.Object:
    """The two documented differences of the 2014 copy: a v1beta1 service takes its port on every minion, so
    redis-replica cannot repeat redis-master's 6379; it is on 10001, and the frontend is told so."""
    if isinstance(obj, model.Service) and obj.meta.name == "redis-replica":
        return dataclasses.replace(obj, ports=(dataclasses.replace(obj.ports[0], port=10001),))
    if isinstance(obj, model.ReplicationController) and obj.meta.name == "frontend":
        [web] = obj.template.spec.containers
        web = dataclasses.replace(web, env=(*web.env, model.EnvVar("REDIS_REPLICA_ADDRESS", "redis-replica:10001")))
        spec = dataclasses.replace(obj.template.spec, containers=(web,))
        return dataclasses.replace(obj, template=dataclasses.replace(obj.template, spec=spec))
    return obj


def test_the_guestbook_in_v1beta1_json_and_in_v1_yaml_is_the_same_application():
    key = lambda o: (o.kind, o.meta.name)  # noqa: E731
    old = sorted(load_paths([str(EXAMPLES / "guestbook" / "v1beta1")]), key=key)
    new = sorted(load_paths([str(EXAMPLES / "guestbook" / "v1")]), key=key)
    assert [key(o) for o in old] == [key(o) for o in new] == [
        ("Pod", "redis-master"), ("ReplicationController", "frontend"), ("ReplicationController", "redis-replica"),
        ("Service", "frontend"), ("Service", "redis-master"), ("Service", "redis-replica")]
    assert [_inside(o) for o in old] == [_inside(_as_in_v1beta1(o)) for o in new]
    assert [_inside(o) for o in old] != [_inside(o) for o in new]  # the differences are real, and only those
    rcs = {o.meta.name: o for o in new if isinstance(o, model.ReplicationController)}
    assert rcs["redis-replica"].template.spec.containers[0].command == ("redis-server", "--replicaof", "redis-master",
                                                                        "6379")
    assert rcs["frontend"].replicas == 3 and rcs["frontend"].template.spec.containers[0].image == "guestbook"


def test_the_guestbook_frontend_is_reached_from_outside_on_8000_in_v1beta1_and_by_node_port_30080_in_v1():
    import yaml

    old = json.loads((EXAMPLES / "guestbook" / "v1beta1" / "frontend-service.json").read_text())
    assert old["port"] == 8000  # a v1beta1 service: on every minion's own address
    docs = {d["metadata"]["name"]: d for f in sorted((EXAMPLES / "guestbook" / "v1").glob("*.yaml"))
            for d in yaml.safe_load_all(f.read_text()) if d["kind"] == "Service"}
    assert docs["frontend"]["spec"]["type"] == "NodePort"
    assert [(p["port"], p["nodePort"]) for p in docs["frontend"]["spec"]["ports"]] == [(8000, 30080)]
    assert [d["spec"].get("type", "ClusterIP") for n, d in sorted(docs.items()) if n != "frontend"] == [
        "ClusterIP", "ClusterIP"]  # redis stays inside the fleet, both services on 6379


@pytest.mark.parametrize("text,kind", [
    ('{"id": "p", "desiredState": {"manifest": {"containers": [{"image": "redis"}]}}}', "Pod"),
    ('{"id": "c", "desiredState": {"replicas": 1, "replicaSelector": {"a": "b"},'
     ' "podTemplate": {"labels": {"a": "b"}, "desiredState": {"manifest": {"containers": [{"image": "redis"}]}}}}}',
     "ReplicationController"),
    ('{"id": "s", "port": 80, "selector": {"a": "b"}}', "Service"),
])
def test_kind_of_a_kindless_2014_object_comes_from_its_shape(text, kind):
    [obj] = objects(("x.json", text))
    assert obj.kind == kind and obj.meta.api_version == "v1beta1"


def test_kind_hint_decides_for_kindless_objects_only():
    [svc] = objects(("x.json", '{"id": "s", "port": 80, "selector": {"a": "b"}}'), kind="/services")
    assert svc.kind == "Service"
    found = errors(("x.json", '{"id": "s", "port": 80}'), kind="Pod")
    assert [(p.line, p.pointer) for p in found] == [(1, "/desiredState"), (1, "/port")]
    assert 'required field "desiredState"' in found[0].message and 'unknown field "port"' in found[1].message
    [pod] = objects(("y.json", '{"kind": "Service", "id": "s", "port": 80, "selector": {"a": "b"}}'), kind="pods")
    assert pod.kind == "Service"


def test_an_object_whose_kind_cannot_be_told_says_so():
    p = only(errors(("x.json", '{\n  "id": "mystery",\n  "labels": {"a": "b"}\n}')))
    assert (p.line, p.pointer) == (1, "") and "cannot tell what kind of object this is" in p.message
    assert "--kind" in p.message


@pytest.mark.parametrize("hint,kind", [("Pod", "Pod"), ("pods", "Pod"), ("/pods", "Pod"),
                                       ("replicationControllers", "ReplicationController"), ("svc", "Service")])
def test_kind_hints(hint, kind):
    assert kind_from_hint(hint) == kind


def test_unknown_kind_hint_is_a_user_error():
    with pytest.raises(UserError, match="not a kind"):
        kind_from_hint("deployments")


def test_first_release_spellings_are_aliases_but_not_both():
    text = """
    id: c
    desiredState:
      replicas: 1
      replicaSelector: {a: b}
      replicasInSet: {a: b}
      podTemplate:
        labels: {a: b}
        desiredState: {manifest: {containers: [{image: redis}]}}
    """
    p = only(errors(("c.yaml", text), kind="ReplicationController"))
    assert (p.line, p.pointer) == (5, "/desiredState/replicasInSet") and "not both" in p.message
    found = errors(("d.yaml", "id: d\ndesiredState:\n  replicas: 1\n"), kind="ReplicationController")
    assert [(p.line, p.pointer) for p in found] == [(3, "/desiredState/replicaSelector"),
                                                    (3, "/desiredState/podTemplate")]
    assert "needs a selector" in found[0].message


def test_service_2014_defaults():
    first, named, explicit = objects(
        ("a.json", '{"id": "redismaster", "port": 10000, "labels": {"name": "redis-master"}}'),
        ("b.json", '{"id": "b", "port": 10001, "containerPort": "redis", "selector": {"name": "x"}}'),
        ("c.json", '{"id": "c", "port": 10002, "containerPort": 6379, "selector": {}, "labels": {"name": "y"},'
                   ' "createExternalLoadBalancer": true, "protocol": "UDP"}'))
    assert first.selector == {"name": "redis-master"}, "without a selector, a service selects by its labels"
    assert first.ports == (model.ServicePort(port=10000, target_port=None),)
    assert named.ports[0].target_port == "redis"
    assert explicit.selector == {} and explicit.ports[0] == model.ServicePort(10002, 6379, "UDP")
    assert explicit.create_external_load_balancer


def test_numeric_strings_as_target_ports_are_errors():
    p = only(errors(("s.json", '{"id": "b",\n "port": 10001,\n "containerPort": "6379", "selector": {"a": "b"}}')))
    assert (p.line, p.pointer) == (3, "/containerPort") and "write the number 6379 without quotes" in p.message


def test_v1_service_defaults():
    [svc] = objects(("s.yaml", """
    apiVersion: v1
    kind: Service
    metadata: {name: web}
    spec:
      type: LoadBalancer
      selector: {app: web}
      ports: [{name: http, port: 80}, {name: dns, port: 53, protocol: UDP, targetPort: 5353}]
    """))
    assert svc.ports == (model.ServicePort(80, 80, "TCP", "http"), model.ServicePort(53, 5353, "UDP", "dns"))
    assert svc.create_external_load_balancer


def test_v1beta1_pod_details():
    [pod] = objects(("p.json", json.dumps({
        "kind": "Pod", "apiVersion": "v1beta1", "id": "web", "namespace": "team",
        "nodeSelector": {"disk": "ssd"},
        "desiredState": {
            "host": "minion-2",
            "manifest": {
                "version": "v1beta1", "id": "web",
                "restartPolicy": {"onFailure": {}},
                "volumes": [{"name": "data", "source": {"hostDir": {"path": "/srv"}}}, {"name": "tmp"}],
                "containers": [
                    {"image": "registry.example.com:5000/team/app:1.0", "cpu": 250, "memory": 1048576,
                     "workingDir": "/srv", "command": ["app", "--serve"], "imagePullPolicy": "PullIfNotPresent",
                     "env": [{"name": "MODE", "value": "x"}, {"name": "EMPTY"}],
                     "ports": [{"name": "http", "containerPort": 80, "hostPort": 8080, "protocol": "TCP"}],
                     "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}]},
                    {"image": "registry.example.com:5000/team/app:2.0"},
                    {"name": "app-2", "image": "busybox"},
                ]}}})))
    assert pod.meta.namespace == "team"
    spec = pod.spec
    assert spec.host == "minion-2" and spec.node_selector == {"disk": "ssd"} and spec.restart_policy == "OnFailure"
    assert spec.volumes == (model.Volume("data", "hostDir", "/srv"), model.Volume("tmp"))
    assert [c.name for c in spec.containers] == ["app", "app-3", "app-2"]
    first = spec.containers[0]
    assert (first.cpu_millis, first.memory_bytes, first.working_dir) == (250, 1048576, "/srv")
    assert first.image_pull_policy == "IfNotPresent" and first.command == ("app", "--serve")
    assert first.env == (model.EnvVar("MODE", "x"), model.EnvVar("EMPTY", ""))
    assert first.ports == (model.Port(80, 8080, "TCP", "http"),)
    assert first.volume_mounts == (model.VolumeMount("data", "/data", True),)
    assert spec.host_ports == ((8080, "TCP"),)


@pytest.mark.parametrize("requests,limits,expected", [
    ({"cpu": "0.5", "memory": "1Gi"}, {}, (500, 2**30, 0, 0)),
    ({"cpu": "500m", "memory": "1G"}, {"cpu": 1, "memory": "2G"}, (500, 10**9, 1000, 2 * 10**9)),
    ({}, {"cpu": "250m", "memory": "64Mi"}, (250, 64 * 2**20, 250, 64 * 2**20)),
    ({"cpu": 0.1, "memory": 1000}, {}, (100, 1000, 0, 0)),
])
def test_v1_quantities(requests, limits, expected):
    [pod] = objects(("p.json", json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}, "spec": {
        "nodeName": "minion-1", "restartPolicy": "Never",
        "containers": [{"name": "web", "image": "busybox", "args": ["-v"],
                        "resources": {"requests": requests, "limits": limits}}]}})))
    c = pod.spec.containers[0]
    assert (c.cpu_millis, c.memory_bytes, c.cpu_limit_millis, c.memory_limit_bytes) == expected
    assert pod.spec.host == "minion-1" and pod.spec.restart_policy == "Never" and c.args == ("-v",)


def test_quantities_too_large_for_the_model_are_errors():
    text = ('{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "w"}, "spec": {"containers": [\n'
            '{"name": "w", "image": "busybox", "resources": {"requests": {"cpu": "99E", "memory": "9Ei"}}}]}}')
    found = errors(("p.json", text))
    assert [(p.line, p.pointer) for p in found] == [(2, "/spec/containers/0/resources/requests/cpu"),
                                                    (2, "/spec/containers/0/resources/requests/memory")]
    assert all("too large" in p.message for p in found)


def test_v1_controller_selector_defaults_to_the_template_labels():
    [rc] = objects(("rc.yaml", """
    apiVersion: v1
    kind: ReplicationController
    metadata: {name: web}
    spec:
      template:
        metadata: {labels: {app: web}}
        spec: {containers: [{name: web, image: busybox}]}
    """))
    assert rc.selector == {"app": "web"} and rc.replicas == 1


@pytest.mark.parametrize("image,name", [("redis", "redis"), ("brendanburns/redis-slave", "redis-slave"),
                                        ("dockerfile/redis:latest", "redis"), ("localhost:5000/My_App:1", "my-app"),
                                        ("x/app@sha256:" + "a" * 64, "app"), ("___", "container")])
def test_container_names_from_images(image, name):
    assert container_name_from_image(image) == name


@pytest.mark.parametrize("name", ["redisSlaveController", "frontend.v1", "Redis_Master", "A" * 63, "__"])
def test_host_safe_names_are_dns_labels_distinct_and_stable(name):
    safe = model.host_safe_name(name)
    assert len(safe) <= 63 and safe == model.host_safe_name(name)
    assert all(c.islower() or c.isdigit() or c == "-" for c in safe) and safe[0] != "-" and safe[-1] != "-"
    assert safe != model.host_safe_name(name.lower()) or name == name.lower()


def test_host_safe_name_keeps_names_that_already_are_safe():
    assert model.host_safe_name("redis-master") == "redis-master"
    assert model.host_safe_name("redisSlaveController").startswith("redisslavecontroller-")


KUBECFG_BODY = {
    "kind": "ReplicationController", "apiVersion": "v1beta1", "id": "redisSlaveController",
    "creationTimestamp": None, "selfLink": "", "resourceVersion": 0, "namespace": "",
    "desiredState": {
        "replicas": 2, "replicaSelector": {"name": "redisslave"},
        "podTemplate": {
            "desiredState": {
                "manifest": {"version": "", "id": "", "uuid": "", "volumes": None, "restartPolicy": {},
                             "containers": [{"name": "", "image": "redis", "command": None, "workingDir": "",
                                             "ports": [{"name": "", "containerPort": 6379, "hostPort": 0,
                                                        "protocol": "", "hostIP": ""}],
                                             "env": None, "memory": 0, "cpu": 0, "volumeMounts": None,
                                             "livenessProbe": None, "privileged": False, "imagePullPolicy": ""}]},
                "status": "", "host": "", "hostIP": "", "podIP": "", "info": None},
            "labels": {"name": "redisslave"}}},
    "currentState": {"replicas": 0, "replicaSelector": None, "podTemplate": {"desiredState": {"manifest": {
        "version": "", "id": "", "volumes": None, "containers": None, "restartPolicy": {}}}}},
    "labels": {"name": "redisslave"},
}


def test_lenient_reading_of_a_2014_client_body():
    rc = normalise_object(KUBECFG_BODY, "POST /api/v1beta1/replicationControllers", lenient=True)
    assert rc.meta.name == "redisSlaveController" and rc.meta.namespace == "default" and rc.replicas == 2
    [c] = rc.template.spec.containers
    assert c.name == "redis" and c.ports == (model.Port(6379),) and c.env == () and c.cpu_millis == 0
    with pytest.raises(ValidationFailed) as failed:
        normalise_object(KUBECFG_BODY, "body")
    assert any(p.pointer == "/currentState" for p in failed.value.problems)


def test_lenient_keeps_meaningful_empties():
    body = {"id": "p", "desiredState": {"manifest": {"restartPolicy": {"never": {}}, "containers": [{"image": "redis"}],
                                                     "volumes": [{"name": "d", "source": {"emptyDir": {}}}]}},
            "labels": {"tier": ""}}
    pod = normalise_object(body, "body", kind_hint="pods", lenient=True)
    assert pod.spec.restart_policy == "Never" and pod.spec.volumes == (model.Volume("d"),)
    assert pod.meta.labels == {"tier": ""}
    template = {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "w", "image": "x"}]}}
    rc = normalise_object({"apiVersion": "v1", "kind": "ReplicationController",
                           "metadata": {"name": "w", "resourceVersion": "7"},
                           "spec": {"replicas": 0, "template": template}, "status": {"replicas": 3}},
                          "body", lenient=True)
    assert rc.replicas == 0, "in v1, zero replicas means zero"


def test_normalise_object_problems_have_no_line():
    with pytest.raises(ValidationFailed) as failed:
        normalise_object({"id": "a", "port": "x"}, "PUT /services/a", kind_hint="Service")
    p = only(failed.value.problems)
    assert (p.line, p.pointer) == (0, "/port") and str(p) == 'PUT /services/a: /port: "x" is not an integer'
    with pytest.raises(ValidationFailed, match="a List is not allowed here"):
        normalise_object({"kind": "List", "items": []}, "body")
    with pytest.raises(ValidationFailed, match="expected a mapping"):
        normalise_object([1], "body")


@pytest.mark.parametrize("directory", ["seed-2014", "guestbook/v1beta1", "guestbook/v1"])
def test_rendering_and_reading_again_gives_the_same_model(directory):
    for obj in load_paths([str(EXAMPLES / directory)]):
        again = normalise_object(to_manifest(obj), "rendered")
        assert again == obj
        assert again.meta.source is None or again.meta.source.file == "rendered"


def test_lists_flatten_and_items_default_to_the_list_version():
    [pod, svc] = objects(("l.yaml", """
    kind: List
    apiVersion: v1beta1
    items:
    - id: a
      desiredState: {manifest: {containers: [{image: redis}]}}
      labels: {app: a}
    - {kind: Service, id: a, port: 80, selector: {app: a}}
    """))
    assert (pod.kind, svc.kind, svc.meta.api_version) == ("Pod", "Service", "v1beta1")
    assert (pod.meta.source.line, pod.meta.source.pointer, svc.meta.source.line) == (4, "/items/0", 7)
    found = errors(("l.json", '{"kind": "List", "items": [\n{"id": "x"},\n{"kind": "List", "items": []}]}'))
    assert [(p.line, p.pointer) for p in found] == [(2, "/items/0"), (3, "/items/1/kind")]
