"""``cluster-pilot apply`` asks the hosts before loading the command line: which inventory it guesses from
the raw arguments, and that the verb takes that observation only when it asks the same hosts the same way."""

from __future__ import annotations

import pytest

from cluster_pilot.__main__ import apply_inventory
from cluster_pilot.host import observe
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


def test_the_observation_asked_ahead_is_taken_once_and_only_for_the_same_hosts(tmp_path):
    nodes = _nodes(1, 9)
    observe.ask_ahead(nodes, tmp_path)
    assert observe.observe_soon(_nodes(1), tmp_path) is not observe._ahead[0][1]  # other hosts: asked anew
    assert observe.observe_soon(nodes, tmp_path, timeout=5) is not observe._ahead[0][1]  # another timeout
    ahead = observe._ahead[0][1]
    taken = observe.observe_soon(nodes, tmp_path)
    assert taken is ahead and observe._ahead == []
    seen = taken()
    assert set(seen.hosts) == {"m1", "m9"} and not any(v.reachable for v in seen.hosts.values())
    assert observe.observe_soon(nodes, tmp_path) is not ahead  # taken once: the next look is its own
