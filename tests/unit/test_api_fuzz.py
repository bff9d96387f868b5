"""Property-based fuzzing of the master's API from its own OpenAPI document (schemathesis): whatever the
input, the answer is never a 5xx, and errors are v1beta1 Status objects the 2014 client can print."""

from __future__ import annotations

from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings

from cluster_pilot.host.inventory import load_inventory
from cluster_pilot.master.api import Settings, create_app
from cluster_pilot.master.reconcile import Reconciler
from cluster_pilot.store import SQLiteStore

TOKEN = "fuzz-token"


def _app(tmp: Path):
    inventory = tmp / "hosts.yml"
    inventory.write_text("minions:\n  hosts:\n    m1: {ansible_host: cp-fuzz-unreachable.invalid}\n")
    store = SQLiteStore(tmp / "store.db")
    reconciler = Reconciler(store, inventory, tmp, load_inventory)  # never started: no SSH, no Ansible
    return create_app(store, reconciler, Settings(token=TOKEN))


_tmp = Path(__import__("tempfile").mkdtemp(prefix="cp-fuzz-"))
schema = schemathesis.openapi.from_asgi("/openapi.json", _app(_tmp))


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_makes_the_api_fail(case):
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {TOKEN}"}
    response = case.call()
    assert response.status_code < 500, response.text
    if response.status_code >= 400 and case.path.startswith("/api/"):
        body = response.json()
        assert body["kind"] == "Status" and body["apiVersion"] == "v1beta1" and body["status"] == "Failure"
