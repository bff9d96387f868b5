"""The guestbook frontend (``sandbox/guestbook_app.py``): its Redis protocol code against a real ``redis-server``
(the sandbox's own ``redis`` image, run with plain ``docker run`` on this machine: none is installed here), and
the ``guestbook`` image as a pod would run it, finding ``redis-master`` and ``redis-replica`` by name."""

from __future__ import annotations

import io
import json
import socket
import urllib.error
import urllib.request
import uuid

import pytest

from cluster_pilot.sandbox import guestbook_app as app
from tests.waits import wait_for


def test_commands_are_arrays_of_bulk_strings():
    assert app.encode("RPUSH", "guestbook", "héllo") == b"*3\r\n$5\r\nRPUSH\r\n$9\r\nguestbook\r\n$6\r\nh\xc3\xa9llo\r\n"
    assert app.encode("LRANGE", "k", -100, -1) == b"*4\r\n$6\r\nLRANGE\r\n$1\r\nk\r\n$4\r\n-100\r\n$2\r\n-1\r\n"


@pytest.mark.parametrize("wire, value", [
    (b"+OK\r\n", "OK"), (b":42\r\n", 42), (b"$5\r\nab\r\nc\r\n", b"ab\r\nc"), (b"$-1\r\n", None),
    (b"*2\r\n$1\r\na\r\n:7\r\n", [b"a", 7]), (b"*0\r\n", []), (b"*-1\r\n", None),
])
def test_replies_of_every_type_are_read(wire, value):
    stream = io.BytesIO(wire + b"+NEXT\r\n")
    assert app.read_reply(stream) == value
    assert app.read_reply(stream) == "NEXT"  # exactly one reply was consumed


@pytest.mark.parametrize("wire, message", [
    (b"-WRONGTYPE Operation against a key\r\n", "WRONGTYPE Operation against a key"),
    (b"$5\r\nab", "closed in the middle"), (b"", "closed in the middle"), (b"?x\r\n", "unexpected reply"),
])
def test_errors_and_cut_replies_raise(wire, message):
    with pytest.raises(app.RedisError, match=message):
        app.read_reply(io.BytesIO(wire))


@pytest.mark.parametrize("body, is_json, entry", [
    ('{"entry": "  hi there "}', True, "hi there"), ("entry=a+b%26c", False, "a b&c"),
])
def test_an_entry_is_read_from_json_or_a_form(body, is_json, entry):
    assert app._entry(body, is_json) == entry


@pytest.mark.parametrize("body, is_json, message", [
    ("x", True, "not JSON"), ('["entry"]', True, "needs some text"), ('{"entry": " "}', True, "needs some text"),
    ("other=1", False, "needs some text"), (json.dumps({"entry": "x" * 501}), True, "at most 500"),
])
def test_bad_entries_are_refused(body, is_json, message):
    with pytest.raises(ValueError, match=message):
        app._entry(body, is_json)


def test_redis_is_found_by_service_name_unless_an_address_is_given(monkeypatch):
    # every container gets the discovery variables of existing services: they must not be read as ports
    monkeypatch.setenv("REDIS_MASTER_PORT", "tcp://10.254.0.3:6379")
    monkeypatch.setenv("REDIS_REPLICA_PORT", "tcp://10.254.0.4:6379")
    monkeypatch.delenv("REDIS_MASTER_ADDRESS", raising=False)
    monkeypatch.setenv("REDIS_REPLICA_ADDRESS", "redis-replica:10001")
    assert app._address("master") == ("redis-master", 6379)
    assert app._address("replica") == ("redis-replica", 10001)


def test_a_refused_connection_names_the_address():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connect is refused
        with pytest.raises(app.RedisError, match=f"redis at 127.0.0.1:{port}"):
            app.command(("127.0.0.1", port), "PING", timeout=1)


# --- against real Redis and the real image, in Docker --------------------------------------------------------

@pytest.fixture(scope="module")
def images():
    """The seed images, cut from the sandbox's node image (seconds) when this machine has it."""
    docker = pytest.importorskip("docker")
    from cluster_pilot.sandbox.image import has_image, node_image_tag
    from cluster_pilot.sandbox.seeds import SEED_IMAGES, ensure_seed_image

    try:
        client = docker.from_env()
        client.ping()
    except Exception as e:  # noqa: BLE001 - no Docker engine here
        pytest.skip(f"no Docker engine: {e}")
    node = node_image_tag()
    if not has_image(client, node):
        pytest.skip(f"the sandbox node image {node} is not built (cluster-pilot sandbox up builds it)")
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        tags = {s.name: ensure_seed_image(client, s, node, Path(tmp))[0] for s in SEED_IMAGES}
    return client, tags


@pytest.fixture(scope="module")
def network(images):
    """A Docker network of our own; ``run(image, alias, command)`` starts a container known there by ``alias``
    (Docker's resolver answers it, as the fleet's DNS answers a service name) and returns its address."""
    client, tags = images
    net = client.networks.create(f"cp-test-guestbook-{uuid.uuid4().hex[:8]}")
    containers = []

    def run(image: str, alias: str, command: list[str] | None = None) -> str:
        c = client.containers.create(tags[image], command, name=f"{net.name}-{alias}", network=None)
        containers.append(c)
        client.api.disconnect_container_from_network(c.id, "bridge")
        net.connect(c, aliases=[alias])
        c.start()
        c.reload()
        return c.attrs["NetworkSettings"]["Networks"][net.name]["IPAddress"]

    yield run
    for c in containers:
        c.remove(force=True)
    net.remove()


def _ask(address: tuple[str, int], *command: str) -> object:
    """The reply, or None while the server does not answer yet."""
    try:
        return app.command(address, *command, timeout=1)
    except app.RedisError:
        return None


def _ping(address: tuple[str, int]) -> bool:
    return _ask(address, "PING") == "PONG"


def test_commands_against_a_real_redis_server(network):
    address = (network("redis", "plain"), 6379)
    wait_for(lambda: _ping(address), timeout=20, what="redis answers PING")
    assert app.command(address, "RPUSH", "l", "one", "tw\r\no") == 2
    assert app.command(address, "LRANGE", "l", 0, -1) == [b"one", b"tw\r\no"]
    assert app.command(address, "GET", "missing") is None
    with pytest.raises(app.RedisError, match="WRONGTYPE"):
        app.command(address, "INCR", "l")


def _http(url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
    except OSError:
        return 0, {}


def test_the_image_appends_through_the_master_and_lists_through_a_replica_by_name(network):
    url = f"http://{network('guestbook', 'frontend')}/api/entries"
    wait_for(lambda: _http(url)[0] == 503, timeout=20, what="the frontend answers (no Redis yet)")
    assert "redis at redis-replica:6379" in _http(url)[1]["error"]

    master = network("redis", "redis-master")
    replica = network("redis", "redis-replica", ["redis-server", "--replicaof", "redis-master", "6379"])
    wait_for(lambda: (_ask((replica, 6379), "ROLE") or [None] * 4)[3] == b"connected", timeout=30,
             what="the replica follows redis-master by name")  # protected mode is off despite the command
    assert _http(url, {"entry": "hello from a test"})[0] == 201
    wait_for(lambda: _http(url) == (200, {"entries": ["hello from a test"], "pod": _http(url)[1].get("pod")}),
             timeout=10, what="the entry is listed through the replica")
    assert app.command((master, 6379), "LRANGE", app.KEY, 0, -1) == [b"hello from a test"]
    app.command((master, 6379), "RPUSH", app.KEY, "straight to the master")
    wait_for(lambda: _http(url)[1].get("entries") == ["hello from a test", "straight to the master"], timeout=10,
             what="an entry written on the master is read through the replica")
    assert _http(url, {"entry": ""}) == (400, {"error": 'an entry needs some text: {"entry": "..."}'})
