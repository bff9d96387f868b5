"""The three PATCH forms (``api.patch``), as Kubernetes applies them to the core kinds."""

from __future__ import annotations

import pytest

from cluster_pilot.api.patch import (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, PatchError, apply,
                                     strategic_merge)

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "labels": {"app": "web", "tier": "a"}},
       "spec": {"containers": [
           {"name": "app", "image": "nginx", "ports": [{"containerPort": 80}, {"containerPort": 443}],
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
           {"name": "side", "image": "busybox", "command": ["sleep", "1"]}]}}


def test_strategic_merge_merges_containers_by_name_and_keeps_the_rest():
    out = strategic_merge(POD, {"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}}, "Pod")
    assert [c["image"] for c in out["spec"]["containers"]] == ["nginx:2", "busybox"]
    assert out["spec"]["containers"][0]["ports"] == POD["spec"]["containers"][0]["ports"]
    assert POD["spec"]["containers"][0]["image"] == "nginx"  # the input is left as it was


def test_strategic_merge_directives_as_kubectl_apply_sends_them():
    patch = {"metadata": {"labels": {"tier": None}},
             "spec": {"$setElementOrder/containers": [{"name": "side"}, {"name": "app"}],
                      "containers": [{"name": "app", "$setElementOrder/env": [{"name": "B"}],
                                      "env": [{"name": "A", "$patch": "delete"}], "command": ["nginx"]},
                                     {"name": "new", "image": "redis"}]}}
    out = strategic_merge(POD, patch, "Pod")
    assert out["metadata"]["labels"] == {"app": "web"}
    names = [c["name"] for c in out["spec"]["containers"]]
    assert names[:2] == ["side", "app"] and "new" in names
    app = next(c for c in out["spec"]["containers"] if c["name"] == "app")
    assert app["env"] == [{"name": "B", "value": "2"}] and app["command"] == ["nginx"]
    replaced = strategic_merge(POD, {"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "x"}]}},
                               "Pod")
    assert replaced["spec"]["containers"] == [{"name": "only", "image": "x"}]
    ports = strategic_merge(POD, {"spec": {"containers": [{"name": "app", "ports": [{"containerPort": 443,
                                                                                       "name": "https"}]}]}}, "Pod")
    assert ports["spec"]["containers"][0]["ports"] == [{"containerPort": 80}, {"containerPort": 443, "name": "https"}]
    # lists without a merge key are replaced, as in Kubernetes
    assert strategic_merge(POD, {"spec": {"containers": [{"name": "side", "command": ["true"]}]}},
                           "Pod")["spec"]["containers"][1]["command"] == ["true"]


def test_service_ports_merge_by_port():
    svc = {"kind": "Service", "spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}}
    out = strategic_merge(svc, {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}, "Service")
    assert out["spec"]["ports"] == [{"port": 80, "targetPort": 9090}, {"port": 443}]


def test_merge_patch_replaces_lists_and_deletes_nulls():
    out = apply(MERGE_PATCH, POD, {"metadata": {"labels": {"tier": None, "x": "y"}},
                                   "spec": {"containers": [{"name": "one", "image": "a"}]}}, "Pod")
    assert out["metadata"]["labels"] == {"app": "web", "x": "y"}
    assert out["spec"]["containers"] == [{"name": "one", "image": "a"}]


def test_json_patch_operations_and_a_failed_test():
    out = apply(JSON_PATCH, POD, [{"op": "replace", "path": "/spec/containers/0/image", "value": "nginx:3"},
                                  {"op": "add", "path": "/metadata/labels/new", "value": "1"},
                                  {"op": "remove", "path": "/metadata/labels/tier"},
                                  {"op": "copy", "from": "/metadata/name", "path": "/metadata/labels/copied"},
                                  {"op": "add", "path": "/spec/containers/-", "value": {"name": "z", "image": "z"}},
                                  {"op": "test", "path": "/kind", "value": "Pod"}], "Pod")
    assert out["spec"]["containers"][0]["image"] == "nginx:3" and out["spec"]["containers"][-1]["name"] == "z"
    assert out["metadata"]["labels"] == {"app": "web", "new": "1", "copied": "web"}
    with pytest.raises(PatchError) as failed:
        apply(JSON_PATCH, POD, [{"op": "test", "path": "/kind", "value": "Service"}], "Pod")
    assert failed.value.failed_test
    for bad in ([{"op": "remove", "path": "/spec/nothing"}], [{"op": "jump", "path": "/a"}], {"op": "add"},
                [{"op": "replace", "path": "no-slash", "value": 1}]):
        with pytest.raises(PatchError):
            apply(JSON_PATCH, POD, bad, "Pod")
    with pytest.raises(PatchError):
        apply(STRATEGIC_MERGE_PATCH, POD, ["not", "a", "map"], "Pod")
