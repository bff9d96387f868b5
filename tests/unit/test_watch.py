"""The master's watch: the helper's stream, the heartbeat clock (fake time), flap damping, the watch-mode view,
and runs that end with the process that started them."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from cluster_pilot.host.observed import HostView, Observation
from cluster_pilot.host.watch import HELPER, Beat, Event, Resync, parse_line
from cluster_pilot.master.liveness import LOST, READY, SILENT, Liveness
from cluster_pilot.master.reconcile import Memory, NotSeenYet, with_liveness
from tests.unit.test_reconcile import pod
from tests.unit.test_runner_cancel import _alive
from tests.waits import wait_for


def test_the_stream_parser_reads_beats_events_and_resyncs_and_ignores_anything_else():
    assert parse_line('{"beat":7,"docker":true}\n') == Beat(7, True)
    assert parse_line('{"beat":8,"docker":false}') == Beat(8, False)
    assert parse_line('{"hello":1}') == Resync("the watch started")
    assert parse_line('{"resync":"the events stream was reopened"}') == Resync("the events stream was reopened")
    assert parse_line('{"event":"die","id":"abc","pod":"web-1","container":"app","at":1700000000.5}') == \
        Event("die", "web-1", "app", "abc", 1700000000.5)
    assert parse_line('{"event":"oom","pod":"web-1"}') == Event("oom", "web-1", "", "", 0.0)
    for noise in ("", "Warning: Permanently added 'x' to the list of known hosts.", '{"beat":"7"}', "[1]",
                  '{"event":"die"}', '{"event":"die","pod":""}', '{"event":3,"pod":"p"}', '{"beat":', '{}'):
        assert parse_line(noise) is None, noise


def test_the_helper_is_plain_python_that_names_the_managed_label_and_the_trigger_events():
    compile(HELPER, "helper", "exec")
    assert '"io.cluster-pilot.pod"' in HELPER and '["die", "destroy", "oom"]' in HELPER


def test_the_heartbeat_clock_ready_then_silent_then_lost_after_the_grace_and_back_on_a_healthy_beat():
    clock = Liveness(grace=4.0, hold_down=0.0, started=0.0)
    clock.beat("m1", 1.0, docker=True)
    assert clock.state("m1", 2.5) == READY
    assert clock.state("m1", 3.5) == SILENT  # two beats late: stale, still ready for the scheduler
    assert clock.state("m1", 4.9) == SILENT
    assert clock.state("m1", 5.0) == LOST
    assert clock.state("m1", 5.1) == LOST and clock.lost == {"m1"}
    assert clock.beat("m1", 9.0, docker=True) is True  # back
    assert clock.state("m1", 9.5) == READY and not clock.lost


def test_a_beat_whose_dockerd_did_not_answer_keeps_nothing_alive():
    clock = Liveness(grace=4.0, started=0.0)
    clock.beat("m1", 1.0, docker=True)
    for t in (2.0, 3.0, 4.0, 5.0):
        assert clock.beat("m1", t, docker=False) is False
    assert clock.state("m1", 5.0) == LOST


def test_a_minion_never_heard_of_gets_the_first_grace_so_a_slow_start_loses_nothing():
    clock = Liveness(grace=4.0, started=100.0, first_grace=15.0)
    assert clock.state("m1", 110.0) == SILENT
    assert clock.state("m1", 115.0) == LOST
    fresh = Liveness(grace=4.0, started=100.0, first_grace=15.0)
    fresh.beat("m1", 112.0, docker=True)
    assert fresh.state("m1", 112.5) == READY


def test_flap_damping_a_minion_back_from_lost_is_not_lost_again_within_the_hold_down():
    clock = Liveness(grace=4.0, hold_down=10.0, started=0.0)
    clock.beat("m1", 0.0, docker=True)
    assert clock.state("m1", 4.0) == LOST
    clock.beat("m1", 20.0, docker=True)  # back at 20; it drops beats again at once
    assert clock.state("m1", 25.0) == SILENT  # 5 s silent, past the grace, but held down
    assert clock.state("m1", 29.9) == SILENT
    assert clock.state("m1", 30.0) == LOST  # hold-down over: really gone
    steady = Liveness(grace=4.0, hold_down=10.0, started=0.0)
    steady.beat("m1", 0.0, docker=True)
    assert steady.state("m1", 4.0) == LOST  # no hold-down before a first loss


def _view(name: str, *pods) -> HostView:
    return HostView(name, True, tuple(pods))


def test_watch_view_asked_minions_fresh_others_as_last_seen_silent_stale_lost_not_ready_then_evicted_on_return():
    memory = Memory()
    first = Observation({"m1": _view("m1", pod("web-1", "m1", "web")), "m2": _view("m2", pod("web-2", "m2", "web"))})
    view, evict, retry = with_liveness(first, frozenset({"m1", "m2"}), memory, {"m1": READY, "m2": READY})
    assert view.hosts["m1"].reachable and not evict and not retry

    not_asked = Observation({n: HostView(n, False, error="down (not asked)") for n in ("m1", "m2")})
    view, _, _ = with_liveness(not_asked, frozenset(), memory, {"m1": READY, "m2": SILENT})
    assert view.hosts["m1"].reachable and [p.name for p in view.hosts["m1"].pods] == ["web-1"]
    assert view.hosts["m2"].stale and not view.hosts["m2"].reachable and view.hosts["m2"].pods

    view, _, _ = with_liveness(not_asked, frozenset(), memory, {"m1": READY, "m2": LOST})
    assert not view.hosts["m2"].reachable and not view.hosts["m2"].stale and view.hosts["m2"].error == "no heartbeat"
    assert memory.lost == {"m2": frozenset({"web-2"})}

    view, _, _ = with_liveness(not_asked, frozenset(), memory, {"m1": READY, "m2": READY})
    assert not view.hosts["m2"].reachable  # back, but not ready until it is seen again
    back = Observation({"m1": HostView("m1", False), "m2": _view("m2", pod("web-2", "m2", "web"))})
    view, evict, _ = with_liveness(back, frozenset({"m2"}), memory, {"m1": READY, "m2": READY})
    assert evict == {"web-2"} and not memory.lost and view.hosts["m2"].reachable


def test_watch_view_a_ready_minion_whose_observation_failed_is_asked_again_and_stale_meanwhile():
    memory = Memory()
    with_liveness(Observation({"m1": _view("m1", pod("web-1", "m1", "web"))}), frozenset({"m1"}), memory,
                  {"m1": READY})
    failed = Observation({"m1": HostView("m1", False, error="no answer within 10 s")})
    view, evict, retry = with_liveness(failed, frozenset({"m1"}), memory, {"m1": READY})
    assert retry == {"m1"} and [p.name for p in view.pods] == ["web-1"]
    assert view.hosts["m1"].stale and not view.hosts["m1"].reachable  # still ready, but no action there


def test_watch_view_no_pass_plans_while_a_minion_not_lost_was_never_seen():
    """Its pods are unknown: planning would start a second copy of each (seen on a master's restart)."""
    never = Observation({"m1": _view("m1", pod("web-1", "m1", "web")),
                         "m2": HostView("m2", False, error="down (not asked)")})
    for state in (READY, SILENT):
        with pytest.raises(NotSeenYet, match="m2 has not been observed yet"):
            with_liveness(never, frozenset({"m1", "m2"}), Memory(), {"m1": READY, "m2": state})
    view, _, _ = with_liveness(never, frozenset({"m1"}), Memory(), {"m1": READY, "m2": LOST})
    assert not view.hosts["m2"].reachable and not view.hosts["m2"].pods


OWNER = """
import subprocess, sys, time
from cluster_pilot.apply import processes
processes.guard_runs()
run = subprocess.Popen(["sh", "-c", "sleep 300 & sleep 300 & wait"], start_new_session=True)
with processes._runs_lock:
    processes._runs[run.pid] = ""
    processes._tell_guard("+%d" % run.pid)
print(run.pid, flush=True)
time.sleep(300)
"""


def test_a_killed_owner_takes_its_runs_whole_trees_with_it():
    owner = subprocess.Popen([sys.executable, "-c", textwrap.dedent(OWNER)], stdout=subprocess.PIPE, text=True)
    try:
        run = int(owner.stdout.readline())
        from cluster_pilot.apply.processes import descendants

        wait_for(lambda: len(descendants(run)) == 2, 10, "the run's two sleeps", 0.05)
        tree = [run, *descendants(run)]
        owner.kill()  # SIGKILL: no handler of the owner runs
        owner.wait()
        wait_for(lambda: not any(_alive(p) for p in tree), 10, "the run's tree gone with its owner", 0.05)
    finally:
        owner.kill()


# The owner's run: a root that ends with its owner (as the launcher asks) and a worker in a session of its own,
# a fork holding the run's marker in its command line: with the root gone first, the worker is init's child
OWNER_OF_A_FORKING_RUN = """
import subprocess, sys, time
from cluster_pilot.apply import processes
processes.guard_runs()
marker = sys.argv[1]
root = subprocess.Popen([sys.executable, "-c", "import ctypes, subprocess, sys, time\\n"
                         "ctypes.CDLL(None).prctl(1, 9)\\n"
                         "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)', sys.argv[1]],"
                         " start_new_session=True)\\ntime.sleep(300)", marker])
while not processes.track(marker):
    time.sleep(0.01)
print(root.pid, flush=True)
time.sleep(300)
"""


def test_a_killed_owner_takes_the_workers_of_its_runs_even_once_their_root_is_gone(tmp_path):
    """ansible-playbook ends with its owner at once (PR_SET_PDEATHSIG), before the guard reads the process
    tree: its workers, reparented to init, are found by the run's marker."""
    marker = str(tmp_path / "cp-run-x" / "cp-vars.yml")
    owner = subprocess.Popen([sys.executable, "-c", OWNER_OF_A_FORKING_RUN, marker], stdout=subprocess.PIPE,
                             text=True)
    try:
        root = int(owner.stdout.readline())
        from cluster_pilot.apply.processes import descendants

        workers = wait_for(lambda: [p for p in descendants(root)
                                    if marker.encode() in open(f"/proc/{p}/cmdline", "rb").read()], 10,
                           "the run's worker", 0.05)
        owner.kill()
        owner.wait()
        wait_for(lambda: not any(_alive(p) for p in [root, *workers]), 10, "the run and its worker gone", 0.05)
    finally:
        owner.kill()


def test_the_guard_compiles():
    from cluster_pilot.apply.processes import GUARD

    compile(GUARD, "guard", "exec")
