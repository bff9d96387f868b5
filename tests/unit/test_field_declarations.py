"""A field every pod-bearing kind carries has one home: its schema in ``schemas/v1/defs.json`` and its
``manifest_field`` in the model, from which the normaliser reads it and the API writes it. ``hostname`` is the
field added that way."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest

from cluster_pilot import model
from cluster_pilot.api import to_manifest
from cluster_pilot.apply.render import Settings, render_create
from cluster_pilot.host.observed import HostView, Observation
from cluster_pilot.manifests import load_documents, schema
from cluster_pilot.model import Meta, Node, Pod, Resources
from cluster_pilot.plan.planner import plan, spec_hash
from cluster_pilot.scheduler import schedule
from tests.unit.manifests_support import errors, only

POD = """
apiVersion: v1
kind: Pod
metadata: {name: db}
spec:
  hostname: db-0
  containers: [{name: db, image: busybox, workingDir: /data}]
"""
RC = """
apiVersion: v1
kind: ReplicationController
metadata: {name: web}
spec:
  replicas: 1
  template:
    metadata: {labels: {app: web}}
    spec:
      hostname: web-host
      containers: [{name: web, image: nginx}]
"""


def test_every_pod_bearing_kind_reads_and_writes_a_declared_field():
    pod, rc = load_documents([("pod.yaml", POD), ("rc.yaml", RC)])
    assert pod.spec.hostname == "db-0" and pod.spec.containers[0].working_dir == "/data"
    assert rc.template.spec.hostname == "web-host"
    assert to_manifest(pod)["spec"]["hostname"] == "db-0"
    assert to_manifest(rc)["spec"]["template"]["spec"]["hostname"] == "web-host"
    assert load_documents([("again.json", repr(to_manifest(pod)).replace("'", '"'))]) == [pod]
    assert "hostname" not in to_manifest(replace(pod, spec=replace(pod.spec, hostname=None)))["spec"]


def test_a_bad_value_of_a_declared_field_is_told_at_its_pointer():
    p = only(errors(("pod.yaml", POD.replace("db-0", "DB_0"))))
    assert p.pointer == "/spec/hostname" and "DNS-1123 label" in p.message and p.line == 5  # the text less its first newline


@pytest.mark.parametrize("cls,definition", [(model.Container, "container"), (model.PodSpec, "podSpec")])
def test_each_declared_field_is_in_the_schema(cls, definition):
    """The model's declaration and the schema's agree: a field declared in one is there in the other."""
    properties = schema.definitions("v1")[definition]["properties"]
    declared = [f.metadata["v1"] for f in fields(cls) if "v1" in f.metadata]
    assert declared and all(name in properties and "not" not in properties[name] for name in declared), declared


def _create(pod: Pod):
    node = Node("m1", "10.0.0.1", Resources(2000, 4 << 30, 40))
    (create,) = plan(schedule([pod], [node], []), Observation({node.name: HostView(node.name, True)})).creates
    return create


def test_the_pod_hostname_reaches_the_container_and_by_default_is_its_name():
    (pod,) = load_documents([("pod.yaml", POD)])
    body = render_create(_create(pod), Settings())["containers"][0]["body"]
    assert body["Hostname"] == "db-0"
    unset = replace(pod, spec=replace(pod.spec, hostname=None))
    assert render_create(_create(unset), Settings())["containers"][0]["body"]["Hostname"] == "db"
    named = Pod(Meta("redisMaster"), unset.spec)
    assert render_create(_create(named), Settings())["containers"][0]["body"]["Hostname"] == \
        model.host_safe_name("redisMaster")


def test_a_field_added_later_changes_no_running_pods_hash_until_it_is_set():
    (pod,) = load_documents([("pod.yaml", POD)])
    unset = replace(pod, spec=replace(pod.spec, hostname=None))
    assert "hostname" not in model.spec_document(unset.spec)
    held = model.spec_document(unset.spec)  # the fields the hash always held stay, at their defaults too
    assert held["containers"][0]["working_dir"] == "/data" and held["restart_policy"] == "Always"
    assert spec_hash(pod, None) != spec_hash(unset, None)
