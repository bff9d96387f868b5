"""``env[].valueFrom.fieldRef``: a container learns its pod's own fields, filled in when it is created on its
minion, and a field that cannot be known is refused at its line."""

from __future__ import annotations

import json

import pytest

from cluster_pilot.api import to_manifest
from cluster_pilot.apply.render import Settings, render_create
from cluster_pilot.host.observed import HostView, Observation
from cluster_pilot.manifests import load_documents
from cluster_pilot.model import Node, Resources
from cluster_pilot.plan.planner import plan, spec_hash
from cluster_pilot.scheduler import schedule
from tests.unit.manifests_support import errors

POD = """
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}, annotations: {team: blue}}
spec:
  containers:
  - name: app
    image: busybox
    env:
    - {name: PLAIN, value: "1"}
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: POD_NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
    - {name: APP, valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}}
    - {name: TEAM, valueFrom: {fieldRef: {fieldPath: "metadata.annotations['team']"}}}
    - {name: NONE, valueFrom: {fieldRef: {fieldPath: "metadata.labels['absent']"}}}
    - {name: NODE, valueFrom: {fieldRef: {apiVersion: v1, fieldPath: spec.nodeName}}}
    - {name: HOST_IP, valueFrom: {fieldRef: {fieldPath: status.hostIP}}}
"""
NODE = Node("m1", "10.0.0.1", Resources(2000, 4 << 30, 40))


def test_a_containers_variables_take_its_pods_fields_on_its_minion():
    (pod,) = load_documents([("pod.yaml", POD)])
    (create,) = plan(schedule([pod], [NODE], []), Observation({"m1": HostView("m1", True)})).creates
    env = render_create(create, Settings(), proxy_address="10.0.0.1")["containers"][0]["body"]["Env"]
    assert env == ["PLAIN=1", "POD_NAME=web", "POD_NAMESPACE=shop", "APP=web", "TEAM=blue", "NONE=", "NODE=m1",
                   "HOST_IP=10.0.0.1"]
    written = to_manifest(pod)["spec"]["containers"][0]["env"]
    assert written[1] == {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    assert load_documents([("again.json", json.dumps(to_manifest(pod)))]) == [pod]
    (plain,) = load_documents([("pod.yaml", POD.split("    - {name: POD_NAME")[0])])
    assert spec_hash(plain, None) != spec_hash(pod, None)


@pytest.mark.parametrize("path,words", [("status.podIP", "not known before it starts"),
                                        ("spec.serviceAccountName", "expected metadata.name")])
def test_a_field_that_cannot_be_known_is_refused_at_its_line(path, words):
    text = POD.replace("fieldPath: spec.nodeName", f"fieldPath: {path}")
    found = errors(("pod.yaml", text))
    assert [p.pointer for p in found] == ["/spec/containers/0/env/6/valueFrom/fieldRef/fieldPath"], found
    assert words in found[0].message and found[0].line == 15


def test_value_and_value_from_together_are_refused():
    text = POD.replace("{name: HOST_IP, valueFrom", "{name: HOST_IP, value: x, valueFrom")
    (p,) = errors(("pod.yaml", text))
    assert p.pointer == "/spec/containers/0/env/7" and "not both" in p.message
