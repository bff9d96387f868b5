"""Services with addresses of their own and DNS names, on real minions: the official guestbook-go runs unchanged
(two services on 6379, the replica finds its master by name), two services share port 80, node ports answer on
every minion, ClusterIP services take no host port, and what is removed stops answering within one apply."""

from __future__ import annotations

import http.client
import ipaddress
import json
import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import cli, ssh, wait_for, write_manifest

pytestmark = pytest.mark.e2e

GUESTBOOK_GO = Path(__file__).parent / "data" / "guestbook-go"
NETWORK = ipaddress.IPv4Network("10.254.0.0/16")
SERVE = "mkdir -p /www && echo {word} > /www/index.html && exec httpd -f -p 80 -h /www"


def services(home: Path) -> dict[str, dict]:
    rows = json.loads(cli("get", "svc", "-o", "json", home=home).stdout)["items"]
    return {r["id"]: r for r in rows}


def pods(home: Path, controller: str) -> list[dict]:
    return [p for p in json.loads(cli("get", "pods", "-o", "json", home=home).stdout)["items"]
            if p["controller"] == controller and p["status"] == "Running"]


def in_pod(home: Path, pod: str, *command: str, check: bool = True):
    return cli("exec", pod, "--", *command, home=home, check=check, timeout=60)


def http_get(address: str, port: int) -> str:
    conn = http.client.HTTPConnection(address, port, timeout=5)
    try:
        conn.request("GET", "/")
        return conn.getresponse().read().decode().strip()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def guestbook(sandbox_home, sandbox, tmp_path_factory):
    files = tmp_path_factory.mktemp("guestbook-go") / "guestbook-go"
    shutil.copytree(GUESTBOOK_GO, files)
    cli("validate", str(files), home=sandbox_home)
    cli("apply", "-f", str(files), home=sandbox_home)
    yield files
    cli("delete", "-f", str(files), home=sandbox_home, check=False)


def test_guestbook_go_services_get_distinct_addresses_and_share_port_6379(sandbox_home, guestbook):
    found = services(sandbox_home)
    addresses = {name: found[name]["clusterIP"] for name in ("redis-master", "redis-replica", "guestbook")}
    assert len(set(addresses.values())) == 3
    assert all(ipaddress.IPv4Address(a) in NETWORK for a in addresses.values())
    assert found["redis-master"]["ports"] == found["redis-replica"]["ports"] == [6379]
    again = cli("apply", "-f", str(guestbook), home=sandbox_home)  # stable across applies
    assert "no changes" in again.stdout + again.stderr or services(sandbox_home)["redis-master"]["clusterIP"] == \
        addresses["redis-master"]
    assert {n: services(sandbox_home)[n]["clusterIP"] for n in addresses} == addresses


def test_the_replica_follows_the_master_by_name_and_serves_what_was_written_there(sandbox_home, guestbook):
    replica = pods(sandbox_home, "redis-replica")[0]["id"]
    master = pods(sandbox_home, "redis-master")[0]["id"]
    wait_for(lambda: "master_link_status:up" in in_pod(sandbox_home, replica, "redis-cli", "info",
                                                       "replication").stdout, 60, "the replica to sync")
    assert "master_host:redis-master" in in_pod(sandbox_home, replica, "redis-cli", "info", "replication").stdout
    assert in_pod(sandbox_home, master, "redis-cli", "set", "greeting", "hello-by-name").stdout.strip() == "OK"
    wait_for(lambda: in_pod(sandbox_home, master, "redis-cli", "-h", "redis-replica", "get",
                            "greeting").stdout.strip() == "hello-by-name", 30,
             "the key to be read through the redis-replica service")


def test_discovery_variables_and_dns_give_the_service_address(sandbox_home, sandbox, guestbook):
    address = services(sandbox_home)["redis-master"]["clusterIP"]
    frontend = pods(sandbox_home, "guestbook")[0]["id"]
    env = dict(line.split("=", 1) for line in in_pod(sandbox_home, frontend, "env").stdout.splitlines() if "=" in line)
    assert env["REDIS_MASTER_SERVICE_HOST"] == address
    assert env["REDIS_MASTER_SERVICE_PORT"] == "6379"
    assert env["REDIS_MASTER_PORT"] == f"tcp://{address}:6379"
    found = in_pod(sandbox_home, frontend, "nslookup", "redis-master.default.svc.cluster.local")
    assert f"Address: {address}" in found.stdout, found.stdout
    # busybox's nslookup tries every search domain and fails when one does not know the name
    short = in_pod(sandbox_home, frontend, "nslookup", "redis-master", check=False)
    assert f"Address: {address}" in short.stdout, short.stdout
    for m in sandbox.status():
        resolv = ssh(sandbox, m.address, "docker ps -q --filter label=io.cluster-pilot.controller=guestbook "
                     "| head -1 | xargs -r -I{} docker exec {} cat /etc/resolv.conf").stdout
        if resolv:
            assert "nameserver 10.254.0.10" in resolv
            assert "search default.svc.cluster.local svc.cluster.local cluster.local" in resolv


def test_a_node_port_answers_on_every_minion_and_a_cluster_ip_takes_no_host_port(sandbox_home, sandbox, guestbook):
    found = services(sandbox_home)
    node_port = found["guestbook"]["nodePorts"][0]
    assert 30000 <= node_port <= 32767
    frontends = {p["id"] for p in pods(sandbox_home, "guestbook")}
    master_ip = found["redis-master"]["clusterIP"]
    for m in sandbox.status():
        assert http_get(m.address, node_port) in frontends
        listening = ssh(sandbox, m.address, "ss -Hltn").stdout.split("\n")
        binds = {line.split()[3] for line in listening if line.strip()}
        assert f"{master_ip}:6379" in binds
        assert not {"*:6379", "0.0.0.0:6379", "[::]:6379"} & binds, binds


def _backend(name: str, word: str) -> dict:
    labels = {"app": name}
    return {"kind": "ReplicationController", "apiVersion": "v1", "metadata": {"name": name},
            "spec": {"replicas": 2, "selector": labels, "template": {"metadata": {"labels": labels}, "spec": {
                "containers": [{"name": "web", "image": "busybox", "command": ["sh", "-c", SERVE.format(word=word)],
                                "ports": [{"name": "http", "containerPort": 80}]}]}}}}


def _service(name: str, **spec) -> dict:
    return {"kind": "Service", "apiVersion": "v1", "metadata": {"name": name},
            "spec": {"ports": [{"port": 80, "targetPort": "http"}], "selector": {"app": name}, **spec}}


def test_two_services_on_port_80_reach_only_their_own_pods_and_go_with_their_delete(sandbox_home, guestbook, tmp_path):
    files = [write_manifest(tmp_path / f"{n}.json", doc) for n, doc in (
        ("web-a-rc", _backend("web-a", "from-a")), ("web-b-rc", _backend("web-b", "from-b")),
        ("web-a", _service("web-a")), ("web-b", _service("web-b")))]
    cli("apply", *[a for f in files for a in ("-f", str(f))], home=sandbox_home)
    frontend = pods(sandbox_home, "guestbook")[0]["id"]  # created before these services: no restart needed
    for name, word in (("web-a", "from-a"), ("web-b", "from-b")):
        answers = {in_pod(sandbox_home, frontend, "wget", "-qO-", f"http://{name}/").stdout.strip() for _ in range(6)}
        assert answers == {word}
    address_b = services(sandbox_home)["web-b"]["clusterIP"]
    cli("delete", "-f", str(files[3]), home=sandbox_home)
    gone = in_pod(sandbox_home, frontend, "nslookup", "web-b.default.svc.cluster.local", check=False)
    assert address_b not in gone.stdout
    assert in_pod(sandbox_home, frontend, "wget", "-T", "3", "-qO-", f"http://{address_b}/", check=False).returncode != 0
    assert "web-b" not in services(sandbox_home)
    cli("delete", *[a for f in files[:3] for a in ("-f", str(f))], home=sandbox_home)


def test_a_taken_or_outside_address_is_refused_at_its_line(sandbox_home, guestbook, tmp_path):
    taken = services(sandbox_home)["redis-master"]["clusterIP"]
    asks = write_manifest(tmp_path / "asks.json", _service("thief", clusterIP=taken))
    refused = cli("apply", "-f", str(asks), home=sandbox_home, check=False)
    assert refused.returncode != 0
    assert f"{asks}:1:1: /spec/clusterIP: address {taken} is taken by service 'redis-master'" in refused.stderr, \
        refused.stderr
    assert "Traceback" not in refused.stderr and "thief" not in services(sandbox_home)
    outside = write_manifest(tmp_path / "outside.json", _service("far", clusterIP="10.0.0.7"))
    bad = cli("validate", str(outside), home=sandbox_home, check=False)
    assert bad.returncode != 0
    assert "/spec/clusterIP: 10.0.0.7 is outside the service network 10.254.0.0/16" in bad.stdout + bad.stderr
