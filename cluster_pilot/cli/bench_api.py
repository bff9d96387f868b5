"""``cluster-pilot bench api``: ``GET /api/v1beta1/pods`` of a master that knows N pods (requests/s, p99).

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
from pathlib import Path

import click

from cluster_pilot.model import (Container, Meta, PodSpec, PodTemplate, ReplicationController, to_json)
from cluster_pilot.host.observe import HostView, Observation, ObservedContainer, ObservedPod


def _observation(pods: int, nodes: int) -> Observation:
    hosts: dict[str, list[ObservedPod]] = {f"minion-{i + 1}": [] for i in range(nodes)}
    for i in range(pods):
        node = f"minion-{i % nodes + 1}"
        name = f"bench-{i:05d}"
        containers = (ObservedContainer(f"{name}-i", f"cp_{name}_POD", name, "POD", "h", "running", "busybox"),
                      ObservedContainer(f"{name}-a", f"cp_{name}_app", name, "app", "h", "running", "busybox"))
        hosts[node].append(ObservedPod(name, node, "h", "bench", "ReplicationController", {"app": "bench"},
                                       containers, ("app",)))
    return Observation({n: HostView(n, True, tuple(ps)) for n, ps in hosts.items()})


@click.command("api")
@click.option("--pods", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@click.option("--duration", type=click.IntRange(1, 60), default=5, show_default=True)
@click.option("--connections", type=click.IntRange(1, 256), default=8, show_default=True)
def api_bench(pods: int, duration: int, connections: int) -> int:
    """Requests per second and latency of GET /api/v1beta1/pods with N pods."""
    import uvicorn

    from cluster_pilot.host.inventory import load_inventory
    from cluster_pilot.master.api import Settings, create_app
    from cluster_pilot.master.reconcile import Reconciler
    from cluster_pilot.store import SQLiteStore

    if shutil.which("wrk") is None:
        raise click.ClickException("wrk is not installed (apt-get install wrk, or scripts/setup)")
    with tempfile.TemporaryDirectory(prefix="cp-bench-api-") as tmp:
        home = Path(tmp)
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
        app = create_app(store, reconciler, Settings(token="bench"))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", access_log=False))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline:
                raise click.ClickException("the API did not start")
            time.sleep(0.05)
        try:
            url = f"http://127.0.0.1:{port}/api/v1beta1/pods"
            out = subprocess.run(["wrk", "-t", "1", "-c", str(connections), "-d", f"{duration}s", "--latency", url],
                                 capture_output=True, text=True, timeout=duration + 60).stdout
        finally:
            server.should_exit = True
            thread.join(timeout=10)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"50%\s+([\d.]+\w+)", out)
    p99 = re.search(r"99%\s+([\d.]+\w+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if not rps:
        raise click.ClickException(f"could not read wrk's output: {out.strip()[:300]}")
    click.echo(f"GET /api/v1beta1/pods with {pods} pods, {connections} connections, {duration} s: "
               f"{float(rps.group(1)):.1f} requests/s, median {p50.group(1) if p50 else '?'}, "
               f"p99 {p99.group(1) if p99 else '?'}, non-2xx {errors.group(1) if errors else 0}")
    return 0
