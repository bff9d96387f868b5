"""The cp_pods module against a fake dockerd: an Engine API on a Unix socket that answers as dockerd does
(201/409 on create, 204/304 on start and stop, 404 for what is missing) and records every request."""

from __future__ import annotations

import json
import os
import socket
import socketserver
import tempfile
import threading
import urllib.parse
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

import pytest

from tests.unit.ansible_modules import ROLES, load_module, module_args, run_action

cp_pods = load_module("cp_pods", "cp_pods")


@dataclass
class Engine:
    """dockerd's state as far as cp_pods sees it, and the requests it got."""

    images: set[str] = field(default_factory=set)
    containers: dict[str, dict] = field(default_factory=dict)  # id -> {"name", "running", "body"}
    broken_pulls: dict[str, str] = field(default_factory=dict)  # image -> error in the pull stream
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path and query)
    made: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    api_version: str = "1.43"
    stopping: int = 0  # stops in flight
    most_stopping: int = 0
    stop_gate: threading.Barrier | None = None  # each stop waits here (for others in flight) before it answers

    def find(self, ident: str) -> str | None:
        return next((i for i, c in self.containers.items() if ident in (i, c["name"])), None)

    def answer(self, method: str, url: str, body: dict | None) -> tuple[int, bytes]:
        path, _, query = url.partition("?")
        q = dict(urllib.parse.parse_qsl(query))
        parts = path.strip("/").split("/")
        if parts[-1] == "stop":
            return self._stop(method, url, parts, q, body)
        with self.lock:
            self.requests.append((method, url))
            if parts[0] == "version":
                return 200, json.dumps({"Version": "x", "ApiVersion": self.api_version}).encode()
            if parts[0] == "images":
                return self._image(method, parts, q)
            return self._container(method, parts, q, body)

    def _image(self, method, parts, q):
        if method == "GET":
            name = urllib.parse.unquote(parts[1])
            return (200, b"{}") if name in self.images else (404, b'{"message": "No such image"}')
        image = f"{q['fromImage']}:{q['tag']}"
        if image in self.broken_pulls:
            return 200, json.dumps({"error": self.broken_pulls[image]}).encode() + b"\n"
        self.images.add(image)
        return 200, b'{"status": "Pulling"}\n{"status": "Downloaded"}\n'

    def _container(self, method, parts, q, body):
        if parts[1] == "create":
            if self.find(q["name"]):
                return 409, b'{"message": "Conflict. The container name is already in use"}'
            ident, self.made = f"id{self.made}", self.made + 1
            self.containers[ident] = {"name": q["name"], "running": False, "body": body}
            return 201, json.dumps({"Id": ident}).encode()
        ident = self.find(parts[1])
        if ident is None:
            return 404, b'{"message": "No such container"}'
        c = self.containers[ident]
        if method == "DELETE":
            del self.containers[ident]
            return 204, b""
        wanted = parts[2] == "start"
        if c["running"] == wanted:
            return 304, b""
        c["running"] = wanted
        return 204, b""

    def _stop(self, method, url, parts, q, body):
        with self.lock:
            self.stopping += 1
            self.most_stopping = max(self.most_stopping, self.stopping)
        try:
            if self.stop_gate is not None:
                self.stop_gate.wait()
            with self.lock:
                self.requests.append((method, url))
                return self._container(method, parts, q, body)
        finally:
            with self.lock:
                self.stopping -= 1

    def calls(self, method: str, prefix: str) -> list[str]:
        return [u.split("?")[0] for m, u in self.requests if m == method and u.startswith(prefix)]


class _Handler(BaseHTTPRequestHandler):
    def _serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        status, raw = self.server.engine.answer(self.command, self.path, body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    do_GET = do_POST = do_DELETE = _serve

    def log_message(self, *args):  # a Unix socket has no client address to log
        pass


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@contextmanager
def fake_dockerd():
    with tempfile.TemporaryDirectory(prefix="cpd") as d:  # short: a socket path has at most 107 bytes
        server = _Server(os.path.join(d, "docker.sock"), _Handler)
        server.engine = Engine()
        thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)  # shutdown waits a poll
        thread.start()
        try:
            yield server.engine, cp_pods.Docker(server.server_address)
        finally:
            server.shutdown()
            server.server_close()


@pytest.fixture
def engine():
    with fake_dockerd() as pair:
        yield pair


def _create(pod: str, *apps: str, images=("busybox:latest",), pull="missing", dirs=()) -> dict:
    names = [f"cp_{pod}_POD_h"] + [f"cp_{pod}_{a}_h" for a in apps]
    return {"pod": pod, "images": list(images), "pull": pull, "dirs": list(dirs),
            "containers": [{"name": n, "body": {"Image": images[0], "Labels": {"n": n}}} for n in names]}


def test_a_pod_is_created_infra_first_and_every_container_started(engine):
    dockerd, docker = engine
    assert cp_pods.create_pod(docker, _create("web-1", "app", "side")) is True
    created = [c["name"] for c in dockerd.containers.values()]
    assert created == ["cp_web-1_POD_h", "cp_web-1_app_h", "cp_web-1_side_h"]
    assert all(c["running"] for c in dockerd.containers.values())
    assert dockerd.containers["id1"]["body"] == {"Image": "busybox:latest", "Labels": {"n": "cp_web-1_app_h"}}


def test_creating_again_after_a_run_cut_short_starts_what_exists_and_creates_nothing_twice(engine):
    dockerd, docker = engine
    action = _create("web-1", "app")
    cp_pods.create_pod(docker, action)
    dockerd.containers["id1"]["running"] = False  # created, never started: the run was cut short there
    dockerd.requests.clear()
    assert cp_pods.create_pod(docker, action) is False  # 409 on both: nothing new
    assert len(dockerd.containers) == 2 and all(c["running"] for c in dockerd.containers.values())
    assert dockerd.calls("POST", "/containers/") == ["/containers/create", "/containers/cp_web-1_POD_h/start",
                                                     "/containers/create", "/containers/cp_web-1_app_h/start"]


def test_removal_stops_the_app_containers_before_the_infra_container_and_forgets_missing_ones(engine):
    dockerd, docker = engine
    cp_pods.create_pod(docker, _create("web-1", "app", "side"))
    dockerd.requests.clear()
    cp_pods.remove_pod(docker, {"pod": "web-1", "ids": ["id0", "id1", "gone", "id2"]})
    assert dockerd.calls("POST", "/containers/") == [
        "/containers/id1/stop", "/containers/gone/stop", "/containers/id2/stop", "/containers/id0/stop"]
    assert dockerd.containers == {}


def test_removal_deletes_the_pod_directory_only_below_the_pods_root(engine, tmp_path, monkeypatch):
    _, docker = engine
    root = tmp_path / "pods"
    monkeypatch.setattr(cp_pods, "POD_DIR", str(root))
    version = root / "web-1" / "h"
    (version / "volumes" / "data").mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    cp_pods.remove_pod(docker, {"pod": "web-1", "ids": [], "dir": str(version)})
    cp_pods.remove_pod(docker, {"pod": "x", "ids": [], "dir": str(root / ".." / "elsewhere")})
    assert not (root / "web-1").exists() and outside.is_dir()


def test_a_container_dockerd_refuses_fails_with_dockerds_message(engine):
    _, docker = engine
    with pytest.raises(cp_pods.DockerError, match=r"POST /containers/nope/start: 404 No such container"):
        docker.call("POST", "/containers/nope/start")


def test_pull_reports_the_error_inside_dockerds_stream(engine):
    dockerd, docker = engine
    dockerd.broken_pulls["nosuch:1"] = "manifest unknown"
    with pytest.raises(cp_pods.DockerError, match="pull nosuch:1: manifest unknown"):
        docker.pull("nosuch:1")
    docker.pull("registry:5000/team/app")  # a port is not a tag
    assert "registry:5000/team/app:latest" in dockerd.images


@contextmanager
def _closed_reader_on_stdout():
    """Our standard output as a module's is once the controller's SSH session has gone: a pipe nobody reads."""
    read, write = os.pipe()
    saved = os.dup(1)
    os.dup2(write, 1)
    os.close(write)
    os.close(read)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def test_an_abandoned_run_makes_no_docker_change(engine):
    dockerd, docker = engine
    cp_pods.check_controller()  # a live reader: go on
    with _closed_reader_on_stdout():
        with pytest.raises(cp_pods.Abandoned):
            cp_pods.create_pod(docker, _create("web-1", "app"))
    assert dockerd.requests == [] and dockerd.containers == {}


def _run_main(socket_path: str, capsys, create=(), remove=(), **more) -> dict:
    args = {"create": json.dumps(list(create)), "remove": json.dumps(list(remove)), "socket": socket_path, **more}
    with module_args(args), pytest.raises(SystemExit):
        cp_pods.main()
    return json.loads(capsys.readouterr().out)


def _run_action(socket_path: str, capsys, create=(), remove=(), **more) -> dict:
    args = {"create": json.dumps(list(create)), "remove": json.dumps(list(remove)), "socket": socket_path, **more}
    return run_action(ROLES / "cp_pods" / "library" / "cp_pods.py", args)


@pytest.fixture(params=["AnsibleModule", "action plugin"])
def run_main(request):
    """Both ways the module runs: by Ansible (AnsiballZ, ``AnsibleModule``) and by the role's action plugin."""
    return _run_main if request.param == "AnsibleModule" else _run_action


def test_the_module_pulls_each_image_once_and_only_when_missing_or_always(engine, capsys, run_main):
    dockerd, docker = engine
    dockerd.images |= {"busybox:latest", "redis:7"}
    creates = [_create("a", "app", images=("busybox:latest", "redis:7")), _create("b", "app", images=("redis:7",),
                                                                                   pull="always")]
    result = run_main(docker.path, capsys, create=creates)
    assert result["pulled"] == ["redis:7"] and sorted(result["created"]) == ["a", "b"]
    assert dockerd.calls("POST", "/images/create") == ["/images/create"]
    assert result["changed"] is True and "failed" not in result


def test_the_module_reports_failures_per_pod_and_does_the_other_pods(engine, capsys, run_main):
    dockerd, docker = engine
    dockerd.broken_pulls["bad:1"] = "manifest unknown"
    cp_pods.create_pod(docker, _create("old", "app"))
    creates = [_create("good", "app"), _create("broken", "app", images=("bad:1",))]
    result = run_main(docker.path, capsys, create=creates, remove=[{"pod": "old", "ids": ["id0", "id1"]}])
    assert result["failed"] is True
    assert result["failed_pods"] == [{"pod": "broken", "error": "pull bad:1: manifest unknown"}]
    assert (result["created"], result["removed"]) == (["good"], ["old"])
    assert sorted(c["name"] for c in dockerd.containers.values()) == ["cp_good_POD_h", "cp_good_app_h"]


def test_the_module_removes_before_it_creates_so_a_broken_copy_frees_its_names(engine, capsys, run_main):
    """A broken copy of the very version to create holds its container names: created alongside, its
    replacement would find them taken (409) and start the broken containers again."""
    dockerd, docker = engine
    dockerd.images.add("busybox:latest")
    cp_pods.create_pod(docker, _create("web-1", "app"))  # id0, id1
    result = run_main(docker.path, capsys, create=[_create("web-1", "app")],
                       remove=[{"pod": "web-1", "ids": ["id0", "id1"]}])
    assert (result["removed"], result["created"]) == (["web-1"], ["web-1"])
    assert sorted(dockerd.containers) == ["id2", "id3"]  # made anew, not the old ones started again


def test_when_a_removal_fails_the_module_creates_nothing(engine, capsys, monkeypatch):
    dockerd, docker = engine
    dockerd.images.add("busybox:latest")

    def refuse(self, ident):
        raise cp_pods.DockerError(f"POST /containers/{ident}/stop: 500 busy")

    monkeypatch.setattr(cp_pods.Docker, "remove", refuse)
    result = _run_main(docker.path, capsys, create=[_create("new", "app")], remove=[{"pod": "old", "ids": ["id9"]}])
    assert [f["pod"] for f in result["failed_pods"]] == ["old", "new"]
    assert not dockerd.calls("POST", "/containers/create")


def test_the_module_refuses_input_that_is_not_json(engine, capsys):
    _, docker = engine
    args = {"create": "[{", "socket": docker.path}
    with module_args(args), pytest.raises(SystemExit):
        cp_pods.main()
    result = json.loads(capsys.readouterr().out)
    assert result["failed"] is True and result["msg"].startswith("create/remove must be JSON lists")


def test_a_dockerd_that_does_not_answer_fails_every_pod_naming_it(capsys, tmp_path, run_main):
    result = run_main(str(tmp_path / "no.sock"), capsys, remove=[{"pod": "old", "ids": ["x"]}])
    assert [f["pod"] for f in result["failed_pods"]] == ["old"]
    assert "No such file" in result["failed_pods"][0]["error"] and result["changed"] is False


@pytest.mark.parametrize("api", ["1.41", "1.40", "garbage"])
def test_on_a_dockerd_before_23_pods_are_removed_one_after_another(engine, capsys, api):
    """Containers of one network stopping together can deadlock dockerd 20.10 (see SAFE_CONCURRENT_STOPS)."""
    dockerd, docker = engine
    dockerd.api_version = api
    for pod in "abcd":
        cp_pods.create_pod(docker, _create(pod, "app"))
    removes = [{"pod": p, "ids": [f"id{2 * i}", f"id{2 * i + 1}"]} for i, p in enumerate("abcd")]
    result = _run_main(docker.path, capsys, remove=removes)
    assert sorted(result["removed"]) == list("abcd") and dockerd.containers == {}
    assert dockerd.most_stopping == 1
    assert dockerd.calls("GET", "/version") == ["/version"]


def test_on_a_newer_dockerd_pods_are_removed_at_once(engine, capsys):
    dockerd, docker = engine
    dockerd.api_version = "1.43"
    for pod in "ab":
        cp_pods.create_pod(docker, _create(pod))
    dockerd.stop_gate = threading.Barrier(2, timeout=20)  # broken (an error) unless both stops are in flight
    result = _run_main(docker.path, capsys, remove=[{"pod": "a", "ids": ["id0"]}, {"pod": "b", "ids": ["id1"]}])
    assert sorted(result["removed"]) == ["a", "b"] and "failed" not in result
    assert dockerd.most_stopping == 2


def test_after_a_request_dockerd_left_unanswered_the_other_pods_fail_at_once(engine, capsys, monkeypatch):
    """One after another on an old engine, three pods would each wait the whole timeout on a locked-up dockerd."""
    dockerd, docker = engine
    dockerd.api_version = "1.41"
    for pod in "abc":
        cp_pods.create_pod(docker, _create(pod))
    dockerd.stop_gate = threading.Barrier(2, timeout=5)  # every stop hangs
    dockerd.requests.clear()
    monkeypatch.setattr(cp_pods, "STOP_WAIT", 0.3)
    removes = [{"pod": p, "ids": [f"id{i}"]} for i, p in enumerate("abc")]
    result = _run_main(docker.path, capsys, create=[_create("d")], remove=removes)
    first, *others = result["failed_pods"]
    assert first == {"pod": "a", "error": "POST /containers/id0/stop: dockerd gave no answer in 0.3 s"}
    assert [(f["pod"], f["error"]) for f in others[:2]] == [
        (p, "not tried: dockerd stopped answering (POST /containers/id0/stop: dockerd gave no answer in 0.3 s)")
        for p in "bc"]
    assert dockerd.calls("POST", "/containers/") == []  # the hung stop never answered; nothing else was sent
    assert not dockerd.calls("POST", "/containers/create")


def test_a_slow_pull_does_not_stop_the_other_pods():
    with tempfile.TemporaryDirectory(prefix="cpd") as d, socket.socket(socket.AF_UNIX) as silent:
        silent.bind(os.path.join(d, "docker.sock"))
        silent.listen(8)  # connections are taken, never answered
        docker = cp_pods.Docker(os.path.join(d, "docker.sock"))
        with pytest.raises(cp_pods.DockerError, match="POST /images/create: dockerd gave no answer in 0.2 s"):
            docker.call("POST", "/images/create", query={"fromImage": "x", "tag": "1"}, timeout=0.2)
        assert docker.unanswered == ""
        with pytest.raises(cp_pods.DockerError, match="GET /containers/x/json: dockerd gave no answer"):
            docker.call("GET", "/containers/x/json", timeout=0.2)
        assert docker.unanswered.startswith("GET /containers/x/json")


def test_one_removal_does_not_ask_for_the_version(engine, capsys):
    dockerd, docker = engine
    cp_pods.create_pod(docker, _create("a"))
    result = _run_main(docker.path, capsys, remove=[{"pod": "a", "ids": ["id0"]}])
    assert result["removed"] == ["a"] and not dockerd.calls("GET", "/version")


def test_the_module_works_on_as_many_pods_at_once_as_render_batches_for_it():
    from cluster_pilot.apply.render import MODULE_WIDTH

    assert cp_pods.WIDTH == MODULE_WIDTH


def test_the_records_are_written_after_the_removals_and_only_when_they_all_succeeded(engine, capsys, tmp_path,
                                                                                     monkeypatch):
    dockerd, docker = engine
    path = tmp_path / "lib" / "objects.json"
    cp_pods.create_pod(docker, _create("old", "app"))
    result = _run_main(docker.path, capsys, remove=[{"pod": "old", "ids": ["id0", "id1"]}],
                       records='{"objects": {"a": 1}}', records_path=str(path))
    assert (result["removed"], result["records"], result["changed"]) == (["old"], True, True)
    assert path.read_text() == '{"objects": {"a": 1}}' and oct(path.stat().st_mode & 0o777) == "0o600"
    again = _run_main(docker.path, capsys, records='{"objects": {"a": 1}}', records_path=str(path))
    assert (again["records"], again["changed"]) == (False, False)  # the same document: left alone

    def refuse(self, ident):
        raise cp_pods.DockerError(f"POST /containers/{ident}/stop: 500 busy")

    monkeypatch.setattr(cp_pods.Docker, "remove", refuse)
    failed = _run_main(docker.path, capsys, remove=[{"pod": "x", "ids": ["id9"]}], records='{"objects": {}}',
                       records_path=str(path))
    assert failed["failed"] is True and failed["records"] is False
    assert path.read_text() == '{"objects": {"a": 1}}'  # a run that did not finish records nothing


def test_a_records_document_that_is_not_json_is_refused(engine, capsys, tmp_path, run_main):
    _, docker = engine
    result = run_main(docker.path, capsys, records="{", records_path=str(tmp_path / "objects.json"))
    assert result["failed"] is True and result["msg"].startswith("not a records document")
    assert not (tmp_path / "objects.json").exists()


def test_a_run_under_an_older_fencing_token_changes_nothing(engine, capsys, tmp_path, run_main):
    """A run whose lease ran out while it was paused, after a later holder wrote here: refused before any
    Docker request, and its records are not written."""
    dockerd, docker = engine
    dockerd.images.add("busybox:latest")
    fence, records = str(tmp_path / "fence"), tmp_path / "objects.json"
    newer = run_main(docker.path, capsys, create=[_create("new", "app")], fence=7, fence_path=fence)
    assert newer["created"] == ["new"] and open(fence).read().strip() == "7"
    asked = len(dockerd.requests)
    older = run_main(docker.path, capsys, create=[_create("late", "app")], remove=[{"pod": "new", "ids": ["id0"]}],
                     records='{"objects": {}}', records_path=str(records), fence=6, fence_path=fence)
    assert older["failed"] is True and older.get("fenced") is True, older
    assert "fencing token 6 is older than 7" in older["msg"], older
    assert len(dockerd.requests) == asked and not records.exists()
    assert open(fence).read().strip() == "7"


def test_a_later_holder_writing_mid_run_stops_the_next_docker_change(engine, tmp_path):
    dockerd, plain = engine
    dockerd.images.add("busybox:latest")
    fence = str(tmp_path / "fence")
    docker = cp_pods.Docker(plain.path, 3, fence)
    cp_pods.create_pod(docker, _create("first", "app"))
    cp_pods.Docker(plain.path, 4, fence).may_change()  # the successor's first change here
    with pytest.raises(cp_pods.Fenced):
        cp_pods.create_pod(docker, _create("second", "app"))
    assert sorted(c["name"] for c in dockerd.containers.values()) == ["cp_first_POD_h", "cp_first_app_h"]


def test_the_modules_examples_are_what_the_role_runs_and_use_documented_options():
    """``ansible-doc cp_pods`` shows the role's own task, so the example cannot go stale beside it."""
    import yaml

    examples = yaml.safe_load(cp_pods.EXAMPLES)
    (task,) = yaml.safe_load((ROLES / "cp_pods" / "tasks" / "main.yml").read_text())
    assert examples[0] == task
    documented = set(yaml.safe_load(cp_pods.DOCUMENTATION)["options"])
    assert all(set(e["cp_pods"]) <= documented for e in examples)


@pytest.mark.parametrize("damage", ["directory", "binary", "truncated"])
def test_a_damaged_records_document_is_set_aside_and_rewritten(tmp_path, damage):
    path = tmp_path / "objects.json"
    if damage == "directory":
        path.mkdir()
        (path / "inside").write_text("x")
    else:
        path.write_bytes(b"\xff\xfe\x00binary" if damage == "binary" else b'{"objects": [{"kind"')
    warnings = []
    assert cp_pods.write_records(str(path), '{"objects":[]}', warnings.append) is True
    assert path.read_text() == '{"objects":[]}'
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("objects.json.damaged-")]
    assert len(aside) == 1 and str(aside[0]) in warnings[0]
    assert cp_pods.write_records(str(path), '{"objects":[]}', warnings.append) is False and len(warnings) == 1


def test_a_readable_records_document_is_replaced_without_setting_anything_aside(tmp_path):
    path = tmp_path / "objects.json"
    path.write_text('{"objects":[{"old":1}]}')
    warnings = []
    assert cp_pods.write_records(str(path), '{"objects":[]}', warnings.append) is True
    assert warnings == [] and [p.name for p in tmp_path.iterdir()] == ["objects.json"]
    assert cp_pods.damaged(str(tmp_path / "none")) == "" and cp_pods.damaged(str(path)) is None
