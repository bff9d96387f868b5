"""``kubecfg`` (ours, and the real 2014 binary) and ``apply --server`` against the master's v1beta1 API.

The real FastAPI app is served by uvicorn in a background thread on a free loopback port, over a temporary
SQLite store and a Reconciler whose loop is never started (its minions are unreachable test names), so
every answer comes from the API and the store alone. Our kubecfg runs in-process (``run_kubecfg``, which
returns the exit code) except where the console entry itself is the point.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from cluster_pilot.master.client import ApiError, MasterClient
from cluster_pilot.errors import UserError

uvicorn = pytest.importorskip("uvicorn")

from cluster_pilot.cli import kubecfg as kubecfg_cli
from cluster_pilot.host.inventory import load_inventory
from cluster_pilot.master.listener import Limits, protocol
from cluster_pilot.master.api import Settings, create_app
from cluster_pilot.master.reconcile import Reconciler
from cluster_pilot.host.observed import HostView, Observation, ObservedContainer, ObservedPod
from cluster_pilot.store import SQLiteStore

ROOT = Path(__file__).resolve().parents[2]
REDIS_MASTER = ROOT / "examples" / "seed-2014" / "redis-master.json"
FRONTEND_V1BETA1 = ROOT / "examples" / "guestbook" / "v1beta1" / "frontend-controller.json"
GUESTBOOK_V1 = ROOT / "examples" / "guestbook" / "v1" / "frontend.yaml"
KUBECFG_2014 = ROOT.parent / "shared" / "kubecfg-2014" / "kubecfg-v0.4"
MINIONS = ("minion-a.test.invalid", "minion-b.test.invalid")
TOKEN = "test-token-" + "x" * 20


# --- an in-process master ------------------------------------------------------------------------------------

@dataclass
class Master:
    url: str
    store: SQLiteStore
    reconciler: Reconciler
    server: object
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve(tmp: Path, insecure_loopback: bool, tls: tuple[Path, Path] | None = None,
          limits: Limits = Limits()) -> Master:
    tmp.mkdir(parents=True, exist_ok=True)
    inventory = tmp / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"minions": {"hosts": {h: None for h in MINIONS}}}}}))
    store = SQLiteStore(tmp / "master.db")
    reconciler = Reconciler(store, inventory, tmp, load_inventory)  # never started: no Ansible, no SSH
    app = create_app(store, reconciler, Settings(token=TOKEN, insecure_loopback=insecure_loopback))
    url, server, thread = start(app, tls, limits)
    reconciler.nodes()  # read the inventory once now, not inside the first timed request
    return Master(url, store, reconciler, server, thread)


def start(app, tls: tuple[Path, Path] | None = None,
          limits: Limits = Limits()) -> tuple[str, uvicorn.Server, threading.Thread]:
    """``app`` served on a free loopback port in a thread, once it answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    certificate, key = tls or (None, None)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                           ssl_certfile=certificate, ssl_keyfile=key, http=protocol(limits)))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test master did not start")
        time.sleep(0.02)  # poll step of a startup wait
    return f"{'https' if tls else 'http'}://127.0.0.1:{port}", server, thread


@pytest.fixture(scope="module")
def master(tmp_path_factory):
    """Writes need the token (the default)."""
    m = serve(tmp_path_factory.mktemp("master"), insecure_loopback=False)
    yield m
    m.stop()


@pytest.fixture(scope="module")
def loopback_master(tmp_path_factory):
    """``--insecure-loopback``: the 2014 client over plain http sends no credentials."""
    m = serve(tmp_path_factory.mktemp("loopback-master"), insecure_loopback=True)
    yield m
    m.stop()


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA) and its key."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cluster-pilot test master")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "master.crt", directory / "master.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture(scope="module")
def tls_master(tmp_path_factory):
    """Over https: the token is needed, as Bearer or as the password of HTTP Basic."""
    d = tmp_path_factory.mktemp("tls-master")
    pair = self_signed(d)
    m = serve(d, insecure_loopback=False, tls=pair)
    m.certificate = pair[0]
    yield m
    m.stop()


@pytest.fixture
def home(tmp_path, monkeypatch, request):
    """A state dir holding the master's token and the URLs of the masters it is for, as on the master's own
    machine."""
    d = tmp_path / "home"
    d.mkdir()
    (d / "master-token").write_text(TOKEN + "\n")
    urls = [request.getfixturevalue(n).url for n in ("master", "loopback_master", "tls_master")
            if n in request.fixturenames]
    (d / "master-token.urls").write_text("".join(u + "\n" for u in urls))
    monkeypatch.setenv("CLUSTER_PILOT_HOME", str(d))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_MASTER", raising=False)
    return d


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def kc(master, home, capsys):
    """Our kubecfg against ``master``: ``kc("list", "/pods")`` -> Result."""

    def run(*args: str, url: str | None = None) -> Result:
        capsys.readouterr()
        code = kubecfg_cli.run_kubecfg(["-h", url or master.url, *args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def pod_file(tmp: Path, name: str, image: str = "redis", labels: dict | None = None, **extra) -> str:
    doc = {"id": name, "desiredState": {"manifest": {"version": "v1beta1", "id": name,
                                                     "containers": [{"name": "main", "image": image}]}},
           "labels": labels if labels is not None else {"name": name}, **extra}
    path = tmp / f"{name}-{image.replace(':', '_')}.json"
    path.write_text(json.dumps(doc))
    return str(path)


def rc_file(tmp: Path, name: str, replicas: int, image: str = "nginx") -> str:
    doc = {"kind": "ReplicationController", "apiVersion": "v1beta1", "id": name, "labels": {"name": name},
           "desiredState": {"replicas": replicas, "replicaSelector": {"name": name},
                            "podTemplate": {"labels": {"name": name}, "desiredState": {"manifest": {
                                "version": "v1beta1", "containers": [{"name": "web", "image": image}]}}}}}
    path = tmp / f"{name}-rc-{replicas}.json"
    path.write_text(json.dumps(doc))
    return str(path)


def svc_file(tmp: Path, name: str, port: int) -> str:
    path = tmp / f"{name}-svc-{port}.yaml"
    path.write_text(yaml.safe_dump({"kind": "Service", "apiVersion": "v1beta1", "id": name, "port": port,
                                    "labels": {"name": name}, "selector": {"name": name}}))
    return str(path)


def rows(table: str) -> list[list[str]]:
    """The data rows of a 2014-style table (header and dashes dropped)."""
    lines = [line for line in table.splitlines() if line.strip()]
    return [line.split() for line in lines[2:]]


def raw(master: Master, method: str, path: str, body: object = None, headers: dict | None = None
        ) -> tuple[int, dict]:
    """One request exactly as given (no client library in between)."""
    conn = http.client.HTTPConnection("127.0.0.1", int(master.url.rsplit(":", 1)[1]), timeout=10)
    payload = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    conn.request(method, path, body=payload, headers=AUTH if headers is None else headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, json.loads(data)


AUTH = {"Authorization": f"Bearer {TOKEN}"}


# --- our kubecfg: the REST verbs --------------------------------------------------------------------------

def test_pod_create_list_get_update_delete(kc, tmp_path):
    created = kc("-c", pod_file(tmp_path, "kc-pod"), "create", "/pods")
    assert created.code == 0, created.err
    assert created.out.splitlines()[0].split() == ["ID", "Image(s)", "Host", "Labels", "Status"]
    assert rows(created.out) == [["kc-pod", "redis", "<unassigned>", "name=kc-pod", "Waiting"]]

    listed = kc("list", "/pods")
    assert ["kc-pod", "redis", "<unassigned>", "name=kc-pod", "Waiting"] in rows(listed.out)
    assert rows(kc("get", "/pods/kc-pod").out) == [["kc-pod", "redis", "<unassigned>", "name=kc-pod", "Waiting"]]

    as_json = json.loads(kc("-json", "get", "pods/kc-pod").out)
    assert as_json["kind"] == "Pod" and as_json["apiVersion"] == "v1beta1" and as_json["resourceVersion"] > 0
    as_yaml = yaml.safe_load(kc("get", "pods/kc-pod", "-yaml").out)
    assert as_yaml["id"] == "kc-pod" and as_yaml["desiredState"]["manifest"]["containers"][0]["image"] == "redis"

    updated = kc("update", "/pods/kc-pod", "-c", pod_file(tmp_path, "kc-pod", image="redis:7"))
    assert updated.code == 0, updated.err
    after = json.loads(kc("-json", "get", "/pods/kc-pod").out)
    assert after["desiredState"]["manifest"]["containers"][0]["image"] == "redis:7"
    assert after["resourceVersion"] > as_json["resourceVersion"]

    deleted = kc("delete", "/pods/kc-pod")
    assert deleted.code == 0 and rows(deleted.out) == [["Success"]]
    gone = kc("get", "/pods/kc-pod")
    assert gone.code == 1 and gone.err.strip() == "kubecfg: error: pods 'kc-pod' not found"


def test_controllers_and_services(kc, tmp_path, master):
    assert kc("-c", rc_file(tmp_path, "kc-rc", 2), "create", "replicationControllers").code == 0
    assert kc("-c", svc_file(tmp_path, "kc-svc", 8123), "create", "/services").code == 0
    listed = kc("list", "/replicationControllers")
    assert listed.out.splitlines()[0].split() == ["ID", "Image(s)", "Selector", "Replicas"]
    assert ["kc-rc", "nginx", "name=kc-rc", "2"] in rows(listed.out)
    services = kc("list", "services")
    assert services.out.splitlines()[0].split() == ["ID", "Labels", "Selector", "IP", "Port"]
    assert ["kc-svc", "name=kc-svc", "name=kc-svc", "8123"] in rows(services.out)  # no address before a pass

    assert kc("update", "/replicationControllers/kc-rc", "-c", rc_file(tmp_path, "kc-rc", 5)).code == 0
    assert master.store.get("ReplicationController", "kc-rc").body["replicas"] == 5
    assert kc("update", "/services/kc-svc", "-c", svc_file(tmp_path, "kc-svc", 8124)).code == 0
    assert rows(kc("get", "/services/kc-svc").out) == [["kc-svc", "name=kc-svc", "name=kc-svc", "8124"]]

    assert kc("delete", "/replicationControllers/kc-rc").code == 0
    assert kc("delete", "/services/kc-svc").code == 0
    assert kc("get", "/services/kc-svc").code == 1


def test_minions_are_listed_and_read_only(kc, tmp_path):
    listed = kc("list", "/minions")
    assert listed.out.splitlines()[:2] == ["Minion identifier", "----------"]
    assert [r[0] for r in rows(listed.out)] == list(MINIONS)
    assert rows(kc("get", f"minions/{MINIONS[0]}").out) == [[MINIONS[0]]]
    refused = kc("delete", f"/minions/{MINIONS[0]}")
    assert refused.code == 1 and "read-only" in refused.err


def test_duplicate_create_says_already_exists(kc, tmp_path):
    path = pod_file(tmp_path, "kc-dup")
    assert kc("-c", path, "create", "/pods").code == 0
    again = kc("-c", path, "create", "/pods")
    assert again.code == 1
    assert again.err.splitlines() == ["kubecfg: error: pods 'kc-dup' already exists"]


def test_unknown_id_is_not_found(kc, tmp_path):
    for args in (("get", "/pods/nope"), ("delete", "/replicationControllers/nope"),
                 ("update", "/pods/nope", "-c", pod_file(tmp_path, "nope")), ("resize", "nope", "2")):
        result = kc(*args)
        assert result.code == 1, args
        assert len(result.err.splitlines()) == 1 and "not found" in result.err and "Traceback" not in result.err


def test_stale_update_is_a_conflict(kc, tmp_path, master, monkeypatch):
    assert kc("-c", rc_file(tmp_path, "kc-stale", 1), "create", "/replicationControllers").code == 0
    client = MasterClient(master.url, TOKEN)
    old = client.get("replicationControllers", "kc-stale")
    same = client.update("replicationControllers", "kc-stale", old, old["resourceVersion"])
    assert same["resourceVersion"] == old["resourceVersion"]  # what was read, written back: no new version
    changed = dict(old, desiredState={**old["desiredState"], "replicas": 2})
    current = client.update("replicationControllers", "kc-stale", changed, old["resourceVersion"])
    assert current["resourceVersion"] > old["resourceVersion"]
    old["desiredState"]["replicas"] = 3
    with pytest.raises(ApiError) as caught:
        client.update("replicationControllers", "kc-stale", old, old["resourceVersion"])
    assert caught.value.code == 409 and caught.value.reason == "Conflict"

    # through the command: someone else writes between our GET (the version) and our PUT
    real_get = MasterClient.get

    def racing_get(self, resource, name):
        seen = real_get(self, resource, name)
        other = dict(seen, desiredState={**seen["desiredState"], "replicas": 4})
        MasterClient(master.url, TOKEN).update(resource, name, other, seen["resourceVersion"])
        return seen

    monkeypatch.setattr(MasterClient, "get", racing_get)
    result = kc("update", "/replicationControllers/kc-stale", "-c", rc_file(tmp_path, "kc-stale", 2))
    assert result.code == 1
    assert result.err.startswith("kubecfg: error: replicationControllers 'kc-stale'") and "changed" in result.err
    assert master.store.get("ReplicationController", "kc-stale").body["replicas"] == 4


def test_selectors_filter_lists(kc, tmp_path):
    for name, tier in (("kc-sel-a", "web"), ("kc-sel-b", "db")):
        path = pod_file(tmp_path, name, labels={"app": "kc-sel", "tier": tier})
        assert kc("-c", path, "create", "/pods").code == 0
    assert [r[0] for r in rows(kc("-l", "app=kc-sel", "list", "/pods").out)] == ["kc-sel-a", "kc-sel-b"]
    assert [r[0] for r in rows(kc("list", "/pods", "-l", "app=kc-sel,tier=db").out)] == ["kc-sel-b"]
    assert [r[0] for r in rows(kc("-l=app=kc-sel,tier!=db", "list", "/pods").out)] == ["kc-sel-a"]
    listed = yaml.safe_load(kc("-yaml", "-l", "app=kc-sel", "list", "/pods").out)
    assert listed["kind"] == "PodList" and {i["id"] for i in listed["items"]} == {"kc-sel-a", "kc-sel-b"}
    assert json.loads(kc("-json", "-l", "app=none", "list", "/pods").out)["items"] == []
    bad = kc("-l", "app", "list", "/pods")
    assert bad.code == 1 and "bad selector term" in bad.err


def test_a_file_is_validated_before_anything_is_sent(kc, tmp_path, master):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"id": "kc-bad", "desiredState": {"manifest": {"version": "v1beta1", "containers": [
        {"name": "main", "image": "redis", "ports": [{"containerPort": 70000}]}]}}}))
    result = kc("-c", str(bad), "create", "/pods")
    assert result.code == 1 and f"{bad}:1:" in result.err and "out of range" in result.err
    assert all(r.name != "kc-bad" for r in master.store.list())
    assert kc("create", "/pods").code == 1  # no -c
    wrong_kind = kc("-c", svc_file(tmp_path, "kc-wrong", 80), "create", "/pods")
    assert wrong_kind.code == 1 and "cannot be written to pods" in wrong_kind.err


def test_the_token_goes_only_to_its_own_master_unless_given(kc, home):
    (home / "master-token.urls").write_text("http://127.0.0.1:1\n")  # the state dir's token is for another
    refused = kc("list", "/pods")
    assert refused.code == 1 and "requests need the master's token" in refused.err
    assert kc("-token", TOKEN, "list", "/pods").code == 0


def test_writes_need_the_token(kc, tmp_path, home):
    (home / "master-token").unlink()
    refused = kc("-c", pod_file(tmp_path, "kc-notoken"), "create", "/pods")
    assert refused.code == 1 and "requests need the master's token" in refused.err
    assert len(refused.err.splitlines()) == 1
    assert kc("list", "/pods").code == 1  # reads need it too


# --- our kubecfg: the controller verbs --------------------------------------------------------------------

def test_run_resize_stop_rm(kc, master):
    ran = kc("-p", "8080:80", "-s", "8300", "run", "nginx", "2", "kc-run")
    assert ran.code == 0, ran.err
    docs = list(yaml.safe_load_all(ran.out))
    assert [d["kind"] for d in docs] == ["ReplicationController", "Service"]
    rc = master.store.get("ReplicationController", "kc-run").body
    assert rc["replicas"] == 2 and rc["selector"] == {"simpleService": "kc-run"}  # as the 2014 binary sends
    assert rc["template"]["spec"]["containers"][0]["ports"][0]["host_port"] == 8080
    svc = master.store.get("Service", "kc-run").body
    assert svc["selector"] == {"simpleService": "kc-run"} and svc["ports"][0]["port"] == 8300

    assert yaml.safe_load(kc("resize", "kc-run", "3").out)["desiredState"]["replicas"] == 3
    assert master.store.get("ReplicationController", "kc-run").body["replicas"] == 3
    refused = kc("rm", "kc-run")
    assert refused.code == 1 and "non-zero replicas (3)" in refused.err
    assert kc("stop", "kc-run").code == 0
    assert master.store.get("ReplicationController", "kc-run").body["replicas"] == 0
    assert kc("rm", "kc-run").code == 0
    assert kc("get", "/replicationControllers/kc-run").code == 1
    assert kc("-s", "80", "run", "nginx", "1", "Bad_Name").code == 1  # a service needs a DNS label
    assert kc("run", "nginx", "two", "kc-x").code == 1
    assert kc("-p", "80a", "run", "nginx", "1", "kc-x").code == 1


def _observed(name: str, rc: str, image: str, node: str) -> ObservedPod:
    containers = (ObservedContainer(f"{name}-i", f"{name}-POD", name, "POD", "h", "running", "pause"),
                  ObservedContainer(f"{name}-w", f"{name}-web", name, "web", "h", "running", image))
    return ObservedPod(name, node, "h", rc, "ReplicationController", {"simpleService": rc}, containers,
                       ("POD", "web"))


def test_rollingupdate_replaces_every_pod_with_the_new_image(kc, master, monkeypatch):
    assert kc("run", "nginx:1", "2", "kc-roll").code == 0
    pods = {"kc-roll-a": MINIONS[0], "kc-roll-b": MINIONS[1]}
    state = {n: _observed(p, "kc-roll", "nginx:1", n) for p, n in pods.items()}

    def publish() -> None:
        master.reconciler.last = Observation({n: HostView(n, True, (state[n],)) for n in MINIONS})

    def evict(pod: str) -> None:  # what the loop would do: the controller's replacement, with its image
        node = pods[pod]
        rc = master.store.get("ReplicationController", "kc-roll").body
        state[node] = _observed(pod + "-new", "kc-roll", rc["template"]["spec"]["containers"][0]["image"], node)
        publish()

    monkeypatch.setattr(master.reconciler, "last", None)  # restored after the test
    monkeypatch.setattr(master.reconciler, "evict", evict)
    monkeypatch.setattr(master.reconciler, "term", 1)  # it leads: evictions are the leader's
    publish()
    before = [r[0] for r in rows(kc("-l", "simpleService=kc-roll", "list", "/pods").out)]
    assert before == ["kc-roll-a", "kc-roll-b"]
    result = kc("-u", "0s", "-image", "nginx:2", "rollingupdate", "kc-roll")
    assert result.code == 0, result.err
    assert "pod kc-roll-a deleted (1/2)" in result.err
    assert master.store.get("ReplicationController", "kc-roll").body["template"]["spec"]["containers"][0]["image"] \
        == "nginx:2"
    after = rows(kc("-l", "simpleService=kc-roll", "list", "/pods").out)
    assert [(r[0], r[1]) for r in after] == [("kc-roll-a-new", "nginx:2"), ("kc-roll-b-new", "nginx:2")]



def test_a_follower_refuses_to_evict_a_controllers_pod_and_names_the_leader(kc, master, monkeypatch):
    """An eviction is done by the master that reconciles, from its memory: a follower that took one would
    answer 200 and the pod would run on (the chaos soak's rolling update through a follower waited forever)."""
    assert kc("run", "nginx:1", "1", "kc-follow").code == 0
    pod = _observed("kc-follow-a", "kc-follow", "nginx:1", MINIONS[0])
    monkeypatch.setattr(master.reconciler, "last", Observation({MINIONS[0]: HostView(MINIONS[0], True, (pod,))}))
    evicted: list[str] = []
    monkeypatch.setattr(master.reconciler, "evict", evicted.append)
    monkeypatch.setattr(master.reconciler, "term", None)  # a follower
    monkeypatch.setattr(master.reconciler.store, "leader", lambda: ("127.0.0.1:8081 pid 7 ab12", 3, 5.0))
    code, body = raw(master, "DELETE", "/api/v1beta1/pods/kc-follow-a")
    assert code == 503 and body["reason"] == "ServiceUnavailable", body
    assert "follows" in body["message"] and "the leader (127.0.0.1:8081)" in body["message"]
    assert not evicted
    monkeypatch.setattr(master.reconciler, "term", 3)  # now it leads
    code, body = raw(master, "DELETE", "/api/v1beta1/pods/kc-follow-a")
    assert code == 200 and evicted == ["kc-follow-a"], body
    assert kc("stop", "kc-follow").code == 0 and kc("rm", "kc-follow").code == 0

# --- the command itself -----------------------------------------------------------------------------------

def test_console_entry_errors_are_one_line(master, home):
    env = dict(os.environ)
    for args, expect in ((["-h", master.url, "get", "/pods/none"], "kubecfg: error: pods 'none' not found"),
                         (["-h", "http://127.0.0.1:9", "list", "/pods"], "kubecfg: error: cannot reach the master")):
        proc = subprocess.run([sys.executable, "-m", "cluster_pilot.cli.kubecfg", *args], check=False,
                              capture_output=True, text=True, env=env, timeout=60, stdin=subprocess.DEVNULL)
        assert proc.returncode == 1
        assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith(expect), proc.stderr


def test_server_version_and_defaults(kc, master, monkeypatch):
    assert kc("-server_version").out.startswith("Server: Kubernetes v0.4")
    monkeypatch.setenv("KUBERNETES_MASTER", master.url)
    code = kubecfg_cli.run_kubecfg(["list", "minions"])
    assert code == 0
    assert kubecfg_cli.run_kubecfg(["-help"]) == 0
    assert kubecfg_cli.run_kubecfg(["-nope", "list", "pods"]) == 1
    assert kubecfg_cli.run_kubecfg([]) == 1


def test_flag_parsing():
    f = kubecfg_cli.parse_flags(["-h", "http://x:1", "update", "/pods/a", "-c=f.json", "--json", "-yaml=false"])
    assert (f.host, f.config, f.json, f.yaml, f.args) == ("http://x:1", "f.json", True, False, ["update", "/pods/a"])
    assert kubecfg_cli.parse_flags(["list", "--", "-l"]).args == ["list", "-l"]
    with pytest.raises(UserError):
        kubecfg_cli.parse_flags(["-c"])
    assert kubecfg_cli.parse_duration("1m30s") == 90 and kubecfg_cli.parse_duration("500ms") == 0.5
    assert kubecfg_cli.parse_duration("2") == 2
    with pytest.raises(UserError):
        kubecfg_cli.parse_duration("1x")
    assert kubecfg_cli.parse_ports("8080:80,443") == [{"hostPort": 8080, "containerPort": 80}, {"containerPort": 443}]
    with pytest.raises(UserError):
        kubecfg_cli.parse_ports("1:2:3")


def test_tables_are_the_2014_clients():
    # as printed by kubecfg-v0.4 (Go's tabwriter: minimum width 20, padding 3), byte for byte
    expected = ("ID                  Labels                 Selector               Port\n"
                "----------          ----------             ----------             ----------\n"
                "nolabsvc                                   name=x                 9000\n"
                "webapp              simpleService=webapp   simpleService=webapp   8000\n\n")
    assert kubecfg_cli.table(["ID", "Labels", "Selector", "Port"],
                             [["nolabsvc", "", "name=x", "9000"],
                              ["webapp", "simpleService=webapp", "simpleService=webapp", "8000"]]) == expected
    assert kubecfg_cli.table(["Status"], [["Success"]]) == "Status\n----------\nSuccess\n\n"


def test_secrets_stay_off_the_network_in_clear_text():
    remote = MasterClient("http://10.1.2.3:8080", TOKEN)
    assert "Authorization" not in remote._headers(None)
    assert MasterClient("https://10.1.2.3", TOKEN)._headers(None)["Authorization"] == f"Bearer {TOKEN}"
    assert MasterClient("http://localhost:8080", TOKEN)._headers(None)["Authorization"] == f"Bearer {TOKEN}"
    assert MasterClient("127.0.0.1:9", None).url == "http://127.0.0.1:9"


def test_https_is_verified(kc, tls_master, tmp_path, home):
    url = tls_master.url
    unverified = kc("list", "/pods", url=url)
    assert unverified.code == 1 and len(unverified.err.splitlines()) == 1
    assert "CERTIFICATE_VERIFY_FAILED" in unverified.err and "-certificate_authority" in unverified.err
    ca = ("-certificate_authority", str(tls_master.certificate))
    assert kc(*ca, "-c", pod_file(tmp_path, "kc-tls"), "create", "/pods", url=url).code == 0  # Bearer over https
    assert rows(kc(*ca, "get", "/pods/kc-tls", url=url).out)[0][0] == "kc-tls"
    assert kc("-insecure_skip_tls_verify", "delete", "/pods/kc-tls", url=url).code == 0
    (home / "master-token").unlink()
    refused = kc(*ca, "-c", pod_file(tmp_path, "kc-tls"), "create", "/pods", url=url)
    assert refused.code == 1 and "requests need the master's token" in refused.err


# --- apply --server ---------------------------------------------------------------------------------------

def test_apply_server_creates_then_updates(master, home, tmp_path, capsys):
    from cluster_pilot.cli import cli, run

    def apply(*paths: str) -> tuple[int, str]:
        capsys.readouterr()
        code = run(cli, "cluster-pilot", ["apply", "--server", master.url, *(a for p in paths for a in ("-f", p))])
        return code, capsys.readouterr().out

    seed = tmp_path / "seed.json"
    seed.write_text(REDIS_MASTER.read_text().replace("redis-master-pod", "ap-redis"))
    code, out = apply(str(seed), str(GUESTBOOK_V1))
    assert code == 0
    assert out.splitlines() == ["pods/ap-redis created", "replicationControllers/frontend created",
                                "services/frontend created"]
    first = master.store.get("ReplicationController", "frontend").resource_version

    fewer = tmp_path / "frontend.yaml"
    fewer.write_text(GUESTBOOK_V1.read_text().replace("replicas: 3", "replicas: 1"))
    code, out = apply(str(seed), str(fewer))
    assert code == 0
    assert out.splitlines() == ["pods/ap-redis unchanged", "replicationControllers/frontend updated",
                                "services/frontend unchanged"]
    record = master.store.get("ReplicationController", "frontend")
    assert record.body["replicas"] == 1 and record.resource_version > first
    assert run(cli, "cluster-pilot", ["apply", "--server", master.url, "--prune", "-f", str(fewer)]) == 1


# --- the API itself: lenient 2014 bodies and every status code --------------------------------------------

# the redis-master pod exactly as kubecfg-v0.4 POSTs it (zero values of every field the file left out)
BODY_2014 = {"kind": "Pod", "id": "api-2014", "creationTimestamp": None, "apiVersion": "v1beta1",
             "labels": {"name": "redis-master"},
             "desiredState": {"manifest": {"version": "v1beta1", "id": "api-2014", "volumes": None, "containers": [
                 {"name": "master", "image": "redis", "ports": [{"containerPort": 6379}], "imagePullPolicy": ""}],
                 "restartPolicy": {}}, "host": ""},
             "currentState": {"manifest": {"version": "", "id": "", "volumes": None, "containers": None,
                                           "restartPolicy": {}}}}


def test_api_reads_2014_bodies_leniently(master):
    code, pod = raw(master, "POST", "/api/v1beta1/pods", BODY_2014, AUTH)
    assert code == 200, pod
    assert (pod["kind"], pod["apiVersion"], pod["id"]) == ("Pod", "v1beta1", "api-2014")
    assert pod["desiredState"]["manifest"]["containers"][0]["image"] == "redis"
    assert "host" not in pod["desiredState"]  # "" meant "not set"
    # a PUT as the 2014 client sends it: what it got, with read-only fields and its resourceVersion
    pod["desiredState"]["manifest"]["containers"][0]["image"] = "redis:7"
    pod["creationTimestamp"] = "2014-10-14T00:00:00Z"
    pod["currentState"] = {"status": "Running", "host": "elsewhere", "hostIP": "10.0.0.9"}
    code, updated = raw(master, "PUT", "/api/v1beta1/pods/api-2014", pod, AUTH)
    assert code == 200, updated
    assert updated["desiredState"]["manifest"]["containers"][0]["image"] == "redis:7"
    assert updated["currentState"]["status"] == "Waiting" and updated["resourceVersion"] > pod["resourceVersion"]
    # resourceVersion 0 is the client's zero value: "any version"
    code, _ = raw(master, "PUT", "/api/v1beta1/pods/api-2014", {**pod, "resourceVersion": 0}, AUTH)
    assert code == 200


def test_api_status_codes(master):
    def status(method, path, body=None, headers=AUTH):
        code, answer = raw(master, method, path, body, headers)
        assert answer["kind"] == "Status" and answer["apiVersion"] == "v1beta1" and answer["code"] == code
        assert answer["status"] == ("Success" if code < 300 else "Failure")
        return code, answer["reason"], answer["message"]

    body = {**BODY_2014, "id": "api-codes"}
    body["desiredState"] = {**body["desiredState"], "manifest": {**body["desiredState"]["manifest"], "id": ""}}
    # 401: a write without the token (this master is not --insecure-loopback), or with a wrong one
    assert status("POST", "/api/v1beta1/pods", body, {})[:2] == (401, "Unauthorized")
    assert status("POST", "/api/v1beta1/pods", body, {"Authorization": "Bearer wrong"})[0] == 401
    basic = {"Authorization": "Basic " + base64.b64encode(f"admin:{TOKEN}".encode()).decode()}
    assert raw(master, "POST", "/api/v1beta1/pods", body, basic)[0] == 200  # the token as a Basic password
    # 409: create of an existing id; PUT at a stale resourceVersion
    assert status("POST", "/api/v1beta1/pods", body)[:2] == (409, "AlreadyExists")
    _, current = raw(master, "GET", "/api/v1beta1/pods/api-codes")
    code, reason, message = status("PUT", "/api/v1beta1/pods/api-codes",
                                   {**body, "resourceVersion": current["resourceVersion"] - 1})
    assert (code, reason) == (409, "Conflict") and "changed since" in message
    # 400: invalid bodies (the validation's one-line message), bad selector, bad resourceVersion
    code, reason, message = status("POST", "/api/v1beta1/pods", {**body, "id": "bad id"})
    assert (code, reason) == (400, "Invalid") and message.startswith('/id: "bad id" holds a space')
    assert status("POST", "/api/v1beta1/pods", b"{not json")[:2] == (400, "Invalid")
    assert status("POST", "/api/v1beta1/pods", [1, 2])[0] == 400
    assert status("POST", "/api/v1beta1/services", {**body, "id": "api-x"})[0] == 400  # a Pod to services
    assert status("GET", "/api/v1beta1/pods?labels=nokey")[0] == 400
    assert status("PUT", "/api/v1beta1/pods/api-codes", {**body, "resourceVersion": "abc"})[0] == 400
    assert status("PUT", "/api/v1beta1/pods/api-codes", {**body, "id": "other"})[0] == 400
    # 404: unknown id, unknown resource, unknown path
    assert status("GET", "/api/v1beta1/pods/none")[:2] == (404, "NotFound")
    assert status("DELETE", "/api/v1beta1/services/none")[0] == 404
    assert status("PUT", "/api/v1beta1/pods/none", {**body, "id": "none"})[0] == 404
    assert status("GET", "/api/v1beta1/widgets")[0] == 404
    assert status("GET", "/api/v1beta1/pods/a/b")[0] == 404
    # 405: minions are read-only; a method the API does not have
    for method, path in (("POST", "/api/v1beta1/minions"), ("PUT", f"/api/v1beta1/minions/{MINIONS[0]}"),
                         ("DELETE", f"/api/v1beta1/minions/{MINIONS[0]}")):
        assert status(method, path, {"id": MINIONS[0]})[:2] == (405, "MethodNotAllowed")
    assert status("POST", "/api/v1beta1/pods/api-codes", body)[0] == 405
    # 200: a delete answers a Status Success
    assert status("DELETE", "/api/v1beta1/pods/api-codes")[:2] == (200, "")


def test_files_keep_their_strict_checks(tmp_path):
    from cluster_pilot.errors import ValidationFailed
    from cluster_pilot.manifests import load_paths

    path = tmp_path / "copied.json"
    path.write_text(json.dumps({**json.loads(REDIS_MASTER.read_text()), "resourceVersion": 5}))
    with pytest.raises(ValidationFailed, match="set by the server"):
        load_paths([str(path)], kind_hint="pods")


# --- the real 2014 client ---------------------------------------------------------------------------------

@pytest.fixture
def kubecfg_2014(loopback_master, tmp_path):
    if not os.access(KUBECFG_2014, os.X_OK):
        pytest.skip(f"the 2014 client is not at {KUBECFG_2014}")
    binary = str(KUBECFG_2014)
    # HOME: its ~/.kubernetes_auth; TMPDIR: where its glog writes log files
    env = {"HOME": str(tmp_path), "TMPDIR": str(tmp_path), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}

    def run(*args: str, url: str | None = None, **more_env: str) -> subprocess.CompletedProcess:
        return subprocess.run([binary, "-h", url or loopback_master.url, *args], check=False, capture_output=True,
                              text=True, env={**env, **more_env}, timeout=30, stdin=subprocess.DEVNULL, cwd=tmp_path)

    return run


def _request_error(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode == 255, (proc.stdout, proc.stderr)
    line = next(line for line in proc.stderr.splitlines() if "Got request error:" in line)
    assert all(w in line for w in words), line


def test_2014_client_seed_commands(kubecfg_2014, loopback_master):
    created = kubecfg_2014("-c", str(REDIS_MASTER), "create", "/pods")
    assert created.returncode == 0, created.stderr
    assert rows(created.stdout) == [["redis-master-pod", "redis", "<unassigned>", "name=redis-master", "Waiting"]]
    listed = kubecfg_2014("list", "/pods")
    assert listed.stdout.splitlines()[0].split() == ["ID", "Image(s)", "Host", "Labels", "Status"]
    assert ["redis-master-pod", "redis", "<unassigned>", "name=redis-master", "Waiting"] in rows(listed.stdout)
    assert rows(kubecfg_2014("get", "pods/redis-master-pod").stdout)[0][0] == "redis-master-pod"
    as_json = json.loads(kubecfg_2014("-json", "get", "pods/redis-master-pod").stdout)
    assert as_json["kind"] == "Pod" and as_json["resourceVersion"] > 0
    selected = yaml.safe_load(kubecfg_2014("-yaml", "-l", "name=redis-master", "list", "pods").stdout)
    assert [i["id"] for i in selected["items"]] == ["redis-master-pod"]

    _request_error(kubecfg_2014("-c", str(REDIS_MASTER), "create", "/pods"), "already exists")
    _request_error(kubecfg_2014("get", "pods/nothere"), "not found")

    deleted = kubecfg_2014("delete", "/pods/redis-master-pod")
    assert deleted.returncode == 0 and rows(deleted.stdout) == [["Success"]]
    assert all(r.name != "redis-master-pod" for r in loopback_master.store.list())
    _request_error(kubecfg_2014("delete", "/pods/redis-master-pod"), "not found")


def test_2014_client_update_and_invalid_bodies(kubecfg_2014, loopback_master, tmp_path):
    assert kubecfg_2014("-c", str(FRONTEND_V1BETA1), "create", "replicationControllers").returncode == 0
    fewer = tmp_path / "frontend.json"
    fewer.write_text(FRONTEND_V1BETA1.read_text().replace('"replicas": 3', '"replicas": 1'))
    updated = kubecfg_2014("-c", str(fewer), "update", "replicationControllers/frontend")
    assert updated.returncode == 0, updated.stderr
    assert rows(updated.stdout) == [["frontend", "guestbook", "app=guestbook,name=frontend", "1"]]
    assert loopback_master.store.get("ReplicationController", "frontend").body["replicas"] == 1
    assert kubecfg_2014("delete", "replicationControllers/frontend").returncode == 0

    spaced = tmp_path / "spaced.json"
    spaced.write_text(REDIS_MASTER.read_text().replace('"id": "redis-master-pod"', '"id": "bad pod"', 1))
    _request_error(kubecfg_2014("-c", str(spaced), "create", "pods"), '"bad pod" holds a space')
    far = tmp_path / "far.json"
    far.write_text(REDIS_MASTER.read_text().replace("6379", "70000").replace("redis-master-pod", "far"))
    _request_error(kubecfg_2014("-c", str(far), "create", "pods"), "70000 is out of range")


def test_2014_client_controller_verbs_and_version(kubecfg_2014, loopback_master):
    ran = kubecfg_2014("-p", "8080:80", "-s", "8000", "run", "nginx", "2", "web2014")
    assert ran.returncode == 0, ran.stderr
    assert loopback_master.store.get("ReplicationController", "web2014").body["replicas"] == 2
    assert loopback_master.store.get("Service", "web2014").body["ports"][0]["port"] == 8000
    listed = kubecfg_2014("list", "/services")
    assert ["web2014", "simpleService=web2014", "simpleService=web2014", "8000"] in rows(listed.stdout)
    assert kubecfg_2014("resize", "web2014", "3").returncode == 0
    assert loopback_master.store.get("ReplicationController", "web2014").body["replicas"] == 3
    refused = kubecfg_2014("rm", "web2014")
    assert refused.returncode == 255 and "non-zero replicas" in refused.stderr
    assert kubecfg_2014("stop", "web2014").returncode == 0
    assert kubecfg_2014("rm", "web2014").returncode == 0
    assert all(r.name != "web2014" or r.kind == "Service" for r in loopback_master.store.list())
    version = kubecfg_2014("-server_version")
    assert version.returncode == 0 and version.stdout.startswith("Server: Kubernetes v0.4")


def test_2014_client_without_credentials_cannot_write(kubecfg_2014, master):
    _request_error(kubecfg_2014("-c", str(REDIS_MASTER), "create", "/pods", url=master.url),
                   "requests need the master's token")
    assert kubecfg_2014("list", "/pods", url=master.url).returncode == 255  # reads need the token too


def test_2014_client_over_https_with_basic_auth(kubecfg_2014, tls_master, tmp_path):
    """Over https the 2014 client sends HTTP Basic from $HOME/.kubernetes_auth: the token is the password."""
    url = tls_master.url
    (tmp_path / ".kubernetes_auth").write_text(json.dumps({"User": "admin", "Password": TOKEN}))
    # v0.4 uses -certificate_authority only together with a client certificate; Go's SSL_CERT_FILE makes
    # the test CA its trust store instead (verification stays on)
    trust = {"SSL_CERT_FILE": str(tls_master.certificate)}
    rejected = kubecfg_2014("list", "/pods", url=url)
    assert rejected.returncode == 255 and "certificate signed by unknown authority" in rejected.stderr
    created = kubecfg_2014("-c", str(REDIS_MASTER), "create", "/pods", url=url, **trust)
    assert created.returncode == 0, created.stderr
    assert tls_master.store.get("Pod", "redis-master-pod").resource_version > 0
    assert kubecfg_2014("delete", "/pods/redis-master-pod", url=url, **trust).returncode == 0
    (tmp_path / ".kubernetes_auth").write_text(json.dumps({"User": "admin", "Password": "wrong"}))
    _request_error(kubecfg_2014("-c", str(REDIS_MASTER), "create", "/pods", url=url, **trust),
                   "requests need the master's token")
