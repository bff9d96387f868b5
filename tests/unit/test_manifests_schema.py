"""The shipped JSON Schemas, compiled by jsonschema-rs, and schema errors told with line and pointer."""

from __future__ import annotations

import json

import jsonschema_rs
import pytest
from jsonschema import Draft202012Validator

from cluster_pilot.manifests import schema
from cluster_pilot.errors import ValidationFailed
from cluster_pilot.manifests import normalise_object
from cluster_pilot.resources import resource_dir
from tests.unit.manifests_support import errors, only, reference

ALL = [(v, k) for v in schema.VERSIONS for k in schema.SCHEMA_KINDS]


@pytest.mark.parametrize("version,kind", ALL)
def test_each_schema_is_a_valid_draft_2020_12_schema(version, kind):
    data = schema.schema_of(version, kind)
    assert data["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(data)
    assert jsonschema_rs.meta.is_valid(data)
    assert schema.compiled(version, kind, lenient=True).is_valid({"kind": kind, "apiVersion": version}) in (True, False)


@pytest.mark.parametrize("version", schema.VERSIONS)
def test_each_definition_has_one_home(version):
    """A field is declared once, in defs.json: no kind's file has definitions of its own, each kind refers to
    the shared ones, and none there is unused."""
    folder = resource_dir("schemas") / version
    shared = json.loads((folder / schema.DEFS).read_text())
    Draft202012Validator.check_schema(shared)
    used = set()
    for kind in schema.SCHEMA_KINDS:
        text = (folder / f"{kind}.json").read_text()
        assert "$defs" not in json.loads(text) and '"#/$defs/' not in text, f"{kind} ({version}) defines its own"
        used |= set(schema.schema_of(version, kind).get("$defs", {}))
    assert used == set(shared["$defs"]), set(shared["$defs"]) - used


def test_a_reference_to_no_definition_is_told():
    with pytest.raises(KeyError, match="no such definition"):
        schema.bundled({"$ref": "defs.json#/$defs/nothing"}, {"container": {}})


def test_patterns_mean_what_editors_think_they_mean():
    check = schema.compiled("v1", "Pod")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
           "spec": {"containers": [{"name": "web\n", "image": "busybox"}]}}
    assert not check.is_valid(pod) and not reference("v1", "Pod").is_valid(pod)
    assert list(check.validator.iter_errors(pod))
    pod["spec"]["containers"][0]["name"] = "web"
    assert check.is_valid(pod) and not list(check.validator.iter_errors(pod))


def test_the_lenient_schema_ignores_unknown_fields_only():
    body = {"id": "a", "port": 80, "portalIP": "10.0.0.1", "proxyPort": 1}
    assert not schema.compiled("v1beta1", "Service").is_valid(body)
    assert schema.compiled("v1beta1", "Service", lenient=True).is_valid(body)
    assert not schema.compiled("v1beta1", "Service", lenient=True).is_valid({**body, "port": "80"})


POD = """
{
  "id": "web",
  "desiredState": {
    "manifest": {
      "containers": [{
        "image": "busybox",
        "ports": [{"containerPort": %s}]
      }]
    }
  }
}
"""


@pytest.mark.parametrize("value,message", [
    ('"80a"', '"80a" is not an integer'),
    ("0", "0 is out of range: expected 1 to 65535"),
    ("65536", "65536 is out of range: expected 1 to 65535"),
    ("true", "true is not an integer"),
    ("80.5", "80.5 is not an integer"),
])
def test_port_errors_name_the_line_the_pointer_and_what_is_expected(value, message):
    p = only(errors(("pod.json", POD % value)))
    assert (p.line, p.pointer, p.message) == (7, "/desiredState/manifest/containers/0/ports/0/containerPort", message)
    assert str(p) == f"pod.json:7:{p.column}: /desiredState/manifest/containers/0/ports/0/containerPort: {message}"


def test_missing_fields_point_at_the_field_and_the_line_of_its_parent():
    text = '{\n  "kind": "Pod",\n  "desiredState": {\n    "manifest": {"containers": [{"name": "web"}]}\n  }\n}'
    found = errors(("p.json", text))
    assert [(p.line, p.pointer, p.message) for p in found] == [
        (1, "/id", 'required field "id" is missing'),
        (4, "/desiredState/manifest/containers/0/image", 'required field "image" is missing'),
    ]


def test_unknown_fields_are_shown_at_their_key_with_a_suggestion():
    text = """
    apiVersion: v1
    kind: ReplicationController
    metadata: {name: web}
    spec:
      replica: 2
      template:
        metadata: {labels: {app: web}}
        spec:
          containers: [{name: web, image: busybox, imagePulPolicy: Always}]
    """
    found = errors(("rc.yaml", text))
    assert [(p.line, p.column, p.pointer) for p in found] == [
        (5, 3, "/spec/replica"), (9, 48, "/spec/template/spec/containers/0/imagePulPolicy")]
    assert found[0].message == 'unknown field "replica" (did you mean "replicas"?)'
    assert 'did you mean "imagePullPolicy"' in found[1].message


def test_server_set_fields_and_fields_of_the_other_version_are_explained():
    found = errors(("p.yaml", "id: web\nport: 80\ncreationTimestamp: null\n"),
                   ("q.yaml", "apiVersion: v1beta1\nkind: Service\nid: q\nport: 81\nspec: {}\n"),
                   ("r.yaml", "apiVersion: v1\nkind: Service\nid: r\nmetadata: {name: r}\n"
                              "spec: {ports: [{port: 82}]}\n"))
    assert [(p.file, p.line, p.pointer) for p in found] == [
        ("p.yaml", 3, "/creationTimestamp"), ("q.yaml", 5, "/spec"), ("r.yaml", 3, "/id")]
    assert "set by the server" in found[0].message
    assert "belongs to apiVersion v1" in found[1].message
    assert "is a v1beta1 field" in found[2].message


@pytest.mark.parametrize("field,value,pointer,expected", [
    ("id", '"redis master"', "/id", "holds a space or a control character"),
    ("id", '"redis!"', "/id", 'must be a DNS-1123 label: letters, digits and "-"'),
    ("id", '"redis.master"', "/id", "must be a DNS-1123 label"),
    ("id", '"-rf"', "/id", 'starts with "-"'),
    ("id", '"' + "a" * 64 + '"', "/id", "is longer than 63 characters"),
    ("id", '""', "/id", "must not be empty"),
    ("protocol", '"tcp"', "/protocol", 'is not one of "TCP", "UDP"'),
    ("containerPort", '"Http"', "/containerPort", "must be a port number or a port name"),
    ("createExternalLoadBalancer", '"yes"', "/createExternalLoadBalancer", "is not a boolean"),
    ("selector", '{"a": 1}', "/selector/a", "1 is not a string"),
])
def test_service_field_errors(field, value, pointer, expected):
    fields = {"id": '"web"', "port": "80", "selector": '{"a": "b"}', field: value}
    text = "{\n" + ",\n".join(f'  "{k}": {v}' for k, v in fields.items()) + "\n}"
    line = list(fields).index(field) + 2
    p = only(errors(("s.json", text)))
    assert (p.line, p.pointer) == (line, pointer) and expected in p.message, str(p)


def test_names_env_images_and_quantities():
    text = """
    apiVersion: v1
    kind: Pod
    metadata:
      name: Web
      labels: {"bad key!": x, ok: "not ok"}
    spec:
      containers:
      - name: web_1
        image: "Busybox:latest"
        env: [{name: 1ST, value: x}]
        resources:
          requests: {cpu: 500x, memory: "1e999Gi"}
          limits: {cpu: -1}
    """
    found = errors(("p.yaml", text))
    assert [(p.line, p.pointer) for p in found] == [
        (4, "/metadata/name"), (5, "/metadata/labels/bad key!"), (5, "/metadata/labels/ok"),
        (8, "/spec/containers/0/name"), (9, "/spec/containers/0/image"), (10, "/spec/containers/0/env/0/name"),
        (12, "/spec/containers/0/resources/requests/cpu"), (12, "/spec/containers/0/resources/requests/memory"),
        (13, "/spec/containers/0/resources/limits/cpu"),
    ]
    messages = [p.message for p in found]
    assert "DNS-1123 subdomain" in messages[0] and "is not a label key" in messages[1]
    assert "is not a label value" in messages[2] and "DNS-1123" in messages[3]
    assert "image reference" in messages[4] and "C identifier" in messages[5]
    assert "is not a quantity" in messages[6] and "is not a quantity" in messages[7]
    assert messages[8] == "-1 is less than 0"


def test_several_volume_sources_and_empty_container_lists():
    text = """
    id: web
    desiredState:
      manifest:
        containers: []
        volumes: [{name: data, source: {emptyDir: {}, hostDir: {path: /x}}}]
    """
    found = errors(("p.yaml", text))
    assert [(p.line, p.pointer) for p in found] == [(4, "/desiredState/manifest/containers"),
                                                    (5, "/desiredState/manifest/volumes/0/source")]
    assert found[0].message == "must have at least 1 item"
    assert found[1].message == 'sets "emptyDir", "hostDir": give at most 1 of them'


def test_unsupported_api_versions_and_kinds():
    found = errors(("a.yaml", "apiVersion: v1beta3\nkind: Pod\n"), ("b.yaml", "apiVersion: v1\nkind: Deployment\n"),
                   ("c.yaml", "apiVersion: v1\nmetadata: {name: x}\n"), ("d.yaml", "metadata: {name: x}\nspec: {}\n"))
    assert [(p.file, p.line, p.pointer) for p in found] == [
        ("a.yaml", 1, "/apiVersion"), ("b.yaml", 2, "/kind"), ("c.yaml", 1, "/kind"), ("d.yaml", 1, "/apiVersion")]
    assert 'expected "v1beta1" or "v1"' in found[0].message
    assert '"Deployment" is not a kind' in found[1].message
    assert 'required field "kind" is missing' in found[2].message
    assert "write apiVersion: v1" in found[3].message


def test_a_lone_surrogate_is_a_finding_not_a_crash():
    """JSON's "\\ud800" escape reads as a Python string no UTF-8 can carry; jsonschema-rs refuses to read it."""
    found = errors(("s.json", '{\n  "port": 80,\n  "id": "web\\ud800"\n}'), kind="Service")
    p = only(found)
    assert (p.line, p.pointer) == (3, "/id") and "lone surrogate" in p.message, str(p)
    assert str(p).encode("utf-8")  # the line itself prints


def test_a_not_a_number_in_a_request_body_is_told_as_itself():
    """jsonschema-rs reads NaN as null; the message shows the value the body held."""
    with pytest.raises(ValidationFailed) as failed:
        normalise_object({"id": "web", "port": float("nan")}, "request body", kind_hint="Service", lenient=True)
    [p] = failed.value.problems
    assert (p.pointer, p.message) == ("/port", "NaN is not an integer")
