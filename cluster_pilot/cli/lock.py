"""``cluster-pilot lock``: see who holds the fleet lock, and break a stale one."""

from __future__ import annotations

import click

from cluster_pilot.cli.options import inventory_option, load_nodes
from cluster_pilot.home import state_dir
from cluster_pilot.host.lock import HostView, force_release, lock_hosts, show


def _hosts(inventory):
    _, nodes = load_nodes(inventory)
    return lock_hosts(nodes)


def _line(view: HostView) -> str:
    if view.error:
        return f"  {view.name}: does not answer ({view.error})"
    fence = f", fence {view.fence}" if view.fence else ""
    if view.holder is None:
        return f"  {view.name}: free{fence}"
    return f"  {view.name}: {'held' if view.live else 'expired, was held'} by {view.holder.describe()}{fence}"


@click.group()
def lock() -> None:
    """The fleet lock that keeps two applies from acting at once."""


@lock.command("status")
@inventory_option
def lock_status(inventory) -> int:
    """Each lock host's view, and what their majority says."""
    found = show(_hosts(inventory), state_dir())
    click.echo(f"{found.describe()} (a majority is {found.need} of {len(found.hosts)} lock hosts)")
    for view in found.hosts:
        click.echo(_line(view))
    return 0


@lock.command("release")
@inventory_option
def lock_release(inventory) -> int:
    """Break the lock on every lock host, whoever holds it (for a run that died without releasing it)."""
    views = force_release(_hosts(inventory), state_dir())
    for view in views:
        if view.error:
            click.echo(f"{view.name}: does not answer ({view.error}); its lease expires on its own", err=True)
        else:
            click.echo(f"{view.name}: released the lease of {view.holder.describe()}" if view.holder
                       else f"{view.name}: free")
    return 0
