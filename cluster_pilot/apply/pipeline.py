"""observe -> schedule -> plan -> (lock, look again) -> render -> run -> verify: the one path every driver takes.

The CLI's ``apply``/``delete``/``scale``, and later the master's reconcile loop, call ``converge``; none of
them has a copy of a stage. A plan with nothing to do costs one observation and starts no Ansible run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from cluster_pilot.host.lock import FleetLock, Holder, lock_host
from cluster_pilot.model import Node, Object, Service
from cluster_pilot.host.observe import HostView, Observation, observe
from cluster_pilot.plan.planner import Plan, plan, running_pods
from cluster_pilot.apply.render import Settings, render
from cluster_pilot.apply.runner import RunResult, converge_hosts
from cluster_pilot.scheduler import Schedule, schedule


Watch = Callable[[Observation], tuple[Observation, Iterable[str]]]


@dataclass(frozen=True)
class Options:
    prune: bool = False
    dry_run: bool = False
    allow_pending: bool = False
    applyset: str = "default"
    lock_timeout: float = 60.0
    observe_timeout: float = 20.0  # per host; a minion that does not answer in time is unreachable
    skip_observe: frozenset[str] = frozenset()  # minions known to be down: not asked (a driver probes them)
    verify: bool = True  # look once more after the run (a loop that looks again anyway can skip it)
    roll: bool = True  # replace controller pods whose template changed (see planner.plan)


@dataclass
class Hooks:
    """What a driver wants to hear while work goes on (the CLI draws progress from these)."""

    phase: Callable[[str], None] = lambda text: None
    host_progress: Callable[[str, int, int], None] = lambda host, done, total: None
    lock_wait: Callable[[Holder | None], None] = lambda holder: None
    run_started: Callable[[Plan], None] = lambda plan: None


@dataclass
class Outcome:
    observation: Observation
    schedule: Schedule
    plan: Plan
    run: RunResult | None = None
    remaining: Plan | None = None  # what a fresh look still finds to do after the run
    blocked: bool = False  # unschedulable pods and no --allow-pending: nothing was applied
    unreachable: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        if self.blocked or self.unreachable:
            return False
        if self.run is not None and not self.run.ok:
            return False
        return self.remaining is None or self.remaining.empty


def services_wanted(objects: Sequence[Object], recorded: Iterable[Service], deleted: Iterable[str] = ()) -> list[Service]:
    """Every service that should exist: those recorded before, replaced by the inputs' own, minus deletions."""
    wanted = {s.meta.name: s for s in recorded}
    wanted.update({o.meta.name: o for o in objects if isinstance(o, Service)})
    for name in deleted:
        wanted.pop(name, None)
    return [wanted[n] for n in sorted(wanted)]


def empty_fleet(nodes: Sequence[Node]) -> Observation:
    """What an offline plan assumes: every minion answers and runs nothing."""
    return Observation({n.name: HostView(n.name, True) for n in nodes})


def look(objects: Sequence[Object], services: Sequence[Service], nodes: Sequence[Node], state_dir: Path,
         options: Options = Options(), deleting: Iterable[tuple[str, str]] = (),
         seen: Observation | None = None, evict: Iterable[str] = (),
         watch: Watch = lambda seen: (seen, ())) -> tuple[Observation, Schedule, Plan]:
    """Observe (unless given an observation), schedule and plan: everything but acting.

    ``evict``: pod names to remove and replace (see ``planner.plan``); ``watch``: a driver's own view laid
    over each observation (the master keeps minions that stopped answering ready for a grace period), with
    more pods to evict (stale pods of a minion that came back).
    """
    if seen is None:
        asked = [n for n in nodes if n.name not in options.skip_observe]
        seen = observe(asked, state_dir, options.observe_timeout)
        seen = Observation({**{n.name: HostView(n.name, False, error="down (not asked)") for n in nodes},
                            **seen.hosts})
    seen, more = watch(seen)
    evict = set(evict) | set(more)
    running = [p for p in running_pods(seen) if p.name not in evict]
    sched = schedule(objects, seen.with_nodes(nodes), running, retired=evict)
    addresses = {n.name: n.address for n in nodes}
    return seen, sched, plan(sched, seen, services, addresses, options.applyset if options.prune else None, deleting,
                             evict, options.roll)


def converge(objects: Sequence[Object], nodes: Sequence[Node], inventory: Path, state_dir: Path,
             options: Options = Options(), deleting: Iterable[tuple[str, str]] = (),
             hooks: Hooks = Hooks(), services: Sequence[Service] | None = None, evict: Iterable[str] = (),
             watch: Watch = lambda seen: (seen, ())) -> Outcome:
    """``services``: every service that should exist on the fleet; by default those among ``objects``."""
    deleting, evict = tuple(deleting), tuple(evict)
    if services is None:
        services = [o for o in objects if isinstance(o, Service)]

    def look_now() -> tuple[Observation, Schedule, Plan]:
        return look(objects, services, nodes, state_dir, options, deleting, evict=evict, watch=watch)

    hooks.phase("observing")
    seen, sched, todo = look_now()
    outcome = Outcome(seen, sched, todo, unreachable=seen.unreachable)
    if sched.unschedulable and not options.allow_pending:
        outcome.blocked = True
        return outcome
    if todo.empty or options.dry_run:
        return outcome

    reachable = {n for n, v in seen.hosts.items() if v.reachable}
    hooks.phase("locking")
    with FleetLock(lock_host(nodes, reachable), state_dir) as lock:
        lock.acquire(options.lock_timeout, hooks.lock_wait)
        hooks.phase("observing")
        seen, sched, todo = look_now()  # the truth may have moved while we waited
        outcome = Outcome(seen, sched, todo, unreachable=seen.unreachable)
        if sched.unschedulable and not options.allow_pending:
            outcome.blocked = True
            return outcome
        if todo.empty:
            return outcome
        hooks.run_started(todo)
        addresses = {n.name: n.address for n in nodes}
        rendered = render(todo, services, addresses, Settings(applyset=options.applyset))
        outcome.run = converge_hosts(rendered, inventory, state_dir, hooks.host_progress)
        if options.verify:
            hooks.phase("verifying")
            after, _, outcome.remaining = look_now()
            outcome.unreachable = after.unreachable
    return outcome
