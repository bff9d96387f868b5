"""The processes a run starts, owned so that none outlives it: ansible-playbook's whole tree (its workers make
sessions of their own, their ssh clients are below them) ended on Ctrl-C, at a run's deadline, when a master
stops, and, through a guard process, when the process that started them is killed. Read from ``/proc``: Ansible
offers no way to end its workers with it (``docs/architecture.md``, the Ansible boundary).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path


def descendants(root: int) -> list[int]:
    """Every live process below ``root``, read whole from /proc (empty without /proc)."""
    children: dict[int, list[int]] = {}
    try:
        entries = [e for e in os.scandir("/proc") if e.name.isdigit()]
    except OSError:
        return []
    for entry in entries:
        try:
            ppid = int(Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def stop_descendants(root: int | None = None) -> list[int]:
    """SIGKILL every process below ``root`` (this one by default): ansible-playbook, its workers and their
    ssh clients. ansible-runner's own cancel kills only ansible-playbook's process group, but each worker
    runs in a session of its own: left alone, a worker keeps its SSH session open and the host's module goes on
    changing containers after Ctrl-C. With the ssh clients gone, the modules see their session close and stop
    (``cp_pods``). The tree is read whole before anything is killed, so no orphan escapes to init. The SSH
    control masters have detached (their parent is init) and stay for the next run."""
    found = descendants(os.getpid() if root is None else root)
    for pid in found:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return found


# --- the runs of this process, so that they end with it ------------------------------------------------------
_runs: dict[int, str] = {}  # ansible-playbook's pid of every run under way -> the marker its command line holds
_runs_lock = threading.Lock()
_guard: subprocess.Popen | None = None

# Kills the trees of the runs it was told of (+PID MARKER, -PID lines) once its stdin closes: when the process
# that started it ends, however it ends (SIGKILL included), ansible-playbook and its workers, left to init, go too.
# A worker is found by its run's marker too (workers are forks of ansible-playbook: its command line is theirs),
# since ansible-playbook may be gone already (the launcher's PR_SET_PDEATHSIG) and its workers reparented.
GUARD = r"""
import os, signal, sys
runs = {}
for line in sys.stdin:
    pid, _, marker = line[1:].strip().partition(" ")
    if line[:1] == "+": runs[int(pid)] = marker
    elif line[:1] == "-": runs.pop(int(pid), None)
markers = [m for m in runs.values() if m]
children, doomed = {}, set(runs)
for e in os.listdir("/proc"):
    if e.isdigit():
        try:
            children.setdefault(int(open("/proc/%s/stat" % e).read().rsplit(")", 1)[1].split()[1]), []).append(int(e))
            args = open("/proc/%s/cmdline" % e, "rb").read().decode(errors="replace")
            if any(m in args for m in markers):
                doomed.add(int(e))
        except Exception:
            pass
todo = list(doomed)
while todo:
    for c in children.get(todo.pop(), []):
        doomed.add(c)
        todo.append(c)
for pid in doomed:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
"""


def guard_runs() -> None:
    """From now on, the runs of this process end when it does, even killed (started by its first run)."""
    global _guard
    with _runs_lock:
        if _guard is None or _guard.poll() is not None:
            _guard = subprocess.Popen([sys.executable, "-c", GUARD], stdin=subprocess.PIPE, text=True,
                                      start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for pid, marker in _runs.items():
                _tell_guard(f"+{pid} {marker}")


def _tell_guard(line: str) -> None:
    if _guard is not None and _guard.stdin is not None:
        try:
            _guard.stdin.write(line + "\n")
            _guard.stdin.flush()
        except OSError:
            pass


def track(marker: str) -> int | None:
    """The run's ansible-playbook (the child whose command line names its private vars file), once it is up."""
    for pid in descendants(os.getpid()):
        try:
            if marker in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                with _runs_lock:
                    _runs[pid] = marker
                    _tell_guard(f"+{pid} {marker}")
                return pid
        except OSError:
            continue
    return None


def untrack(root: int | None) -> None:
    if root is not None:
        with _runs_lock:
            _runs.pop(root, None)
            _tell_guard(f"-{root}")


def end_tree(root: int | None) -> None:
    if root is None:
        return
    stop_descendants(root)
    try:
        os.kill(root, signal.SIGKILL)
    except OSError:
        pass


def end_runs() -> None:
    """Kill every run of this process now, whole trees (a master that stops)."""
    with _runs_lock:
        roots = list(_runs)
    for root in roots:
        end_tree(root)
