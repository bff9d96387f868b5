"""The master's loop: make the minions match the store, again and again, through the one pipeline.

Every write triggers a pass. How the loop learns of drift is ``observe``:

- ``watch`` (the default): one long-lived SSH session per minion streams its managed containers' events and a
  heartbeat (``host/watch.py``). An event triggers a pass that observes that minion alone (the others as last
  seen); every ``resync`` seconds, and after a session (re)opens, a minion is observed whole again, so a
  missed event costs at most one resync. Liveness is the heartbeat (``master/liveness.py``): a minion silent
  for ``grace`` seconds, or whose dockerd does not answer, is not ready.
- ``poll`` (the earlier design, kept for comparison): every ``heal_interval`` a pass observes every minion
  over SSH; a minion is live while it answers within ``observe_timeout``.

Either way, meanwhile a silent minion's pods count as running where they were; after the grace it is not
ready, the pods of its controllers are replaced elsewhere, and when it comes back those stale pods are evicted
before any proxy sends them traffic. Bare pods on a lost minion are reported lost, never moved.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Mapping

from prometheus_client import (CollectorRegistry, Counter, Gauge, Summary, disable_created_metrics,
                               generate_latest)

from cluster_pilot.errors import UserError
from cluster_pilot.model import Node, from_json
from cluster_pilot.host.observe import observe, observe_host
from cluster_pilot.host.observed import HostView, Observation, read_view
from cluster_pilot.host.records import Owner, refusal
from cluster_pilot.host.ssh import control_dir
from cluster_pilot.host.watch import TRIGGERS, Beat, Closed, Event, Message, Resync, Watcher
from cluster_pilot.apply import timings
from cluster_pilot.apply.processes import end_runs, guard_runs
from cluster_pilot.apply.pipeline import Driver, Hooks, Options, Outcome, Request, converge
from cluster_pilot.host.records import fleet_records
from cluster_pilot.master.backoff import BackOff, after_run, backoff_events, held, next_wake
from cluster_pilot.master.events import pass_events
from cluster_pilot.master.liveness import LOST, READY, SILENT, Liveness
from cluster_pilot.master.registry import MASTER_APPLYSET
from cluster_pilot.plan.planner import ACTIONS, spec_hash
from cluster_pilot.store import Store
from cluster_pilot.store.events import EventLog

log = logging.getLogger("cluster_pilot.master")

APPLYSET = MASTER_APPLYSET
RUN_DEADLINE = 180.0  # a pass's Ansible run; a minion that dies mid-run is lost for it, never holds the loop
LOOK_TIMEOUT = 3.0  # a helper's look over its session; one slower is asked over a new SSH exec instead
LEASE_TTL = 6.0  # seconds the leader's lease lasts unrenewed: a killed leader's successor leads within this
LEASE_STEP = 1.0  # how often the lease is renewed (or tried for), and another master's writes are looked for


def lease_holder(url: str) -> str:
    """This master's name in the leader lease: the URL it serves, which a follower tells clients
    (``holder_url``), and what makes it unique among processes."""
    return f"{url} pid {os.getpid()} {os.urandom(4).hex()}"


def holder_url(holder: str) -> str:
    return holder.split(" pid ", 1)[0]


@dataclass
class Memory:
    """What the master remembers of each minion between passes (a minion's last good view, its losses)."""

    last_ok: dict[str, float] = field(default_factory=dict)
    last_view: dict[str, HostView] = field(default_factory=dict)
    lost: dict[str, frozenset[str]] = field(default_factory=dict)  # node -> controller pods it had when lost
    since: dict[str, float] = field(default_factory=dict)  # node -> when it stopped answering


def evictions_done(evicting: set[str], found: set[str], looked: set[str], where: Mapping[str, str]) -> set[str]:
    """The evictions a pass may forget: pods not found on a minion that answered it. One whose minion did not
    answer (stopped, dockerd restarting, its SSH cut, a pass that looked nowhere) is kept: forgotten then, the
    pod ran on when its minion came back, with its delete acknowledged (found by the chaos soak). ``where``:
    the minion each pod was last seen on; a pod seen nowhere is done once any minion answered."""
    return {name for name in evicting
            if name not in found and (where[name] in looked if name in where else bool(looked))}


def with_grace(seen: Observation, memory: Memory, now: float, grace: float) -> tuple[Observation, set[str]]:
    """Lay the master's memory over one observation; also returns pods to evict (stale pods of a minion
    that came back after being declared lost). Updates ``memory``."""
    hosts: dict[str, HostView] = {}
    evict: set[str] = set()
    for name, view in seen.hosts.items():
        if view.reachable:
            memory.last_ok[name] = now
            memory.last_view[name] = view
            memory.since.pop(name, None)
            evict |= memory.lost.pop(name, frozenset())
            hosts[name] = view
            continue
        memory.since.setdefault(name, now)
        last = memory.last_view.get(name)
        pods = last.pods if last else ()
        if now - memory.last_ok.get(name, memory.since[name]) < grace:
            hosts[name] = replace(view, pods=pods, stale=True, proxy=last.proxy if last else None)
        else:
            if name not in memory.lost:
                memory.lost[name] = frozenset(p.name for p in pods if p.controller)
            hosts[name] = replace(view, pods=pods)  # not ready: bare pods stay (lost), controllers' move
    return Observation(hosts), evict


class NotSeenYet(UserError):
    """A minion that is not declared lost has never been observed: what runs there is unknown, so no pass
    may plan (it would start a second copy of every pod it cannot see)."""


def with_liveness(seen: Observation, asked: frozenset[str], memory: Memory,
                  states: Mapping[str, str]) -> tuple[Observation, set[str], set[str]]:
    """Watch mode's overlay: minions ``asked`` this pass as observed, the other live ones as last seen, the
    silent ones stale and the lost ones not ready (their state from the heartbeat, ``states``). Returns the
    view, pods to evict (a lost minion's controller pods, once it is seen again) and ready minions whose
    observation failed (to ask again). Updates ``memory``."""
    hosts: dict[str, HostView] = {}
    evict: set[str] = set()
    retry: set[str] = set()
    for name, view in seen.hosts.items():
        state = states.get(name, LOST)
        last = memory.last_view.get(name)
        fresh = name in asked and view.reachable
        if state != LOST and fresh:
            memory.last_view[name] = view
            evict |= memory.lost.pop(name, frozenset())
            hosts[name] = view
            continue
        if name in asked and state == READY:
            retry.add(name)  # and no action there meanwhile: it may be dying (a late heartbeat comes next)
            state = SILENT
        if last is None and state != LOST:
            raise NotSeenYet(f"{name} has not been observed yet ({view.error or 'no heartbeat yet'}); "
                             "no pass until it is, or until it is lost")
        pods = last.pods if last else ()
        if state == LOST or name in memory.lost or last is None:
            if state == LOST and last is not None and name not in memory.lost:
                memory.lost[name] = frozenset(p.name for p in pods if p.controller)
            error = "no heartbeat" if state == LOST else (view.error or "not observed yet")
            hosts[name] = HostView(name, False, pods, error=error)
        elif state == READY:
            hosts[name] = last
        else:
            hosts[name] = replace(last, reachable=False, stale=True, error=view.error or "heartbeat late")
    return Observation(hosts), evict, retry


@dataclass(frozen=True)
class WatchSettings:
    """``--observe watch``: how often a minion is observed whole, and flap damping (see ``liveness``)."""

    resync: float = 30.0
    hold_down: float = 10.0
    observe_timeout: float = 10.0  # no longer decides liveness: a loaded minion may take its time


disable_created_metrics()  # the series /metrics always had, without a `_created` timestamp beside each counter


@dataclass(frozen=True)
class Snapshot:
    """What the API reads of the loop, taken at one moment."""

    seen: Observation | None  # the last observation, the minions' grace laid over it
    leaving: frozenset[str]  # pods deleted through the API, until they are gone
    generation: int  # passes completed
    backoff: Mapping[str, BackOff] = field(default_factory=dict)  # pods that failed to start, until they do


class Metrics:
    """The loop's figures for ``/metrics``, in a registry of this master's own: two masters in one process
    (the tests, the API bench) never add to each other's counts."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.duration = Summary("cluster_pilot_reconcile_duration_seconds", "Time of reconcile passes.",
                                registry=self.registry)
        self.last_duration = Gauge("cluster_pilot_reconcile_last_duration_seconds",
                                   "Time of the last reconcile pass.", registry=self.registry)
        self.runs = Counter("cluster_pilot_ansible_runs", "Reconcile passes that ran Ansible.", registry=self.registry)
        self.errors = Counter("cluster_pilot_reconcile_errors", "Reconcile passes that failed.", registry=self.registry)
        self.actions = Counter("cluster_pilot_actions", "Actions applied to minions.", ["action"],
                               registry=self.registry)
        for action in ACTIONS:
            self.actions.labels(action)  # every action is listed, at 0 until it happens
        self.minions_ready = Gauge("cluster_pilot_minions_ready", "Minions ready.", registry=self.registry)
        self.minions = Gauge("cluster_pilot_minions", "Minions in the inventory.", registry=self.registry)

    def passed(self, seconds: float) -> None:
        self.duration.observe(seconds)
        self.last_duration.set(seconds)

    def ran(self, outcome: Outcome) -> None:
        self.runs.inc()
        for change in outcome.plan.changes():
            self.actions.labels(change.action).inc()
        if not outcome.ok:
            self.errors.inc()

    def exposition(self, ready: int, minions: int) -> bytes:
        """The text format, with the minion counts as the API sees them now."""
        self.minions_ready.set(ready)
        self.minions.set(minions)
        return generate_latest(self.registry)


class Reconciler:
    def __init__(self, store: Store, inventory: Path, state_dir: Path, load_nodes: Callable[[Path], list[Node]],
                 grace: float = 10.0, interval: float = 5.0, heal_interval: float = 1.0,
                 observe_timeout: float = 2.0, events: EventLog | None = None, url: str = "",
                 watch: WatchSettings | None = None, holder: str = "", lease_ttl: float = LEASE_TTL) -> None:
        self.store = store
        self.holder = holder or lease_holder(url or "a master")
        self.lease_ttl = lease_ttl
        self.term: int | None = None  # the leader lease's term while this master holds it: it reconciles
        self._followed = float("-inf")  # when a follower last looked at the minions
        self.url = url or "this master"  # who owns what it applies, as the records and refusals name it
        self.events = events
        self._failing: dict[str, str] = {}  # pod -> the scheduling failure last recorded
        self.inventory = inventory
        self.state_dir = state_dir
        self.load_nodes = load_nodes
        self.grace = grace
        self.interval = interval
        self.heal_interval = min(heal_interval, interval)
        self.observe_timeout = observe_timeout
        self.memory = Memory()
        self.metrics = Metrics()
        self.evicting: set[str] = set()  # pods deleted through the API, until they are gone
        self._answering: set[str] = set()  # lost minions that answer the prober again
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._leasing: threading.Thread | None = None
        self._nodes: tuple[float, list[Node]] | None = None
        self._nodes_lock = threading.Lock()
        self.last: Observation | None = None
        self.last_outcome: Outcome | None = None
        self.generation = 0  # passes completed; a client may wait for the pass after its write
        self.refused: tuple[str, ...] = ()  # stored objects left alone: the CLI manages them
        self.watching = watch  # None: poll every minion every heal_interval
        self.liveness = Liveness(grace, watch.hold_down if watch else 0.0, started=time.monotonic())
        self.watcher = Watcher(control_dir(state_dir), self._heard) if watch else None
        self._dirty: dict[str, str] = {}  # minion -> why it must be observed in the next pass
        self._event_at: float | None = None  # when the earliest event not yet acted on happened (wall clock)
        self._requested = True  # a write, an eviction, or the first pass
        self._states: dict[str, str] = {}
        self._last_full = float("-inf")  # when a pass last observed every live minion whole
        self.backoff: Mapping[str, BackOff] = {}  # pod -> its failed attempts (``backoff``); replaced, never changed
        self._retry_at: float | None = None  # when the earliest back-off ends: watch mode wakes for it
        self.clock: Callable[[], float] = time.monotonic  # the back-off's (a test sets its own)

    # --- what the API reads -----------------------------------------------------------------------------
    def nodes(self) -> list[Node]:
        """The inventory's minions, read again whenever the file changes (hosts added or moved)."""
        with self._nodes_lock:
            mtime = self.inventory.stat().st_mtime if self.inventory.exists() else 0.0
            if self._nodes is None or self._nodes[0] != mtime:
                self._nodes = (mtime, self.load_nodes(self.inventory))
            return self._nodes[1]

    def snapshot(self) -> Snapshot:
        seen = self.last
        with self._lock:
            leaving = frozenset(self.evicting)
            backoff = self.backoff
            states = self.liveness.states(list(seen.hosts), time.monotonic()) if self.watching and seen else {}
        lost = {n for n, s in states.items() if s == LOST}
        if seen is not None and lost:  # the heartbeat knows before the next pass ends
            seen = Observation({n: replace(v, reachable=False, stale=False) if n in lost else v
                                for n, v in seen.hosts.items()})
        return Snapshot(seen, leaving, self.generation, backoff)

    def foreign(self, kind: str, name: str) -> str | None:
        """Why the master must not take ``name`` (a CLI apply set manages it), or None: from the last look."""
        if self.last is None:
            return None
        entry = fleet_records(self.last)[0].get(kind, name)
        me = Owner(APPLYSET, self.url)
        return None if entry is None or entry.owner.same(me) else refusal(kind, name, entry.owner, me)

    def evict(self, pod: str) -> None:
        with self._lock:
            self.evicting.add(pod)
        self.trigger()

    def trigger(self) -> None:
        with self._lock:
            self._requested = True
        self._wake.set()

    # --- the loop -------------------------------------------------------------------------------------------
    def start(self) -> None:
        guard_runs()
        self._leasing = threading.Thread(target=self._hold, name="leader-lease", daemon=True)
        self._leasing.start()
        self._thread = threading.Thread(target=self._loop, name="reconcile", daemon=True)
        self._thread.start()
        if self.watcher is not None:
            self.watcher.start()
        if self.watching is None:
            threading.Thread(target=self._probe, name="probe-lost-minions", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        end_runs()  # a pass stuck on a dead minion ends now, its whole process tree with it
        if self._thread is not None:
            self._thread.join(timeout=120)
        if self._leasing is not None:
            self._leasing.join(timeout=10)
        if self.watcher is not None:
            self.watcher.stop()

    # --- the leader lease -----------------------------------------------------------------------------------
    def _hold(self) -> None:
        """Thread: the lease renewed every ``LEASE_STEP``, or tried for while another master holds it. Losing it
        (another master took it after this one could not renew in time) ends this master's run at once: the
        fleet lock's fencing tokens already refuse a deposed run's writes after its successor's, and this
        stops it from trying. Another master's write to the shared store shows as a new store version and
        wakes the loop, so a write to a follower reaches the leader within a step."""
        held_until, seen = float("-inf"), None
        while True:
            asked = time.monotonic()
            try:
                term, version = self.store.hold_lease(self.holder, self.lease_ttl), self.store.version()
                if term is not None:
                    held_until = asked + self.lease_ttl - LEASE_STEP
            except Exception as exc:  # the store unreachable: still leading only while the lease surely lasts
                log.warning("leader lease: %s", exc)
                term = self.term if time.monotonic() < held_until else None
                version = seen
            if term != self.term:
                if term is None:
                    log.warning("reconcile: no longer leading (term %s): another master leads", self.term)
                    self.term = None
                    end_runs()
                else:
                    log.info("reconcile: leading (term %d)", term)
                    self.term = term
                    self.trigger()
            elif seen is not None and version != seen:
                self.trigger()
            seen = version
            if self._stop.wait(LEASE_STEP):
                break
        if self.term is not None:
            self.term = None
            try:
                self.store.release_lease(self.holder)
            except Exception as exc:
                log.warning("leader lease: not released: %s", exc)

    def _follow(self) -> None:
        """A follower reconciles nothing, but keeps its view of the minions for the API it serves."""
        if time.monotonic() - self._followed >= self.interval:
            self._followed = time.monotonic()
            self.last = observe(self.nodes(), self.state_dir, self.observe_timeout)
            self.generation += 1

    # --- the watch -------------------------------------------------------------------------------------------
    def _heard(self, node: str, message: Message) -> None:
        """From a session's thread: what the minion's helper said."""
        now = time.monotonic()
        with self._lock:
            if isinstance(message, Beat):
                if self.liveness.beat(node, now, message.docker):
                    self._dirty[node] = "came back"
                else:
                    return
            elif isinstance(message, Event) and message.action in TRIGGERS:
                timings.mark(f"event {message.action} received", node)
                self._dirty[node] = f"event {message.action} of {message.pod}/{message.container}"
                if message.at and (self._event_at is None or message.at < self._event_at):
                    self._event_at = message.at
            elif isinstance(message, Resync):
                self._dirty[node] = f"resync: {message.reason}"
            elif isinstance(message, Closed):
                log.info("watch of %s closed: %s", node, message.reason)
                return
        self._wake.set()

    def _due(self) -> bool:
        """Watch mode: whether this wake needs a pass (a write, an event, a reconnect, a minion lost or
        back, the resync); an idle wake costs no SSH at all."""
        now = time.monotonic()
        assert self.watching is not None
        with self._lock:
            states = self.liveness.states([n.name for n in self.nodes()], now)
            lost_changed = {n for n, s in states.items() if (s == LOST) != (self._states.get(n) == LOST)}
            self._states = states
            for name in sorted(lost_changed):
                log.info("minion %s %s", name, "not ready: no healthy heartbeat" if states[name] == LOST else
                         "ready again: heartbeats back")
            if any(s != READY and s != LOST and n not in self.memory.last_view for n, s in states.items()):
                return False  # a minion never seen: wait for its first beat (or its loss)
            retry = self._retry_at is not None and self.clock() >= self._retry_at
            if retry:
                self._retry_at = None  # the pass it wakes sets the next one
            return bool(self._requested or self._dirty or lost_changed or retry
                        or now - self._last_full >= self.watching.resync)

    def _probe(self) -> None:
        """Asks the minions declared lost, apart from the passes (which no longer wait for them)."""
        while not self._stop.wait(1.0):
            with self._lock:
                lost = set(self.memory.lost) - self._answering
            if not lost:
                continue
            for node in [n for n in self.nodes() if n.name in lost]:
                if observe_host(node, control_dir(self.state_dir), timeout=self.observe_timeout).reachable:
                    with self._lock:
                        self._answering.add(node.name)
                    self.trigger()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=self.heal_interval)
            self._wake.clear()
            if self._stop.is_set():
                break
            if self.watcher is not None:
                self.watcher.sync(self.nodes())  # one session per minion of the inventory, as it is now
            if self.term is None:
                self._follow()
                continue
            if self.watcher is not None and not self._due():
                continue
            self.run_once()

    def run_once(self) -> Outcome | None:
        t0 = time.monotonic()
        try:
            outcome = self._pass()
        except UserError as exc:
            self.metrics.errors.inc()
            log.warning("reconcile: %s", exc)
            outcome = None
        except Exception:  # the loop must outlive any one pass
            self.metrics.errors.inc()
            log.exception("reconcile pass failed")
            outcome = None
        self.metrics.passed(time.monotonic() - t0)
        self.generation += 1
        return outcome

    def _poll_look(self) -> tuple[Callable[[Observation], tuple[Observation, set[str]]], Options, dict[str, str]]:
        """Poll mode: every minion but the lost ones is asked; liveness is answering within the timeout."""
        with self._lock:
            down = frozenset(set(self.memory.lost) - self._answering)
        options = Options(prune=True, applyset=APPLYSET, lock_timeout=30, allow_pending=True,
                          driver=Driver(observe_timeout=self.observe_timeout, skip_observe=down, roll=False,
                                        master=self.url, skip_foreign=True, run_deadline=RUN_DEADLINE))
        return lambda seen: with_grace(seen, self.memory, time.monotonic(), self.grace), options, {}

    def _watch_look(self, names: list[str]) -> tuple[Callable[[Observation], tuple[Observation, set[str]]],
                                                     Options, dict[str, str]]:
        """Watch mode: only the minions something happened on are asked (every live one at a resync); the
        others are taken as last seen. Also returns why each minion is asked."""
        assert self.watching is not None
        now = time.monotonic()
        with self._lock:
            states = self._states = self.liveness.states(names, now)
            why, self._dirty, requested, self._requested = dict(self._dirty), {}, self._requested, False
        ready = {n for n, s in states.items() if s == READY}
        why.update({n: "first look" for n in ready if n not in self.memory.last_view and n not in why})
        if now - self._last_full >= self.watching.resync:
            self._last_full = now
            why.update({n: "resync" for n in ready if n not in why})
        asked = frozenset(set(why) & ready)
        with self._lock:  # a silent minion's reason waits for its next beat (a reopened helper says hello first)
            for name in set(why) - asked:
                if states.get(name) == SILENT:
                    self._dirty.setdefault(name, why[name])

        def overlay(seen: Observation) -> tuple[Observation, set[str]]:
            view, evict, retry = with_liveness(seen, asked, self.memory, states)
            with self._lock:
                for name in retry:
                    self._dirty.setdefault(name, f"observation failed: {seen.hosts[name].error}")
            return view, evict

        options = Options(prune=True, applyset=APPLYSET, lock_timeout=30, allow_pending=True,
                          driver=Driver(observe_timeout=self.watching.observe_timeout,
                                        skip_observe=frozenset(names) - asked, verify=False, roll=False,
                                        master=self.url, skip_foreign=True, run_deadline=RUN_DEADLINE))
        context = {n: "lost (no heartbeat)" for n, s in states.items() if s == LOST}
        if requested:
            context["api"] = "a write or an eviction"
        return overlay, options, {**{n: why[n] for n in sorted(asked)}, **context}

    def _pass(self) -> Outcome:
        timings.mark("pass")
        started, last_full = time.monotonic(), self._last_full
        objects = [from_json(r.body) for r in self.store.list()]
        nodes = self.nodes()
        with self._lock:
            evicting = set(self.evicting)
            event_at, self._event_at = self._event_at, None
        found: set[str] = set()  # pods seen on answering minions during this pass
        looked: set[str] = set()  # the minions that answered a look of this pass
        if self.watching is None:
            overlay, options, why = self._poll_look()
        else:
            overlay, options, why = self._watch_look([n.name for n in nodes])

        def watch(seen: Observation) -> tuple[Observation, set[str]]:
            view, stale = overlay(seen)
            with self._lock:
                self.evicting |= stale  # kept until they are gone, whichever look of the pass first saw them
                now_evicting = set(self.evicting)
            self.last = view
            found.update(p.name for p in view.pods if view.hosts[p.node].reachable)
            looked.update(n for n, h in view.hosts.items() if h.reachable)
            return view, now_evicting

        before = self.last
        planned: list[float] = []
        first = (lambda: self._looked(nodes, options)) if self.watcher is not None else None
        tried_at = self.clock()
        request = Request.of(objects, evict=evicting, hold=held(self.backoff, tried_at))
        outcome = converge(request, nodes, self.inventory, self.state_dir, options,
                           watch=watch,
                           hooks=Hooks(phase=lambda text: timings.mark(f"phase {text}"),
                                       run_started=lambda plan: planned.append(time.time())), first=first)
        if outcome.refused != self.refused:
            for why_left in outcome.refused:
                log.warning("reconcile: left alone: %s", why_left)
        self.refused = outcome.refused
        for warning in outcome.warnings:
            log.warning("reconcile: %s", warning)
        with self._lock:
            self._answering &= set(self.memory.lost)
        self.last_outcome = outcome
        backoff = self._backed_off(outcome)
        if self.events is not None:
            found_events, self._failing = pass_events(before, self.last, outcome, self._failing, frozenset(evicting),
                                                      frozenset(self.backoff))
            self.events.record(found_events + backoff_events(self.backoff, backoff, self.clock()))
        with self._lock:
            self.backoff = backoff
            self._retry_at = next_wake(backoff, tried_at)  # a wait that ended during this pass: due at once
            where = {p.name: p.node for seen in (before, self.last) if seen is not None for p in seen.pods}
            self.evicting -= evictions_done(self.evicting, found, looked, where)
        marks = timings.take() if timings.enabled() else []
        if self._last_full != last_full:  # this pass was a resync
            log.info("resync: %d minions observed whole in a pass of %.3f s",
                     len(nodes) - len(options.driver.skip_observe), time.monotonic() - started)
        if outcome.run is not None:
            self.metrics.ran(outcome)
            self._ran(outcome, why, event_at, planned[0] if planned else None, marks)
        return outcome

    def _backed_off(self, outcome: Outcome) -> dict[str, BackOff]:
        """The back-off memory after this pass: its run's failed creations back off, started ones and pods no
        longer wanted (or wanted in another version) are forgotten."""
        run = outcome.run
        wanted = {p.name: spec_hash(p.pod, p.controller) for p in outcome.schedule.placements}
        backoff = after_run(self.backoff, outcome.plan.creates if run is not None else (),
                            run.failed_pods() if run is not None else {}, run.created() if run is not None else (),
                            wanted, self.clock())
        for pod, b in sorted(backoff.items()):
            if self.backoff.get(pod) != b:
                log.warning("pod %s: %s (attempt %d): %s; next try in %.0f s", pod, b.reason, b.attempts, b.message,
                            b.next_try - self.clock())
        return backoff

    def _looked(self, nodes: list[Node], options: Options) -> Observation:
        """Watch mode's first look of a pass: the minions asked are observed by their helpers, over the sessions
        already open (no new process on either side, so a resync of the whole fleet costs little more than
        its answers); one whose session cannot answer in time is asked over a new SSH exec, as ever."""
        assert self.watcher is not None
        asked = [n.name for n in nodes if n.name not in options.driver.skip_observe]
        docs = self.watcher.look(asked, LOOK_TIMEOUT)
        driver = options.driver
        rest = observe(nodes, self.state_dir, driver.observe_timeout, skip=driver.skip_observe | set(docs))
        return Observation({n.name: read_view(n.name, docs[n.name]) if n.name in docs else rest.hosts[n.name]
                            for n in nodes})

    def _ran(self, outcome: Outcome, why: Mapping[str, str], event_at: float | None, planned: float | None,
             marks: list[tuple[float, str, str]]) -> None:
        """After a run: say what triggered it and where the time went; in watch mode, look at the minions it
        changed in the next pass (their last views are out of date now)."""
        assert outcome.run is not None
        changes = ", ".join(f"{c.action} {c.pod or ''}@{c.node}".replace(" @", " ") for c in outcome.plan.changes())
        triggered = "; ".join(f"{n}: {w}" for n, w in why.items()) or "a write, a lost minion or the poll"
        split = f", event to plan {planned - event_at:.2f} s" if event_at and planned else ""
        log.info("pass ran Ansible on %s (%s) in %.2f s%s; triggered by %s", ",".join(sorted(outcome.run.hosts)),
                 changes, time.time() - (planned or time.time()), split, triggered)
        if marks:
            log.info("pass marks %s", json.dumps({"event": event_at, "planned": planned, "marks": marks}))
        if self.watching is not None:
            with self._lock:
                for host in outcome.run.hosts:
                    self._dirty.setdefault(host, "after this master's run")
            self._wake.set()
