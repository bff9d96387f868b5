"""``get`` and ``describe``: what runs (from the hosts) beside what was asked (from the store)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cluster_pilot.cli.options import (MINION, emit, format_labels, printable, inventory_option, kind_of, load_nodes,
                                       named, open_state, parse_selector)
from cluster_pilot.errors import UserError
from cluster_pilot.home import state_dir
from cluster_pilot.model import POD, REPLICATION_CONTROLLER, SERVICE, selector_admits
from cluster_pilot.model import Node
from cluster_pilot.host.inspect import ContainerStatus, container_ids, created, format_age, inspect, restarts
from cluster_pilot.host.observe import observe
from cluster_pilot.host.observed import Observation, ObservedPod
from cluster_pilot.host.podformat import INFRA
from cluster_pilot.cli.events import EVENT_WORDS, line, show, source
from cluster_pilot.cli.logs import client_for, server_option
from cluster_pilot.master.client import resource_of
from cluster_pilot.master.registry import PodEntry, Registry
from cluster_pilot.store import SQLiteStore
from cluster_pilot.store.fleet import fleet_store
from cluster_pilot.quantity import format_bytes, format_cpu

# a pipe or a file gets whole rows, never rows wrapped to 80 columns
_out = Console(highlight=False, width=None if sys.stdout.isatty() else 400)


def _table(columns: list[str], rows: list[list[str]]) -> None:
    table = Table(box=None, pad_edge=False, show_edge=False)
    for c in columns:
        table.add_column(c, overflow="fold")
    for r in rows:
        table.add_row(*(Text(printable(cell)) for cell in r))  # Text: no rich markup from a label value
    _out.print(table)


@dataclass(frozen=True)
class View:
    """One observation of the fleet beside the store: every listing of one command reads the same one."""

    store: SQLiteStore
    nodes: list[Node]
    seen: Observation
    statuses: Mapping[str, ContainerStatus] = field(default_factory=dict)  # docker inspect, when asked


def inspected(view: View, pods: Sequence[ObservedPod] | None = None) -> View:
    """The view with the containers of ``pods`` (default all) inspected: one more SSH round trip per host
    that has any, all hosts at once."""
    asked = view.seen.pods if pods is None else pods
    return replace(view, statuses=inspect(view.nodes, container_ids(asked), state_dir()))


def look(inventory) -> View:
    _, store = open_state()
    _, nodes = load_nodes(inventory)
    seen = observe(nodes, state_dir())
    return View(fleet_store(store, seen), nodes, seen)


def collect(kind: str, view: View) -> list[dict[str, Any]]:
    """The rows of ``get KIND``: the master's registry, over this command's one observation."""
    registry = Registry(view.store.list(), view.nodes, view.seen)
    if kind == POD:
        return _pods(registry, view.statuses)
    return {REPLICATION_CONTROLLER: _controllers, SERVICE: _services, MINION: _minions}[kind](registry)


def _pods(registry: Registry, statuses: Mapping[str, ContainerStatus]) -> list[dict[str, Any]]:
    now = time.time()
    return [_pod(e, e.observed, statuses, now) for e in registry.pods if e.observed is not None]  # what runs


def _pod(e: PodEntry, p: ObservedPod, statuses: Mapping[str, ContainerStatus], now: float) -> dict[str, Any]:
    born = created(p, statuses)
    return {"id": e.name, "images": _images(p), "host": p.node, "hostIP": e.host_ip, "labels": dict(p.labels),
            "status": e.status, "controller": p.controller or "", "specHash": p.spec_hash,
            "containers": {c.container: c.state for c in p.containers}, "ready": p.ready,
            "restarts": restarts(p, statuses), "age": None if born is None else round(now - born)}


def _images(p: ObservedPod) -> list[str]:
    return [c.image for c in p.containers if c.container != INFRA]


def _controllers(registry: Registry) -> list[dict[str, Any]]:
    out = []
    for c in registry.controllers():
        rc = c.controller
        images = ([k.image for k in rc.template.spec.containers] if rc else
                  sorted({i for e in c.pods if e.observed for i in _images(e.observed)}))
        out.append({"id": c.name, "images": images, "selector": dict(rc.selector) if rc else {},
                    "replicas": rc.replicas if rc else None, "current": len(c.pods),
                    "labels": dict(rc.meta.labels) if rc else {}})
    return out


def _services(registry: Registry) -> list[dict[str, Any]]:
    return [{"id": s.service.meta.name, "labels": dict(s.service.meta.labels), "selector": dict(s.service.selector),
             "clusterIP": s.service.cluster_ip or "", "type": s.service.type, "namespace": s.service.meta.namespace,
             "ports": [p.port for p in s.service.ports],
             "nodePorts": [p.node_port for p in s.service.ports if p.node_port],
             "endpoints": [{"pod": b.pod, "node": b.node, "address": f"{b.address}:{b.port}", "port": port}
                           for port, backends in s.backends.items() for b in backends]}
            for s in registry.services()]


def _minions(registry: Registry) -> list[dict[str, Any]]:
    return [{"id": m.node.name, "address": m.node.address, "ready": m.ready,
             "capacity": {"cpu": format_cpu(m.node.capacity.cpu_millis),
                          "memory": format_bytes(m.node.capacity.memory_bytes), "pods": m.node.capacity.pods},
             "allocated": {"cpu": format_cpu(sum(p.cpu_millis for p in m.pods)),
                           "memory": format_bytes(sum(p.memory_bytes for p in m.pods)),
                           "pods": len({p.name for p in m.pods})},
             "labels": dict(m.node.labels), "error": m.view.error if m.view else ""}
            for m in registry.minions()]


_COLUMNS = {
    POD: (["ID", "IMAGE(S)", "HOST", "LABELS", "STATUS", "RESTARTS", "AGE"],
          lambda r: [r["id"], ",".join(r["images"]), f"{r['host']}/{r['hostIP']}", format_labels(r["labels"]),
                     r["status"], "?" if r["restarts"] is None else str(r["restarts"]), format_age(r["age"])],
          ["CONTROLLER", "SPEC", "READY"],
          lambda r: [r["controller"] or "-", r["specHash"], "yes" if r["ready"] else "no"]),
    REPLICATION_CONTROLLER: (["ID", "IMAGE(S)", "SELECTOR", "REPLICAS", "CURRENT"],
                             lambda r: [r["id"], ",".join(r["images"]), format_labels(r["selector"]),
                                        "?" if r["replicas"] is None else str(r["replicas"]), str(r["current"])],
                             ["LABELS"], lambda r: [format_labels(r["labels"])]),
    SERVICE: (["ID", "LABELS", "SELECTOR", "IP", "PORT", "ENDPOINTS"],
              lambda r: [r["id"], format_labels(r["labels"]), format_labels(r["selector"]), r["clusterIP"] or "<none>",
                         ",".join(str(p) for p in r["ports"]) + "".join(f",node:{p}" for p in r["nodePorts"]),
                         ",".join(e["address"] for e in r["endpoints"]) or "<none>"],
              ["PODS"], lambda r: [",".join(e["pod"] for e in r["endpoints"]) or "<none>"]),
    MINION: (["ID", "ADDRESS", "READY", "CAPACITY", "ALLOCATED"],
             lambda r: [r["id"], r["address"], "yes" if r["ready"] else "no",
                        "cpu={cpu} mem={memory} pods={pods}".format(**r["capacity"]),
                        "cpu={cpu} mem={memory} pods={pods}".format(**r["allocated"])],
             ["LABELS"], lambda r: [format_labels(r["labels"])]),
}


@click.command()
@click.argument("kind")
@click.argument("name", required=False)
@click.option("-l", "--selector", default=None, help="Label selector: key=value,key!=value.")
@click.option("-o", "--output", type=click.Choice(["table", "wide", "json", "yaml"]), default="table",
              show_default=True)
@click.option("--for", "for_object", default=None, metavar="KIND/NAME", help="get events: only this object's.")
@click.option("-w", "--watch", is_flag=True, help="get events: keep printing new ones.")
@inventory_option
@server_option
def get(kind, name, selector, output, for_object, watch, inventory, server, ca_file, insecure) -> int:
    """List pods, replicationControllers (rc), services (svc), minions (no) or events (ev)."""
    if kind in EVENT_WORDS:
        if for_object:
            word, _, object_name = for_object.rpartition("/")
            named(kind_of(word) if word else "", object_name)
        return show(source(server, ca_file, insecure), for_object, watch)
    k = kind_of(kind)
    if name is not None:
        named(k, name)
    terms = parse_selector(selector)
    if server is not None:
        return _get_from_master(k, name, selector, output, client_for(server, ca_file, insecure))
    view = look(inventory)
    rows = [r for r in collect(k, inspected(view) if k == POD else view)
            if (name is None or r["id"] == name) and selector_admits(terms, r["labels"])]
    if name is not None and not rows:
        raise UserError(f"{kind} {name!r} not found")
    if output in ("json", "yaml"):
        emit(rows[0] if name is not None else {"kind": f"{k}List", "items": rows}, output)
        return 0
    columns, cells, wide_columns, wide_cells = _COLUMNS[k]
    if output == "wide":
        _table(columns + wide_columns, [cells(r) + wide_cells(r) for r in rows])
    else:
        _table(columns, [cells(r) for r in rows])
    return 0


def _get_from_master(kind: str, name: str | None, selector: str | None, output: str, client) -> int:
    """The master's own v1beta1 objects: as JSON/YAML, or a table of what every kind has in common."""
    resource = resource_of(kind)
    items = [client.get(resource, name)] if name else client.list(resource, selector).get("items", [])
    if output in ("json", "yaml"):
        emit(items[0] if name else {"kind": f"{kind}List", "items": items}, output)
        return 0
    rows = []
    for i in items:
        state = i.get("currentState") or i.get("status") or {}
        ready = [c.get("status") for c in state.get("conditions") or () if c.get("kind") == "Ready"]
        status = ("Ready" if ready[0] == "Full" else "NotReady") if ready else ""  # a minion's, as Kubernetes prints it
        rows.append([str(i.get("id", "")), format_labels(i.get("labels") or {}),
                     status or str(state.get("status") or state.get("replicas") or state.get("host") or "")])
    _table(["ID", "LABELS", "STATUS"], rows)
    return 0


@click.command()
@click.argument("kind")
@click.argument("name")
@inventory_option
@server_option
def describe(kind, name, inventory, server, ca_file, insecure) -> int:
    """Everything about one object: what was asked, what runs and why, recent history and events."""
    k = kind_of(kind)
    named(k, name)
    if server is not None:
        client = client_for(server, ca_file, insecure)
        emit(client.get(resource_of(k), name), "yaml")
        _events(source(server, ca_file, insecure), k, name)
        return 0
    view = look(inventory)
    if k == POD:
        view = inspected(view, [p for p in view.seen.current().values() if p.name == name])
    rows = [r for r in collect(k, view) if r["id"] == name]
    if not rows:
        raise UserError(f"{kind} {name!r} not found")
    if k == POD:
        rows[0]["containerStatuses"] = container_statuses(view, name)
    emit(rows[0], "yaml")
    if k in (POD, REPLICATION_CONTROLLER, SERVICE):
        history = view.store.history(k, name, limit=10)
        if history:
            click.echo("history:")
            for h in history:
                click.echo(f"  - {h['verb']} (resourceVersion {h['resource_version']}, by {h['actor'] or '?'})")
        if k == REPLICATION_CONTROLLER:
            pods = [p for p in collect(POD, view) if p["controller"] == name]
            click.echo("pods:")
            for p in pods:
                click.echo(f"  - {p['id']} on {p['host']} ({p['status']})")
    if (state_dir() / "master.db").exists():
        _events(source(None), k, name)
    return 0


def container_statuses(view: View, pod: str) -> dict[str, Any]:
    """Per container of one inspected pod: state, reason, last exit code, restarts, times, image ID."""
    found = view.seen.current().get(pod)
    return {} if found is None else {c.container: view.statuses[c.id].to_json() for c in found.containers
                                     if c.container != INFRA and c.id in view.statuses}


def _events(events, kind: str, name: str) -> None:
    emit({"events": [line(e) for e in events(f"{kind}/{name}", 0)[-20:]]}, "yaml")
