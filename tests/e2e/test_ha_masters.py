"""Two masters over one PostgreSQL store: one leads (reconciles), both serve the API, and the leader's SIGKILL
hands the lead to the other within the lease's time, with every acknowledged write kept and healing going on."""

from __future__ import annotations

import json
import os
import signal
import statistics
import threading
import time
import urllib.error
import urllib.request

import pytest

from tests.e2e.conftest import managed_containers, rc_manifest, ssh, wait_for
from tests.e2e.test_master import Master, _rc_running
from tests.e2e.test_watch import create, delete
from tests.postgres import postgres

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
# the failover's rounds: 1 in CI (each costs ~25 s); CP_FAILOVER_ROUNDS=3 gives the closing note's median
ROUNDS = int(os.environ.get("CP_FAILOVER_ROUNDS", "1"))


def _leading(m: Master) -> bool:
    try:
        return m.get("/leader")["leading"]
    except OSError:
        return False


def _write(m: Master, name: str) -> bool:
    """One create; True once the master acknowledged it."""
    request = urllib.request.Request(f"{m.url}/api/v1beta1/replicationControllers",
                                     data=json.dumps(rc_manifest(name, 0)).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status in (200, 201, 202)
    except (OSError, urllib.error.HTTPError):
        return False


def test_the_leaders_sigkill_hands_the_lead_over_within_10_s_with_every_acknowledged_write_kept(sandbox_home,
                                                                                               sandbox):
    failovers, first_passes = [], []
    with postgres() as url:
        masters = [Master(sandbox_home, "--insecure-loopback", "--store", url).start() for _ in range(2)]
        try:
            leader = wait_for(lambda: next((m for m in masters if _leading(m)), None), 60, "a leader")
            follower = next(m for m in masters if m is not leader)
            said = follower.get("/leader")
            assert not said["leading"] and said["leader"] == leader.get("/leader")["leader"]
            assert said["leaderTerm"] == leader.get("/leader")["term"]

            create(follower, rc_manifest("ha", 2))  # a write to the follower reaches the leader
            wait_for(lambda: _rc_running(sandbox, "ha", 2), 180, "the follower's write run by the leader")

            acknowledged: list[str] = []
            for round_ in range(ROUNDS):  # CP_FAILOVER_ROUNDS times: the median goes in the closing figures
                stop = threading.Event()

                def stream() -> None:
                    i = 0
                    while not stop.is_set():
                        name = f"stream-{round_}-{i}"
                        if _write(masters[i % 2], name):
                            acknowledged.append(name)
                        i += 1

                writer = threading.Thread(target=stream)
                writer.start()
                try:
                    count = len(acknowledged)
                    wait_for(lambda: len(acknowledged) >= count + 5, 60, "writes before the kill")
                    term = leader.get("/leader")["term"]
                    before = follower.passes()
                    t0 = time.monotonic()
                    leader.kill(signal.SIGKILL)
                    wait_for(lambda: _leading(follower), 10, "the follower to lead")
                    failovers.append(time.monotonic() - t0)
                    wait_for(lambda: follower.passes() > before, 60, "the new leader's first pass")
                    first_passes.append(time.monotonic() - t0)
                    count = len(acknowledged)
                    wait_for(lambda: len(acknowledged) >= count + 5, 60, "writes after the kill")
                finally:
                    stop.set()
                    writer.join()
                assert follower.get("/leader")["term"] > term
                stored = {item["id"] for item in follower.get("/api/v1beta1/replicationControllers")["items"]}
                assert set(acknowledged) <= stored, sorted(set(acknowledged) - stored)
                restarted = Master(sandbox_home, "--insecure-loopback", "--store", url).start()
                masters[masters.index(leader)] = restarted
                wait_for(lambda: restarted.get("/leader")["leader"] == follower.get("/leader")["leader"], 30,
                         "the restarted master to follow")
                assert not restarted.get("/leader")["leading"]
                leader, follower = follower, restarted

            victim = next(c for c in managed_containers(sandbox) if c["controller"] == "ha")
            ssh(sandbox, victim["address"], f"docker rm -f {victim['id']} >/dev/null")
            wait_for(lambda: _rc_running(sandbox, "ha", 2) and victim["id"] not in
                     {c["id"] for c in managed_containers(sandbox)}, 120, "the new leader to heal")
            for name in acknowledged:
                request = urllib.request.Request(f"{follower.url}/api/v1beta1/replicationControllers/{name}",
                                                 method="DELETE")
                urllib.request.urlopen(request, timeout=60).close()
            delete(follower, "ha", sandbox)
        finally:
            for m in masters:
                m.kill(signal.SIGKILL)
    print(f"\nleader failover, {ROUNDS} SIGKILLs: to the new leader {', '.join(f'{t:.2f}' for t in failovers)} s "
          f"(median {statistics.median(failovers):.2f} s), to its first pass "
          f"{', '.join(f'{t:.2f}' for t in first_passes)} s (median {statistics.median(first_passes):.2f} s)")
