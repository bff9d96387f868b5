"""``cluster-pilot apply`` asks the hosts before loading the command line: which inventory it guesses from
the raw arguments, and that the verb takes that observation only when it asks the same hosts the same way."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict

import pytest

from cluster_pilot.__main__ import apply_inventory
from cluster_pilot.host import observe, probe
from cluster_pilot.model import Node, Resources


@pytest.mark.parametrize(("args", "inventory"), [
    (["apply", "-f", "x.json"], ""),
    (["apply", "-f", "x.json", "-i", "inv.yml"], "inv.yml"),
    (["apply", "--inventory=inv.yml", "-f", "x.json"], "inv.yml"),
    (["apply", "-iinv.yml", "--prune"], "inv.yml"),
    (["apply", "-f", "-i", "--applyset", "-i"], ""),  # files and a set named "-i", no inventory option
    (["apply", "--kind", "Pod", "--inventory", "a", "-i", "b"], "b"),  # the last one wins, as in click
    (["plan", "-f", "x.json", "-i", "inv.yml"], None),
    (["apply", "-f", "x.json", "--server", "http://m"], None),
    (["apply", "--server=http://m"], None),
    (["apply", "-f", "x.json", "--help"], None),
    (["--version"], None),
    ([], None),
])
def test_the_inventory_of_an_apply_on_the_fleet_is_guessed_from_the_raw_arguments(args, inventory):
    assert apply_inventory(args) == inventory


def _nodes(*ports: int) -> list[Node]:
    # nothing listens on these loopback ports: each ssh client fails at once, and the host is unreachable
    return [Node(f"m{p}", "127.0.0.1", Resources(1000, 2**30, 10), vars={"ansible_port": p}) for p in ports]


def _entries(nodes: list[Node]) -> list[dict]:
    """The nodes as the inventory cache keeps them (what ``__main__`` asks from)."""
    return [asdict(n) for n in nodes]


def test_the_hosts_asked_ahead_are_taken_once_and_only_for_the_same_hosts_asked_the_same_way(tmp_path):
    nodes = _nodes(1, 9)
    probe.ask_ahead(_entries(nodes), tmp_path)
    ahead = probe._ahead[0][2]
    assert set(ahead) == {"m1", "m9"}
    observe.observe_soon(_nodes(1), tmp_path)  # other hosts: asked anew
    observe.observe_soon(nodes, tmp_path, timeout=5)  # another timeout
    moved = [Node("m1", "127.0.0.1", n.capacity, vars={"ansible_port": 2}) for n in nodes[:1]] + nodes[1:]
    observe.observe_soon(moved, tmp_path)  # another SSH setting: another ssh command
    assert probe._ahead and probe._ahead[0][2] is ahead
    taken = observe.observe_soon(nodes, tmp_path)
    assert probe._ahead == []
    seen = taken()
    assert set(seen.hosts) == {"m1", "m9"} and not any(v.reachable for v in seen.hosts.values())
    assert all(client.proc.returncode is not None for client in ahead.values())  # its own clients were read


def test_asking_ahead_imports_neither_the_model_nor_observation():
    """What ``apply`` imports before its ssh clients start: a leaner path asks the hosts sooner."""
    code = ("import sys; from cluster_pilot.host import inventory_cache, probe; "
            "print(sorted(m for m in sys.modules if m in ('cluster_pilot.model', 'cluster_pilot.host.observe', "
            "'dataclasses', 'cluster_pilot.host.podformat', 'cluster_pilot.host.lock')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_main_knows_every_valued_option_of_apply():
    """``__main__`` guesses apply's ``-i`` before click loads; it must skip the value of every other option
    that takes one, or the value of ``--applyset -i`` would be read as an inventory."""
    import click

    from cluster_pilot.__main__ import _VALUED
    from cluster_pilot.cli.apply import apply

    valued = {name for p in apply.params if isinstance(p, click.Option) and not p.is_flag and not p.count
              for name in p.opts + p.secondary_opts}
    assert valued - {"-i", "--inventory", "--server"} == _VALUED  # those two it reads itself
