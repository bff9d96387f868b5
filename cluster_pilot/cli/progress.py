"""Drives ``pipeline.converge`` for a verb and shows it: live per-host progress, then a summary and exit code."""

from __future__ import annotations

import functools
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import click

from cluster_pilot.model import Node
from cluster_pilot.apply import timings
from cluster_pilot.apply.pipeline import Hooks, Options, Outcome, Request, converge
from cluster_pilot.plan.planner import ACTIONS, Change, Plan

if TYPE_CHECKING:  # loaded when there is something to show: a no-op apply needs none of rich
    from rich.console import Console
    from rich.progress import Progress

    from cluster_pilot.host.lock import Holder
    from cluster_pilot.host.observed import Observation

SPINNER_AFTER = 0.5  # seconds a phase runs before it gets a spinner: a no-op is done sooner


@functools.cache
def console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def describe_plan(changes: Sequence[Change]) -> list[str]:
    """A kubectl-diff-like view: one line per change, ``+`` create, ``~`` replace, ``-`` remove."""
    marks = {"create": "+", "replace": "~", "remove": "-"}
    lines = []
    for c in changes:
        if c.action == "proxy":
            lines.append(f"  ~ service proxy on {c.node}")
        elif c.action == "record":
            lines.append(f"  ~ object records on {c.node}")
        elif c.action == "remove":
            lines.append(f"  - {c.pod} on {c.node} ({c.reason})")
        else:
            lines.append(f"  {marks[c.action]} {c.pod} on {c.node} [{', '.join(c.images)}]")
    return lines


def counts(changes: Sequence[Change]) -> dict[str, int]:
    out = dict.fromkeys(ACTIONS, 0)
    for c in changes:
        out[c.action] += 1
    return out


class _Live:
    """The phase on a spinner (shown only once a phase lasts ``SPINNER_AFTER``: rich costs a no-op more CPU
    than its own planning), then per-host progress bars."""

    def __init__(self) -> None:
        self.progress: Progress | None = None
        self.tasks: dict[str, int] = {}
        self.status = None
        self.text = ""
        self.lock = threading.Lock()
        self.timer: threading.Timer | None = None

    def phase(self, text: str) -> None:
        with self.lock:
            self.text = text + " …"
            if self.status is not None:
                self.status.update(self.text)
            elif self.progress is None and self.timer is None:
                self.timer = threading.Timer(SPINNER_AFTER, self._show)
                self.timer.daemon = True
                self.timer.start()

    def _show(self) -> None:
        with self.lock:
            if self.timer is not None and self.progress is None:
                self.status = console().status(self.text)
                self.status.start()

    def stop_status(self) -> None:
        with self.lock:
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
            if self.status is not None:
                self.status.stop()
                self.status = None

    def lock_wait(self, holder: Holder | None) -> None:
        self.stop_status()
        console().print(f"waiting for the fleet lock held by {holder.describe() if holder else 'another run'} …")

    def run_started(self, plan: Plan) -> None:
        self.stop_status()
        for line in describe_plan(plan.changes()):
            console().print(line, markup=False)
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        # not on a terminal (a CI log), the bars are printed once, at the end: no refresh thread rebuilding
        # them ten times a second meanwhile, on the cores the run needs
        self.progress = Progress(TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=console(), transient=False,
                                 auto_refresh=console().is_terminal)
        self.progress.start()

    def host(self, host: str, done: int, total: int) -> None:
        if self.progress is None:
            return
        if host not in self.tasks:
            self.tasks[host] = self.progress.add_task(host, total=total)
        self.progress.update(self.tasks[host], completed=done, total=total)

    def close(self) -> None:
        self.stop_status()
        if self.progress is not None:
            self.progress.stop()


def run(request: Request, nodes: Sequence[Node], inventory: Path, home: Path, options: Options,
        verb: str = "apply", first: Callable[[], Observation] | None = None) -> tuple[int, Outcome]:
    t0 = time.monotonic()
    live = _Live()
    hooks = Hooks(phase=lambda text: (timings.mark(text), live.phase(text)), host_progress=live.host,
                  lock_wait=live.lock_wait, run_started=lambda plan: (timings.mark("run"), live.run_started(plan)))
    try:
        outcome = converge(request, nodes, inventory, home, options, hooks, first=first)
    finally:
        live.close()
        timings.mark("converged")
    return report(outcome, options, time.monotonic() - t0, verb), outcome


def report(outcome: Outcome, options: Options, seconds: float, verb: str) -> int:
    for warning in outcome.warnings:
        console().print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    for host, why in sorted(outcome.unreachable.items()):
        console().print(f"[red]{host}: unreachable[/red] ({why})", highlight=False)
    for u in outcome.schedule.unschedulable:
        console().print(f"[yellow]pending:[/yellow] {u.message}", highlight=False)
    if outcome.blocked:
        console().print(f"nothing applied: {len(outcome.schedule.unschedulable)} pods cannot be scheduled "
                        "(--allow-pending applies what fits)")
        return 1
    changes = outcome.plan.changes()
    c = counts(changes)
    if outcome.run is None:
        if outcome.plan.empty:
            click.echo(f"no changes ({len(outcome.plan.kept)} pods as wanted, {seconds:.2f} s)", err=True)
        elif options.dry_run:
            for line in describe_plan(changes):
                console().print(line, markup=False)
            console().print(f"dry run: {c['create']} to create, {c['replace']} to replace, "
                            f"{c['remove']} to remove, {c['proxy']} proxies to reconfigure")
        return 0 if outcome.ok else 1
    for h in sorted(outcome.run.hosts.values(), key=lambda h: h.host):
        state = "ok" if h.ok else ("UNREACHABLE" if h.unreachable else "FAILED")
        line = f"  {h.host:<12} {state:<11} {h.done}/{h.total} actions"
        if h.messages:
            line += "  " + "; ".join(dict.fromkeys(m.strip() for m in h.messages))[:400]
        console().print(line, markup=False, highlight=False)
    if outcome.remaining is not None and not outcome.remaining.empty:
        console().print(f"still to do after the run: {len(outcome.remaining.changes())} changes "
                        f"(run {verb} again)")
    done = "done" if outcome.ok else "FAILED"
    console().print(f"{verb} {done}: {c['create']} created, {c['replace']} replaced, {c['remove']} removed, "
                    f"{c['proxy']} proxies reconfigured in {seconds:.1f} s")
    return 0 if outcome.ok else 1
