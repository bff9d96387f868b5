"""The observation probe against a fake dockerd: what it prints is what dockerd listed, byte for byte decoded,
with the proxy document's hash and the records beside it."""

from __future__ import annotations

import hashlib
import json
import socketserver
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler

import pytest

from cluster_pilot.host.observe import probe_script

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


def _probe(tmp_path) -> dict:
    script = probe_script(str(tmp_path / "docker.sock"), str(tmp_path / "proxy.json"),
                          str(tmp_path / "objects.json"))
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
                      "records": '{"objects": {"svc/ü": 1}}'}
    assert server.asked == ["/containers/json?all=1&filters=%7B%22label%22%3A%20%5B%22io.cluster-pilot.pod%22%5D%7D"]


def test_a_host_without_proxy_or_records_says_none(tmp_path, dockerd):
    dockerd(body=b"[]\n")
    assert _probe(tmp_path) == {"containers": [], "proxy": None, "records": None}


def test_dockerd_refusing_is_an_error_with_its_words(tmp_path, dockerd):
    dockerd(status=500, body=b'{"message": "page not found"}')
    answer = _probe(tmp_path)
    assert answer["error"].startswith("dockerd answered 500: ") and "page not found" in answer["error"]


def test_no_dockerd_is_an_error(tmp_path):
    assert _probe(tmp_path)["error"].startswith("dockerd does not answer: ")
