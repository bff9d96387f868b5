"""The fleet lock's rules, on a real lock directory with a clock of the test's own (no host, no sleep)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cluster_pilot.errors import UserError
from cluster_pilot.host.lock import REMOTE, FleetLock, lock_host
from cluster_pilot.model import Node, Resources


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture()
def host(tmp_path):
    """The lock host: the remote script's ``op`` on a directory here, every call at the fake clock's time."""
    ns: dict = {"__name__": "lock_host"}
    exec(REMOTE, ns)
    clock = Clock()
    path = str(tmp_path / "apply.lock")
    calls = []

    def call(node, state_dir, request):
        calls.append(request["op"])
        return ns["op"](request, path, clock.now)

    return clock, call, path, calls


def runner(tmp_path: Path, name: str, host, ttl: float = 30.0) -> FleetLock:
    clock, call, _, _ = host
    return FleetLock(Node("m1", "10.0.0.1", Resources(1000, 1 << 30, 10)), tmp_path / name, ttl=ttl, call=call,
                     clock=clock, sleep=clock.sleep, renew_in_thread=False)


def test_a_live_holder_on_another_machine_is_never_broken(tmp_path, host):
    clock = host[0]
    a, b = runner(tmp_path, "a", host), runner(tmp_path, "b", host)
    b.owner["host"] = a.owner["host"] = "ci"  # CI containers: one hostname, one PID
    b.owner["pid"] = a.owner["pid"] = 1
    a.acquire(0)
    for _ in range(20):  # 200 s during which A renews every 10 s
        with pytest.raises(UserError, match="the fleet is locked by"):
            b.acquire(5)
        clock.sleep(5)
        assert a.renew()
    assert a.held and not a.lost


def test_an_expired_lock_is_taken_over_and_its_old_holder_learns_it(tmp_path, host):
    clock = host[0]
    a, b = runner(tmp_path, "a", host), runner(tmp_path, "b", host)
    a.acquire(0)
    clock.sleep(31)  # A stopped renewing (its process froze or died on another machine)
    b.acquire(0)
    assert b.held
    assert not a.renew() and a.lost
    a.release()  # compare-and-delete: A's release leaves B's lock alone
    with pytest.raises(UserError):
        runner(tmp_path, "c", host).acquire(1)


def test_a_dead_holder_of_this_runner_is_broken_at_once(tmp_path, host):
    a = runner(tmp_path, "same", host)
    a.owner["pid"] = _dead_pid()
    a.acquire(0)
    again = runner(tmp_path, "same", host)  # same state dir: same runner id
    again.acquire(0)
    assert again.held


def test_a_dead_pid_of_another_runner_waits_for_the_expiry(tmp_path, host):
    a = runner(tmp_path, "a", host)
    a.owner["pid"] = _dead_pid()
    a.owner["host"] = os.uname().nodename
    a.acquire(0)
    with pytest.raises(UserError, match="locked by"):
        runner(tmp_path, "b", host).acquire(10)


def test_a_lock_dir_without_owner_is_stale_after_the_expiry_only(tmp_path, host):
    clock, _, path, _ = host
    os.mkdir(path)
    os.utime(path, (clock.now, clock.now))
    with pytest.raises(UserError):
        runner(tmp_path, "a", host).acquire(10)
    clock.sleep(30)
    b = runner(tmp_path, "b", host)
    b.acquire(0)
    assert b.held


def test_an_unreachable_lock_host_waits_then_fails_and_locks_nowhere_else(tmp_path):
    clock = Clock()
    asked = []

    def down(node, state_dir, request):
        asked.append(node.name)
        raise UserError(f"cannot reach lock host {node.name}: connection refused")

    lock = FleetLock(Node("m1", "10.0.0.1", Resources(1000, 1 << 30, 10)), tmp_path, call=down, clock=clock,
                     sleep=clock.sleep, renew_in_thread=False)
    with pytest.raises(UserError, match="cannot reach lock host m1.*waited 20 s; nothing was changed"):
        lock.acquire(20)
    assert set(asked) == {"m1"} and len(asked) > 1 and not lock.held


def test_every_runner_computes_the_same_lock_host():
    nodes = [Node(n, "10.0.0.1", Resources(1, 1, 1)) for n in ("m3", "m1", "m2")]
    assert lock_host(nodes).name == "m3"  # inventory order, answering or not
    pinned = [Node(n.name, n.address, n.capacity, vars={"cp_lock_host": "m2"}) for n in nodes]
    assert lock_host(pinned).name == "m2"
    with pytest.raises(UserError, match="not a minion"):
        lock_host([Node("m1", "x", Resources(1, 1, 1), vars={"cp_lock_host": "gone"})])


def _dead_pid() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def test_a_second_look_is_skipped_only_when_everything_about_the_first_is_known():
    from cluster_pilot.host.lock import LockSeen, unchanged_since

    free = LockSeen(held=False, stamp=5, idle=30.0)
    assert unchanged_since(free, 0.4, 5)
    assert not unchanged_since(free, 0.4, 6)  # the lock was taken (and maybe let go) since
    assert not unchanged_since(LockSeen(held=True, stamp=5, idle=30.0), 0.4, 5)
    assert not unchanged_since(LockSeen(held=False, stamp=5, idle=1.2), 0.4, 5)  # let go while this run looked
    assert not unchanged_since(None, 0.4, 5)  # the lock host did not answer, or knows no such thing
    assert not unchanged_since(free, None, 5)  # an observation pieced together (the master's grace)
    assert not unchanged_since(free, 0.4, None)
