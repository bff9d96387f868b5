"""The fleet lock's rules, on real lock directories (one per fake lock host) with a clock of the test's own
(no host, no sleep)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from cluster_pilot.errors import UserError
from cluster_pilot.host.lock import REMOTE, FleetLock, lock_hosts, show
from cluster_pilot.model import Node, Resources


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Hosts:
    """Lock hosts: the remote script's ``op`` on a directory each, every call at the fake clock's time; a
    host in ``down`` does not answer."""

    def __init__(self, root: Path, names=("m1", "m2", "m3")) -> None:
        self.ns: dict = {"__name__": "lock_host"}
        exec(REMOTE, self.ns)
        self.clock = Clock()
        self.nodes = [Node(n, "10.0.0.1", Resources(1000, 1 << 30, 10)) for n in names]
        self.paths = {n: str(root / n / "apply.lock") for n in names}
        for path in self.paths.values():
            os.makedirs(os.path.dirname(path))
        self.down: set[str] = set()
        self.calls: list[tuple[str, str]] = []
        self.guards = {n: threading.Lock() for n in names}  # the remote script's flock, as one process has it

    def __call__(self, node, state_dir, request):
        self.calls.append((node.name, request["op"]))
        if node.name in self.down:
            raise UserError(f"cannot reach lock host {node.name}: connection refused")
        with self.guards[node.name]:
            return self.ns["op"](request, self.paths[node.name], self.clock.now)

    def counter(self, name: str) -> int:
        return self.ns["counter"](self.paths[name])


@pytest.fixture()
def hosts(tmp_path):
    return Hosts(tmp_path / "hosts")


@pytest.fixture()
def host(tmp_path):
    """One lock host (``cp_lock_host``): the earlier design, a majority of one."""
    return Hosts(tmp_path / "hosts", ("m1",))


def runner(tmp_path: Path, name: str, hosts: Hosts, ttl: float = 30.0) -> FleetLock:
    return FleetLock(hosts.nodes, tmp_path / name, ttl=ttl, call=hosts, clock=hosts.clock, sleep=hosts.clock.sleep,
                     renew_in_thread=False)


def test_a_live_holder_on_another_machine_is_never_broken(tmp_path, host):
    clock = host.clock
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
    clock = host.clock
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
    clock, path = host.clock, host.paths["m1"]
    os.mkdir(path)
    os.utime(path, (clock.now, clock.now))
    with pytest.raises(UserError):
        runner(tmp_path, "a", host).acquire(10)
    clock.sleep(30)
    b = runner(tmp_path, "b", host)
    b.acquire(0)
    assert b.held


def test_an_unreachable_lock_host_waits_then_fails_and_locks_nowhere_else(tmp_path, host):
    host.down.add("m1")
    lock = runner(tmp_path, "a", host)
    with pytest.raises(UserError, match="needs 1 of its 1 lock hosts .*m1: cannot reach lock host m1.*waited 20 s; "
                                        "nothing was changed"):
        lock.acquire(20)
    assert {n for n, _ in host.calls} == {"m1"} and len(host.calls) > 1 and not lock.held


def test_every_runner_computes_the_same_lock_hosts():
    def fleet(names, **vars):
        return [Node(n, "10.0.0.1", Resources(1, 1, 1), vars=dict(vars)) for n in names]

    names = lambda found: [n.name for n in found]  # noqa: E731
    assert names(lock_hosts(fleet(["m4", "m1", "m3", "m2"]))) == ["m4", "m1", "m3"]  # inventory order
    assert names(lock_hosts(fleet(["m2", "m1"]))) == ["m2", "m1"]  # fewer minions: all of them
    assert names(lock_hosts(fleet(["m1", "m2", "m3"], cp_lock_host="m2"))) == ["m2"]  # the earlier variable
    assert names(lock_hosts(fleet(["m1", "m2", "m3", "m4"], cp_lock_hosts=["m4", "m2", "m3"]))) == ["m4", "m2", "m3"]
    assert names(lock_hosts(fleet(["m1", "m2", "m3"], cp_lock_hosts="m3, m1"))) == ["m3", "m1"]
    with pytest.raises(UserError, match="cp_lock_hosts 'gone' is not a minion"):
        lock_hosts(fleet(["m1"], cp_lock_hosts=["m1", "gone"]))
    with pytest.raises(UserError, match="distinct"):
        lock_hosts(fleet(["m1", "m2"], cp_lock_hosts=["m1", "m1"]))
    mixed = fleet(["m1"], cp_lock_hosts=["m1"]) + fleet(["m2"], cp_lock_hosts=["m2"])
    with pytest.raises(UserError, match="differs between minions"):
        lock_hosts(mixed)
    with pytest.raises(UserError, match="no minions"):
        lock_hosts([])


def test_a_majority_takes_the_lock_with_one_host_down_and_a_token_above_all_seen(tmp_path, hosts):
    hosts.down.add("m1")
    a = runner(tmp_path, "a", hosts)
    a.acquire(0)
    assert a.held and a.fence == 1 and a.before.keys() == {"m2", "m3"}
    assert hosts.counter("m2") == hosts.counter("m3") == 1
    a.release()
    hosts.down = {"m3"}  # m1 back (it never saw token 1), m3 down: m2 still knows it
    b = runner(tmp_path, "b", hosts)
    b.acquire(0)
    assert b.fence == 2 and hosts.counter("m1") == hosts.counter("m2") == 2
    assert b.renew() and not b.lost
    b.release()
    assert not any(os.path.isdir(p) for p in hosts.paths.values())  # let go everywhere it could reach


def test_two_contenders_never_both_hold(tmp_path, hosts):
    hosts.down.add("m3")
    a, b = runner(tmp_path, "a", hosts), runner(tmp_path, "b", hosts)
    a.acquire(0)
    for _ in range(6):  # 30 s in which A renews on its majority and B keeps trying
        with pytest.raises(UserError, match="the fleet is locked by"):
            b.acquire(2)
        assert not b.held
        hosts.clock.sleep(3)
        assert a.renew()
    hosts.down = set()  # m3 back: still a majority of A's (m1, m2) against B's one at most
    with pytest.raises(UserError, match="the fleet is locked by"):
        b.acquire(2)
    assert show(hosts.nodes, tmp_path, hosts).holder.token == a.owner["token"]
    a.release()
    b.acquire(0)
    assert b.held and b.fence > a.fence


def test_no_majority_names_the_hosts_and_why(tmp_path, hosts):
    hosts.down = {"m1", "m3"}
    lock = runner(tmp_path, "a", hosts)
    with pytest.raises(UserError) as err:
        lock.acquire(5)
    said = str(err.value)
    assert "needs 2 of its 3 lock hosts (m1, m2, m3)" in said and "2 did not answer" in said, said
    assert "m1: cannot reach lock host m1" in said and "m3: cannot reach lock host m3" in said, said
    assert not lock.held and not os.path.isdir(hosts.paths["m2"])  # its lone lease let go


def test_a_lease_expired_on_a_majority_is_taken_over_and_renewal_says_lost(tmp_path, hosts):
    a = runner(tmp_path, "a", hosts)
    a.acquire(0)
    hosts.clock.sleep(27)  # a paused holder: its own clock says its lease may be over (margin for the hosts')
    assert a.lost
    hosts.clock.sleep(4)
    b = runner(tmp_path, "b", hosts)
    b.acquire(0)
    assert b.held and b.fence == a.fence + 1
    assert not a.renew() and a.lost


def test_a_paused_holder_is_fenced_off_after_its_successor(tmp_path, hosts):
    from tests.unit.ansible_modules import ROLES, load_file

    fence = load_file(ROLES / "cp_pods" / "module_utils" / "cp_fence.py", "cp_test_fence")
    check, FENCED = fence.check, fence.Fenced
    minion = tmp_path / "minion-fence"
    a = runner(tmp_path, "a", hosts)
    a.acquire(0)
    check(str(minion), a.fence)  # A writes
    hosts.clock.sleep(31)  # A paused past its lease
    b = runner(tmp_path, "b", hosts)
    b.acquire(0)
    check(str(minion), b.fence)  # B writes: the minion has now seen B's token
    with pytest.raises(FENCED, match=f"fencing token {a.fence} is older than {b.fence}"):
        check(str(minion), a.fence)  # A wakes up and writes: refused
    check(str(minion), b.fence)  # B goes on


def _dead_pid() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def test_a_second_look_is_skipped_only_when_everything_about_the_first_is_known():
    from cluster_pilot.host.lock import unchanged_since
    from cluster_pilot.host.observed import LockSeen

    free = LockSeen(held=False, stamp=5, idle=30.0)
    assert unchanged_since(free, 0.4, 5)
    assert not unchanged_since(free, 0.4, 6)  # the lock was taken (and maybe let go) since
    assert not unchanged_since(LockSeen(held=True, stamp=5, idle=30.0), 0.4, 5)
    assert not unchanged_since(LockSeen(held=False, stamp=5, idle=1.2), 0.4, 5)  # let go while this run looked
    assert not unchanged_since(None, 0.4, 5)  # the lock host did not answer, or knows no such thing
    assert not unchanged_since(free, None, 5)  # an observation pieced together (the master's grace)
    assert not unchanged_since(free, 0.4, None)


def test_status_shows_each_hosts_view_and_the_majoritys_verdict(tmp_path, hosts):
    assert show(hosts.nodes, tmp_path, hosts).describe() == "free"
    hosts.down = {"m3"}
    a = runner(tmp_path, "a", hosts)
    a.acquire(0)
    seen = show(hosts.nodes, tmp_path, hosts)
    assert seen.describe().startswith("held by ") and seen.holder.token == a.owner["token"]
    assert [(v.name, v.live, v.fence, bool(v.error)) for v in seen.hosts] == [
        ("m1", True, 1, False), ("m2", True, 1, False), ("m3", False, 0, True)]
    hosts.down = {"m1", "m2"}
    assert show(hosts.nodes, tmp_path, hosts).describe() == (
        "undecided: no majority (2 of 3) agrees; not answering: m1, m2")


def test_a_host_that_hangs_does_not_hold_up_the_decision(tmp_path, hosts):
    """One lock host that never answers (a dead host's SSH waits for its timeout): the lock is taken, renewed
    and let go on the others' answers alone, while the hanging calls are still waiting."""
    hang = threading.Event()

    def call(node, state_dir, request):
        if node.name == "m1":
            hang.wait(60)
            raise UserError("cannot reach lock host m1: no answer within 30 s")
        return hosts(node, state_dir, request)

    lock = FleetLock(hosts.nodes, tmp_path / "a", call=call, clock=hosts.clock, sleep=hosts.clock.sleep,
                     renew_in_thread=False)
    try:
        lock.acquire(0)
        assert lock.held and lock.renew()
        lock.release()
        assert not hang.is_set() and not any(os.path.isdir(hosts.paths[n]) for n in ("m2", "m3"))
    finally:
        hang.set()
