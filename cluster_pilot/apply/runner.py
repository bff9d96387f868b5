"""Runs the static playbook through ansible-runner, and turns its events into progress and a per-host result.

The run lives in a private temporary directory removed afterwards; no env file holding secrets is written
(the inventory's own key settings are used by SSH, never copied). The rendered variables (the pods'
environments among them) are YAML whose strings are all ``!unsafe``, written into a named pipe that
ansible-playbook reads (``-e @cp-vars.yml``): they never reach a disk, so a run killed however (SIGKILL
included) leaves none behind. SSH shares the control master that observation opened.
"""

from __future__ import annotations

import importlib
import os
import shlex
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from cluster_pilot.apply import timings
from cluster_pilot.apply.masking import mask
from cluster_pilot.apply.processes import end_tree, guard_runs, stop_descendants, track, untrack
from cluster_pilot.apply.render import Rendered, action_count, playbook_vars, unsafe_yaml
from cluster_pilot.resources import resource_dir

# The role whose one module task is a host's proxy action (its task's name has changed before: a name that
# no longer matched left every proxy change unreported, and every such run observed the fleet once more).
PROXY_ROLE = "cp_proxy"
# host, actions finished so far, actions in all
Progress = Callable[[str, int, int], None]


@dataclass
class HostResult:
    host: str
    total: int
    done: int = 0
    failed: bool = False
    unreachable: bool = False
    messages: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)  # pods the module reported created and started
    failed_pods: dict[str, str] = field(default_factory=dict)  # pod -> why its action failed (the master backs off)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.unreachable


@dataclass
class RunResult:
    hosts: dict[str, HostResult]
    status: str  # ansible-runner's: successful, failed, timeout, canceled

    @property
    def ok(self) -> bool:
        return all(h.ok for h in self.hosts.values()) and self.status == "successful"

    def failed_pods(self) -> dict[str, str]:
        """Pod -> why the module could not act on it, over every host (masked, as the messages)."""
        return {pod: error for h in self.hosts.values() for pod, error in h.failed_pods.items()}

    def created(self) -> set[str]:
        return {pod for h in self.hosts.values() for pod in h.created}


_TIMED = ("playbook_on_start", "playbook_on_task_start", "runner_on_start", "runner_on_ok", "runner_on_failed",
          "runner_on_skipped", "runner_on_unreachable", "runner_item_on_ok", "playbook_on_stats")


def _created(event: dict) -> float | None:
    """When ansible-playbook emitted the event (ansible-runner stamps it in UTC), not when we read it."""
    try:
        at = datetime.fromisoformat(str(event["created"]))
    except (KeyError, ValueError):
        return None
    return (at if at.tzinfo else at.replace(tzinfo=timezone.utc)).timestamp()


def _events(results: dict[str, HostResult], progress: Progress) -> Callable[[dict], bool]:
    def handle(event: dict) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        host = data.get("host")
        if kind in _TIMED and timings.enabled():
            timings.mark(f"{kind}:{data.get('role') or ''}:{data.get('task') or ''}", host or "", _created(event))
        if host not in results:
            return True
        r = results[host]
        res = data.get("res") or {}
        if kind in ("runner_item_on_ok", "runner_item_on_failed"):
            r.done += len(res.get("created", [])) + len(res.get("removed", [])) + len(res.get("failed_pods", []))
            r.created += [str(p) for p in res.get("created", [])]
            r.failed_pods.update({str(f.get("pod")): str(f.get("error", "failed")) for f in res.get("failed_pods", [])
                                  if isinstance(f, dict)})
            r.done = min(r.done, r.total)
            if kind == "runner_item_on_failed":
                r.failed = True
                r.messages.append(str(res.get("msg", "failed")))
            progress(host, r.done, r.total)
        elif kind == "runner_on_ok" and data.get("role") == PROXY_ROLE:
            r.done = min(r.done + 1, r.total)
            progress(host, r.done, r.total)
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            r.failed = True
            if not res.get("results"):
                r.messages.append(str(res.get("msg", "failed")))
        elif kind == "runner_on_unreachable":
            r.unreachable = True
            r.messages.append(str(res.get("msg", "unreachable")).strip())
        return True

    return handle


def ansible_env(state_dir: Path, private: Path) -> dict[str, str]:
    from cluster_pilot.host.ssh import SHARED_OPTIONS, control_dir

    return {
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_SSH_ARGS": " ".join(f"-o {option}" for option in SHARED_OPTIONS),
        # ssh's 255 (a control master that went away under the task, e.g. ending its ControlPersist as the task
        # came) is tried once more at once: the modules converge, so running one again is safe
        "ANSIBLE_SSH_RETRIES": "1",
        "ANSIBLE_SSH_CONTROL_PATH": f"{control_dir(state_dir)}/%%C",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_NOCOLOR": "True",
        "ANSIBLE_LOCAL_TEMP": str(private / "tmp"),
        "ANSIBLE_GATHERING": "explicit",
        "ANSIBLE_TIMEOUT": "10",
        "ANSIBLE_NO_TARGET_SYSLOG": "True",  # module invocations (pod environments) stay out of minions' journals
        "CP_RUN_PARENT": str(os.getpid()),  # the launcher ends at once if this process is already gone
    }


# How often ansible-playbook's strategy looks for its workers' results: Ansible's default, 1 ms, cost its main
# process 1.0-1.2 CPU s of the 2.1 of a 12-minion cold apply, on cores the minions' dockerds need; Ansible's own
# description of the setting advises a higher value for automation. A user's configuration that sets it wins.
POLL_INTERVAL = 0.02
# ansible-playbook as its installed script starts it, under the Python running cluster-pilot (the ansible-core
# it depends on, found with no PATH), with the poll interval set; it ends as ``cli.leave`` ends cluster-pilot,
# without the interpreter's teardown (120 ms after its last event, with every Ansible module loaded), once
# its atexit handlers ran (they join its workers). Its steps are written out here rather than imported: like
# the roles' action plugins, ansible-playbook imports nothing of cluster-pilot, so it runs from a checkout that
# is not installed too. A constant: the command line carries no data. It asks to be SIGKILLed when the thread
# that started it ends (this process killed before its guard knew of the run, e.g. while ansible-playbook still
# waited for its vars), and ends if that happened before it asked.
LAUNCHER = f"""import atexit, ctypes, os, sys
ctypes.CDLL(None).prctl(1, 9)
if str(os.getppid()) != os.environ.get("CP_RUN_PARENT", str(os.getppid())):
    os._exit(1)
from ansible.cli.playbook import main
from ansible import constants
if constants.config.get_config_value_and_origin("DEFAULT_INTERNAL_POLL_INTERVAL")[1] == "default":
    constants.DEFAULT_INTERNAL_POLL_INTERVAL = {POLL_INTERVAL!r}
sys.argv[0] = "ansible-playbook"
try:
    main()
    code = 0
except SystemExit as end:
    code = end.code if isinstance(end.code, int) else 0 if end.code is None else 1
    if not isinstance(end.code, (int, type(None))):
        print(end.code, file=sys.stderr)
atexit._run_exitfuncs()
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
"""


RUN_DEADLINE = 900.0  # seconds a whole run may take by default; a driver may give its own


def warm_up() -> None:
    """Import ansible-runner in the background: a driver that has work calls this before it takes the fleet
    lock, whose SSH round trip then hides most of the import (60-85 ms). Python's import lock makes
    ``run_playbook``'s own import wait for it."""
    threading.Thread(target=_import_runner, name="import ansible-runner", daemon=True).start()


def _import_runner() -> None:
    try:
        importlib.import_module("ansible_runner")
    except ImportError:  # run_playbook's own import says so
        pass


def _close_reaped_at_once() -> None:
    """ansible-runner closes ansible-playbook's pty once it has read its end and reaped it; ptyprocess then
    sleeps 0.1 s "to give the kernel time to update process status" before asking for it, which it already
    has. Every run paid it (6% of a master's heal). Only that wait goes, and only for a process reaped
    already: a live one is still waited for and ended as ptyprocess does."""
    import ptyprocess

    close = ptyprocess.PtyProcess.close
    if getattr(close, "reaped_at_once", False):
        return

    def close_reaped_at_once(self: Any, force: bool = True) -> None:
        if self.terminated:
            self.delayafterclose = 0
        close(self, force)

    close_reaped_at_once.reaped_at_once = True  # type: ignore[attr-defined]
    ptyprocess.PtyProcess.close = close_reaped_at_once


def run_playbook(playbook: str, inventory: Path, variables: Mapping[str, Any], hosts: list[str], state_dir: Path,
                 totals: Mapping[str, int], progress: Progress = lambda h, d, t: None,
                 deadline: float | None = None, env: Sequence[tuple[str, str]] = ()) -> RunResult:
    """After ``deadline`` seconds (None: ``RUN_DEADLINE``) the run's whole process tree is killed and every host
    without a result is unreachable for this run: a minion that died mid-run never holds its driver (or a retry
    loop) forever. Every message of the result has the values of ``env`` masked (``masking``)."""
    import ansible_runner

    _close_reaped_at_once()
    guard_runs()
    deadline = RUN_DEADLINE if deadline is None else deadline
    results = {h: HostResult(h, totals.get(h, 0)) for h in hosts}
    private = Path(tempfile.mkdtemp(prefix="cp-run-", dir=state_dir))
    cancelled, finished = threading.Event(), threading.Event()
    server: threading.Thread | None = None
    try:
        os.chmod(private, 0o700)
        vars_file = str(private / "cp-vars.yml")
        os.mkfifo(vars_file, 0o600)
        server = _serve_once(Path(vars_file), unsafe_yaml(variables), finished)
        timings.mark("ansible launch")
        thread, runner = ansible_runner.run_async(
            private_data_dir=str(private),
            inventory=str(Path(inventory).absolute()),  # ansible-playbook runs in the private dir
            roles_path=[str(resource_dir("roles"))],
            envvars=ansible_env(state_dir, private),
            binary=sys.executable,
            cmdline=shlex.join(["-c", LAUNCHER, str(resource_dir("playbooks") / playbook), "-e", f"@{vars_file}"]),
            limit=",".join(hosts),
            forks=max(5, len(hosts)),
            quiet=True,
            suppress_env_files=True,
            event_handler=_events(results, progress),
            cancel_callback=cancelled.is_set,
            finished_callback=lambda _: finished.set(),
        )
        root, overdue = None, False
        try:
            # not thread.join(): a KeyboardInterrupt inside it leaves the thread marked stopped (CPython 3.11)
            until = time.monotonic() + deadline
            while thread.is_alive() and not finished.wait(0.2 if root else 0.01):
                root = root or track(vars_file)
                if time.monotonic() > until:
                    overdue = True
                    cancelled.set()
                    end_tree(root)
                    finished.wait(timeout=30)
                    break
        except KeyboardInterrupt:
            stop_descendants()
            cancelled.set()
            finished.wait(timeout=30)
            raise
        finally:
            untrack(root)
        status = "timeout" if overdue else runner.status
        if overdue:
            _overdue(results, deadline)
        if status != "successful" and all(r.ok for r in results.values()):
            tail = (runner.stdout.read() if runner.stdout else "").strip().splitlines()[-3:]
            for r in results.values():
                r.failed = True
                r.messages.append(" ".join(tail) or f"ansible-playbook ended {status}")
        for r in results.values():
            r.messages[:] = [mask(m, env) for m in r.messages]
            r.failed_pods = {pod: mask(error, env) for pod, error in r.failed_pods.items()}
        return RunResult(results, status)
    finally:
        finished.set()
        if server is not None:
            server.join(timeout=1)
            _hang_up(Path(vars_file))
        shutil.rmtree(private, ignore_errors=True)


def _serve_once(fifo: Path, text: str, done: threading.Event) -> threading.Thread:
    """``text`` written into the named pipe ``fifo`` for its first reader, from a thread that gives up when
    ``done`` is set (an ansible-playbook that never opened it). Once only: ansible-core loads the extra vars
    once per process (``load_extra_vars`` keeps them), and a second writer could join the first reader's read."""
    def serve() -> None:
        while not done.is_set():
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # ENXIO until a reader has it open
            except OSError:
                done.wait(0.01)  # poll step: no reader yet
                continue
            try:
                os.set_blocking(fd, True)
                with os.fdopen(fd, "wb") as pipe:
                    pipe.write(text.encode())
            except OSError:  # the reader went away (a killed run)
                pass
            return

    thread = threading.Thread(target=serve, name="cp-vars.yml", daemon=True)
    thread.start()
    return thread


def _hang_up(fifo: Path) -> None:
    """An ansible-playbook still waiting in its open of the pipe when the run ends (it was slow to start and its
    run was cut short) gets a writer that closes at once, so it reads nothing and ends, instead of waiting for
    ever for a writer that is gone; later opens find no pipe. Read-write, as a FIFO opened so never waits on
    Linux, and held until the name is gone, so no open slips in between."""
    try:
        fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    except OSError:
        return
    try:
        os.unlink(fifo)
    finally:
        os.close(fd)


def _overdue(results: Mapping[str, HostResult], deadline: float) -> None:
    for r in results.values():
        if r.ok:
            r.unreachable = True
            r.messages.append(f"no result within the run's deadline ({deadline:.0f} s): lost for this run")


def converge_hosts(rendered: Rendered, inventory: Path, state_dir: Path,
                   progress: Progress = lambda h, d, t: None, deadline: float | None = None) -> RunResult:
    """One Ansible run for every host with something to do."""
    hosts = sorted(rendered.hosts)
    totals = {h: action_count(rendered, h) for h in hosts}
    return run_playbook("apply.yml", inventory, playbook_vars(rendered), hosts, state_dir, totals, progress,
                        deadline, rendered.env)
