"""Container probes: read from manifests, written onto containers for cp-health, and cp-health's own rules
(when a probe passes or fails, the back-off between restarts, what it answers the proxies)."""

from __future__ import annotations

import json
import socket

import pytest

from cluster_pilot.api import to_manifest
from cluster_pilot.apply.render import Settings, render_create
from cluster_pilot.host import paths, podformat
from cluster_pilot.host.observed import HostView, Observation, group_pods
from cluster_pilot.manifests import load_documents
from cluster_pilot.model import Node, Resources
from cluster_pilot.plan.planner import plan, spec_hash
from cluster_pilot.plan.proxy import Backend, ProxiedService, endpoints, proxied, proxy_document
from cluster_pilot.scheduler import schedule
from tests.unit.ansible_modules import ROLES, load_file
from tests.unit.manifests_support import errors
from tests.unit.test_cp_proxy_apply import _template

HEALTH = load_file(ROLES / "cp_proxy" / "files" / "cp-health.py", "cp_health")

POD = """
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  containers:
  - name: web
    image: busybox
    ports: [{name: http, containerPort: 80}]
    readinessProbe:
      httpGet: {path: /ready, port: http}
      periodSeconds: 1
      failureThreshold: 2
    livenessProbe:
      exec: {command: [cat, /tmp/alive]}
"""
SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{port: 8000, targetPort: http}]}
"""
NODE = Node("m1", "10.0.0.1", Resources(2000, 4 << 30, 40))


def _create(text: str = POD):
    (pod,) = load_documents([("pod.yaml", text)])
    return plan(schedule([pod], [NODE], []), Observation({"m1": HostView("m1", True)})).creates[0]


def test_probes_are_read_with_kubernetes_defaults_and_written_back():
    (pod,) = load_documents([("pod.yaml", POD)])
    c = pod.spec.containers[0]
    assert (c.readiness_probe.action, c.readiness_probe.port, c.readiness_probe.path) == ("httpGet", "http", "/ready")
    assert (c.liveness_probe.action, c.liveness_probe.command, c.liveness_probe.period_seconds,
            c.liveness_probe.failure_threshold, c.liveness_probe.timeout_seconds) == ("exec", ("cat", "/tmp/alive"),
                                                                                     10, 3, 1)
    written = to_manifest(pod)["spec"]["containers"][0]
    assert written["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http", "scheme": "HTTP"}
    assert load_documents([("again.json", json.dumps(to_manifest(pod)))]) == [pod]


@pytest.mark.parametrize("change,pointer,words", [
    (("exec: {command: [cat, /tmp/alive]}", "exec: {command: [cat]}\n      tcpSocket: {port: 80}"),
     "/spec/containers/0/livenessProbe", "exactly one of httpGet, tcpSocket, exec: it gives tcpSocket and exec"),
    (("port: http}", "port: https}"), "/spec/containers/0/readinessProbe/httpGet/port", "no port named \"https\""),
    (("exec: {command: [cat, /tmp/alive]}", "exec: {command: [cat, /tmp/alive]}\n      successThreshold: 2"),
     "/spec/containers/0/livenessProbe/successThreshold", "must be 1 for a livenessProbe"),
    (("path: /ready", "path: /re ady"), "/spec/containers/0/readinessProbe/httpGet/path", "without spaces"),
    (("periodSeconds: 1", "periodSeconds: 0"), "/spec/containers/0/readinessProbe/periodSeconds", "out of range"),
])
def test_a_bad_probe_is_told_at_its_pointer(change, pointer, words):
    found = errors(("pod.yaml", POD.replace(*change)))
    assert [p.pointer for p in found] == [pointer] and words in found[0].message, found


def test_cp_health_gets_each_probe_on_the_container_with_its_port_resolved():
    create = _create()
    (container,) = render_create(create, Settings())["containers"]
    labels = container["body"]["Labels"]
    probes = json.loads(labels[podformat.LABEL_PROBES])
    assert probes["readiness"] == {"action": "httpGet", "port": 80, "path": "/ready", "scheme": "HTTP", "headers": [],
                                   "command": [], "initial": 0, "period": 1, "timeout": 1, "success": 1,
                                   "failure": 2}
    assert probes["liveness"]["command"] == ["cat", "/tmp/alive"] and "startup" not in probes
    assert labels[podformat.LABEL_POD] == "web" and podformat.LABEL_PORTS in labels  # the owner's record stays
    plain = _create(POD.split("    readinessProbe:")[0])
    assert podformat.LABEL_PROBES not in render_create(plain, Settings())["containers"][0]["body"]["Labels"]
    assert spec_hash(plain.pod, None) != spec_hash(create.pod, None)


def test_the_proxy_document_names_the_cp_health_every_minion_must_run():
    import hashlib

    from cluster_pilot.plan import proxy

    digest = hashlib.sha256((ROLES / "cp_proxy" / "files" / "cp-health.py").read_bytes()).hexdigest()[:16]
    assert proxy.HEALTH_DIGEST == digest, f"cp-health.py changed: set plan/proxy.py's HEALTH_DIGEST to {digest!r}"
    assert json.loads(proxy_document([]))["health"] == digest


def test_cp_health_names_its_labels_as_the_pod_format_does():
    for name in ("LABEL_POD", "LABEL_SPEC_HASH", "LABEL_CONTAINER", "LABEL_PROBES"):
        assert getattr(HEALTH, name) == getattr(podformat, name), name
    assert HEALTH.STATE == paths.HEALTH_STATE and HEALTH.DOCKER_SOCKET == paths.DOCKER_SOCKET


def test_the_proxies_ask_cp_health_about_a_pod_with_a_readiness_probe_only():
    create = _create()
    body = render_create(create, Settings())["containers"][0]
    listed = [{"Id": "c1", "Names": ["/" + body["name"]], "State": "running", "Labels": body["body"]["Labels"]}]
    observed = Observation({"m1": HostView("m1", True, group_pods("m1", listed))})
    (e,) = endpoints(observed, {"m1": "10.0.0.1"})
    assert e.agent == f"web@{create.spec_hash}"
    (svc,) = load_documents([("svc.yaml", SERVICE)])
    (served,) = proxied([svc], [e])
    config = _template("haproxy.cfg.j2", cp_proxy_data=json.loads(proxy_document([served])), cp_proxy_health_port=10251)
    (line,) = [x.strip() for x in config.splitlines() if x.strip().startswith("server ")]
    assert line == (f"server web_{e.ports[0].host_port} 10.0.0.1:{e.ports[0].host_port} check agent-check "
                    f"agent-addr 10.0.0.1 agent-port 10251 agent-inter 500ms agent-send \"web@{create.spec_hash}\\n\"")
    plain = ProxiedService("web", 8000, "TCP", (Backend("web", "m1", "10.0.0.1", 30001),))
    config = _template("haproxy.cfg.j2", cp_proxy_data=json.loads(proxy_document([plain])))
    assert [x.strip() for x in config.splitlines() if x.strip().startswith("server ")] == ["server web_30001 10.0.0.1:30001 check"]


def test_a_minion_with_probed_pods_runs_the_proxy_role_without_any_service():
    assert plan(schedule([_create().pod], [NODE], []), Observation({"m1": HostView("m1", True)})).proxy_nodes == ("m1",)
    plain = _create(POD.split("    readinessProbe:")[0]).pod
    assert plan(schedule([plain], [NODE], []), Observation({"m1": HostView("m1", True)})).proxy_nodes == ()


SPEC = {"action": "tcpSocket", "port": 80, "initial": 5, "period": 2, "timeout": 1, "success": 2, "failure": 3}


def test_a_check_passes_after_its_successes_in_a_row_and_fails_after_its_failures():
    check = HEALTH.Check(SPEC, 100.0, False)
    assert check.due == 105.0 and not check.passed
    assert not check.result(True, "", 105.0) and check.due == 107.0 and not check.passed
    assert check.result(True, "", 107.0) and check.passed
    assert not check.result(False, "refused", 109.0) and not check.result(False, "refused", 111.0) and check.passed
    assert not check.result(True, "", 113.0) and check.failures == 0  # a success in between starts again
    for t in (115.0, 117.0):
        check.result(False, "refused", t)
    assert check.result(False, "refused", 119.0) and not check.passed and check.last == "refused"


def test_restarts_back_off_as_kubernetes_does():
    assert [HEALTH.backoff(n) for n in range(0, 8)] == [0, 10, 20, 40, 80, 160, 300, 300]


class _Docker:
    def __init__(self, labels):
        self.labels = labels

    def call(self, method, url, body=None, timeout=10.0):
        if url.startswith("/containers/json"):
            return [{"Id": "c1"}]
        return {"Name": "/cp_web_web_h1", "Config": {"Labels": self.labels}, "HostConfig": {"NetworkMode": "bridge"},
                "NetworkSettings": {"IPAddress": "172.17.0.2"}}


def test_the_agent_answers_down_until_the_pod_is_ready_and_for_a_pod_it_does_not_run(tmp_path):
    labels = {HEALTH.LABEL_POD: "web", HEALTH.LABEL_SPEC_HASH: "h1",
              HEALTH.LABEL_PROBES: json.dumps({"readiness": {**SPEC, "initial": 0, "success": 1}})}
    health = HEALTH.Health(_Docker(labels), str(tmp_path / "health.json"))
    health.discover(0.0)
    (c,) = health.containers.values()
    assert c.address == "172.17.0.2" and health.ready("web@h1").startswith("down #")
    c.readiness.result(True, "", 1.0)
    assert health.ready("web@h1") == "up" and health.ready("web@h2").startswith("down #no probed container")
    server = HEALTH.serve(health, 0)
    try:
        with socket.create_connection(server.server_address[:2], timeout=5) as s:
            s.sendall(b"web@h1\n")
            assert s.makefile().readline() == "up\n"
    finally:
        server.shutdown()
        server.server_close()


def test_observation_adds_cp_healths_restarts_to_dockerds_own():
    from cluster_pilot.host.observed import health_restarts

    assert health_restarts('{"restarts": {"abc": {"count": 2, "last": 1.5}}}') == {"abc": 2}
    assert health_restarts("") == {} and health_restarts("not json") == {} and health_restarts('{"restarts": 3}') == {}


def test_observation_reads_cp_healths_readiness_and_the_api_tells_it(tmp_path):
    from cluster_pilot.api import v1 as view
    from cluster_pilot.host.observed import read_view

    create = _create()
    body = render_create(create, Settings())["containers"][0]
    listed = [{"Id": "c1", "Names": ["/" + body["name"]], "State": "running", "Labels": body["body"]["Labels"]}]
    for said, ready in ((None, False), ('{"ready": {"c1": false}}', False), ('{"ready": {"c1": true}}', True)):
        (pod,) = read_view("m1", {"containers": listed, "health": said}).pods
        assert pod.status == "Running" and pod.ready is ready and pod.containers[0].ready is ready, said
        state = view.PodState("Running", "m1", "10.0.0.1", (view.ContainerState("web", "busybox", "running", None,
                                                                                  pod.containers[0].ready),))
        served = view.pod(create.pod, view.Served(1, 0.0), state)
        conditions = {c["type"]: c["status"] for c in served["status"]["conditions"]}
        assert conditions["Ready"] == ("True" if ready else "False")
        assert served["status"]["containerStatuses"][0]["ready"] is ready
    plain = dict(listed[0], Labels={k: v for k, v in listed[0]["Labels"].items() if k != podformat.LABEL_PROBES})
    (pod,) = read_view("m1", {"containers": [plain], "health": None}).pods
    assert pod.ready and pod.containers[0].ready is None  # no probe: running is ready


def test_cp_health_records_each_gated_containers_readiness(tmp_path):
    labels = {HEALTH.LABEL_POD: "web", HEALTH.LABEL_SPEC_HASH: "h1",
              HEALTH.LABEL_PROBES: json.dumps({"readiness": {**SPEC, "initial": 0, "success": 1}})}
    health = HEALTH.Health(_Docker(labels), str(tmp_path / "health.json"))
    health.discover(0.0)
    assert json.loads((tmp_path / "health.json").read_text())["ready"] == {"c1": False}
    (c,) = health.containers.values()
    with health.lock:
        c.readiness.result(True, "", 1.0)
        health._save()
    assert json.loads((tmp_path / "health.json").read_text())["ready"] == {"c1": True}
