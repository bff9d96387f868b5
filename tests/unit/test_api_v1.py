"""Today's API (``/api/v1``) on the master, in process: discovery, list/get with selectors and Tables, create,
delete, errors as ``metav1.Status``, the owner rules, the kubeconfig; and the real kubectl of this machine
against it (skipped where there is none), over TLS with the token from the kubeconfig ``cluster-pilot
kubeconfig`` writes."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import ssl
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cluster_pilot.api import discovery, tables
from cluster_pilot.host.observed import HostView, Observation, ObservedContainer, ObservedPod
from cluster_pilot.master import kubeconfig
from cluster_pilot.master.client import TOKEN_FILE, TOKEN_URLS_FILE
from tests.unit.test_kubecfg import MINIONS, TOKEN, Master, self_signed, serve

AUTH = {"Authorization": f"Bearer {TOKEN}"}
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
KUBECTL = shutil.which("kubectl")


@pytest.fixture(scope="module")
def master(tmp_path_factory):
    m = serve(tmp_path_factory.mktemp("v1-master"), insecure_loopback=False)
    yield m
    m.stop()


@pytest.fixture(scope="module")
def tls_master(tmp_path_factory):
    d = tmp_path_factory.mktemp("v1-tls-master")
    pair = self_signed(d)
    m = serve(d, insecure_loopback=False, tls=pair)
    m.certificate = pair[0]
    yield m
    m.stop()


def call(master: Master, method: str, path: str, body: object = None, accept: str = "application/json",
         headers: dict | None = None) -> tuple[int, str, dict]:
    """One request as given: status, content type, the JSON answer."""
    port = int(master.url.rsplit(":", 1)[1])
    if master.url.startswith("https"):
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10,
                                           context=ssl.create_default_context(cafile=str(master.certificate)))
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    payload = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    sent = {**AUTH, "Accept": accept, **({"Content-Type": "application/json"} if payload else {}), **(headers or {})}
    conn.request(method, path, body=payload, headers=sent)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, response.getheader("content-type", ""), json.loads(data)


def v1_pod(name: str, labels: dict | None = None, image: str = "nginx", namespace: str | None = None) -> dict:
    meta = {"name": name, "labels": labels or {"app": name}, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"name": "app", "image": image, "ports": [{"containerPort": 80}]}]}}


def v1_rc(name: str, replicas: int) -> dict:
    labels = {"app": name}
    return {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": labels, "template": {
                "metadata": {"labels": labels}, "spec": {"containers": [{"name": "app", "image": "nginx"}]}}}}


def running(name: str, node: str, controller: str | None = None, labels: dict | None = None) -> ObservedPod:
    containers = (ObservedContainer(f"{name}-i", f"{name}-POD", name, "POD", "h", "running", "pause"),
                  ObservedContainer(f"{name}-a", f"{name}-app", name, "app", "h", "running", "nginx"))
    return ObservedPod(name, node, "h", controller, "ReplicationController" if controller else "Pod",
                       labels or {"app": controller or name}, containers, ("POD", "app"), applyset="master")


@pytest.fixture
def observed(master, monkeypatch):
    """Publish what the minions run, as the loop would (restored after the test)."""
    monkeypatch.setattr(master.reconciler, "last", None)

    def publish(*pods: ObservedPod) -> None:
        master.reconciler.last = Observation({n: HostView(n, True, tuple(p for p in pods if p.node == n))
                                              for n in MINIONS})

    return publish


# --- discovery -----------------------------------------------------------------------------------------------

def test_discovery_plain_and_aggregated(master):
    code, media, doc = call(master, "GET", "/api")
    assert (code, doc["kind"], doc["versions"]) == (200, "APIVersions", ["v1"])
    code, media, doc = call(master, "GET", "/api", accept=discovery.AGGREGATED + ",application/json")
    assert media == discovery.AGGREGATED and doc["kind"] == "APIGroupDiscoveryList"
    (group,) = doc["items"]
    resources = {r["resource"]: r for r in group["versions"][0]["resources"]}
    assert resources["pods"]["shortNames"] == ["po"] and resources["pods"]["scope"] == "Namespaced"
    assert resources["nodes"]["scope"] == "Cluster" and resources["nodes"]["responseKind"]["kind"] == "Node"
    assert {"rc", "svc", "ns", "ev", "no"} <= {r["shortNames"][0] for r in resources.values()}
    assert [s["subresource"] for s in resources["pods"]["subresources"]] == ["log"]
    (scale,) = resources["replicationcontrollers"]["subresources"]
    assert scale["subresource"] == "scale" and scale["responseKind"] == {"group": "autoscaling", "version": "v1",
                                                                         "kind": "Scale"}
    assert call(master, "GET", "/apis", accept=discovery.AGGREGATED)[2]["items"] == []  # no groups yet
    assert call(master, "GET", "/apis")[2]["kind"] == "APIGroupList"
    code, _, doc = call(master, "GET", "/api/v1")
    listed = {r["name"]: r for r in doc["resources"]}
    assert doc["groupVersion"] == "v1" and listed["replicationcontrollers"]["kind"] == "ReplicationController"
    assert listed["nodes"]["namespaced"] is False
    assert listed["pods"]["verbs"] == ["create", "delete", "get", "list", "patch", "update", "watch"]
    assert listed["pods/log"]["verbs"] == ["get"]


def test_every_path_needs_the_token_and_answers_v1_status(master):
    code, _, doc = call(master, "GET", "/api/v1/namespaces/default/pods", headers={"Authorization": ""})
    assert code == 401 and doc["apiVersion"] == "v1" and doc["reason"] == "Unauthorized"
    code, _, doc = call(master, "GET", "/api/v1/widgets")
    assert code == 404 and (doc["apiVersion"], doc["reason"]) == ("v1", "NotFound")
    code, _, doc = call(master, "GET", "/api/v1beta1/widgets")  # the 2014 API keeps its own Status
    assert code == 404 and doc["apiVersion"] == "v1beta1"


# --- create, read, delete ------------------------------------------------------------------------------------

def test_create_get_list_delete_a_pod(master):
    code, _, made = call(master, "POST", "/api/v1/namespaces/default/pods", v1_pod("v1-web", {"app": "web"}))
    assert code == 201 and made["metadata"]["name"] == "v1-web" and made["status"]["phase"] == "Pending"
    assert made["metadata"]["namespace"] == "default" and int(made["metadata"]["resourceVersion"]) >= 1
    assert master.store.get("Pod", "v1-web").applyset == "master"  # the master's, as through the 2014 API
    code, _, got = call(master, "GET", "/api/v1/namespaces/default/pods/v1-web")
    assert code == 200 and got["spec"]["containers"][0]["image"] == "nginx" and got["metadata"]["uid"]
    assert call(master, "GET", "/api/v1beta1/pods/v1-web")[0] == 200  # one store, two views
    code, _, listed = call(master, "GET", "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb")
    assert listed["kind"] == "PodList" and [p["metadata"]["name"] for p in listed["items"]] == ["v1-web"]
    assert call(master, "GET", "/api/v1/namespaces/default/pods?labelSelector=app%3Dother")[2]["items"] == []
    by_name = call(master, "GET", "/api/v1/pods?fieldSelector=metadata.name%3Dv1-web")[2]["items"]
    assert [p["metadata"]["name"] for p in by_name] == ["v1-web"]
    assert call(master, "GET", "/api/v1/namespaces/other/pods")[2]["items"] == []
    code, _, kept = call(master, "DELETE", "/api/v1/namespaces/default/pods/v1-web?dryRun=All")
    assert code == 200 and call(master, "GET", "/api/v1/namespaces/default/pods/v1-web")[0] == 200  # nothing deleted
    code, _, gone = call(master, "DELETE", "/api/v1/namespaces/default/pods/v1-web", {"propagationPolicy": "Background"})
    # as Kubernetes answers a graceful delete: the pod, marked deleting
    assert (code, gone["kind"], gone["metadata"]["name"]) == (200, "Pod", "v1-web")
    assert gone["metadata"]["deletionTimestamp"]
    code, _, doc = call(master, "GET", "/api/v1/namespaces/default/pods/v1-web")
    assert (code, doc["reason"], doc["message"], doc["details"]) == (
        404, "NotFound", 'pods "v1-web" not found', {"name": "v1-web", "kind": "pods"})


def test_a_list_comes_in_pages_when_a_client_asks(master):
    names = [f"page-{i}" for i in range(5)]
    for name in reversed(names):
        assert call(master, "POST", "/api/v1/namespaces/default/pods", v1_pod(name, {"paged": "yes"}))[0] == 201
    try:
        query = "/api/v1/pods?labelSelector=paged%3Dyes&limit=2"
        seen, token, remaining = [], "", []
        while True:
            code, _, listed = call(master, "GET", query + (f"&continue={token}" if token else ""))
            assert code == 200 and len(listed["items"]) <= 2, listed
            seen += [p["metadata"]["name"] for p in listed["items"]]
            token = listed["metadata"].get("continue", "")
            if not token:
                break
            remaining.append(listed["metadata"]["remainingItemCount"])
        assert seen == names and remaining == [3, 1]
        whole = call(master, "GET", "/api/v1/pods?labelSelector=paged%3Dyes")[2]
        assert "continue" not in whole["metadata"] and len(whole["items"]) == 5
        code, _, table = call(master, "GET", query, accept="application/json;as=Table;v=v1;g=meta.k8s.io")
        assert code == 200 and len(table["rows"]) == 2 and table["metadata"]["remainingItemCount"] == 3
        for bad in ("limit=-1", "limit=two", "continue=bm90LWEtdG9rZW4"):
            code, _, doc = call(master, "GET", f"/api/v1/pods?{bad}")
            assert (code, doc["reason"]) == (400, "BadRequest"), (bad, doc)
    finally:
        for name in names:
            call(master, "DELETE", f"/api/v1/namespaces/default/pods/{name}")


def test_a_namespace_from_the_path_and_a_differing_one_refused(master):
    code, _, made = call(master, "POST", "/api/v1/namespaces/team-a/pods", v1_pod("v1-ns"))
    assert code == 201 and made["metadata"]["namespace"] == "team-a"
    assert call(master, "GET", "/api/v1/namespaces/default/pods/v1-ns")[0] == 404
    assert call(master, "GET", "/api/v1/namespaces/team-a/pods/v1-ns")[0] == 200
    names = [n["metadata"]["name"] for n in call(master, "GET", "/api/v1/namespaces")[2]["items"]]
    assert {"default", "team-a"} <= set(names)
    code, _, doc = call(master, "POST", "/api/v1/namespaces/default/pods", v1_pod("v1-ns2", namespace="team-a"))
    assert (code, doc["reason"]) == (400, "BadRequest")
    assert call(master, "DELETE", "/api/v1/namespaces/team-a/pods/v1-ns")[0] == 200


def test_errors_are_kubernetes_statuses(master):
    assert call(master, "POST", "/api/v1/namespaces/default/pods", v1_pod("v1-dup"))[0] == 201
    code, _, doc = call(master, "POST", "/api/v1/namespaces/default/pods", v1_pod("v1-dup"))
    assert (code, doc["reason"], doc["message"]) == (409, "AlreadyExists", 'pods "v1-dup" already exists')
    code, _, doc = call(master, "POST", "/api/v1/namespaces/default/pods", v1_pod("v1-bad", image=""))
    assert (code, doc["reason"]) == (422, "Invalid")
    assert doc["message"].startswith('Pod "v1-bad" is invalid: ')
    assert [c["field"] for c in doc["details"]["causes"]] == ["spec.containers[0].image"]
    code, _, doc = call(master, "POST", "/api/v1/namespaces/default/pods", b"not json")
    assert (code, doc["reason"]) == (400, "BadRequest")
    code, _, doc = call(master, "GET", "/api/v1/namespaces/default/pods?fieldSelector=spec.widget%3Dx")
    assert (code, doc["reason"]) == (400, "BadRequest") and "spec.nodeName" in doc["message"]
    code, _, doc = call(master, "POST", "/api/v1/namespaces/default/nodes", {"kind": "Node"})
    assert (code, doc["reason"]) == (404, "NotFound")  # nodes are cluster-scoped: no such path
    code, _, doc = call(master, "DELETE", "/api/v1/namespaces/default/services/none-such")
    assert (code, doc["reason"]) == (404, "NotFound")
    code, _, doc = call(master, "GET", "/api/v1/namespaces/default/pods?watch=true&resourceVersion=12")
    assert (code, doc["reason"]) == (410, "Expired")  # a version no list answered: list again
    assert call(master, "DELETE", "/api/v1/namespaces/default/pods/v1-dup")[0] == 200


def test_patch_in_its_three_forms(master):
    assert call(master, "POST", "/api/v1/namespaces/default/pods", v1_pod("v1-patched"))[0] == 201
    path = "/api/v1/namespaces/default/pods/v1-patched"
    smp = {"Content-Type": "application/strategic-merge-patch+json"}
    code, _, got = call(master, "PATCH", path, {"metadata": {"labels": {"tier": "front"}},
                                                "spec": {"containers": [{"name": "app", "image": "nginx:2"}]}},
                        headers=smp)
    assert code == 200 and got["metadata"]["labels"] == {"app": "v1-patched", "tier": "front"}
    container = got["spec"]["containers"][0]
    assert container["image"] == "nginx:2" and [p["containerPort"] for p in container["ports"]] == [80]  # kept
    record = master.store.get("Pod", "v1-patched")
    assert record.body["spec"]["containers"][0]["image"] == "nginx:2"
    code, _, got = call(master, "PATCH", path, {"metadata": {"labels": {"tier": None}}},
                        headers={"Content-Type": "application/merge-patch+json"})
    assert code == 200 and got["metadata"]["labels"] == {"app": "v1-patched"}
    code, _, got = call(master, "PATCH", path, [{"op": "replace", "path": "/spec/containers/0/image", "value": "redis"}],
                        headers={"Content-Type": "application/json-patch+json"})
    assert code == 200 and got["spec"]["containers"][0]["image"] == "redis"
    code, _, doc = call(master, "PATCH", path, [{"op": "test", "path": "/kind", "value": "Service"}],
                        headers={"Content-Type": "application/json-patch+json"})
    assert (code, doc["reason"]) == (409, "Conflict")
    code, _, doc = call(master, "PATCH", path, {"spec": {"containers": [{"name": "app", "image": ""}]}}, headers=smp)
    assert (code, doc["reason"]) == (422, "Invalid") and doc["details"]["causes"][0]["field"] == "spec.containers[0].image"
    code, _, doc = call(master, "PATCH", path, {"metadata": {"name": "other"}}, headers=smp)
    assert (code, doc["reason"]) == (422, "Invalid")
    code, _, doc = call(master, "PATCH", path, {"metadata": {"resourceVersion": "1"}}, headers=smp)
    assert (code, doc["reason"]) == (409, "Conflict") and "modified" in doc["message"]  # a stale version
    code, _, doc = call(master, "PATCH", path, {}, headers={"Content-Type": "application/json"})
    assert (code, doc["reason"]) == (415, "UnsupportedMediaType")
    code, _, doc = call(master, "PATCH", "/api/v1/namespaces/default/pods/none-such", {}, headers=smp)
    assert (code, doc["reason"]) == (404, "NotFound")
    assert call(master, "GET", "/api/v1beta1/pods/v1-patched")[2]["desiredState"]["manifest"]["containers"][0][
        "image"] == "redis"  # the 2014 view of the same object
    assert call(master, "DELETE", path)[0] == 200


def test_strict_field_validation_refuses_unknown_fields(master):
    typo = v1_pod("v1-typo")
    typo["spec"]["containers"][0]["imagePolicy"] = "Always"
    typo["metadata"]["creationTimestamp"] = None  # what `kubectl create --dry-run -o yaml` writes: not a typo
    typo["status"] = {}
    code, _, doc = call(master, "POST", "/api/v1/namespaces/default/pods?fieldValidation=Strict", typo)
    assert (code, doc["reason"]) == (422, "Invalid")
    (cause,) = doc["details"]["causes"]
    assert cause["field"] == "spec.containers[0].imagePolicy" and "imagePullPolicy" in cause["message"]
    code, _, made = call(master, "POST", "/api/v1/namespaces/default/pods?fieldValidation=Ignore", typo)
    assert code == 201 and "imagePolicy" not in made["spec"]["containers"][0]  # dropped, as asked
    assert call(master, "DELETE", "/api/v1/namespaces/default/pods/v1-typo")[0] == 200


def test_the_scale_of_a_controller(master, observed):
    assert call(master, "POST", "/api/v1/namespaces/default/replicationcontrollers", v1_rc("v1-scaled", 2))[0] == 201
    path = "/api/v1/namespaces/default/replicationcontrollers/v1-scaled/scale"
    try:
        observed(running("v1-scaled-a", MINIONS[0], "v1-scaled"))
        code, _, scale = call(master, "GET", path)
        assert code == 200 and (scale["kind"], scale["apiVersion"]) == ("Scale", "autoscaling/v1")
        assert scale["spec"] == {"replicas": 2} and scale["status"] == {"replicas": 1, "selector": "app=v1-scaled"}
        code, _, scale = call(master, "PATCH", path, {"spec": {"replicas": 4}},
                              headers={"Content-Type": "application/merge-patch+json"})
        assert code == 200 and scale["spec"]["replicas"] == 4
        assert master.store.get("ReplicationController", "v1-scaled").body["replicas"] == 4
        code, _, scale = call(master, "PUT", path, {**scale, "spec": {"replicas": 0}})
        assert code == 200 and scale["spec"]["replicas"] == 0
        code, _, doc = call(master, "PUT", path, {**scale, "spec": {"replicas": -1}})
        assert (code, doc["reason"]) == (422, "Invalid")
        stale = {**scale, "metadata": {**scale["metadata"], "resourceVersion": "1"}, "spec": {"replicas": 3}}
        assert call(master, "PUT", path, stale)[0] == 409
        assert call(master, "GET", "/api/v1/namespaces/default/replicationcontrollers/none/scale")[0] == 404
        rc = "/api/v1/namespaces/default/replicationcontrollers/v1-scaled"
        code, _, doc = call(master, "DELETE", rc, {"propagationPolicy": "Orphan"})  # its pods would be nobody's
        assert (code, doc["reason"]) == (422, "Invalid") and "Orphan" in doc["message"]
        code, _, doc = call(master, "DELETE", rc + "?propagationPolicy=Sideways")
        assert (code, doc["reason"]) == (400, "BadRequest")
        assert call(master, "GET", rc)[0] == 200  # neither deleted it
    finally:
        call(master, "DELETE", "/api/v1/namespaces/default/replicationcontrollers/v1-scaled")


def test_dry_run_stores_nothing(master):
    code, _, made = call(master, "POST", "/api/v1/namespaces/default/pods?dryRun=All", v1_pod("v1-dry"))
    assert code == 201 and made["metadata"]["name"] == "v1-dry"
    assert call(master, "GET", "/api/v1/namespaces/default/pods/v1-dry")[0] == 404


def test_what_a_cli_apply_set_owns_is_read_only_and_says_so(master, monkeypatch):
    master.store.put("Pod", "v1-cli", {**json.loads(json.dumps(_model_json(v1_pod("v1-cli"))))}, applyset="default")
    try:
        code, _, got = call(master, "GET", "/api/v1/namespaces/default/pods/v1-cli")
        annotations = got["metadata"]["annotations"]
        assert annotations["cluster-pilot.io/read-only"] == "true"
        assert "default" in annotations["cluster-pilot.io/managed-by"]
        code, _, doc = call(master, "DELETE", "/api/v1/namespaces/default/pods/v1-cli")
        assert (code, doc["reason"]) == (409, "Conflict") and "apply set" in doc["message"]
        code, _, doc = call(master, "PATCH", "/api/v1/namespaces/default/pods/v1-cli", {"metadata": {"labels": {}}},
                            headers={"Content-Type": "application/merge-patch+json"})
        assert (code, doc["reason"]) == (409, "Conflict") and "apply set" in doc["message"]
    finally:
        master.store.delete("Pod", "v1-cli")
    monkeypatch.setattr(master.reconciler, "foreign", lambda kind, name: f"{kind} {name} belongs to apply set 'x'")
    code, _, doc = call(master, "POST", "/api/v1/namespaces/default/pods", v1_pod("v1-taken"))
    assert (code, doc["reason"]) == (409, "Conflict") and "apply set 'x'" in doc["message"]


def _model_json(manifest: dict) -> dict:
    from cluster_pilot.manifests import normalise_object
    from cluster_pilot.model import to_json

    return to_json(normalise_object(manifest, "test", kind_hint=manifest["kind"]))


# --- what runs, as Tables ------------------------------------------------------------------------------------

def test_tables_of_running_pods_controllers_services_and_nodes(master, observed):
    assert call(master, "POST", "/api/v1/namespaces/default/replicationcontrollers", v1_rc("v1-front", 2))[0] == 201
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "v1-front"},
               "spec": {"selector": {"app": "v1-front"}, "ports": [{"port": 80}]}}
    assert call(master, "POST", "/api/v1/namespaces/default/services", service)[0] == 201
    try:
        observed(running("v1-front-a1", MINIONS[0], "v1-front"), running("v1-front-b2", MINIONS[1], "v1-front"))
        code, _, table = call(master, "GET", "/api/v1/namespaces/default/pods?labelSelector=app%3Dv1-front", accept=TABLE)
        assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
        columns = [(c["name"], c["priority"]) for c in table["columnDefinitions"]]
        assert columns[:7] == [("Name", 0), ("Ready", 0), ("Status", 0), ("Restarts", 0), ("Age", 0), ("IP", 1),
                               ("Node", 1)]
        cells = {r["cells"][0]: r["cells"] for r in table["rows"]}
        assert cells["v1-front-a1"][1:4] == ["1/1", "Running", 0] and cells["v1-front-a1"][6] == MINIONS[0]
        assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
        got = call(master, "GET", "/api/v1/namespaces/default/pods/v1-front-a1")[2]
        assert got["metadata"]["ownerReferences"][0]["name"] == "v1-front"
        assert got["status"]["containerStatuses"][0]["ready"] is True and got["spec"]["nodeName"] == MINIONS[0]
        on_b = call(master, "GET", f"/api/v1/pods?fieldSelector=spec.nodeName%3D{MINIONS[1]}")[2]["items"]
        assert [p["metadata"]["name"] for p in on_b] == ["v1-front-b2"]
        rc = call(master, "GET", "/api/v1/namespaces/default/replicationcontrollers/v1-front", accept=TABLE)[2]
        assert rc["rows"][0]["cells"][:4] == ["v1-front", 2, 2, 2]
        svc = call(master, "GET", "/api/v1/namespaces/default/services/v1-front", accept=TABLE)[2]
        assert svc["rows"][0]["cells"][1] == "ClusterIP" and svc["rows"][0]["cells"][4] == "80/TCP"
        nodes = call(master, "GET", "/api/v1/nodes", accept=TABLE)[2]
        assert [(r["cells"][0], r["cells"][1]) for r in nodes["rows"]] == [(n, "Ready") for n in MINIONS]
        node = call(master, "GET", f"/api/v1/nodes/{MINIONS[0]}")[2]
        assert node["kind"] == "Node" and node["status"]["conditions"][0]["status"] == "True"
    finally:
        for path in ("replicationcontrollers", "services"):
            call(master, "DELETE", f"/api/v1/namespaces/default/{path}/v1-front")


def test_a_deleted_pod_that_still_runs_is_terminating(master, observed):
    assert call(master, "POST", "/api/v1/namespaces/default/pods", v1_pod("v1-going"))[0] == 201
    assert call(master, "DELETE", "/api/v1/namespaces/default/pods/v1-going")[0] == 200
    observed(running("v1-going", MINIONS[0]))  # the loop has not removed it yet
    table = call(master, "GET", "/api/v1/namespaces/default/pods/v1-going", accept=TABLE)[2]
    assert table["rows"][0]["cells"][2] == "Terminating"


class Watch:
    """A watch request's events, read as they come."""

    def __init__(self, master: Master, path: str, accept: str = "application/json") -> None:
        port = int(master.url.rsplit(":", 1)[1])
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.conn.request("GET", path, headers={**AUTH, "Accept": accept})
        self.response = self.conn.getresponse()
        assert self.response.status == 200, self.response.read()

    def next(self) -> tuple[str, dict]:
        event = json.loads(self.response.readline())
        return event["type"], event["object"]

    def close(self) -> None:
        self.conn.close()


def test_a_watch_from_a_lists_version_misses_nothing(master, observed):
    listed = call(master, "GET", "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dv1-watched")[2]
    version = listed["metadata"]["resourceVersion"]
    assert call(master, "POST", "/api/v1/namespaces/default/pods", v1_pod("v1-watched"))[0] == 201  # before the watch
    watch = Watch(master, "/api/v1/namespaces/default/pods?watch=true&allowWatchBookmarks=true"
                          f"&fieldSelector=metadata.name%3Dv1-watched&resourceVersion={version}")
    try:
        kind, obj = watch.next()
        assert (kind, obj["metadata"]["name"], obj["status"]["phase"]) == ("ADDED", "v1-watched", "Pending")
        assert watch.next()[0] == "BOOKMARK"
        observed(running("v1-watched", MINIONS[0]))
        kind, obj = watch.next()
        assert (kind, obj["status"]["phase"], obj["spec"]["nodeName"]) == ("MODIFIED", "Running", MINIONS[0])
        bookmark = watch.next()
        assert bookmark[0] == "BOOKMARK" and int(bookmark[1]["metadata"]["resourceVersion"]) > int(version)
        assert call(master, "DELETE", "/api/v1/namespaces/default/pods/v1-watched")[0] == 200
        observed()
        kind, obj = watch.next()
        assert (kind, obj["metadata"]["name"]) == ("DELETED", "v1-watched")
    finally:
        watch.close()
    again = Watch(master, f"/api/v1/namespaces/default/pods?watch=true&resourceVersion={bookmark[1]['metadata']['resourceVersion']}")
    try:  # from the bookmark: only what changed since, the pod's going
        assert again.next()[0] == "DELETED"
    finally:
        again.close()


def test_a_watch_without_a_version_starts_with_everything_as_table_rows(master, observed):
    assert call(master, "POST", "/api/v1/namespaces/default/pods", v1_pod("v1-table-watch"))[0] == 201
    watch = Watch(master, "/api/v1/namespaces/default/pods?watch=true&fieldSelector=metadata.name%3Dv1-table-watch",
                  accept=TABLE)
    try:
        kind, table = watch.next()
        assert kind == "ADDED" and table["kind"] == "Table" and table["rows"][0]["cells"][0] == "v1-table-watch"
    finally:
        watch.close()
        call(master, "DELETE", "/api/v1/namespaces/default/pods/v1-table-watch")


def test_human_durations_read_as_kubectls():
    assert [tables.human_duration(s) for s in (5, 119, 150, 600, 3 * 3600 + 60, 30 * 3600, 50 * 3600, 800 * 86400)] \
        == ["5s", "119s", "2m30s", "10m", "3h1m", "30h", "2d2h", "2y70d"]


# --- the kubeconfig, and the real kubectl --------------------------------------------------------------------

def _home_with_token(home: Path, url: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    (home / TOKEN_FILE).write_text(TOKEN + "\n")
    (home / TOKEN_FILE).chmod(0o600)
    (home / TOKEN_URLS_FILE).write_text(url + "\n")
    return home


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cluster_pilot", *args], capture_output=True, text=True,
                          env=dict(os.environ, CLUSTER_PILOT_HOME=str(home)), timeout=60, stdin=subprocess.DEVNULL)


def test_kubeconfig_is_private_and_only_for_the_tokens_master(tmp_path):
    home = _home_with_token(tmp_path / "home", "https://127.0.0.1:6443")
    ca = tmp_path / "ca.crt"
    ca.write_bytes(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    done = _cli(home, "kubeconfig", "--certificate-authority", str(ca))
    assert done.returncode == 0, done.stderr
    path = home / kubeconfig.FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = yaml.safe_load(path.read_text())
    assert doc["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"
    assert doc["users"][0]["user"]["token"] == TOKEN and doc["current-context"] == "cluster-pilot"
    assert "certificate-authority-data" in doc["clusters"][0]["cluster"]
    refused = _cli(home, "kubeconfig", "--server", "https://elsewhere.example:6443")
    assert refused.returncode == 1 and "not this master" in refused.stderr and "Traceback" not in refused.stderr
    plain = _home_with_token(tmp_path / "plain", "http://127.0.0.1:8080")
    noted = _cli(plain, "kubeconfig", "-o", str(tmp_path / "kc"))
    assert noted.returncode == 0 and "--insecure-loopback" in noted.stderr


@pytest.fixture
def kubectl(tls_master, tmp_path):
    if KUBECTL is None:
        pytest.skip("no kubectl on this machine")
    home = _home_with_token(tmp_path / "cp-home", tls_master.url)
    done = _cli(home, "kubeconfig", "--certificate-authority", str(tls_master.certificate))
    assert done.returncode == 0, done.stderr

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "KUBECONFIG": str(home / kubeconfig.FILE)}
        return subprocess.run([KUBECTL, *args], capture_output=True, text=True, env=env, timeout=60, input=stdin)

    return run


def test_kubectl_gets_creates_and_deletes(kubectl, tmp_path):
    manifest = tmp_path / "web.yaml"
    manifest.write_text(yaml.safe_dump_all([v1_pod("kc-web", {"app": "kc"}), v1_rc("kc-front", 2)]))
    created = kubectl("create", "-f", str(manifest))
    assert created.returncode == 0, created.stderr
    assert created.stdout.split("\n")[:2] == ["pod/kc-web created", "replicationcontroller/kc-front created"]
    listed = kubectl("get", "pods", "-o", "wide")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split()[:9] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED",
                                         "NODE"]
    assert "kc-web" in listed.stdout and "Pending" in listed.stdout
    got = json.loads(kubectl("get", "po", "kc-web", "-o", "json").stdout)
    assert got["kind"] == "Pod" and got["metadata"]["labels"] == {"app": "kc"}
    assert yaml.safe_load(kubectl("get", "pod", "kc-web", "-o", "yaml").stdout)["metadata"]["name"] == "kc-web"
    assert kubectl("get", "pods", "-l", "app=kc", "-o", "name").stdout.split() == ["pod/kc-web"]
    assert kubectl("get", "pods", "-l", "app=nothing").stdout == ""
    assert "kc-front" in kubectl("get", "rc").stdout
    nodes = kubectl("get", "nodes")
    assert nodes.returncode == 0 and all(m in nodes.stdout for m in MINIONS)
    assert kubectl("get", "svc").returncode == 0
    again = kubectl("create", "-f", str(manifest))
    assert again.returncode == 1 and "Error from server (AlreadyExists)" in again.stderr
    assert 'pods "kc-web" already exists' in again.stderr
    missing = kubectl("get", "pod", "none-such")
    assert missing.returncode == 1 and 'Error from server (NotFound): pods "none-such" not found' in missing.stderr
    deleted = kubectl("delete", "-f", str(manifest))
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout.split("\n")[:2] == ['pod "kc-web" deleted', 'replicationcontroller "kc-front" deleted']
    assert kubectl("get", "pods", "-o", "name").stdout == ""


def test_kubectl_validates_on_the_server_from_the_openapi_it_reads(kubectl, tmp_path):
    typo = v1_pod("kc-typo")
    typo["spec"]["containers"][0]["imagePolicy"] = "Always"
    manifest = tmp_path / "typo.yaml"
    manifest.write_text(yaml.safe_dump(typo))
    refused = kubectl("create", "-f", str(manifest))  # kubectl's default --validate=strict, no openapi error
    assert refused.returncode == 1 and "spec.containers[0].imagePolicy: unknown field" in refused.stderr
    explained = kubectl("explain", "pod.spec.containers.image")
    assert explained.returncode == 0 and "FIELD: image" in explained.stdout, explained.stderr


def test_openapi_is_generated_from_the_projects_schemas(master):
    code, _, root = call(master, "GET", "/openapi/v3")
    url = root["paths"]["api/v1"]["serverRelativeURL"]
    assert code == 200 and url.startswith("/openapi/v3/api/v1?hash=")
    code, _, doc = call(master, "GET", url)
    schemas = doc["components"]["schemas"]
    pod = next(s for s in schemas.values() if {"group": "", "version": "v1", "kind": "Pod"} in
               s.get("x-kubernetes-group-version-kind", []))
    assert pod["properties"]["kind"] == {"enum": ["Pod"]}
    patch = doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"]["kind"] == "Pod"
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]
    spec = next(v for k, v in schemas.items() if k.endswith(".Pod.podSpec"))
    assert spec["properties"]["containers"]["x-kubernetes-patch-merge-key"] == "name"
    service = next(v for k, v in schemas.items() if k.endswith(".v1.Service"))
    assert service["properties"]["spec"]["properties"]["ports"]["x-kubernetes-patch-merge-key"] == "port"
    assert "$defs" not in json.dumps(doc) and "$schema" not in json.dumps(doc)


def test_kubectl_delete_waits_until_the_pod_is_gone(kubectl, tls_master, tmp_path, monkeypatch):
    from tests.waits import wait_for

    monkeypatch.setattr(tls_master.reconciler, "last", None)

    def publish(*pods: ObservedPod) -> None:
        tls_master.reconciler.last = Observation({n: HostView(n, True, pods) if n == MINIONS[0] else HostView(n, True)
                                                  for n in MINIONS})

    manifest = tmp_path / "slow.yaml"
    manifest.write_text(yaml.safe_dump(v1_pod("kc-slow")))
    assert kubectl("create", "-f", str(manifest)).returncode == 0
    publish(running("kc-slow", MINIONS[0]))
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "KUBECONFIG": str(tmp_path / "cp-home" / kubeconfig.FILE)}
    deleting = subprocess.Popen([KUBECTL, "delete", "pod", "kc-slow"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env)
    try:
        wait_for(lambda: "Terminating" in kubectl("get", "pod", "kc-slow").stdout, 20, "the pod to be terminating")
        assert deleting.poll() is None  # kubectl waits while the minion still runs it
        publish()  # the loop removed it
        out, err = deleting.communicate(timeout=30)
        assert deleting.returncode == 0, err
        assert out.strip() == 'pod "kc-slow" deleted'
    finally:
        if deleting.poll() is None:
            deleting.kill()
            deleting.wait()


def test_kubectl_apply_creates_what_is_new(kubectl, tmp_path):
    manifest = tmp_path / "applied.yaml"
    manifest.write_text(yaml.safe_dump(v1_pod("kc-applied")))
    applied = kubectl("apply", "-f", str(manifest))
    assert applied.returncode == 0 and applied.stdout.strip() == "pod/kc-applied created", applied.stderr
    got = json.loads(kubectl("get", "pod", "kc-applied", "-o", "json").stdout)
    assert "kubectl.kubernetes.io/last-applied-configuration" in got["metadata"]["annotations"]
    assert kubectl("apply", "-f", str(manifest)).stdout.strip() == "pod/kc-applied unchanged"
    manifest.write_text(yaml.safe_dump(v1_pod("kc-applied", image="redis")))  # one field changed: a strategic patch
    changed = kubectl("apply", "-f", str(manifest))
    assert changed.returncode == 0 and changed.stdout.strip() == "pod/kc-applied configured", changed.stderr
    assert kubectl("get", "pod", "kc-applied", "-o", "jsonpath={.spec.containers[0].image}").stdout == "redis"
    assert kubectl("label", "pod", "kc-applied", "tier=front").stdout.strip() == "pod/kc-applied labeled"
    rc = tmp_path / "rc.yaml"
    rc.write_text(yaml.safe_dump(v1_rc("kc-scaled", 1)))
    assert kubectl("apply", "-f", str(rc)).returncode == 0
    scaled = kubectl("scale", "rc", "kc-scaled", "--replicas=3")
    assert scaled.returncode == 0 and scaled.stdout.strip() == "replicationcontroller/kc-scaled scaled", scaled.stderr
    assert kubectl("get", "rc", "kc-scaled", "-o", "jsonpath={.spec.replicas}").stdout == "3"
    assert kubectl("delete", "-f", str(rc)).returncode == 0
    assert kubectl("get", "pods", "-l", "tier=front", "-o", "name").stdout.split() == ["pod/kc-applied"]
    assert kubectl("delete", "pod", "kc-applied").returncode == 0
