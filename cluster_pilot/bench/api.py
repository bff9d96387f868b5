"""The API benchmark: ``GET /api/v1beta1/pods`` of a master that knows N pods (requests/s, p99).

The master is the real API (uvicorn, FastAPI, the SQLite store) on loopback; what the minions run is a
synthetic observation of N controller pods, so the figure is the API's own cost, not SSH's.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from cluster_pilot.bench import BenchFailed
from cluster_pilot.host.inventory import load_inventory
from cluster_pilot.host.observed import HostView, Observation, ObservedContainer, ObservedPod
from cluster_pilot.host.podformat import INFRA, container_name
from cluster_pilot.master.api import Settings, create_app
from cluster_pilot.master.reconcile import Reconciler
from cluster_pilot.model import Container, Meta, PodSpec, PodTemplate, ReplicationController, to_json
from cluster_pilot.store import SQLiteStore


@dataclass(frozen=True)
class ApiFigures:
    requests_per_s: float
    median: str  # as wrk writes it ("1.23ms"); "?" when wrk did not say
    p99: str
    non_2xx: int


def _observation(pods: int, nodes: int) -> Observation:
    hosts: dict[str, list[ObservedPod]] = {f"minion-{i + 1}": [] for i in range(nodes)}
    for i in range(pods):
        node = f"minion-{i % nodes + 1}"
        name = f"bench-{i:05d}"
        containers = (ObservedContainer(f"{name}-i", container_name(name, INFRA, "h"), name, INFRA, "h", "running",
                                        "busybox"),
                      ObservedContainer(f"{name}-a", container_name(name, "app", "h"), name, "app", "h", "running",
                                        "busybox"))
        hosts[node].append(ObservedPod(name, node, "h", "bench", "ReplicationController", {"app": "bench"},
                                       containers, ("app",)))
    return Observation({n: HostView(n, True, tuple(ps)) for n, ps in hosts.items()})


def _app(home: Path, pods: int):
    """The master's app over a store holding one controller of ``pods`` replicas, all of them observed."""
    inventory = home / "hosts.yml"
    inventory.write_text("minions:\n  hosts:\n" + "".join(f"    minion-{i + 1}: {{ansible_host: 127.0.0.{i + 2}}}\n"
                                                          for i in range(3)))
    store = SQLiteStore(home / "store.db")
    spec = PodSpec((Container("app", "busybox"),))
    rc = ReplicationController(Meta("bench", {"app": "bench"}), pods, {"app": "bench"},
                               PodTemplate({"app": "bench"}, spec))
    store.put(rc.kind, "bench", to_json(rc))
    reconciler = Reconciler(store, inventory, home, load_inventory)  # never started: no SSH, no Ansible
    reconciler.last = _observation(pods, 3)
    return create_app(store, reconciler, Settings(token="bench"))


def measure(pods: int, duration: int, connections: int) -> ApiFigures:
    if shutil.which("wrk") is None:
        raise BenchFailed("wrk is not installed (apt-get install wrk, or scripts/setup)")
    with tempfile.TemporaryDirectory(prefix="cp-bench-api-") as tmp:
        app = _app(Path(tmp), pods)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", access_log=False))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline:
                raise BenchFailed("the API did not start")
            time.sleep(0.05)  # poll step of a deadline wait
        try:
            url = f"http://127.0.0.1:{port}/api/v1beta1/pods"
            out = subprocess.run(["wrk", "-H", "Authorization: Bearer bench", "-t", "1", "-c", str(connections),
                                  "-d", f"{duration}s", "--latency", url],
                                 capture_output=True, text=True, timeout=duration + 60).stdout
        finally:
            server.should_exit = True
            thread.join(timeout=10)
    return _figures(out)


def _figures(out: str) -> ApiFigures:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"50%\s+([\d.]+\w+)", out)
    p99 = re.search(r"99%\s+([\d.]+\w+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if not rps:
        raise BenchFailed(f"could not read wrk's output: {out.strip()[:300]}")
    return ApiFigures(float(rps.group(1)), p50.group(1) if p50 else "?", p99.group(1) if p99 else "?",
                      int(errors.group(1)) if errors else 0)
