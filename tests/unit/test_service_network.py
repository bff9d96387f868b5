"""Services' own addresses, node ports and names: validation, allocation, the proxy document, DNS, discovery
variables and the pods' resolver (the pure parts; tests/e2e/test_service_network.py runs them for real)."""

from __future__ import annotations

import json
import tempfile
import textwrap
from dataclasses import replace
from pathlib import Path

import jinja2
import pytest

from cluster_pilot.api import v1, v1beta1
from cluster_pilot.apply.pipeline import addressed
from cluster_pilot.apply.render import Settings, render_create
from cluster_pilot.errors import ValidationFailed
from cluster_pilot.host.records import Owner, Records, update
from cluster_pilot.manifests import load
from cluster_pilot.manifests.network import ServiceNetwork
from cluster_pilot.manifests.policy import fleet
from cluster_pilot.model import Container, Meta, Pod, PodSpec, Service, ServicePort
from cluster_pilot.plan.addresses import allocate
from cluster_pilot.plan.planner import Create
from cluster_pilot.plan.proxy import Backend, ProxiedService, discovery_env, dns_hosts, proxied, proxy_document
from tests.unit.ansible_modules import ROLES
from tests.unit.manifests_support import errors, objects, only

GUESTBOOK_GO = Path(__file__).parents[1] / "e2e" / "data" / "guestbook-go"
NET = ServiceNetwork()


def svc(name: str, port: int = 6379, ip: str | None = None, kind: str = "ClusterIP", node_port: int | None = None,
        version: str = "v1") -> Service:
    return Service(Meta(name, api_version=version), (ServicePort(port, node_port=node_port),), {"app": name},
                   cluster_ip=ip, type=kind)


def v1_service(name: str, port: int = 80, extra: str = "", port_extra: str = "") -> str:
    return f"""
    apiVersion: v1
    kind: Service
    metadata: {{name: {name}}}
    spec:
      selector: {{app: {name}}}
      ports: [{{port: {port}{port_extra}}}]
      {extra}
    """


# --- validation -----------------------------------------------------------------------------------------------

def test_the_official_guestbook_go_validates_with_two_services_on_6379():
    loaded = load([str(GUESTBOOK_GO)])
    ports = {o.meta.name: [p.port for p in o.ports] for o in loaded.objects if isinstance(o, Service)}
    assert ports == {"guestbook": [3000], "redis-master": [6379], "redis-replica": [6379]}


def test_services_at_their_own_addresses_share_a_port_but_not_with_a_port_on_every_minion():
    assert objects(("a.yaml", v1_service("a")), ("b.yaml", v1_service("b")))
    p = only(errors(("a.yaml", v1_service("a")), ("old.json", '{"id": "old",\n "port": 80, "selector": {"a": "b"}}')))
    assert (p.file, p.line, p.pointer) == ("old.json", 2, "/port")
    assert 'also the port of Service "a" (a.yaml:6:' in p.message and "at its own address" in p.message


def test_node_ports_clash_with_each_other_and_need_a_type():
    found = errors(("a.yaml", v1_service("a", extra="type: NodePort", port_extra=", nodePort: 30080")),
                   ("b.yaml", v1_service("b", port=81, extra="type: LoadBalancer", port_extra=", nodePort: 30080")),
                   ("c.yaml", v1_service("c", port_extra=", nodePort: 30090")))
    assert [(p.file, p.pointer) for p in found] == [("b.yaml", "/spec/ports/0/nodePort"),
                                                    ("c.yaml", "/spec/ports/0/nodePort")]
    assert "also the port of Service \"a\"" in found[0].message
    assert "a nodePort needs type NodePort or LoadBalancer" in found[1].message


def test_an_address_asked_twice_or_outside_the_network_is_refused_at_its_line():
    found = errors(("a.yaml", v1_service("a", extra="clusterIP: 10.254.0.20")),
                   ("b.yaml", v1_service("b", extra="clusterIP: 10.254.0.20")))
    p = only(found)
    assert (p.file, p.line, p.pointer) == ("b.yaml", 7, "/spec/clusterIP")
    assert p.message == 'address 10.254.0.20 is also asked for by Service "a" (a.yaml:7:14)'
    for address, why in (("10.0.0.7", "is outside the service network 10.254.0.0/16 (cp_service_network)"),
                         ("10.254.0.10", "is the minions' DNS server")):
        with pytest.raises(ValidationFailed) as failed:
            load_text(v1_service("far", extra=f"clusterIP: {address}"), policy=fleet())
        p = only([p for p in failed.value.problems if p.severity == "error"])
        assert (p.line, p.pointer) == (7, "/spec/clusterIP") and why in p.message
    assert objects(("x.json", '{"id": "x", "port": 80, "portalIP": "10.254.1.2", "selector": {"a": "b"}}'))[0] \
        .cluster_ip == "10.254.1.2"


def load_text(text: str, policy):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "s.yaml"
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return load([str(path)], policy=policy)


# --- allocation -------------------------------------------------------------------------------------------------

def test_an_address_is_chosen_once_the_same_by_every_runner_and_kept():
    first, problems = allocate([svc("redis-master"), svc("redis-replica")], [], NET)
    assert not problems
    again, _ = allocate([svc("redis-master"), svc("redis-replica")], [], NET)
    assert [s.cluster_ip for s in first] == [s.cluster_ip for s in again]  # two runners choose alike
    assert len({s.cluster_ip for s in first}) == 2
    assert all(NET.refusal(s.cluster_ip) is None for s in first)
    moved = replace(first[0], cluster_ip="10.254.3.3")  # what the records hold wins over a new choice
    kept, _ = allocate([svc("redis-master")], [moved], NET)
    assert kept[0].cluster_ip == "10.254.3.3"


def test_an_address_held_by_another_live_service_is_refused_and_a_deleted_ones_is_free():
    holder = svc("holder", ip="10.254.0.50")
    asker = replace(svc("asker", ip="10.254.0.50"), meta=replace(svc("asker").meta, source=None))
    _, problems = allocate([asker], [holder], NET)
    name, p = only(problems)
    assert name == "asker"
    assert (p.pointer, p.message) == ("/spec/clusterIP", "address 10.254.0.50 is taken by service 'holder'")
    got, problems = allocate([asker], [], NET)  # holder deleted: its record is a tombstone, not live
    assert not problems and got[0].cluster_ip == "10.254.0.50"


def test_a_chosen_address_skips_taken_ones_and_the_dns_server():
    small = ServiceNetwork("10.9.0.0/28")
    held = [svc(f"s{i}", ip=small.address(i)) for i in range(1, 15) if i not in (10, 7)]
    got, _ = allocate([svc("new")], held, small)
    assert got[0].cluster_ip == "10.9.0.7"


def test_node_ports_are_chosen_in_range_kept_and_avoid_ports_pods_publish():
    web = svc("web", port=80, kind="NodePort")
    got, _ = allocate([web], [], NET)
    port = got[0].ports[0].node_port
    assert 30000 <= port <= 32767
    avoided, _ = allocate([web], [], NET, busy_ports={port})
    assert avoided[0].ports[0].node_port not in (port, None)
    kept, _ = allocate([web], got, NET, busy_ports={port})
    assert kept[0].ports[0].node_port == port
    assert allocate([svc("plain")], [], NET)[0][0].ports[0].node_port is None  # ClusterIP: no host port


def test_records_made_before_addresses_get_one_under_their_own_owner():
    old = update(Records(), [svc("legacy")], (), Owner("ci"), version=5).records
    filled = addressed(old, NET, set(), 10)
    entry = filled.get("Service", "legacy")
    assert entry.owner == Owner("ci") and entry.version == 10 and NET.refusal(entry.body["cluster_ip"]) is None
    assert addressed(filled, NET, set(), 20) is filled  # nothing left to do: the same records


# --- proxy, DNS, discovery, resolver ------------------------------------------------------------------------------

def test_binds_at_the_service_address_and_on_every_minion_only_when_asked():
    services = [svc("c", ip="10.254.0.5"), svc("n", port=80, ip="10.254.0.6", kind="NodePort", node_port=30080),
                svc("old", port=8000, ip="10.254.0.7", version="v1beta1")]
    binds = {p.name: p.binds for p in proxied(services, [])}
    assert binds == {"c": ("10.254.0.5:6379",), "n": ("10.254.0.6:80", ":30080"), "old": (":8000",)}
    assert ProxiedService("legacy", 80, "TCP", ()).binds == (":80",)


def test_the_proxy_document_carries_the_network_and_the_services_names():
    services = proxied([svc("redis-master", ip="10.254.0.5"), svc("bad_id", ip="10.254.0.6", version="v1beta1")], [])
    doc = json.loads(proxy_document(services, NET))
    assert doc["network"] == "10.254.0.0/16" and doc["dns"]["server"] == "10.254.0.10"
    assert doc["dns"]["hosts"] == [["10.254.0.5", "redis-master", "redis-master.default",
                                    "redis-master.default.svc.cluster.local"]]
    assert dns_hosts([]) == []
    assert "network" not in json.loads(proxy_document(services))


def test_templates_render_binds_names_and_the_dns_server():
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ROLES / "cp_proxy" / "templates"), trim_blocks=True,
                             undefined=jinja2.StrictUndefined)
    web = ProxiedService("web", 80, "TCP", (Backend("web-1", "m1", "10.0.0.1", 30001),), "10.254.0.6", 30080)
    data = json.loads(proxy_document([web], NET))
    config = env.get_template("haproxy.cfg.j2").render(cp_proxy_data=data)
    assert "listen web_80\n    bind 10.254.0.6:80\n    bind :30080\n" in config
    hosts = env.get_template("dns.hosts.j2").render(cp_proxy_data=data)
    assert hosts.splitlines()[-1] == "10.254.0.6 web web.default web.default.svc.cluster.local"
    conf = env.get_template("dnsmasq.conf.j2").render(cp_proxy_data=data, cp_proxy_dir="/etc/cp",
                                                      cp_proxy_dns_pidfile="/run/d.pid")
    assert "listen-address=10.254.0.10\n" in conf and "addn-hosts=/etc/cp/dns.hosts\n" in conf
    assert "local=/cluster.local/\n" in conf


def test_discovery_variables_carry_the_service_address():
    env = dict(discovery_env([svc("redis-master", ip="10.254.0.5"), svc("legacy")], "172.28.2.11"))
    assert env["REDIS_MASTER_SERVICE_HOST"] == "10.254.0.5"
    assert env["REDIS_MASTER_PORT"] == "tcp://10.254.0.5:6379"
    assert env["REDIS_MASTER_PORT_6379_TCP_ADDR"] == "10.254.0.5"
    assert env["LEGACY_SERVICE_HOST"] == "172.28.2.11"  # recorded before addresses: its minion, as before


def test_a_pod_resolves_through_the_minions_dns_server_with_the_cluster_search_path():
    pod = Pod(Meta("web", namespace="shop"), PodSpec((Container("web", "busybox"),)))
    body = render_create(Create("m1", pod, None, "abc"), Settings(dns_server="10.254.0.10"))["containers"][0]["body"]
    assert body["HostConfig"]["Dns"] == ["10.254.0.10"]
    assert body["HostConfig"]["DnsSearch"] == ["shop.svc.cluster.local", "svc.cluster.local", "cluster.local"]
    plain = render_create(Create("m1", pod, None, "abc"), Settings())["containers"][0]["body"]
    assert "Dns" not in plain["HostConfig"]


def test_the_api_shows_the_address_in_either_version():
    s = svc("redis-master", ip="10.254.0.5", kind="NodePort", node_port=30080)
    assert v1.manifest(s)["spec"]["clusterIP"] == "10.254.0.5"
    assert v1.manifest(s)["spec"]["ports"][0]["nodePort"] == 30080 and v1.manifest(s)["spec"]["type"] == "NodePort"
    assert v1beta1.service(s, 3, 0.0)["portalIP"] == "10.254.0.5"
    assert v1beta1.service(svc("new"), 3, 0.0)["portalIP"] == ""  # the 2014 server wrote the empty string


def test_the_master_shows_the_address_its_records_hold_for_a_stored_service():
    from cluster_pilot.host.observed import HostView, Observation
    from cluster_pilot.master.registry import allocated

    held = svc("web", port=80, ip="10.254.0.9", kind="NodePort", node_port=30999)
    records = update(Records(), [held], (), Owner("master", "http://m"), version=1).records.encode()
    seen = Observation({"m1": HostView("m1", True, records=records)})
    stored = svc("web", port=80, kind="NodePort")  # as the API stored it: nothing allocated yet
    shown = allocated([stored, svc("other")], seen)
    assert shown[0].cluster_ip == "10.254.0.9" and shown[0].ports[0].node_port == 30999
    assert shown[1].cluster_ip is None and allocated([stored], None) == [stored]


def test_each_named_port_of_a_v1_service_listens_at_the_service_address():
    multi = objects(("m.yaml", """
    apiVersion: v1
    kind: Service
    metadata: {name: web}
    spec:
      selector: {app: web}
      type: NodePort
      ports: [{name: http, port: 80, nodePort: 30080}, {name: metrics, port: 9100}]
    """))[0]
    got, _ = allocate([multi], [], NET)
    served = proxied(got, [])
    assert [s.binds[0] for s in served] == [f"{got[0].cluster_ip}:80", f"{got[0].cluster_ip}:9100"]
    assert served[0].binds[1] == ":30080" and served[1].binds[1].startswith(":3")  # its node port, chosen
    env = dict(discovery_env(got, ""))
    assert env["WEB_SERVICE_PORT_HTTP"] == "80" and env["WEB_SERVICE_PORT_METRICS"] == "9100"
