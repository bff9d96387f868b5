"""``cli.leave``: the exit without the interpreter's teardown still does what an exit must."""

import os
import subprocess
import sys
import textwrap


def _run(script: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                          timeout=60)


def test_leave_runs_the_atexit_handlers_flushes_the_output_and_keeps_the_code():
    proc = _run("""
        import atexit, sys
        from cluster_pilot.cli import leave
        atexit.register(lambda: print("handler ran"))
        print("unflushed output", end="")
        sys.stderr.write("unflushed error")
        leave(3)
    """)
    assert proc.returncode == 3
    assert proc.stdout == "unflushed outputhandler ran\n"
    assert proc.stderr == "unflushed error"


def test_leave_waits_for_a_thread_that_is_not_a_daemon():
    proc = _run("""
        import threading
        from cluster_pilot.cli import leave
        go = threading.Event()
        def work():
            go.wait()
            print("the thread finished")
        threading.Thread(target=work).start()
        threading.Timer(0.2, go.set).start()
        leave(4)
    """)
    assert (proc.returncode, proc.stdout) == (4, "the thread finished\n")


def test_leave_with_the_reader_of_its_output_gone_still_exits_with_its_code():
    script = ("import select, sys; from cluster_pilot.cli import leave; sys.stdout.write('buffered'); "
              "p = select.poll(); p.register(1, select.POLLERR); p.poll(30000); leave(5)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # the write must wait for leave
    proc = subprocess.run(f"{sys.executable} -c \"{script}\" | true; echo ${{PIPESTATUS[0]}}", shell=True,
                          executable="/bin/bash", capture_output=True, text=True, timeout=60, env=env)
    assert (proc.stdout.strip(), proc.stderr) == ("5", "")
