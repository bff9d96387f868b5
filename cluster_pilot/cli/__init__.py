"""The ``cluster-pilot`` command: parsing and printing only; every decision lives in the stages it calls.

Each group of verbs is a module of its own; this file wires them together and turns every failure into one
line on stderr and a non-zero exit code (never a traceback).
"""

from __future__ import annotations

import atexit
import importlib
import importlib.util
import os
import sys
import threading

from cluster_pilot.apply import timings

timings.mark("python")

import click  # noqa: E402

from cluster_pilot import __version__
from cluster_pilot.errors import UserError

# verb -> module that defines it (imported on use, so `cluster-pilot status` does not pay for Ansible)
_VERBS = {
    "sandbox": "cluster_pilot.cli.sandbox:sandbox",
    "validate": "cluster_pilot.cli.validate:validate",
    "schema": "cluster_pilot.cli.validate:schema",
    "plan": "cluster_pilot.cli.plan:plan",
    "bench": "cluster_pilot.cli.bench:bench",
    "apply": "cluster_pilot.cli.apply:apply",
    "get": "cluster_pilot.cli.get:get",
    "describe": "cluster_pilot.cli.get:describe",
    "delete": "cluster_pilot.cli.delete:delete",
    "scale": "cluster_pilot.cli.delete:scale",
    "lock": "cluster_pilot.cli.lock:lock",
    "master": "cluster_pilot.cli.master:master",
    "kubeconfig": "cluster_pilot.cli.master:kubeconfig_command",
    "logs": "cluster_pilot.cli.logs:logs",
    "exec": "cluster_pilot.cli.logs:exec_",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | {v for v, t in _VERBS.items() if _importable(t)})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        cmd = super().get_command(ctx, name)
        if cmd is not None or name not in _VERBS:
            return cmd
        module, _, attr = _VERBS[name].partition(":")
        command = getattr(importlib.import_module(module), attr)
        timings.mark("imported")
        return command


def _importable(target: str) -> bool:
    return importlib.util.find_spec(target.partition(":")[0]) is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cluster-pilot")
def cli() -> None:
    """Pods, replication controllers and services on a fleet of Docker hosts, driven by Ansible."""


def run(command: click.Command, prog: str, args: list[str] | None = None) -> int:
    """Run a click command with cluster-pilot's error contract: one line, exit 1 (or the error's own code)."""
    try:
        result = command.main(args=args, prog_name=prog, standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        click.echo(f"{prog}: interrupted", err=True)
        return 130
    except click.ClickException as exc:
        click.echo(f"{prog}: error: {_one_line(exc.format_message())}", err=True)
        return 1
    except UserError as exc:
        click.echo(f"{prog}: error: {exc}" if "\n" not in str(exc) else str(exc), err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo(f"{prog}: interrupted", err=True)
        return 130
    except Exception as exc:  # a bug of ours: still one line, the traceback only on request
        if os.environ.get("CLUSTER_PILOT_DEBUG"):
            raise
        click.echo(f"{prog}: internal error: {type(exc).__name__}: {_one_line(str(exc))} "
                   "(set CLUSTER_PILOT_DEBUG=1 for the traceback)", err=True)
        return 1
    return result if isinstance(result, int) else 0


def _one_line(message: str) -> str:
    return " ".join(message.split())


def main() -> None:
    code = run(cli, "cluster-pilot")
    timings.write()
    leave(code)


def leave(code: int) -> None:
    """Exit without the interpreter's teardown, which frees every module and object one by one: 25-35 ms of a
    3-minion no-op apply's 0.5 s, for nothing. What an exit must do is done first: the atexit handlers run and
    the output is flushed. A thread that is not a daemon and still runs gets the ordinary exit, which waits, and
    so does a profiler or a tracer (``python -m cProfile`` writes its figures after ``main`` returns)."""
    if sys.getprofile() or sys.gettrace() or any(
            t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away, a stream already closed
            pass
    os._exit(code)
