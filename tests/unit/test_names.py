"""Issue 28, item 7b: object names are DNS-1123 labels or subdomains as Kubernetes requires for the kind, plus
the seed's camelCase 2014 ids, and never start with "-". One rule (``api.names.refusal``) for manifests and
request bodies, our command line and kubecfg's, and the master's paths."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import pytest

from cluster_pilot.api.names import refusal
from cluster_pilot.cli import cli, run
from cluster_pilot.cli.kubecfg import run_kubecfg
from cluster_pilot.errors import ValidationFailed
from cluster_pilot.manifests import load, normalise_object
from cluster_pilot.resources import resource_dir
from tests.unit.test_kubecfg import TOKEN, loopback_master  # noqa: F401 - a fixture

EXAMPLES = resource_dir("examples")
# ids the seed, its 2014 examples and kubecfg use, which must keep working
KEPT_2014 = ["redisSlaveController", "redis-master", "frontendController", "redis-master-pod", "redisslave",
             "frontend", "a", "web.v2", "A1", "x" * 63]
BAD = ["-rf", "--privileged", "-", "a_b", "a b", "redis!", ".", "..", "a/b", "a.", ".a", "a..b", "a.-b", "",
       "web\n", "a\x00", "é"]


@pytest.mark.parametrize("name", KEPT_2014)
@pytest.mark.parametrize("kind", ["Pod", "ReplicationController", "Service"])
def test_the_2014_ids_are_names(kind, name):
    if kind == "Service" and "." in name:
        assert "DNS-1123 label" in refusal(kind, name, "v1beta1")  # a service's name is a DNS name
        return
    assert refusal(kind, name, "v1beta1") is None and refusal(kind, name) is None


@pytest.mark.parametrize("name", BAD)
@pytest.mark.parametrize("kind", ["Pod", "ReplicationController", "Service", "Minion"])
def test_bad_names_are_refused_for_every_kind(kind, name):
    if kind == "Minion" and name in ("a_b", "redis!", "a.", ".a", "a..b", "a.-b", "é"):
        return  # a minion is named by the inventory; only the rules every name keeps apply
    assert refusal(kind, name) is not None and refusal(kind, name, "v1") is not None


def test_v1_names_are_what_kubernetes_requires():
    assert refusal("Pod", "web.v2", "v1") is None and refusal("ReplicationController", "a.b.c", "v1") is None
    assert "DNS-1123 label" in refusal("Service", "web.v2", "v1")
    assert "upper-case letters are for v1beta1 ids only" in refusal("Pod", "redisMaster", "v1")
    assert refusal("Pod", "a" * 253) is None and "longer than 253" in refusal("Pod", "a" * 254)
    assert refusal("Service", "a" * 63) is None and "longer than 63" in refusal("Service", "a" * 64)


def test_a_leading_dash_is_told_as_an_option():
    assert refusal("Pod", "-rf").startswith('starts with "-", which a command line would read as an option')


# --- manifests and request bodies --------------------------------------------------------------------------

def test_the_seed_and_the_examples_still_validate():
    names = {o.meta.name for d in ("seed-2014", "guestbook/v1beta1", "guestbook/v1")
             for o in load([str(EXAMPLES / d)]).objects}
    assert {"redisSlaveController", "redis-master-pod", "redis-master", "frontend"} <= names


@pytest.mark.parametrize("name", ["-rf", "--privileged", "a_b"])
def test_validate_tells_a_bad_v1beta1_id_at_its_line(tmp_path, capsys, name):
    f = tmp_path / "rc.json"
    f.write_text((EXAMPLES / "seed-2014" / "redis-slave-controller.json").read_text()
                 .replace('"redisSlaveController"', json.dumps(name), 1))
    code = run(cli, "cluster-pilot", ["validate", str(f)])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in out + err
    [line] = out.splitlines()
    assert line.startswith(f"{f}:2:9: /id: {json.dumps(name)} "), line


def test_validate_tells_a_bad_v1_name_with_the_object_s_other_errors(tmp_path):
    f = tmp_path / "pod.yaml"
    f.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: --privileged}\n"
                 "spec:\n  containers: [{name: c, image: busybox, ports: [{containerPort: x}]}]\n")
    with pytest.raises(ValidationFailed) as failed:
        load([str(f)])
    found = [(p.line, p.column, p.pointer) for p in failed.value.problems]
    assert found == [(3, 18, "/metadata/name"), (5, 66, "/spec/containers/0/ports/0/containerPort")]
    assert failed.value.problems[0].message.startswith('"--privileged" starts with "-"')


@pytest.mark.parametrize("lenient", [False, True])
def test_a_request_body_is_held_to_the_same_rule(lenient):
    body = {"id": "-rf", "kind": "Service", "port": 80, "selector": {"a": "b"}}
    with pytest.raises(ValidationFailed, match='/id: "-rf" starts with "-"'):
        normalise_object(body, "request body", lenient=lenient)


# --- the command line --------------------------------------------------------------------------------------

CLI = [
    ["delete", "pods/-rf"],
    ["delete", "rc/--privileged"],
    ["scale", "rc", "--replicas", "1", "--", "-rf"],
    ["get", "pods", "--", "-rf"],
    ["get", "svc", "a_b"],
    ["describe", "pods", "--", "--privileged"],
    ["logs", "--", "-rf"],
    ["exec", "--", "-rf", "true"],
    ["get", "events", "--for", "pods/-rf"],
]


@pytest.mark.parametrize("args", CLI, ids=" ".join)
def test_our_command_line_refuses_a_bad_name_before_asking_anyone(tmp_path, monkeypatch, capsys, args):
    monkeypatch.setenv("CLUSTER_PILOT_HOME", str(tmp_path / "home"))  # no inventory, no store, no master
    assert run(cli, "cluster-pilot", args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert 'starts with "-"' in err or "must be a DNS-1123" in err, err


KUBECFG = [
    ["delete", "pods/-rf"], ["get", "minions/-rf"], ["update", "services/a_b"], ["--", "stop", "-rf"],
    ["--", "resize", "--privileged", "2"], ["--", "rm", "-rf"], ["--", "rollingupdate", "-rf"],
    ["--", "run", "busybox", "1", "-rf"],
]


@pytest.mark.parametrize("args", KUBECFG, ids=" ".join)
def test_kubecfg_refuses_a_bad_name_before_asking_the_master(capsys, args):
    code = run_kubecfg(["-h", "http://127.0.0.1:9", *args])  # nothing listens there: it is never asked
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1, err
    assert err.startswith("kubecfg: error: ") and ('starts with "-"' in err or "must be a DNS-1123" in err), err


# --- the master's API --------------------------------------------------------------------------------------

def call(url: str, method: str, path: str, body: object | None = None) -> tuple[int, dict]:
    host, port = url.rsplit("/", 1)[1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {TOKEN}", **({"Content-Type": "application/json"} if data else {})}
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


SERVICE = {"kind": "Service", "apiVersion": "v1beta1", "port": 8080, "selector": {"name": "redisSlave"}}


@pytest.mark.parametrize("method,path", [
    ("GET", "/api/v1beta1/pods/-rf"), ("DELETE", "/api/v1beta1/pods/--privileged"),
    ("PUT", "/api/v1beta1/services/-rf"), ("GET", "/api/v1beta1/replicationControllers/a_b"),
    ("GET", "/api/v1beta1/minions/-rf"), ("GET", "/api/v1beta1/pods/-rf/log"),
    ("GET", "/api/v1beta1/events?object=pods/-rf"),
])
def test_the_api_answers_a_bad_id_in_a_path_with_a_400_naming_the_field(loopback_master, method, path):
    code, answer = call(loopback_master.url, method, path, {**SERVICE, "id": "-rf"} if method == "PUT" else None)
    assert (code, answer["kind"], answer["reason"]) == (400, "Status", "Invalid"), answer
    field = "object" if "events" in path else "id"
    assert answer["message"].startswith(f"{field} \"") and answer["details"]["causes"][0]["field"] == field


def test_the_api_refuses_a_bad_id_in_a_body_and_keeps_the_2014_ones(loopback_master):
    code, answer = call(loopback_master.url, "POST", "/api/v1beta1/services", {**SERVICE, "id": "--privileged"})
    assert (code, answer["reason"]) == (400, "Invalid")
    assert answer["message"].startswith('/id: "--privileged" starts with "-"'), answer
    assert loopback_master.store.list() == [] or all(r.name != "--privileged" for r in loopback_master.store.list())
    code, answer = call(loopback_master.url, "POST", "/api/v1beta1/services", {**SERVICE, "id": "redisSlaveSvc"})
    assert code == 200, answer
    code, answer = call(loopback_master.url, "GET", "/api/v1beta1/services/redisSlaveSvc")
    assert (code, answer["id"]) == (200, "redisSlaveSvc")
    assert call(loopback_master.url, "DELETE", "/api/v1beta1/services/redisSlaveSvc")[0] == 200


def test_there_are_no_api_routes_that_take_an_id_unchecked():
    """Every API route with an id in its path is one the tests above call with a bad one (the schemathesis run,
    test_api_fuzz, calls each with several)."""
    from tests.unit.test_api_fuzz import _app  # the fuzz run's master, never started

    paths = _app(Path(__import__("tempfile").mkdtemp(prefix="cp-names-"))).openapi()["paths"]
    assert sorted(p for p in paths if "{" in p.replace("{resource}", "").replace("{plural}", "")) == [
        "/api/v1/namespaces/{namespace}/pods/{pod}/log", "/api/v1/namespaces/{namespace}/replicationcontrollers/{name}/scale",
        "/api/v1/namespaces/{namespace}/{plural}", "/api/v1/namespaces/{namespace}/{plural}/{name}",
        "/api/v1/{plural}/{name}",
        "/api/v1beta1/pods/{pod}/log", "/api/v1beta1/{resource}/{name}"]


def test_a_bad_namespace_in_todays_paths_is_a_400_naming_the_field(tmp_path):
    from tests.unit.test_api_v1 import call
    from tests.unit.test_kubecfg import serve

    master = serve(tmp_path, insecure_loopback=False)
    try:
        for method, path in (("GET", "/api/v1/namespaces/-rf/pods"), ("GET", "/api/v1/namespaces/a_b/pods/x"),
                             ("DELETE", "/api/v1/namespaces/a.b/pods/x"), ("GET", "/api/v1/namespaces/-x/pods/p/log")):
            code, _, doc = call(master, method, path)
            assert (code, doc["reason"], doc["details"]["causes"][0]["field"]) == (400, "Invalid", "metadata.namespace")
    finally:
        master.stop()


def test_the_dashboard_refuses_a_bad_pod_id(tmp_path):
    import urllib.parse

    from tests.unit.test_day2 import Ui
    from tests.unit.test_kubecfg import serve

    master = serve(tmp_path, insecure_loopback=False)
    try:
        ui = Ui(master)
        signed = ui.request("POST", "/ui/login", urllib.parse.urlencode({"token": TOKEN}))
        ui.cookie = signed.headers["set-cookie"].split(";")[0]
        for path in ("/ui/pods/-rf", "/ui/pods/--privileged/logs", "/ui/pods/-rf/log"):
            assert ui.request("GET", path).status == 400, path
        assert ui.request("GET", "/ui/pods/redisSlave-1a2b3").status == 404  # a good id: just not there
    finally:
        master.stop()
