"""``cluster-pilot sandbox``: bring a local multi-host cluster up, inspect it, power minions, tear it down."""

from __future__ import annotations

import json
import time

import click
from rich.console import Console
from rich.table import Table

from cluster_pilot.home import state_dir
from cluster_pilot.sandbox import MAX_MINIONS, Sandbox

_err = Console(stderr=True, highlight=False)
_out = Console(highlight=False)


class _LiveSteps:
    """Live progress of ``up``: a spinner on the running step, a timed line for every finished one."""

    def __init__(self) -> None:
        self.status = None

    def __call__(self, step: str, outcome: str, seconds: float) -> None:
        if seconds < 0:
            self.status = _err.status(f"{step} …")
            self.status.start()
            return
        if self.status is not None:
            self.status.stop()
            self.status = None
        mark = "[red]✗[/red]" if outcome == "failed" else "[green]✓[/green]"
        _err.print(f"{mark} {step:<16} {outcome}  [dim]({seconds:.1f} s)[/dim]")


@click.group()
def sandbox() -> None:
    """A real multi-host cluster on this machine (minions are containers running sshd and dockerd)."""


@sandbox.command()
@click.option("--minions", "minions", type=click.IntRange(1, MAX_MINIONS), default=3, show_default=True,
              help="How many minions (existing ones are kept; more are added).")
def up(minions: int) -> None:
    """Create or grow the sandbox; a second run reports ready and changes nothing."""
    t0 = time.monotonic()
    box = Sandbox(state_dir())
    statuses = box.up(minions, progress=_LiveSteps())
    _err.print(f"sandbox ready: {len(statuses)} minions in {time.monotonic() - t0:.1f} s; inventory {box.inventory}")


@sandbox.command()
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
def status(output: str) -> None:
    """Minions, their addresses and readiness (sshd and dockerd answer)."""
    doc = Sandbox(state_dir()).status_document()
    if output == "json":
        click.echo(json.dumps(doc, indent=2))
        return
    table = Table(box=None, pad_edge=False)
    for col in ("NAME", "ADDRESS", "CONTAINER", "READY"):
        table.add_column(col)
    for m in doc["minions"]:
        table.add_row(m["name"], m["address"], m["container"], "yes" if m["ready"] else "no")
    _out.print(table)
    _out.print(f"inventory: {doc['inventory']}\nregistry:  {doc['registry'] or '-'}")


@sandbox.command()
@click.argument("minion")
def stop(minion: str) -> None:
    """Power a minion off (its containers and data survive, like a host that is shut down)."""
    Sandbox(state_dir()).stop(minion)
    _err.print(f"{minion} stopped")


@sandbox.command()
@click.argument("minion")
def start(minion: str) -> None:
    """Power a minion on again and wait until it is ready."""
    m = Sandbox(state_dir()).start(minion)
    _err.print(f"{m.name} ready at {m.address}")


@sandbox.command()
def down() -> None:
    """Remove every container, network, volume and file the sandbox created, and nothing else."""
    removed = Sandbox(state_dir()).down()
    _err.print("sandbox removed: " + ", ".join(f"{n} {k}" for k, n in removed.items()))


@sandbox.command()
@click.argument("image")
def push(image: str) -> None:
    """Push an image of the local engine into the sandbox registry so manifests can name it."""
    name = Sandbox(state_dir()).push(image)
    _err.print(f"pushed {image} as {name}")
