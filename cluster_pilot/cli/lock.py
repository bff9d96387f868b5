"""``cluster-pilot lock``: see who holds the fleet lock, and break a stale one."""

from __future__ import annotations

import click

from cluster_pilot.cli.options import inventory_option, load_nodes
from cluster_pilot.home import state_dir
from cluster_pilot.host.lock import force_release, lock_host, show


def _host(inventory):
    _, nodes = load_nodes(inventory)
    return lock_host(nodes)


@click.group()
def lock() -> None:
    """The fleet lock that keeps two applies from acting at once."""


@lock.command("status")
@inventory_option
def lock_status(inventory) -> int:
    """Who holds the lock, if anyone."""
    node = _host(inventory)
    holder = show(node, state_dir())
    click.echo(f"held by {holder.describe()} (on {node.name})" if holder else f"free (lock host {node.name})")
    return 0


@lock.command("release")
@inventory_option
def lock_release(inventory) -> int:
    """Break the lock, whoever holds it (for a run that died without releasing it)."""
    node = _host(inventory)
    holder = force_release(node, state_dir())
    click.echo(f"released the lock held by {holder.describe()}" if holder else "the lock was free")
    return 0
