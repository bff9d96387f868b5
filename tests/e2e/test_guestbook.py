"""The example guestbook on real minions: the frontend signs through ``redis-master`` and lists through
``redis-replica``, both by service name; replicas follow the master by name. Needs the service network (DNS)."""

from __future__ import annotations

import http.client
import json
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import cli, pods_of, ssh, wait_for

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "guestbook" / "v1beta1"
PORT = 8000  # the frontend service's port on every minion


def api(address: str, body: dict | None = None) -> tuple[int, dict]:
    """One request to /api/entries on a minion's frontend port: (status, JSON body); (0, {}) when unreachable."""
    conn = http.client.HTTPConnection(address, PORT, timeout=5)
    try:
        if body is None:
            conn.request("GET", "/api/entries")
        else:
            conn.request("POST", "/api/entries", json.dumps(body), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    except (OSError, ValueError):
        return 0, {}
    finally:
        conn.close()


def test_an_entry_posted_through_one_minion_is_listed_through_another(sandbox_home, sandbox):
    first, second = [m.address for m in sandbox.status() if m.ready][:2]
    cli("apply", "-f", str(EXAMPLE), home=sandbox_home)
    try:
        entry = f"signed by the e2e test {uuid.uuid4().hex[:8]}"
        wait_for(lambda: api(first, {"entry": entry})[0] == 201, 90,
                 f"the frontend on {first}:{PORT} to append through redis-master", interval=1)

        def listed() -> dict | None:
            status, doc = api(second)
            return doc if status == 200 and entry in doc["entries"] else None

        doc = wait_for(listed, 60, f"the entry to be listed through redis-replica on {second}:{PORT}", interval=0.5)
        assert doc["entries"].count(entry) == 1, doc
        frontends = set(pods_of(sandbox, "frontend"))
        assert len(frontends) == 3
        wait_for(lambda: {api(second)[1].get("pod") for _ in range(6)} == frontends, 30,
                 "every frontend replica to serve through the service")

        for replica in (c for cs in pods_of(sandbox, "redis-replica").values() for c in cs if c["container"] != "POD"):
            def role() -> list[str]:
                return ssh(sandbox, replica["address"], f"docker exec {replica['id']} redis-cli role").stdout.split()

            assert role()[:2] == ["slave", "redis-master"], role()  # following redis-master by name
            # a replica that has not finished its first sync says "handshake" or "sync" for a while
            wait_for(lambda: "connected" in role(), 60, f"replica {replica['pod']} to be connected to redis-master")
    finally:
        cli("delete", "-f", str(EXAMPLE), home=sandbox_home)
