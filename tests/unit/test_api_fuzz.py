"""Property-based fuzzing of the master's API from its own OpenAPI document (schemathesis): whatever the
input, the answer is never a 5xx, and errors are Status objects (v1beta1 ones the 2014 client can print, v1 on
today's paths); the same
inputs from a browser page (form body, foreign Host or Origin, no token) or too large are refused with their
own codes (415, 421, 403, 401, 413)."""

from __future__ import annotations

from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings

from cluster_pilot.host.inventory import load_inventory
from cluster_pilot.master.api import Settings, create_app
from cluster_pilot.master.guard import Rules
from cluster_pilot.master.reconcile import Reconciler
from cluster_pilot.master.routes.errors import speaks_v1
from cluster_pilot.store import SQLiteStore

TOKEN = "fuzz-token"


def _app(tmp: Path):
    inventory = tmp / "hosts.yml"
    inventory.write_text("minions:\n  hosts:\n    m1: {ansible_host: cp-fuzz-unreachable.invalid}\n")
    store = SQLiteStore(tmp / "store.db")
    reconciler = Reconciler(store, inventory, tmp, load_inventory)  # never started: no SSH, no Ansible
    rules = Rules(names=("testserver",), max_body=64 << 10)  # the ASGI test client's Host
    return create_app(store, reconciler, Settings(token=TOKEN, rules=rules))


_tmp = Path(__import__("tempfile").mkdtemp(prefix="cp-fuzz-"))
schema = schemathesis.openapi.from_asgi("/openapi.json", _app(_tmp), headers={"Authorization": f"Bearer {TOKEN}"})


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_makes_the_api_fail(case):
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {TOKEN}"}
    response = case.call()
    assert response.status_code < 500, response.text
    if response.status_code >= 400 and case.path.startswith("/api/"):
        body = response.json()
        version = "v1" if speaks_v1(case.path) else "v1beta1"  # today's paths answer today's Status
        assert body["kind"] == "Status" and body["apiVersion"] == version and body["status"] == "Failure"


HOSTILE = [
    ({"Host": "evil.example"}, 421),
    ({"Origin": "http://evil.example"}, 403),
    ({"Authorization": "Bearer wrong"}, 401),
]
FORMS = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_hostile_requests_get_their_own_codes(case):
    """Whatever the route and input: a foreign Host or Origin, a wrong token, a form body on a write, a body
    over the limit; each refused before the route, with a Status."""
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    expected = [(headers, code) for headers, code in HOSTILE if code != 401 or case.path != "/healthz"]
    if case.method.upper() in ("POST", "PUT", "DELETE", "PATCH"):
        expected += [({"Content-Type": form}, 415) for form in FORMS]
        expected.append(({"Content-Type": "application/json"}, 413, b"[" + b" " * (64 << 10) + b"]"))
    for headers, code, *body in expected:
        sent = {**(case.headers or {}), **auth, **headers}
        response = case.call(headers=sent, **({"data": body[0]} if body else {}))
        assert response.status_code == code, (headers, response.status_code, response.text)
        answer = response.json()
        assert answer["kind"] == "Status" and answer["code"] == code and answer["status"] == "Failure"


NOT_JSON = [b'{"id": "\\ud800"}', b'{"labels": {"\\udfff": "a"}}', b'{"id": "\xff\xfe"}', b'{"id": ']


@schema.parametrize()
@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
def test_a_body_that_is_not_utf8_or_json_is_a_400_on_every_write(case):
    """Every route that takes a body: a lone surrogate escape, bytes that are not UTF-8 or JSON cut short
    are the client's 400 Status, never our 500."""
    if not case.operation.body:
        return
    if case.path_parameters and "resource" in case.path_parameters:
        case.path_parameters = {**case.path_parameters, "resource": "pods"}
    if case.path_parameters and "plural" in case.path_parameters:  # today's API: a resource that exists
        case.path_parameters = {**case.path_parameters, "plural": "pods"}
    if case.path_parameters and "name" in case.path_parameters:
        case.path_parameters = {**case.path_parameters, "name": "fuzz"}  # a bad id is a 400 of its own (below)
    if case.path_parameters and "namespace" in case.path_parameters:
        case.path_parameters = {**case.path_parameters, "namespace": "default"}  # so is a bad namespace
    media = "application/merge-patch+json" if case.method.upper() == "PATCH" else "application/json"
    headers = {**(case.headers or {}), "Authorization": f"Bearer {TOKEN}", "Content-Type": media}
    for body in NOT_JSON:
        response = case.call(headers=headers, data=body)
        answer = response.json()
        assert answer["kind"] == "Status" and answer["code"] == response.status_code, response.text
        assert response.status_code == 400 and "not JSON" in answer["message"], (body, response.text)


BAD_IDS = ["-rf", "--privileged", "a b", "x_y", "redis!", "a.-b"]  # "..": the client's URL resolves it away


@schema.parametrize()
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
def test_a_bad_id_in_any_path_is_a_400_naming_the_field(case):
    """Issue 28: every route with an id in its path holds it to the one rule for names (api/names.py) and
    answers a 400 Status that names the field."""
    field = next((p for p in ("name", "pod") if p in (case.path_parameters or {})), None)
    if field is None or not case.path.startswith("/api/") or case.method.upper() != case.operation.method.upper():
        return
    headers = {**(case.headers or {}), "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    case.query = {}  # a query FastAPI cannot read is its own 400, before the route
    if case.method.upper() == "PATCH":
        headers["Content-Type"] = "application/merge-patch+json"
    # today's API names the field as it is spelled there
    named_field = "metadata.name" if speaks_v1(case.path) else "id"
    if "resource" in case.path_parameters:
        resources = [("resource", r) for r in ("pods", "replicationControllers", "services")]
    elif "plural" in case.path_parameters:
        resources = [("plural", r) for r in ("pods", "replicationcontrollers", "services")]
    else:
        resources = [None]
    if "namespace" in case.path_parameters:
        case.path_parameters = {**case.path_parameters, "namespace": "default"}  # only the id is bad here
    for resource in resources:
        for bad in BAD_IDS:
            resource_part = dict([resource]) if resource else {}
            case.path_parameters = {**case.path_parameters, **resource_part, field: bad}
            response = case.call(headers=headers, **({"data": b"{}"} if case.operation.body else {}))
            answer = response.json()
            assert (response.status_code, answer["reason"]) == (400, "Invalid"), (bad, response.text)
            assert answer["message"].startswith(named_field + " ")
            assert answer["details"]["causes"][0]["field"] == named_field
