"""``delete`` and ``scale``: change what is asked, then converge the fleet through the same pipeline."""

from __future__ import annotations

from dataclasses import replace

import click

from cluster_pilot.cli import progress
from cluster_pilot.cli.apply import files_option, load_objects, recorded_services
from cluster_pilot.cli.options import MINION, inventory_option, kind_of, load_nodes, open_state
from cluster_pilot.errors import UserError
from cluster_pilot.model import POD, REPLICATION_CONTROLLER, SERVICE, from_json, to_json
from cluster_pilot.apply.pipeline import Options, services_wanted
from cluster_pilot.store import NotFound


@click.command()
@click.argument("target", required=False)
@files_option
@inventory_option
@click.option("--kind", default=None, help="Kind of objects whose files do not say (2014 files).")
@click.option("--lock-timeout", type=click.FloatRange(0), default=60.0, show_default=True)
def delete(target, paths, inventory, kind, lock_timeout) -> int:
    """Delete KIND/NAME (or the objects of -f PATH) and remove their pods from the minions."""
    if bool(target) == bool(paths):
        raise click.UsageError("give either KIND/NAME or -f PATH")
    if target:
        word, _, name = target.partition("/")
        if not name:
            raise click.UsageError(f"{target!r}: expected KIND/NAME, e.g. rc/web or pods/redis-master")
        targets = [(kind_of(word), name)]
    else:
        targets = [(o.kind, o.meta.name) for o in load_objects(paths, kind)]
    if any(k == MINION for k, _ in targets):
        raise UserError("minions come from the inventory: remove the host there")
    inventory_file, nodes = load_nodes(inventory)
    home, store = open_state()
    for k, name in targets:
        try:
            store.delete(k, name, actor="delete")
        except NotFound:
            pass  # the hosts may still run its pods: removing them is what was asked
    deleting = [(k, n) for k, n in targets if k in (POD, REPLICATION_CONTROLLER)]
    services = services_wanted([], recorded_services(store), [n for k, n in targets if k == SERVICE])
    code, _ = progress.run([], nodes, inventory_file, home, Options(lock_timeout=lock_timeout), deleting, "delete",
                           services)
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
    inventory_file, nodes = load_nodes(inventory)
    home, store = open_state()
    try:
        record = store.get(REPLICATION_CONTROLLER, name)
    except NotFound:
        raise UserError(f"replicationController {name!r} not found: apply it first") from None
    rc = replace(from_json(record.body), replicas=replicas)
    store.put(REPLICATION_CONTROLLER, name, to_json(rc), applyset=record.applyset, actor="scale")
    code, _ = progress.run([rc], nodes, inventory_file, home, Options(lock_timeout=lock_timeout), verb="scale",
                           services=services_wanted([rc], recorded_services(store)))
    return code
