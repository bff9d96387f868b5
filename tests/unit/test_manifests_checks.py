"""Rules beyond the schema, in one object and across all the objects of a run."""

from __future__ import annotations

import textwrap

import pytest

from cluster_pilot.manifests import check_set, load
from tests.unit.manifests_support import errors, objects, only, problems


def pod(name: str, labels: str = "{app: web}", containers: str = "[{name: web, image: busybox}]",
        extra: str = "") -> str:
    return f"""
    apiVersion: v1
    kind: Pod
    metadata: {{name: {name}, labels: {labels}}}
    spec:
      containers: {containers}
      {extra}
    """


def test_container_names_must_be_unique_in_a_pod():
    containers = "\n      - {name: web, image: busybox}\n      - {name: web, image: redis}"
    p = only(errors(("p.yaml", pod("web", containers=containers))))
    assert (p.line, p.pointer) == (7, "/spec/containers/1/name") and "also used by container 0" in p.message


def test_a_host_port_is_bound_once_per_pod():
    containers = ("\n      - {name: a, image: busybox, ports: [{containerPort: 80, hostPort: 8080}]}"
                  "\n      - {name: b, image: busybox, ports: [{containerPort: 81, hostPort: 8080},"
                  " {containerPort: 82, hostPort: 8080, protocol: UDP}]}")
    p = only(errors(("p.yaml", pod("web", containers=containers))))
    assert (p.line, p.pointer) == (7, "/spec/containers/1/ports/0/hostPort")
    assert 'hostPort 8080/TCP is also used by container "a"' in p.message


def test_port_names_and_volumes():
    containers = ("\n      - {name: a, image: busybox, ports: [{name: http, containerPort: 80}],"
                  " volumeMounts: [{name: data, mountPath: /d}, {name: logs, mountPath: /l}]}"
                  "\n      - {name: b, image: busybox, ports: [{name: http, containerPort: 81}]}")
    found = errors(("p.yaml", pod("web", containers=containers, extra="volumes: [{name: data}, {name: data}]")))
    assert [(p.line, p.pointer) for p in found] == [
        (6, "/spec/containers/0/volumeMounts/1/name"), (7, "/spec/containers/1/ports/0/name"),
        (8, "/spec/volumes/1/name")]
    assert 'no volume named "logs"' in found[0].message
    assert 'port name "http" is also used by container "a"' in found[1].message
    assert 'volume name "data" is also used by volume 0' in found[2].message


@pytest.mark.parametrize("selector,labels,pointer,expected", [
    ("{app: web}", "{app: db}", "/desiredState/replicaSelector", "does not match the template's labels"),
    ("{}", "{app: db}", "/desiredState/replicaSelector", "the selector is empty"),
    ("{app: web}", "{}", "/desiredState/podTemplate/labels", "the template has no labels"),
])
def test_a_controller_selector_must_match_its_template(selector, labels, pointer, expected):
    text = f"""
    kind: ReplicationController
    id: web
    desiredState:
      replicas: 2
      replicaSelector: {selector}
      podTemplate:
        labels: {labels}
        desiredState: {{manifest: {{containers: [{{image: busybox}}]}}}}
    """
    p = only(errors(("rc.yaml", text)))
    assert p.pointer == pointer and expected in p.message
    assert p.line == (5 if "Selector" in pointer else 7)


def test_several_service_ports_must_be_named_and_distinct():
    text = """
    apiVersion: v1
    kind: Service
    metadata: {name: web}
    spec:
      selector: {app: web}
      ports:
      - {name: http, port: 80}
      - {port: 81}
      - {name: http, port: 80}
    """
    found = errors(("s.yaml", text), ("p.yaml", pod("web")))
    assert [(p.line, p.pointer) for p in found] == [(8, "/spec/ports/1/name"), (9, "/spec/ports/2/name"),
                                                    (9, "/spec/ports/2/port")]
    assert "must name each of them" in found[0].message and 'port name "http" is used twice' in found[1].message
    assert found[2].message == "port 80/TCP is listed twice in this service (also at /spec/ports/0/port)"


def test_the_same_object_twice_is_an_error_naming_both_places():
    found = errors(("a.yaml", pod("web")), ("b.json", '{"kind": "Pod", "id": "other",\n "desiredState": {"manifest": '
                                                      '{"containers": [{"image": "busybox"}]}}}'),
                   ("c.json", '{"kind": "Pod",\n "id": "web", "desiredState": {"manifest": '
                              '{"containers": [{"image": "busybox"}]}}}'))
    p = only(found)
    assert (p.file, p.line, p.pointer) == ("c.json", 2, "/id")
    assert p.message == 'Pod "web" is defined twice: here and at a.yaml:3:18'


def test_same_name_in_another_kind_or_namespace_is_fine():
    elsewhere = pod("web").replace("metadata: {name: web,", "metadata: {name: web, namespace: two,")
    assert objects(("a.yaml", pod("web")), ("b.yaml", elsewhere),
                   ("c.json", '{"id": "web", "port": 80, "selector": {"app": "web"}}'))


def test_service_ports_clash_with_other_services_and_host_ports():
    found = errors(
        ("a.json", '{"id": "one", "port": 8080, "selector": {"app": "web"}}'),
        ("b.json", '{"id": "two",\n "port": 8080, "selector": {"app": "web"}}'),
        ("c.json", '{"id": "dns", "port": 8080, "protocol": "UDP", "selector": {"app": "web"}}'),
        ("d.yaml", pod("web", containers="[{name: web, image: busybox, ports: [{containerPort: 80, hostPort: 9090}]}]")
         ),
        ("e.json", '{"id": "three",\n\n "port": 9090, "selector": {"app": "web"}}'),
    )
    assert [(p.file, p.line, p.pointer) for p in found] == [("b.json", 2, "/port"), ("e.json", 3, "/port")]
    assert found[0].message == ('port 8080/TCP is also the port of Service "one" (a.json:1:23): '
                                "services reserve their port on every minion")
    assert 'is also a hostPort of Pod "web" (d.yaml:5:' in found[1].message


def test_template_host_ports_clash_too():
    rc = """
    {"kind": "ReplicationController", "id": "web", "desiredState": {"replicas": 1, "replicaSelector": {"app": "web"},
     "podTemplate": {"labels": {"app": "web"}, "desiredState": {"manifest": {"containers": [
       {"image": "busybox", "ports": [{"containerPort": 80, "hostPort": 80}]}]}}}}}
    """
    p = only(errors(("rc.json", rc), ("s.json", '{"id": "web", "port": 80, "selector": {"app": "web"}}')))
    assert (p.file, p.pointer) == ("s.json", "/port")
    assert 'hostPort of ReplicationController "web" (rc.json:3:' in p.message


def test_named_target_ports_must_exist_in_the_selected_pods(tmp_path):
    web = pod("web", containers="[{name: web, image: busybox, ports: [{name: http, containerPort: 80}]}]")
    other = pod("other", containers="[{name: web, image: busybox, ports: [{containerPort: 80}]}]")
    service = '{"id": "web", "port": 80,\n "containerPort": "https", "selector": {"app": "web"}}'
    p = only(errors(("p.yaml", web), ("s.json", service)))
    assert (p.line, p.pointer) == (2, "/containerPort") and 'no port named "https"' in p.message
    service = '{"id": "web", "port": 80, "containerPort": "http", "selector": {"app": "web"}}'
    assert problems(("p.yaml", web), ("q.yaml", other), ("s.json", service)) == [], "only warnings: the load succeeds"
    for name, text in (("p.yaml", web), ("q.yaml", other), ("s.json", service)):
        (tmp_path / name).write_text(textwrap.dedent(text))
    warning = only(load([str(tmp_path)]).warnings)
    assert (warning.file, warning.pointer) == (str(tmp_path / "s.json"), "/containerPort")
    assert 'Pod "other" (' in warning.message and 'is selected but has no port named "http"' in warning.message


def test_warnings_for_selectors_that_match_nothing(tmp_path):
    (tmp_path / "s.json").write_text('{"id": "lonely",\n "port": 80, "selector": {"app": "nothing"}}')
    (tmp_path / "t.json").write_text('{"id": "first", "port": 81, "labels": {"app": "web"}}')
    (tmp_path / "p.json").write_text('{"id": "web", "labels": {"app": "web"}, "desiredState": {"manifest": '
                                     '{"containers": [{"image": "busybox"}]}}}')
    loaded = load([str(tmp_path)])
    assert [(p.file.rsplit("/", 1)[1], p.line, p.pointer, p.severity) for p in loaded.warnings] == [
        ("s.json", 2, "/selector", "warning"), ("t.json", 1, "/port", "warning")]
    assert "matches no pod or controller template" in loaded.warnings[0].message
    assert "targets the first port of the first container" in loaded.warnings[1].message
    assert "warning: " in str(loaded.warnings[0])


def test_check_set_on_model_objects():
    a = objects(("a.yaml", pod("web")))
    b = objects(("b.yaml", pod("web")))
    problems_found, warnings = check_set(a + b)
    p = only(problems_found)
    assert (p.file, p.line, p.pointer) == ("b.yaml", 1, "/metadata/name")
    assert "defined twice: here and at a.yaml:1:1" in p.message and warnings == []
    _, warnings = check_set(objects(("s.json", '{"id": "s", "port": 80, "selector": {"x": "y"}}')))
    assert warnings == ["s.json:1:1: /selector: warning: the selector {x=y} matches no pod or controller template "
                        "in these inputs"]
