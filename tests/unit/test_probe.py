"""The observation probe against a fake dockerd: what it prints is what dockerd listed, byte for byte decoded,
with the proxy document's hash and the records beside it."""

from __future__ import annotations

import hashlib
import json
import os
import socketserver
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest

from cluster_pilot.host.lock import REMOTE, unchanged_since

from cluster_pilot.host.observed import LockSeen
from cluster_pilot.host.probe import probe_script

CONTAINERS = [{"Id": "a1", "Names": ["/cp_web_app_h1"], "State": "running", "Status": "Up 3 seconds",
               "Labels": {"io.cluster-pilot.pod": "web", "io.cluster-pilot.pod-labels": "{\"who\": \"Zoë ✓\"}"}}]


class _Dockerd(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def _serve(path: str, status: int, body: bytes) -> _Dockerd:
    asked = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            asked.append(self.path)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

        def address_string(self):
            return "docker"

    server = _Dockerd(path, Handler)
    server.asked = asked  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _probe(tmp_path, lock_dir: str = "") -> dict:
    script = probe_script(str(tmp_path / "docker.sock"), str(tmp_path / "proxy.json"),
                          str(tmp_path / "objects.json"), lock_dir or str(tmp_path / "no" / "apply.lock"),
                          str(tmp_path / "health.json"))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=30, check=True).stdout
    return json.loads(out.decode("utf-8").strip().splitlines()[-1])


@pytest.fixture
def dockerd(tmp_path):
    servers = []

    def start(status=200, body=(json.dumps(CONTAINERS, ensure_ascii=False) + "\n").encode()):
        servers.append(_serve(str(tmp_path / "docker.sock"), status, body))
        return servers[-1]

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def test_the_probe_returns_dockerds_list_the_proxy_hash_and_the_records(tmp_path, dockerd):
    server = dockerd()
    (tmp_path / "proxy.json").write_bytes(b'{"services": []}')
    (tmp_path / "objects.json").write_text('{"objects": {"svc/ü": 1}}', encoding="utf-8")
    answer = _probe(tmp_path)
    assert answer == {"containers": CONTAINERS, "proxy": hashlib.sha256(b'{"services": []}').hexdigest(),
                      "records": '{"objects": {"svc/ü": 1}}', "lock": None, "health": None}
    assert server.asked == ["/containers/json?all=1&filters=%7B%22label%22%3A%20%5B%22io.cluster-pilot.pod%22%5D%7D"]


def test_a_host_without_proxy_or_records_says_none(tmp_path, dockerd):
    dockerd(body=b"[]\n")
    assert _probe(tmp_path) == {"containers": [], "proxy": None, "records": None, "lock": None, "health": None}


def test_records_that_are_a_directory_are_said_unreadable_not_absent(tmp_path, dockerd):
    """Absent records are a minion with none; a directory in their place must be rewritten, so it is told."""
    from cluster_pilot.host.records import decode

    dockerd(body=b"[]\n")
    (tmp_path / "objects.json").mkdir()
    records = _probe(tmp_path)["records"]
    assert records is not None and decode(records)[1] == ["unreadable object records (Is a directory)"]


def test_dockerd_refusing_is_an_error_with_its_words(tmp_path, dockerd):
    dockerd(status=500, body=b'{"message": "page not found"}')
    answer = _probe(tmp_path)
    assert answer["error"].startswith("dockerd answered 500: ") and "page not found" in answer["error"]


def test_no_dockerd_is_an_error(tmp_path):
    assert _probe(tmp_path)["error"].startswith("dockerd does not answer: ")


def test_a_look_that_no_run_followed_before_this_one_took_the_lock_needs_no_second_look(tmp_path, dockerd):
    """The probe and the lock host's own script on one directory: the lock's parent changes with every lock
    taken or released, so a run that came between is always seen."""
    dockerd(body=b"[]\n")
    lib = tmp_path / "lib"
    lib.mkdir()
    lock_dir = str(lib / "apply.lock")
    ns: dict = {"__name__": "lock_host"}
    exec(REMOTE, ns)

    def acquire(token: str) -> dict:
        return ns["op"]({"op": "acquire", "owner": {"token": token}}, lock_dir, time.time())

    def release(token: str) -> None:
        ns["op"]({"op": "release", "owner": {"token": token}}, lock_dir, time.time())

    def look() -> LockSeen:
        old = time.time_ns() - 10 * 10**9  # nothing touched the lock for 10 s
        os.utime(lib, ns=(old, old))
        return LockSeen(*_probe(tmp_path, lock_dir)["lock"])

    seen = look()
    assert not seen.held and seen.idle > 9
    assert unchanged_since(seen, 0.5, acquire("me")["before"])
    release("me")
    seen = look()
    acquire("other")  # another run took the lock after this one looked, and let it go
    release("other")
    assert not unchanged_since(seen, 0.5, acquire("me")["before"])
    seen = look()
    assert seen.held  # this run's own, still held: whoever looks now must look again
    assert not unchanged_since(seen, 0.5, seen.stamp)
    release("me")
    seen = look()
    assert not unchanged_since(seen, 12.0, acquire("me")["before"])  # the look took longer than the lock was free
