"""Ctrl-C during a run stops the whole process tree, including children that made sessions of their own
(ansible-playbook's workers do, and their ssh clients are below them)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cluster_pilot.apply.processes import descendants, stop_descendants
from tests.waits import wait_for

# a child in the root's session, and one in a session of its own with a grandchild below it
TREE = """
import subprocess, time
subprocess.Popen(["sleep", "300"])
subprocess.Popen(["sh", "-c", "sleep 300 & wait"], start_new_session=True)
print("ready", flush=True)
time.sleep(300)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_stop_descendants_kills_every_process_below_the_root_and_nothing_else():
    root = subprocess.Popen([sys.executable, "-c", TREE], stdout=subprocess.PIPE, text=True)
    try:
        assert root.stdout.readline().strip() == "ready"
        wait_for(lambda: len(descendants(root.pid)) == 3, 10, "sleep, sh and sh's sleep below the root", 0.05)
        below = descendants(root.pid)
        assert set(stop_descendants(root.pid)) >= set(below)
        wait_for(lambda: not any(_alive(p) for p in below), 10, "every descendant gone after SIGKILL", 0.05)
        assert root.poll() is None and _alive(root.pid)  # the root itself is not touched
        assert _alive(os.getpid())
    finally:
        root.kill()
        root.wait()


def test_a_process_without_children_has_no_descendants():
    assert descendants(2**22 + 12345) == []


def test_a_reader_still_opening_the_vars_pipe_when_the_run_ends_reads_nothing_and_ends(tmp_path):
    """A slow ansible-playbook whose run was cut short waits in its open of the pipe: the run's end releases it."""
    from cluster_pilot.apply.runner import _hang_up

    fifo = tmp_path / "cp-vars.yml"
    os.mkfifo(fifo, 0o600)
    reader = subprocess.Popen([sys.executable, "-c", f"import sys; sys.stdout.write(repr(open({str(fifo)!r}).read()))"],
                              stdout=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: _waits_in_fifo_open(reader.pid), 30, "the reader to wait in its open of the pipe")
        _hang_up(fifo)
        out, _ = reader.communicate(timeout=30)
    finally:
        reader.kill()
    assert out == "''" and reader.returncode == 0
    assert not fifo.exists()


def _waits_in_fifo_open(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/wchan").read() == "wait_for_partner"
    except OSError:
        return False


# a run whose vars never come (its writer is gone with the process), so ansible-playbook waits in its open of
# the pipe; with {unguarded}, the process's guard is never started and only the launcher's own ending remains
KILLED_BEFORE_THE_VARS = """
import sys, threading
from pathlib import Path
from cluster_pilot.apply import runner
def no_writer(fifo, text, done):
    thread = threading.Thread(target=done.wait)
    thread.start()
    return thread
runner._serve_once = no_writer
if {unguarded}:
    runner.guard_runs = lambda: None
home = Path(sys.argv[1])
runner.run_playbook("apply.yml", home / "inventory.yml", {{}}, ["nowhere"], home, {{}})
"""


@pytest.mark.parametrize("unguarded", [False, True], ids=["guarded", "launcher-alone"])
def test_an_ansible_playbook_waiting_for_its_vars_ends_when_the_process_that_ran_it_is_killed(tmp_path, unguarded):
    """A CLI or master SIGKILLed before its run's ansible-playbook read its vars leaves no ansible-playbook
    waiting for ever in its open of the pipe (CI found such orphans)."""
    (tmp_path / "inventory.yml").write_text("all:\n  hosts:\n    nowhere: {}\n")
    parent = subprocess.Popen([sys.executable, "-c", KILLED_BEFORE_THE_VARS.format(unguarded=unguarded),
                               str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def waiting():
            return [pid for pid in descendants(parent.pid) if _waits_in_fifo_open(pid)
                    and b"cp-vars.yml" in open(f"/proc/{pid}/cmdline", "rb").read()]
        playbook = wait_for(waiting, 60, "ansible-playbook to wait for its vars", 0.02)[0]
        parent.kill()
        parent.wait(30)
        wait_for(lambda: not _alive(playbook), 30, "the waiting ansible-playbook to end with its parent")
    finally:
        parent.kill()
