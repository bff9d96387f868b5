"""``cluster-pilot plan``: where every pod would run and what would change, without touching a host.

With ``--assume-empty`` the plan is made against the inventory's capacities as if no pod ran yet, which a CI
pipeline can run before merging to check that a change fits the fleet. Exit 0: nothing to do; 2: changes;
1: an error, or pods that fit nowhere (unless ``--allow-pending``).
"""

from __future__ import annotations

import json
from typing import Sequence

import click

from cluster_pilot.errors import UserError
from cluster_pilot.model import Node
from cluster_pilot.scheduler import RunningPod, Schedule

NOTHING_TO_DO, ERROR, CHANGES = 0, 1, 2


@click.command()
@click.option("-f", "--filename", "paths", multiple=True, required=True, metavar="PATH",
              help="Manifest file or directory (repeatable).")
@click.option("-i", "--inventory", metavar="INVENTORY",
              help="Ansible inventory, file or directory (default: the sandbox's).")
@click.option("--assume-empty", is_flag=True, help="Plan as if no pod ran yet; contacts no host.")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--allow-pending", is_flag=True, help="Pods that fit nowhere are listed but do not fail the plan.")
def plan(paths: tuple[str, ...], inventory: str | None, assume_empty: bool, output: str, allow_pending: bool) -> int:
    """Show where each pod would run and what applying PATH would change."""
    from cluster_pilot.home import default_inventory
    from cluster_pilot.inventory import load_inventory
    from cluster_pilot.manifests import load_paths
    from cluster_pilot.scheduler import schedule

    objects = load_paths(list(paths))
    nodes = load_inventory(inventory or default_inventory())
    running = () if assume_empty else _observed(nodes)
    result = schedule(objects, nodes, running)
    click.echo(as_json(result) if output == "json" else as_text(result))
    if result.unschedulable and not allow_pending:
        count = len(result.unschedulable)
        click.echo(f"cluster-pilot: {count} {'pods fit' if count > 1 else 'pod fits'} on no minion; "
                   "nothing would be applied (--allow-pending applies what fits)", err=True)
    return exit_code(result, allow_pending)


def _observed(nodes: Sequence[Node]) -> Sequence[RunningPod]:
    raise UserError("plan without --assume-empty needs the apply pipeline (observe) which is not implemented yet")


def changes(result: Schedule) -> list[dict[str, str]]:
    """Removals first (a host frees room before it takes new pods), then creations, each by node and pod."""
    removed = [{"action": "remove", "pod": p.name, "node": p.node} for p in result.removals]
    created = [{"action": "create", "pod": p.name, "node": p.node} for p in result.created]
    return removed + sorted(created, key=lambda c: (c["node"], c["pod"]))


def exit_code(result: Schedule, allow_pending: bool) -> int:
    if result.unschedulable and not allow_pending:
        return ERROR
    return CHANGES if result.removals or result.created else NOTHING_TO_DO


def as_json(result: Schedule) -> str:
    doc = {
        "placements": [{"pod": p.name, "node": p.node, "controller": p.controller} for p in result.placements],
        "unschedulable": [{"pod": u.pod, "reasons": list(u.reasons)} for u in result.unschedulable],
        "changes": changes(result),
    }
    return json.dumps(doc, indent=2)


def as_text(result: Schedule) -> str:
    """A ``kubectl diff``-like view: ``-`` removed, ``+`` created, ``!`` fits nowhere, then a summary."""
    def line(sign: str, pod: str, node: str, controller: str | None) -> str:
        return f"{sign} pod {pod} on {node}" + (f"  (replicationController {controller})" if controller else "")

    lines = [line("-", p.name, p.node, p.controller) for p in result.removals]
    lines += [line("+", p.name, p.node, p.controller) for p in sorted(result.created, key=lambda p: (p.node, p.name))]
    lines += [f"! {u.message}" for u in result.unschedulable]
    kept = len(result.placements) - len(result.created)
    if not lines:
        return f"no changes ({kept} pod{'' if kept == 1 else 's'} in place)"
    summary = f"{len(result.created)} to create, {len(result.removals)} to remove"
    if result.unschedulable:
        summary += f", {len(result.unschedulable)} unschedulable"
    return "\n".join(lines + [f"{summary}, {kept} unchanged"])
