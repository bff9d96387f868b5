"""The master: its token file, reads behind the token, cross-site and rebinding defences, bounded bodies,
writes off the event loop, private store files, bounded history, and a client that keeps the token home."""

from __future__ import annotations

import http.client
import json
import os
import socket
import stat
import threading
from pathlib import Path

import pytest

from cluster_pilot.cli.master import master_token, served_urls
from cluster_pilot.errors import UserError
from cluster_pilot.master.client import MasterClient, token_from_state
from cluster_pilot.master.guard import Rules, refusal
from cluster_pilot.store import SQLiteStore
from tests.unit.test_kubecfg import TOKEN, loopback_master, serve  # noqa: F401 - a fixture
from tests.waits import wait_for

POD = {"id": "sec-pod", "desiredState": {"manifest": {"version": "v1beta1", "containers": [
    {"name": "a", "image": "busybox"}]}}}


def request(url: str, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    host, port = url.rsplit("/", 1)[1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# --- the token file --------------------------------------------------------------------------------------

def test_the_token_is_written_atomically_private_and_not_shown_off_a_terminal(tmp_path, capsys):
    token = master_token(tmp_path, announce=True)
    path = tmp_path / "master-token"
    assert path.read_text() == token + "\n" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["master-token"]  # no temporary file left
    err = capsys.readouterr().err
    assert token not in err and str(path) in err
    assert master_token(tmp_path, announce=True) == token and capsys.readouterr().err == ""


@pytest.mark.parametrize("content,mode,expected", [("\n", 0o600, "empty"), ("t0ken\n", 0o644, "readable by group"),
                                                   ("t0ken\n", 0o640, "readable by group")])
def test_a_bad_token_file_stops_the_master(tmp_path, content, mode, expected):
    path = tmp_path / "master-token"
    path.write_text(content)
    path.chmod(mode)
    with pytest.raises(UserError, match=expected):
        master_token(tmp_path)


def test_an_unreadable_token_file_stops_the_master(tmp_path):
    (tmp_path / "master-token").mkdir()  # root reads any file: a directory cannot be read as one
    with pytest.raises(UserError, match="cannot be read"):
        master_token(tmp_path)


# --- the HTTP defences -----------------------------------------------------------------------------------

@pytest.mark.parametrize("headers,code", [
    ({"host": "127.0.0.1:8080"}, None), ({"host": "localhost:8080"}, None), ({"host": "evil.example:8080"}, 421),
    ({"host": "master.example"}, None), ({"host": "127.0.0.1:8080", "origin": "http://evil.example"}, 403),
    ({"host": "127.0.0.1:8080", "origin": "http://127.0.0.1:8080"}, None),
    ({"host": "127.0.0.1:8080", "origin": "http://127.0.0.1:9999"}, 403),
    ({"host": "127.0.0.1:8080", "origin": "null"}, 403),
    ({"host": "127.0.0.1:8080", "content-type": "text/plain"}, 415),
    ({"host": "127.0.0.1:8080", "content-type": "application/x-www-form-urlencoded"}, 415),
    ({"host": "127.0.0.1:8080", "content-type": "multipart/form-data; boundary=x"}, 415),
    ({"host": "127.0.0.1:8080", "content-type": "application/json; charset=utf-8"}, None),
    ({"host": "127.0.0.1:8080", "content-type": "application/yaml"}, None),
    ({"host": "127.0.0.1:8080"}, None),  # no Content-Type: the 2014 client
    ({"host": "127.0.0.1:8080", "content-length": str((4 << 20) + 1)}, 413),
])
def test_refusals(headers, code):
    rules = Rules(listen="127.0.0.1", port=8080, names=("master.example",))
    found = refusal(rules, "POST", headers)
    assert (found[0] if found else None) == code


def test_only_the_dashboard_takes_forms_and_never_from_another_site():
    rules = Rules(listen="127.0.0.1", port=8080)
    form = {"host": "127.0.0.1:8080", "content-type": "application/x-www-form-urlencoded"}
    assert refusal(rules, "POST", form, "/ui/login") is None
    assert refusal(rules, "POST", {**form, "origin": "http://127.0.0.1:8080"}, "/ui/login") is None
    assert refusal(rules, "POST", {**form, "origin": "http://evil.example"}, "/ui/login")[0] == 403
    assert refusal(rules, "POST", form, "/api/v1beta1/pods")[0] == 415


def test_a_wildcard_listener_takes_addresses_but_not_foreign_names():
    rules = Rules(listen="0.0.0.0", port=8443)
    assert refusal(rules, "GET", {"host": "10.0.0.5:8443"}) is None
    assert refusal(rules, "GET", {"host": "rebound.example:8443"})[0] == 421


def test_a_page_cannot_write_even_to_an_insecure_loopback_master(loopback_master):
    body = json.dumps({**POD, "id": "from-a-page"}).encode()
    code, answer = request(loopback_master.url, "POST", "/api/v1beta1/pods", body, {"Content-Type": "text/plain"})
    assert code == 415 and json.loads(answer)["kind"] == "Status"
    code, _ = request(loopback_master.url, "POST", "/api/v1beta1/pods", body,
                      {"Content-Type": "application/json", "Origin": "http://evil.example"})
    assert code == 403
    code, _ = request(loopback_master.url, "POST", "/api/v1beta1/pods", body, {"Host": "rebound.example"})
    assert code == 421
    assert all(r.name != "from-a-page" for r in loopback_master.store.list())
    code, _ = request(loopback_master.url, "POST", "/api/v1beta1/pods", body)  # the 2014 client: no Content-Type
    assert code == 200 and any(r.name == "from-a-page" for r in loopback_master.store.list())


def test_reads_need_the_token_but_healthz_does_not(tmp_path):
    m = serve(tmp_path, insecure_loopback=False)
    try:
        assert request(m.url, "GET", "/api/v1beta1/pods")[0] == 401
        assert request(m.url, "GET", "/openapi.json")[0] == 401
        assert request(m.url, "GET", "/healthz")[0] == 200
        assert request(m.url, "GET", "/api/v1beta1/pods", headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200
    finally:
        m.stop()


def test_a_body_over_the_limit_is_refused_before_it_is_read_whole(loopback_master):
    port = int(loopback_master.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:  # announces 5 MiB, sends none
        sock.sendall(b"POST /api/v1beta1/pods HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5242880\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 413 ")

    def chunks():
        for _ in range(6):
            yield b" " * (1 << 20)

    conn = http.client.HTTPConnection("127.0.0.1", int(loopback_master.url.rsplit(":", 1)[1]), timeout=10)
    try:
        conn.request("POST", "/api/v1beta1/pods", body=chunks(), encode_chunked=True,
                     headers={"Transfer-Encoding": "chunked"})
        assert conn.getresponse().status == 413
    except (BrokenPipeError, ConnectionResetError):
        pass  # refused while still sending: also before the whole body was read
    finally:
        conn.close()


@pytest.mark.parametrize("body", [
    b'{"id": "sec-sur", "desiredState": {"manifest": {"version": "v1beta1", "containers": [{"name": "\\ud800", '
    b'"image": "busybox"}]}}}',
    b'{"id": "sec-sur", "labels": {"\\udfff": "a"}}',
    b'{"id": "sec-\xff\xfe"}',
    b'{"id": "sec-\xc3"}',
    b'{"id": ',
])
def test_a_body_that_is_not_utf8_or_json_is_a_400_status(loopback_master, body):
    code, answer = request(loopback_master.url, "POST", "/api/v1beta1/pods", body,
                           {"Content-Type": "application/json"})
    status = json.loads(answer)
    assert code == 400 and status["kind"] == "Status" and status["code"] == 400, answer
    assert "not JSON" in status["message"]


def test_policy_is_applied_to_api_writes(loopback_master):
    body = {**POD, "id": "sec-root", "desiredState": {"manifest": {
        "version": "v1beta1", "containers": [{"name": "a", "image": "busybox",
                                              "volumeMounts": [{"name": "r", "mountPath": "/r"}]}],
        "volumes": [{"name": "r", "source": {"hostDir": {"path": "/opt"}}}]}}}
    code, answer = request(loopback_master.url, "POST", "/api/v1beta1/pods", json.dumps(body).encode())
    assert code == 400 and "host path /opt is not allowed on this fleet" in json.loads(answer)["message"]
    privileged = {**POD, "id": "sec-priv", "desiredState": {"manifest": {"version": "v1beta1", "containers": [
        {"name": "a", "image": "busybox", "privileged": True}]}}}
    code, answer = request(loopback_master.url, "POST", "/api/v1beta1/pods", json.dumps(privileged).encode())
    assert code == 400 and "not supported" in json.loads(answer)["message"]


def test_healthz_answers_while_a_write_is_in_the_store(loopback_master, monkeypatch):
    entered, release = threading.Event(), threading.Event()
    put = loopback_master.store.put

    def slow_put(*args, **kwargs):
        entered.set()
        release.wait(20)
        return put(*args, **kwargs)

    monkeypatch.setattr(loopback_master.store, "put", slow_put)
    body = json.dumps({**POD, "id": "sec-slow"}).encode()
    writer = threading.Thread(target=request, args=(loopback_master.url, "POST", "/api/v1beta1/pods", body))
    writer.start()
    try:
        wait_for(entered.is_set, 10, "the write to reach the store")
        assert request(loopback_master.url, "GET", "/healthz")[0] == 200  # the event loop is not held by the write
    finally:
        release.set()
        writer.join(20)
    assert any(r.name == "sec-slow" for r in loopback_master.store.list())


def test_an_unauthenticated_write_gets_its_401_before_sending_its_body(tmp_path):
    """The head promises a body that never comes: the answer must not wait for it."""
    m = serve(tmp_path, insecure_loopback=False)
    host, port = m.url.rsplit("/", 1)[1].rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"POST /api/v1beta1/pods HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
            answer = b""
            while b"\r\n\r\n" not in answer:
                chunk = sock.recv(4096)
                assert chunk, answer
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 401"), answer
    finally:
        m.stop()


# --- the store -----------------------------------------------------------------------------------------------

def test_store_files_are_private_and_history_is_bounded(tmp_path):
    old = os.umask(0o022)
    try:
        store = SQLiteStore(tmp_path / "state" / "s.db", history_limit=3)
        for i in range(10):
            store.put("Pod", "a", {"i": i})
        store.put("Pod", "b", {"i": 0})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    for f in (tmp_path / "state").iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    assert [h["resource_version"] for h in store.history(name="a")] == [10, 9, 8]
    assert len(store.history(name="b")) == 1


# --- the client ----------------------------------------------------------------------------------------------

def test_the_token_goes_only_to_the_master_it_came_from(tmp_path, monkeypatch):
    monkeypatch.setenv("CLUSTER_PILOT_HOME", str(tmp_path))
    (tmp_path / "master-token").write_text("s3cret\n")
    (tmp_path / "master-token.urls").write_text("".join(u + "\n" for u in served_urls("http", "127.0.0.1", 8080, ())))
    assert token_from_state("http://127.0.0.1:8080") == "s3cret"
    assert token_from_state("http://localhost:8080/") == "s3cret"
    assert token_from_state("http://127.0.0.1:9090") is None
    assert token_from_state("https://127.0.0.1:8080") is None
    elsewhere = MasterClient.from_environment("http://127.0.0.2:8080")
    assert "Authorization" not in elsewhere._headers(None)
    given = MasterClient.from_environment("http://127.0.0.2:8080", token="explicit")
    assert given._headers(None)["Authorization"] == "Bearer explicit"
    (tmp_path / "master-token.urls").unlink()
    assert token_from_state("http://127.0.0.1:8080") is None  # a token of unknown origin is not sent
