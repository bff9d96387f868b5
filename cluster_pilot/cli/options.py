"""What the fleet verbs share: the inventory option, kind names users know, selectors, output formats."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping

import click

from cluster_pilot.api import kinds, names
from cluster_pilot.api.kinds import MINION  # noqa: F401 - the verbs import it from here
from cluster_pilot.errors import UserError
from cluster_pilot.home import default_inventory, state_dir
from cluster_pilot.model import Node, Selector
from cluster_pilot.model import parse_selector as model_parse_selector
from cluster_pilot.store import SQLiteStore


def kind_of(word: str) -> str:
    kind = kinds.find(word)
    if kind is None:
        raise UserError(f"unknown kind {word!r}: expected one of "
                        + ", ".join(f"{k.v1beta1} ({k.short})" for k in kinds.TABLE))
    return kind.name


def named(kind: str, name: str) -> str:
    """``name`` as given on the command line for an object of ``kind``, held to the one rule for names
    (``api.names``): a one-line error (exit 1) when it breaks it, before anything is asked of a host or master."""
    why = names.refusal(kind, name)
    if why is not None:
        found = kinds.find(kind)
        raise UserError(f"{found.v1beta1 if found else kind} {json.dumps(name)}: {why}")
    return name


def inventory_option(f: Callable) -> Callable:
    return click.option("-i", "--inventory", "inventory", type=click.Path(path_type=Path), default=None,
                        help="Ansible inventory (file or directory); default: the sandbox's.")(f)


def inventory_path(given: Path | None) -> Path:
    if given is not None:
        return given  # the inventory loader names what is wrong with it
    path = default_inventory()
    if not path.exists():
        raise UserError(f"no inventory given and no sandbox inventory at {path}: pass -i INVENTORY "
                        "or run 'cluster-pilot sandbox up'")
    return path


def load_nodes(given: Path | None) -> tuple[Path, list[Node]]:
    from cluster_pilot.host.inventory_cache import load_inventory_cached

    path = inventory_path(given)
    return path, load_inventory_cached(path, state_dir() / "cache")


def open_state() -> tuple[Path, SQLiteStore]:
    home = state_dir()
    return home, SQLiteStore(home / "store.db")


def parse_selector(text: str | None) -> Selector:
    try:
        return model_parse_selector(text)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def emit(doc: Any, output: str) -> None:
    if output == "json":
        click.echo(json.dumps(doc, indent=2, sort_keys=False))
    else:
        import yaml  # only for -o yaml: other commands need not load it

        click.echo(yaml.safe_dump(doc, sort_keys=False), nl=False)


def format_labels(labels: Mapping[str, str]) -> str:
    return ",".join(f"{printable(k)}={printable(v)}" for k, v in sorted(labels.items())) or "<none>"


def printable(text: object) -> str:
    """``text`` for one table cell: control characters (a newline, a terminal escape) written as escapes,
    so a label value cannot forge a row or drive the terminal."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
