"""``delete`` and ``scale``: change what is asked, then converge the fleet through the same pipeline."""

from __future__ import annotations

from dataclasses import replace

import click

from cluster_pilot.cli import progress
from cluster_pilot.cli.apply import adopt_option, files_option, known_records, load_objects
from cluster_pilot.cli.options import MINION, inventory_option, kind_of, load_nodes, named, open_state
from cluster_pilot.errors import UserError
from cluster_pilot.home import state_dir
from cluster_pilot.host.observe import observe
from cluster_pilot.model import REPLICATION_CONTROLLER, from_json, to_json
from cluster_pilot.apply.pipeline import Options, Request
from cluster_pilot.host.records import fleet_records
from cluster_pilot.store import NotFound


@click.command()
@click.argument("target", required=False)
@files_option
@inventory_option
@click.option("--kind", default=None, help="Kind of objects whose files do not say (2014 files).")
@click.option("--applyset", default="default", show_default=True, help="The apply set the objects belong to.")
@click.option("--lock-timeout", type=click.FloatRange(0), default=60.0, show_default=True)
@adopt_option
def delete(target, paths, inventory, kind, applyset, lock_timeout, force_adopt) -> int:
    """Delete KIND/NAME (or the objects of -f PATH) and remove their pods from the minions."""
    if bool(target) == bool(paths):
        raise click.UsageError("give either KIND/NAME or -f PATH")
    if target:
        word, _, name = target.partition("/")
        if not name:
            raise click.UsageError(f"{target!r}: expected KIND/NAME, e.g. rc/web or pods/redis-master")
        k = kind_of(word)
        targets = [(k, named(k, name))]
    else:
        targets = [(o.kind, o.meta.name) for o in load_objects(paths, kind)]
    if any(k == MINION for k, _ in targets):
        raise UserError("minions come from the inventory: remove the host there")
    inventory_file, nodes = load_nodes(inventory)
    home, store = open_state()
    options = Options(lock_timeout=lock_timeout, applyset=applyset, force_adopt=force_adopt)
    # the hosts may still run its pods, and the records name it: removing both is what was asked
    code, outcome = progress.run(Request.of(deleting=targets, known=known_records(store)), nodes, inventory_file, home,
                                 options, "delete")
    if outcome.run is None or outcome.run.ok:
        for k, name in targets:
            try:
                store.delete(k, name, actor="delete")
            except NotFound:
                pass
    return code


@click.command()
@click.argument("kind")
@click.argument("name")
@click.option("--replicas", type=click.IntRange(0), required=True)
@inventory_option
@click.option("--lock-timeout", type=click.FloatRange(0), default=60.0, show_default=True)
def scale(kind, name, replicas, inventory, lock_timeout) -> int:
    """Set a replication controller's replica count and converge."""
    if kind_of(kind) != REPLICATION_CONTROLLER:
        raise UserError("only replicationControllers (rc) can be scaled")
    named(REPLICATION_CONTROLLER, name)
    inventory_file, nodes = load_nodes(inventory)
    home, store = open_state()
    known = known_records(store)
    entry = fleet_records(observe(nodes, state_dir()), known)[0].get(REPLICATION_CONTROLLER, name)
    if entry is None:
        raise UserError(f"replicationController {name!r} not found: apply it first")
    rc = replace(from_json(entry.body), replicas=replicas)
    options = Options(lock_timeout=lock_timeout, applyset=entry.owner.applyset)  # the master's is refused
    code, outcome = progress.run(Request.of([rc], known=known), nodes, inventory_file, home, options, verb="scale")
    if not outcome.blocked:
        store.put(REPLICATION_CONTROLLER, name, to_json(rc), applyset=entry.owner.applyset, actor="scale")
    return code
