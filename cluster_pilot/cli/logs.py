"""``logs`` and ``exec``: a pod's container on its minion, over the inventory's SSH (or, for ``logs --server``,
through a master). Exit statuses pass through: ``exec``'s is the command's, ``logs``' is ``docker logs``'."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from cluster_pilot.cli.options import inventory_option, load_nodes, named
from cluster_pilot.errors import UserError
from cluster_pilot.home import state_dir
from cluster_pilot.host.logs import LogOptions, Target, check_log_options, exec_remote, locate, logs_remote, ssh_to
from cluster_pilot.host.ssh import control_dir
from cluster_pilot.model import POD


def server_option(f):
    f = click.option("--insecure-skip-tls-verify", "insecure", is_flag=True,
                     help="With an https --server: do not check its certificate.")(f)
    f = click.option("--certificate-authority", "ca_file", type=click.Path(exists=True, dir_okay=False),
                     default=None, help="With an https --server: CA bundle to check it with.")(f)
    return click.option("--server", metavar="URL", default=None,
                        help="Ask this master instead of the hosts.")(f)


def client_for(server: str, ca_file: str | None, insecure: bool, timeout: float = 30.0):
    from cluster_pilot.master.client import TLS, MasterClient

    return MasterClient.from_environment(server, tls=TLS(ca_file=ca_file, insecure=insecure), timeout=timeout)


def _find(inventory: Path | None, pod: str, container: str | None):
    from cluster_pilot.host.observe import observe

    _, nodes = load_nodes(inventory)
    target: Target = locate(observe(nodes, state_dir()), pod, container)
    return next(n for n in nodes if n.name == target.node), target


@click.command()
@click.argument("pod")
@click.option("-c", "--container", default=None, help="The container (may be left out when the pod has one).")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option("--tail", type=int, default=None, help="Only the last N lines.")
@click.option("--since", default=None, help="Only lines newer than a duration (10m, 90s, 2h) or an RFC 3339 time.")
@click.option("-p", "--previous", is_flag=True, help="The last exited instance of a restarted container.")
@click.option("--timestamps", is_flag=True, help="Prefix each line with its time.")
@inventory_option
@server_option
def logs(pod, container, follow, tail, since, previous, timestamps, inventory, server, ca_file, insecure) -> int:
    """Print a pod container's stdout and stderr (kept apart) from its minion."""
    named(POD, pod)
    options = check_log_options(LogOptions(follow, tail, since, previous, timestamps))
    if server is not None:
        return _logs_from_master(server, ca_file, insecure, pod, container, options)
    node, target = _find(inventory, pod, container)
    argv = ssh_to(node, control_dir(state_dir()), logs_remote(target.id, options))
    # a pipe we never write to: when we go, the minion sees its stdin close and stops following
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE if follow else subprocess.DEVNULL)
    try:
        return proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()


def _logs_from_master(server, ca_file, insecure, pod, container, options: LogOptions) -> int:
    if options.since is not None and not options.since[:-1].isdigit():
        raise UserError("--since with --server: give a duration (10m, 90s, 2h)")
    query = {"follow": options.follow, "previous": options.previous, "timestamps": options.timestamps}
    if container:
        query["container"] = container
    if options.tail is not None:
        query["tailLines"] = options.tail
    if options.since:
        unit = {"s": 1, "m": 60, "h": 3600}[options.since[-1]]
        query["sinceSeconds"] = int(options.since[:-1]) * unit
    client = client_for(server, ca_file, insecure, timeout=None if options.follow else 60.0)
    for chunk in client.stream(f"/api/v1beta1/pods/{pod}/log", {k: str(v).lower() if isinstance(v, bool) else str(v)
                                                                  for k, v in query.items()}):
        sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
    return 0


@click.command(name="exec", context_settings={"ignore_unknown_options": True})
@click.argument("pod")
@click.option("-c", "--container", default=None, help="The container (may be left out when the pod has one).")
@click.option("-i", "--stdin", "interactive", is_flag=True, help="Pass this terminal's input to the command.")
@click.option("-t", "--tty", is_flag=True, help="Give the command a terminal (over SSH).")
@click.option("--inventory", "inventory", type=click.Path(path_type=Path), default=None,
              help="Ansible inventory (file or directory); default: the sandbox's. (-i is --stdin here.)")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(pod, container, interactive, tty, inventory, command) -> int:
    """Run COMMAND in a pod's container: ``exec POD [-c C] [-it] -- CMD ARGS...``; its exit status is ours."""
    named(POD, pod)
    node, target = _find(inventory, pod, container)
    argv = ssh_to(node, control_dir(state_dir()), exec_remote(target.id, command, interactive, tty), tty=tty)
    return subprocess.run(argv, stdin=None if interactive else subprocess.DEVNULL).returncode
