"""The chaos soak's short form: a minute of random faults (a minion stopped, dockerd restarted, the leader
master SIGKILLed, an SSH connection cut, a CI runner killed mid-apply) while controllers are created, scaled and
rolled through two masters over PostgreSQL. No invariant may break, and everything converges afterwards."""

from __future__ import annotations

import os

import pytest

from cluster_pilot.bench.chaos import ChaosSettings, measure, report
from cluster_pilot.host.inventory_cache import load_inventory_cached
from tests.postgres import postgres

# Not in CI yet (scripts/test leaves the chaos mark out): it finds an open bug, a minion that returns after its
# pods moved runs them again (dockerd restarts them) for the seconds until the master's pass removes them, over
# the surge bound. Run it with `pytest -m chaos tests/e2e/test_chaos.py`; CI takes it back once that is fixed.
pytestmark = [pytest.mark.e2e, pytest.mark.chaos]


def test_a_minute_of_chaos_breaks_no_invariant_and_converges(sandbox_home, sandbox):
    nodes = load_inventory_cached(sandbox.inventory, sandbox_home / "cache")
    seed = int(os.environ.get("CP_CHAOS_SEED", "33"))
    settings = ChaosSettings(duration=60.0, seed=seed, converge_bound=90.0)
    with postgres() as url:
        f = measure(nodes, sandbox.inventory, sandbox_home, sandbox, url, settings, say=print)
    print("\n" + "\n".join(report(f)) + f"\nload average now: {os.getloadavg()}")
    assert not f.violations, f.violations
    assert f.converge_s is not None
    assert sum(n for _, n in f.faults) >= 3, f.faults
