"""``cluster-pilot plan``: where every pod would run and what would change, without acting.

With ``--assume-empty`` the plan is made against the inventory's capacities as if no pod ran yet and no
host is contacted, which a CI pipeline can run before merging to check that a change fits the fleet. A reviewer
reads pods and objects there: which minions' proxies and object records an empty fleet would get says nothing.
Exit 0: nothing to do; 2: changes; 1: an error, or pods that fit nowhere (unless ``--allow-pending``).
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import click

from cluster_pilot.cli.apply import files_option, known_records, load_objects
from cluster_pilot.cli.options import inventory_option, load_nodes, open_state
from cluster_pilot.cli.progress import counts, describe_plan
from cluster_pilot.apply.pipeline import Options, Request, empty_fleet, look_all
from cluster_pilot.host.records import fleet_records
from cluster_pilot.host.records import ObjectChange, changes
from cluster_pilot.model import REPLICATION_CONTROLLER, SERVICE
from cluster_pilot.plan.planner import Change, Plan

NOTHING_TO_DO, ERROR, CHANGES = 0, 1, 2


@click.command()
@files_option
@inventory_option
@click.option("--kind", default=None, help="Kind of objects whose files do not say (2014 files).")
@click.option("--assume-empty", is_flag=True, help="Plan as if no pod ran yet; contacts no host.")
@click.option("--prune", is_flag=True, help="Include removals of pods of this apply set the inputs no longer name.")
@click.option("--applyset", default="default", show_default=True)
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--allow-pending", is_flag=True, help="Pods that fit nowhere are listed but do not fail the plan.")
def plan(paths, inventory, kind, assume_empty, prune, applyset, output, allow_pending) -> int:
    """Show where each pod would run and what applying PATH would change."""
    _, nodes = load_nodes(inventory)
    objects = load_objects(paths, kind, nodes)
    home, store = open_state()
    options = Options(prune=prune, applyset=applyset)
    known = None if assume_empty else known_records(store)
    found = look_all(Request.of(objects, known=known), nodes, home, options,
                     seen=empty_fleet(nodes) if assume_empty else None)
    seen, sched, todo = found.seen, found.schedule, found.plan
    for warning in found.warnings:
        click.echo(f"cluster-pilot: warning: {warning}", err=True)
    asked = changes(fleet_records(seen, known)[0], found.records, (REPLICATION_CONTROLLER, SERVICE))
    view = as_json if output == "json" else as_text
    click.echo(view(todo, sched, asked, offline=assume_empty))
    unreachable = sorted(seen.unreachable)
    if unreachable:
        click.echo(f"cluster-pilot: not reachable: {', '.join(unreachable)}", err=True)
    if sched.unschedulable and not allow_pending:
        count = len(sched.unschedulable)
        click.echo(f"cluster-pilot: {count} {'pods fit' if count > 1 else 'pod fits'} on no minion; "
                   "nothing would be applied (--allow-pending applies what fits)", err=True)
    return exit_code(todo, allow_pending)


def exit_code(todo: Plan, allow_pending: bool) -> int:
    if todo.unschedulable and not allow_pending:
        return ERROR
    return NOTHING_TO_DO if todo.empty else CHANGES


def shown(todo: Plan, offline: bool) -> tuple[Change, ...]:
    """The plan's changes; offline, its pods only (every minion of an empty fleet gets a proxy and records)."""
    return tuple(c for c in todo.changes() if not offline or c.action not in ("proxy", "record"))


def as_json(todo: Plan, sched, asked: Sequence[ObjectChange] = (), offline: bool = False) -> str:
    doc = {
        "placements": [{"pod": p.name, "node": p.node, "controller": p.controller} for p in sched.placements],
        "unschedulable": [{"pod": u.pod, "reasons": list(u.reasons)} for u in sched.unschedulable],
        "changes": [change_json(c) for c in shown(todo, offline)],
        "objects": [{"action": o.action, "kind": o.kind, "name": o.name} for o in asked],
    }
    return json.dumps(doc, indent=2)


def change_json(c: Change) -> dict[str, Any]:
    """The shape ``plan -o json`` has always printed: each action with its own fields, in this order."""
    out: dict[str, Any] = {"action": c.action, "pod": c.pod, "node": c.node}
    if c.action in ("create", "replace"):
        out |= {"controller": c.controller, "images": list(c.images)}
    elif c.action == "remove":
        out["reason"] = c.reason
    return out


def as_text(todo: Plan, sched, asked: Sequence[ObjectChange] = (), offline: bool = False) -> str:
    """A ``kubectl diff``-like view: ``+`` create, ``~`` replace, ``-`` remove, ``!`` fits nowhere; then the
    controllers and services asked differently, then (observing) the minions whose proxy changes and, on one
    line, those whose copy of the records is rewritten."""
    listed = shown(todo, offline)
    copies = [c.node for c in listed if c.action == "record"]
    lines = (describe_plan([c for c in listed if c.action not in ("proxy", "record")])
             + [f"  ! {u.message}" for u in sched.unschedulable] + [f"  {o.describe()}" for o in asked]
             + describe_plan([c for c in listed if c.action == "proxy"])
             + ([f"  ~ object records on {', '.join(copies)}"] if copies else []))
    kept = len(todo.kept)
    if not lines:
        return f"no changes ({kept} pod{'' if kept == 1 else 's'} as wanted)"
    done = counts(listed)
    summary = ", ".join(f"{done[a]} to {a}" for a in ("create", "replace", "remove"))
    if sched.unschedulable:
        summary += f", {len(sched.unschedulable)} unschedulable"
    return "\n".join(lines + [f"{summary}, {kept} unchanged"])
