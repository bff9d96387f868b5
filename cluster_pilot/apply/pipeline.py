"""observe -> schedule -> plan -> (lock, look again) -> render -> run -> verify: the one path every driver takes.

The CLI's ``apply``/``delete``/``scale``, and later the master's reconcile loop, call ``converge``; none of
them has a copy of a stage. A plan with nothing to do costs one observation and starts no Ansible run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from cluster_pilot.errors import UserError, ValidationFailed
from cluster_pilot.host.inventory import network_of
from cluster_pilot.host.records import Owner, Records, decode, fleet_records, readdress, settle, update
from cluster_pilot.manifests.network import ServiceNetwork
from cluster_pilot.model import CLUSTER_IP, SERVICE, Node, Object, Service
from cluster_pilot.host.observe import observe
from cluster_pilot.host.observed import HostView, Observation
from cluster_pilot.plan.addresses import allocate
from cluster_pilot.plan.planner import Plan, plan, running_pods
from cluster_pilot.scheduler import Schedule, schedule

if TYPE_CHECKING:  # imported where a run needs them: a no-op apply never loads render or Ansible's runner
    from cluster_pilot.host.lock import Holder
    from cluster_pilot.host.observed import LockSeen
    from cluster_pilot.apply.runner import RunResult


Watch = Callable[[Observation], tuple[Observation, Iterable[str]]]


@dataclass(frozen=True)
class Driver:
    """What the program driving a run sets (the CLI, the master's loop, a bench), never a user's flag."""

    observe_timeout: float = 20.0  # per host; a minion that does not answer in time is unreachable
    skip_observe: frozenset[str] = frozenset()  # minions known to be down: not asked (a driver probes them)
    verify: bool = True  # what remains after the run: none when it reports every action done, else look again
    roll: bool = True  # replace controller pods whose template changed (see planner.plan)
    master: str = ""  # the master's URL when the master drives: it owns what it applies
    skip_foreign: bool = False  # inputs another owner manages are left out (the master) instead of refused
    run_deadline: float | None = None  # the run's whole time (None: the runner's); then hosts without a result are lost


@dataclass(frozen=True)
class Options:
    """What a user asks of a run (apply's, delete's and scale's flags), with what its driver sets."""

    prune: bool = False
    dry_run: bool = False
    allow_pending: bool = False
    applyset: str = "default"
    lock_timeout: float = 60.0
    force_adopt: bool = False  # take over inputs another owner manages
    driver: Driver = Driver()

    @property
    def owner(self) -> Owner:
        return Owner(self.applyset, self.driver.master)


@dataclass(frozen=True)
class Request:
    """What a driver wants of the fleet, whole, as one value every stage takes: a new capability is a field
    here, not one more argument through ``converge``, ``look_all`` and the CLI's ``progress.run``.

    ``services``: every service the proxies serve (None: the fleet's records once the inputs are recorded);
    ``deleting``: (kind, name) of objects to delete; ``evict``: pod names to remove and replace (see
    ``planner.plan``); ``known``: what the driver's own store remembers (see ``records.fleet_records``);
    ``hold``: (pod, spec hash) of versions backing off, left out of the plan (the master's ``backoff``).
    """

    objects: tuple[Object, ...] = ()
    services: tuple[Service, ...] | None = None
    deleting: tuple[tuple[str, str], ...] = ()
    evict: frozenset[str] = frozenset()
    known: Records | None = None
    hold: frozenset[tuple[str, str]] = frozenset()

    @classmethod
    def of(cls, objects: Iterable[Object] = (), services: Iterable[Service] | None = None,
           deleting: Iterable[tuple[str, str]] = (), evict: Iterable[str] = (),
           known: Records | None = None, hold: Iterable[tuple[str, str]] = ()) -> Request:
        return cls(tuple(objects), None if services is None else tuple(services), tuple(deleting), frozenset(evict),
                   known, frozenset(hold))


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
    warnings: tuple[str, ...] = ()  # what observation could not read (damaged labels or records), named
    refused: tuple[str, ...] = ()  # inputs left out because another owner manages them (skip_foreign)
    services: tuple[Service, ...] = ()  # what the proxies serve, as planned

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


@dataclass(frozen=True)
class Look:
    seen: Observation
    schedule: Schedule
    plan: Plan
    records: Records
    services: tuple[Service, ...]
    warnings: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()


def addressed(records: Records, network: ServiceNetwork, busy: set[int], version: int) -> Records:
    """Records whose live services all hold an address: one recorded before services had addresses (or by
    an older runner) gets one now, recorded under its own owner, so every runner serves it at the same."""
    live = records.objects(SERVICE)
    bare = [s for s in live if not s.cluster_ip or any(p.node_port is None for p in s.ports if s.type != CLUSTER_IP)]
    if not bare:
        return records
    filled, _ = allocate(bare, [s for s in live if s not in bare], network, busy)
    return readdress(records, filled, version)


def _allocated(objects: Sequence[Object], fleet: Records, network: ServiceNetwork, busy: set[int],
               options: Options) -> tuple[list[Object], dict[str, str]]:
    """The inputs with their services' addresses and node ports (see ``plan.addresses``). A service asking
    for what another holds is refused (``ValidationFailed``); in the master's passes (``skip_foreign``) it is
    left out and named, so one stored service cannot stop every pass."""
    objects, taken = allocate(objects, fleet.objects(SERVICE), network, busy)
    if taken and not options.driver.skip_foreign:
        raise ValidationFailed([p for _, p in taken])
    left_out = {name: f"service {name!r} left alone: {p}" for name, p in taken}
    return [o for o in objects if not (o.kind == SERVICE and o.meta.name in left_out)], left_out


def look_all(request: Request, nodes: Sequence[Node], state_dir: Path, options: Options = Options(),
             seen: Observation | None = None, watch: Watch = lambda seen: (seen, ())) -> Look:
    """Observe (unless given an observation), record, schedule and plan: everything but acting.

    ``watch``: a driver's own view laid over each observation (the master keeps minions that stopped
    answering ready for a grace period), with more pods to evict (stale pods of a minion that came back).
    An input another owner manages is refused (``UserError``, nothing touched) or, with ``skip_foreign``,
    left out and named in ``refused``.
    """
    if seen is None:
        seen = observe(nodes, state_dir, options.driver.observe_timeout, options.driver.skip_observe)
    seen, more = watch(seen)
    deleting, services = request.deleting, request.services
    fleet, problems = fleet_records(seen, request.known)
    network = network_of(list(nodes))
    busy = {port for p in seen.pods for port, _ in p.host_ports}
    objects, left_out = _allocated(request.objects, fleet, network, busy, options)
    now = int(time.time() * 1000)
    change = update(fleet, objects, deleting, options.owner, prune=options.prune, adopt=options.force_adopt,
                    version=now)
    if change.refused and not options.driver.skip_foreign:
        raise UserError("; ".join(change.refused) + "; nothing was changed")
    change = replace(change, records=addressed(change.records, network, busy, now))
    objects = [o for o in objects if (o.kind, o.meta.name) not in change.refused_keys]
    recorded = {s.meta.name: s for s in change.records.objects(SERVICE)}
    services = list(recorded.values()) if services is None else [recorded.get(s.meta.name, s) for s in services]
    evict = request.evict | set(more)
    running = [p for p in running_pods(seen) if p.name not in evict]
    sched = schedule(objects, seen.with_nodes(nodes), running, retired=evict)
    addresses = {n.name: n.address for n in nodes}
    todo = plan(sched, seen, services=services, addresses=addresses,
                prune_applyset=options.applyset if options.prune else None, deleting=deleting, evict=evict,
                roll=options.driver.roll, network=network, hold=request.hold)
    copies = {n: decode(v.records)[0] if v.reachable else None for n, v in seen.hosts.items()}
    answering = {n for n, copy in copies.items() if copy is not None}
    document, stale = settle(change.records, copies, now, busy=bool(answering) and answering <= set(todo.nodes))
    todo = replace(todo, records=document, records_nodes=stale)
    return Look(seen, sched, todo, change.records, tuple(services), seen.warnings + tuple(problems),
                change.refused + tuple(left_out.values()))


def reported_done(run: RunResult) -> bool:
    """Whether the run itself says every planned action is done: each host's module reported each of its pods
    created (and started) or removed, its proxy and records tasks succeeded, and nothing failed or went
    unreachable. Then a second observation would only read back what the modules just answered; it is kept
    for a run that did not finish, to say what is left."""
    return run.ok and all(h.done == h.total for h in run.hosts.values())


def _unchanged(seen: Observation, before: dict[str, int]) -> bool:
    """Whether the first look stands: on every lock host that granted this run's lease, the lock was free and
    untouched while it looked and since (``lock.unchanged_since``). Any run that held the lock in between held
    a majority, which shares a host with this run's: that host tells."""
    from cluster_pilot.host.lock import unchanged_since

    def lock_seen(name: str) -> LockSeen | None:
        view = seen.hosts.get(name)
        return view.lock if view is not None and view.reachable and not view.stale else None

    return bool(before) and all(unchanged_since(lock_seen(name), seen.seconds, stamp) for name, stamp in before.items())


def converge(request: Request, nodes: Sequence[Node], inventory: Path, state_dir: Path,
             options: Options = Options(), hooks: Hooks = Hooks(), watch: Watch = lambda seen: (seen, ()),
             first: Callable[[], Observation] | None = None) -> Outcome:
    """``first``: the first observation, started earlier (``host.observe.observe_soon``)."""

    def look_now(seen: Observation | None = None) -> Outcome:
        found = look_all(request, nodes, state_dir, options, seen, watch)
        return Outcome(found.seen, found.schedule, found.plan, unreachable=found.seen.unreachable,
                       warnings=found.warnings, refused=found.refused, services=found.services,
                       blocked=bool(found.schedule.unschedulable) and not options.allow_pending)

    hooks.phase("observing")
    outcome = look_now(first() if first is not None else None)
    if outcome.blocked or outcome.plan.empty or options.dry_run:
        return outcome

    from cluster_pilot.host.lock import FleetLock, lock_hosts
    from cluster_pilot.apply.render import Settings, render
    from cluster_pilot.apply.runner import converge_hosts, warm_up

    warm_up()
    hooks.phase("locking")
    with FleetLock(lock_hosts(nodes), state_dir) as lock:
        lock.acquire(options.lock_timeout, hooks.lock_wait)
        if not _unchanged(outcome.observation, lock.before):
            hooks.phase("observing")
            outcome = look_now()  # the truth may have moved while we waited
            if outcome.blocked or outcome.plan.empty:
                return outcome
        if lock.lost:
            raise UserError("the fleet lock expired and was taken over while this run looked; nothing was "
                            "changed")
        hooks.run_started(outcome.plan)
        addresses = {n.name: n.address for n in nodes}
        settings = Settings(applyset=options.applyset, dns_server=network_of(list(nodes)).dns, fence=lock.fence)
        rendered = render(outcome.plan, outcome.services, addresses, settings)
        outcome.run = converge_hosts(rendered, inventory, state_dir, hooks.host_progress, options.driver.run_deadline)
        if options.driver.verify and reported_done(outcome.run):
            outcome.remaining = Plan()
        elif options.driver.verify:
            hooks.phase("verifying")
            after = look_now()
            outcome.remaining = after.plan
            outcome.unreachable = after.unreachable
    return outcome
