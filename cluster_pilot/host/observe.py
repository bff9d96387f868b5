"""What runs where, read from the hosts themselves: one SSH round trip per host, every host at once.

The hosts are the truth. Every managed container carries ``io.cluster-pilot.*`` labels, and the container that
owns a pod's network namespace also carries the pod's labels, requests and ports, so a runner with no local
state rebuilds the whole picture from one observation. SSH uses the inventory's own settings and an OpenSSH
control master shared with the Ansible run that may follow, so the second connection to a host costs no
handshake.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Collection, Sequence

from cluster_pilot.model import Node
from cluster_pilot.host.observed import HostView, Observation, read_view
from cluster_pilot.host.probe import PROBE, WINDOW, take_ahead
from cluster_pilot.host.ssh import Asked, HostDidNotAnswer, control_dir


def _view(node: Node, asked: Asked) -> HostView:
    try:
        return read_view(node.name, asked.answer())
    except HostDidNotAnswer as exc:
        return HostView(node.name, False, error=str(exc))


def observe_host(node: Node, cm_dir: Path, timeout: float = 20.0) -> HostView:
    return _view(node, Asked(node, cm_dir, PROBE, timeout=timeout))


def observe_soon(nodes: Sequence[Node], state_dir: Path, timeout: float = 20.0,
                 skip: Collection[str] = ()) -> Callable[[], Observation]:
    """Ask every host now (the first ``WINDOW`` of them; each answer read starts the next) and return how
    to collect the answers: those ``skip`` names (known to be down) are not asked and reported down.

    The ssh clients run on their own while the caller works: a driver starts them before it loads the rest
    of itself and validates its inputs, so the SSH round trips overlap that work (for a no-op apply, most
    of its time). Observation only reads: an input found bad still changes nothing. The clients of a
    ``probe.ask_ahead`` of the same hosts asked the same way are taken instead, once.
    """
    cm_dir = control_dir(state_dir)
    pending = [n for n in nodes if n.name not in skip]
    ahead = None if skip else take_ahead(nodes, state_dir, timeout)
    started, clients = ahead or (time.monotonic(), {})
    asked = [(n, clients.get(n.name) or Asked(n, cm_dir, PROBE, timeout=timeout)) for n in pending[:WINDOW]]
    later = pending[WINDOW:]

    def collect() -> Observation:
        views = {n.name: HostView(n.name, False, error="down (not asked)") for n in nodes if n.name in skip}
        while asked:
            node, question = asked.pop(0)
            if later:
                asked.append((later[0], Asked(later.pop(0), cm_dir, PROBE, timeout=timeout)))
            views[node.name] = _view(node, question)
        return Observation({n.name: views[n.name] for n in nodes}, time.monotonic() - started)

    return collect


def observe(nodes: Sequence[Node], state_dir: Path, timeout: float = 20.0,
            skip: Collection[str] = ()) -> Observation:
    """Every host at once (see ``observe_soon``)."""
    return observe_soon(nodes, state_dir, timeout, skip)()
