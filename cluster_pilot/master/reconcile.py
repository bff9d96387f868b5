"""The master's loop: make the minions match the store, again and again, through the one pipeline.

Every write triggers a pass, and the loop also wakes on its own (``heal_interval``, 1 s by default: a pass
that finds nothing to do costs one observation and no Ansible run). Minions that stop answering are given
``grace`` seconds: meanwhile their pods count as running where they were; after it they are not ready, the
pods of their controllers are replaced elsewhere, and when they come back those stale pods are evicted
before any proxy sends them traffic. Bare pods on a lost minion are reported lost, never moved.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from prometheus_client import (CollectorRegistry, Counter, Gauge, Summary, disable_created_metrics,
                               generate_latest)

from cluster_pilot.errors import UserError
from cluster_pilot.model import Node, from_json
from cluster_pilot.host.observe import HostView, Observation, observe_host
from cluster_pilot.host.records import Owner, refusal
from cluster_pilot.host.ssh import control_dir
from cluster_pilot.apply.pipeline import Options, Outcome, converge, fleet_records
from cluster_pilot.master.events import pass_events
from cluster_pilot.plan.planner import ACTIONS
from cluster_pilot.store import Store
from cluster_pilot.store.events import EventLog

log = logging.getLogger("cluster_pilot.master")

APPLYSET = "master"


@dataclass
class Memory:
    """What the master remembers of each minion between passes (a minion's last good view, its losses)."""

    last_ok: dict[str, float] = field(default_factory=dict)
    last_view: dict[str, HostView] = field(default_factory=dict)
    lost: dict[str, frozenset[str]] = field(default_factory=dict)  # node -> controller pods it had when lost
    since: dict[str, float] = field(default_factory=dict)  # node -> when it stopped answering


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


disable_created_metrics()  # the series /metrics always had, without a `_created` timestamp beside each counter


@dataclass(frozen=True)
class Snapshot:
    """What the API reads of the loop, taken at one moment."""

    seen: Observation | None  # the last observation, the minions' grace laid over it
    leaving: frozenset[str]  # pods deleted through the API, until they are gone
    generation: int  # passes completed


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
                 observe_timeout: float = 2.0, events: EventLog | None = None, url: str = "") -> None:
        self.store = store
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
        self._nodes: tuple[float, list[Node]] | None = None
        self._nodes_lock = threading.Lock()
        self.last: Observation | None = None
        self.last_outcome: Outcome | None = None
        self.generation = 0  # passes completed; a client may wait for the pass after its write
        self.refused: tuple[str, ...] = ()  # stored objects left alone: the CLI manages them

    # --- what the API reads -----------------------------------------------------------------------------
    def nodes(self) -> list[Node]:
        """The inventory's minions, read again whenever the file changes (hosts added or moved)."""
        with self._nodes_lock:
            mtime = self.inventory.stat().st_mtime if self.inventory.exists() else 0.0
            if self._nodes is None or self._nodes[0] != mtime:
                self._nodes = (mtime, self.load_nodes(self.inventory))
            return self._nodes[1]

    def snapshot(self) -> Snapshot:
        with self._lock:
            leaving = frozenset(self.evicting)
        return Snapshot(self.last, leaving, self.generation)

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
        self._wake.set()

    # --- the loop -------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="reconcile", daemon=True)
        self._thread.start()
        threading.Thread(target=self._probe, name="probe-lost-minions", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=120)

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

    def _pass(self) -> Outcome:
        objects = [from_json(r.body) for r in self.store.list()]
        nodes = self.nodes()
        with self._lock:
            evicting = set(self.evicting)
        found: set[str] = set()  # pods seen on answering minions during this pass

        def watch(seen: Observation) -> tuple[Observation, set[str]]:
            view, stale = with_grace(seen, self.memory, time.monotonic(), self.grace)
            with self._lock:
                self.evicting |= stale  # kept until they are gone, whichever look of the pass first saw them
                now_evicting = set(self.evicting)
            self.last = view
            found.update(p.name for p in view.pods if view.hosts[p.node].reachable)
            return view, now_evicting

        with self._lock:
            down = frozenset(set(self.memory.lost) - self._answering)
        before = self.last
        outcome = converge(objects, nodes, self.inventory, self.state_dir,
                           Options(prune=True, applyset=APPLYSET, lock_timeout=30, allow_pending=True,
                                   observe_timeout=self.observe_timeout, skip_observe=down,
                                   roll=False, master=self.url, skip_foreign=True),
                           evict=evicting, watch=watch)
        if outcome.refused != self.refused:
            for why in outcome.refused:
                log.warning("reconcile: left alone: %s", why)
        self.refused = outcome.refused
        for warning in outcome.warnings:
            log.warning("reconcile: %s", warning)
        with self._lock:
            self._answering &= set(self.memory.lost)
        self.last_outcome = outcome
        if self.events is not None:
            found_events, self._failing = pass_events(before, self.last, outcome, self._failing, frozenset(evicting))
            self.events.record(found_events)
        with self._lock:
            self.evicting -= {name for name in self.evicting if name not in found}
        if outcome.run is not None:
            self.metrics.ran(outcome)
        return outcome
