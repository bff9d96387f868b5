"""``cluster-pilot validate`` and ``cluster-pilot schema``: parsing and printing around ``manifests``."""

from __future__ import annotations

import json
import sys
from collections import Counter

import click

from cluster_pilot.errors import UserError, ValidationFailed

_FORMATS = ("text", "json", "github")


@click.command()
@click.argument("paths", nargs=-1)
@click.option("-f", "--filename", "files", multiple=True, metavar="PATH",
              help="A manifest file or directory; - reads standard input. Repeatable.")
@click.option("--kind", metavar="KIND", help="Kind of objects that do not say (Pod, ReplicationController, Service).")
@click.option("-i", "--inventory", "inventory", default=None, metavar="INVENTORY",
              help="Check against this fleet's policy (allowed host paths, reserved ports); without it host "
                   "paths are only warned about.")
@click.option("-o", "--output", type=click.Choice(_FORMATS), default=None, help="text (default), json or github.")
@click.option("--format", "format_", type=click.Choice(_FORMATS), default=None,
              help="Same as -o; --format github prints GitHub Actions annotations.")
@click.pass_context
def validate(ctx: click.Context, paths: tuple[str, ...], files: tuple[str, ...], kind: str | None,
             inventory: str | None, output: str | None, format_: str | None) -> None:
    """Check manifests (JSON or YAML, v1beta1 or v1) and report every problem as FILE:LINE:COL: /pointer: message."""
    from cluster_pilot.manifests import load
    from cluster_pilot.manifests.policy import NO_INVENTORY

    if output and format_ and output != format_:
        raise click.UsageError(f"-o {output} and --format {format_} disagree; give one of them")
    style = output or format_ or "text"
    inputs = list(paths) + list(files)
    if not inputs:
        raise click.UsageError("give at least one manifest file or directory (or -f -)")
    policy = NO_INVENTORY
    if inventory is not None:
        from cluster_pilot.host.inventory import fleet_policy, load_inventory

        policy = fleet_policy(load_inventory(inventory))
    try:
        loaded = load(inputs, kind_hint=kind, stdin=sys.stdin, policy=policy)
    except ValidationFailed as failed:
        _print(failed.problems, style)
        errors = sum(1 for p in failed.problems if p.severity == "error")
        if style == "text":
            click.echo(f"{errors} error{'s' if errors != 1 else ''}", err=True)
        ctx.exit(1)
    _print(loaded.warnings, style)
    if style == "json":
        return
    kinds = Counter(o.kind for o in loaded.objects)
    listing = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    objects = len(loaded.objects)
    click.echo(f"ok: {objects} object{'s' if objects != 1 else ''}{f' ({listing})' if listing else ''} "
               f"in {loaded.inputs} file{'s' if loaded.inputs != 1 else ''}")


def _print(problems: list, style: str) -> None:
    if style == "json":
        click.echo(json.dumps([p.as_dict() for p in problems], indent=2))
    elif style == "github":
        for p in problems:
            click.echo(_annotation(p))
    else:
        for p in problems:
            click.echo(str(p))


def _annotation(p) -> str:
    """A GitHub Actions workflow command, so CI marks the line in the diff."""
    props = [f"file={_escape(p.file, True)}"]
    if p.line:
        props += [f"line={p.line}", f"col={p.column or 1}"]
    if p.pointer:
        props.append(f"title={_escape(p.pointer, True)}")
    return f"::{p.severity} {','.join(props)}::{_escape(p.message, False)}"


def _escape(text: str, is_property: bool) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if is_property else text


@click.command()
@click.argument("kind", required=False)
@click.option("--api-version", "api_version", type=click.Choice(["v1beta1", "v1"]), default="v1beta1",
              show_default=True)
def schema(kind: str | None, api_version: str) -> None:
    """Print the JSON Schema of KIND (Pod, ReplicationController, Service, List), e.g. for an editor.

    Without KIND, list the schemas there are."""
    from cluster_pilot.manifests import schema as schemas

    if kind is None:
        for version in schemas.VERSIONS:
            for name in schemas.SCHEMA_KINDS:
                click.echo(f"{name} --api-version {version}: {schemas.schema_path(version, name)}")
        return
    wanted = {k.lower(): k for k in schemas.SCHEMA_KINDS}.get(kind.lower())
    if wanted is None:
        raise UserError(f"no schema for {kind!r}: expected one of {', '.join(schemas.SCHEMA_KINDS)}")
    # one document, its definitions copied in from defs.json: an editor given it needs no second file
    click.echo(json.dumps(schemas.schema_of(api_version, wanted), indent=2, ensure_ascii=False))
