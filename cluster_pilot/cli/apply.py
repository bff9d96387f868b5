"""``cluster-pilot apply``: make the fleet run exactly what the manifests say."""

from __future__ import annotations

import click

from cluster_pilot.cli.options import inventory_option, load_nodes, open_state
from cluster_pilot.home import state_dir
from cluster_pilot.host.observe import observe_soon
from cluster_pilot.host.records import Records, seed
from cluster_pilot.model import from_json, to_json


def load_objects(paths: tuple[str, ...], kind: str | None, nodes=None):
    """Every input validated (against the policy of ``nodes``' fleet when given) before anything else
    happens; any problem and nothing is touched."""
    from cluster_pilot.host.inventory import fleet_policy
    from cluster_pilot.manifests import load_paths

    if not paths:
        raise click.UsageError("no input: give -f PATH (a file, a directory or - for stdin)")
    if nodes is None:
        return load_paths(list(paths), kind_hint=kind)
    return load_paths(list(paths), kind_hint=kind, policy=fleet_policy(nodes))


def known_records(store) -> Records:
    """What this runner's store remembers, for a fleet whose minions keep no records yet (older applies)."""
    return seed((from_json(r.body), r.applyset) for r in store.list())


def adopt_option(f):
    return click.option("--force-adopt", is_flag=True,
                        help="Take over objects another apply set or the master manages (on purpose).")(f)


def files_option(f):
    return click.option("-f", "--filename", "paths", multiple=True, metavar="PATH",
                        help="Manifest file, directory (recursive) or - for stdin; repeatable.")(f)


@click.command()
@files_option
@inventory_option
@click.option("--kind", default=None, help="Kind of objects whose files do not say (2014 files).")
@click.option("--prune", is_flag=True, help="Also remove pods of this apply set whose objects the inputs no longer name.")
@click.option("--applyset", default="default", show_default=True, help="Name of the set --prune is scoped to.")
@click.option("--dry-run", is_flag=True, help="Show what would change; touch nothing.")
@click.option("--allow-pending", is_flag=True, help="Apply what fits even when some pods cannot be scheduled.")
@click.option("--lock-timeout", type=click.FloatRange(0), default=60.0, show_default=True,
              help="Seconds to wait for another run's fleet lock.")
@adopt_option
@click.option("--server", metavar="URL", default=None,
              help="Send the objects to a cluster-pilot master instead (create, or update at the current "
                   "resourceVersion); nothing is applied here. Token: $CLUSTER_PILOT_HOME/master-token.")
@click.option("--certificate-authority", "ca_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="With an https --server: CA bundle to check it with (default: the system's).")
@click.option("--insecure-skip-tls-verify", "insecure", is_flag=True,
              help="With an https --server: do not check its certificate.")
@click.option("--token", default=None, envvar="CLUSTER_PILOT_TOKEN", show_envvar=True,
              help="With --server: the master's token (default: the state dir's, if it belongs to that URL).")
def apply(paths, inventory, kind, prune, applyset, dry_run, allow_pending, lock_timeout, force_adopt, server,
          ca_file, insecure, token) -> int:
    """Validate, observe, schedule, plan, and converge the fleet through Ansible (or hand it to a master)."""
    if server is not None:  # the master judges the objects against its fleet's policy
        return send_to_master(load_objects(paths, kind), server, prune=prune, dry_run=dry_run, ca_file=ca_file,
                              insecure=insecure, token=token)
    inventory_file, nodes = load_nodes(inventory)
    first = observe_soon(nodes, state_dir())  # read-only; overlaps loading the pipeline and validating inputs
    from cluster_pilot.apply.pipeline import Options, Request
    from cluster_pilot.cli import progress

    options = Options(prune=prune, dry_run=dry_run, allow_pending=allow_pending, applyset=applyset,
                      lock_timeout=lock_timeout, force_adopt=force_adopt)
    objects = load_objects(paths, kind, nodes)
    home, store = open_state()
    code, outcome = progress.run(Request.of(objects, known=known_records(store)), nodes, inventory_file, home, options,
                                 first=first)
    if not dry_run and not outcome.blocked:
        for obj in objects:
            store.put(obj.kind, obj.meta.name, to_json(obj), applyset=applyset, actor="apply")
    return code


def send_to_master(objects, server: str, *, prune: bool, dry_run: bool, ca_file: str | None, insecure: bool,
                   token: str | None = None) -> int:
    """``apply --server``: the master stores the objects and its loop converges the fleet; one line each."""
    from cluster_pilot.master.client import TLS, MasterClient, resource_of

    if prune or dry_run:
        raise click.UsageError(f"{'--prune' if prune else '--dry-run'} is not available with --server: the master "
                               "decides what runs (delete objects with kubecfg delete)")
    client = MasterClient.from_environment(server, tls=TLS(ca_file=ca_file, insecure=insecure), token=token)
    for obj in objects:
        outcome = client.put_object(obj)
        click.echo(f"{resource_of(obj.kind)}/{obj.meta.name} {outcome}")
    return 0
