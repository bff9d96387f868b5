"""What one reconcile pass did and saw, as events (pure): the master records them in ``store.events``.

Derived only from values the pass already has (the observation before and after, the schedule, the plan that
ran), so recording events costs no extra look at the hosts. Scheduling failures are recorded when their
explanation changes, not once a second.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from cluster_pilot.host.observed import ObservedPod, Observation
from cluster_pilot.host.podformat import INFRA
from cluster_pilot.api.kinds import MINION
from cluster_pilot.model import POD
from cluster_pilot.plan.planner import Create
from cluster_pilot.scheduler import Schedule
from cluster_pilot.store.events import Event

if TYPE_CHECKING:  # a type only: the pipeline observes, and this module is pure
    from cluster_pilot.apply.pipeline import Outcome



def pass_events(before: Observation | None, after: Observation | None, outcome: Outcome | None,
                failing: Mapping[str, str], evicted: frozenset[str],
                retried: frozenset[str] = frozenset()) -> tuple[list[Event], dict[str, str]]:
    """Every event of one pass, and the scheduling failures now known (pod -> explanation). ``retried``: pods
    backing off before this pass (their Scheduled was said at their first try)."""
    out: list[Event] = []
    if after is not None:
        out += minion_events(before, after) + restart_events(before, after)
    if outcome is None:
        return out, dict(failing)
    out += scheduling_failures(outcome.schedule, failing)
    if outcome.run is not None:
        out += plan_events(outcome, evicted, retried)
    return out, {u.pod: u.message for u in outcome.schedule.unschedulable}


def minion_events(before: Observation | None, after: Observation) -> list[Event]:
    """MinionNotReady when a minion's grace ran out, MinionReady when it answers again."""
    if before is None:
        return []
    out = []
    for name, view in sorted(after.hosts.items()):
        old = before.hosts.get(name)
        was, now = old is not None and (old.reachable or old.stale), view.reachable or view.stale
        if old is not None and was and not now:
            out.append(Event(MINION, name, "MinionNotReady", f"{name} does not answer: {view.error}", name))
        elif old is not None and not was and now:
            out.append(Event(MINION, name, "MinionReady", f"{name} answers again", name))
    return out


def restart_events(before: Observation | None, after: Observation) -> list[Event]:
    """A container that dockerd is restarting (its crash loop's back-off), once per crash seen."""
    if before is None:
        return []
    states = {c.id: c.state for p in before.pods for c in p.containers}
    return [Event(POD, p.name, "Restarted", f"container {c.container} exited with code {_code(c.exit_code)}; "
                  "dockerd restarts it", p.node)
            for p in after.pods for c in p.containers
            if c.state == "restarting" and states.get(c.id, "restarting") != "restarting"]


def scheduling_failures(schedule: Schedule, known: Mapping[str, str]) -> list[Event]:
    """FailedScheduling with the scheduler's explanation, when it is new for that pod (``known``: pod -> last)."""
    return [Event(POD, u.pod, "FailedScheduling", u.message) for u in schedule.unschedulable
            if known.get(u.pod) != u.message]


def plan_events(outcome: Outcome, evicted: frozenset[str] = frozenset(),
                retried: frozenset[str] = frozenset()) -> list[Event]:
    """What a pass that ran Ansible did: Scheduled + Created, Replaced, Killed, Evicted, ProxyReconfigured. A
    creation the run reports failed is no Created (nor Replaced): the back-off's event says why (``backoff``)."""
    todo = outcome.plan
    replaced = {(r.node, r.pod) for r in todo.removes} & {(c.node, c.name) for c in todo.creates}
    failed = outcome.run.failed_pods() if outcome.run is not None else {}
    out: list[Event] = []
    for c in todo.creates:
        if (c.node, c.name) in replaced and c.name in failed:
            continue
        if (c.node, c.name) in replaced:
            out.append(Event(POD, c.name, "Replaced", _broken(outcome.observation, c), c.node))
            continue
        ready = sum(1 for v in outcome.observation.hosts.values() if v.reachable or v.stale)
        if c.name in retried and c.name in failed:
            continue  # one more failed try of a pod backing off: its back-off event says it
        out.append(Event(POD, c.name, "Scheduled", f"assigned to {c.node}: {_why(outcome.schedule, c, ready)}",
                         c.node))
        if c.name in failed:
            continue
        out.append(Event(POD, c.name, "Created", "started " + ", ".join(
            f"{k.name} ({k.image})" for k in c.pod.spec.containers), c.node))
    for r in todo.removes:
        if (r.node, r.pod) in replaced:
            continue
        reason = "Evicted" if r.pod in evicted or r.reason in ("evicted", "node lost") else "Killed"
        out.append(Event(POD, r.pod, reason, f"removed from {r.node}: {r.reason}", r.node))
    if todo.proxy_nodes:
        out.append(Event(MINION, ",".join(todo.proxy_nodes), "ProxyReconfigured",
                         f"proxy document {_short(todo.proxy)} on {', '.join(todo.proxy_nodes)}"))
    return out


def _why(schedule: Schedule, c: Create, ready: int) -> str:
    """The ranking's facts for the chosen node (spread first, then least requested), after the choice."""
    if c.pod.spec.host:
        return f"pinned to host {c.pod.spec.host}"
    there = [p for p in schedule.placements if p.node == c.node]
    spread = ""
    if c.controller:
        siblings = sum(1 for p in there if p.controller == c.controller and p.name != c.name)
        spread = f"fewest pods of {c.controller} ({siblings} other there), then "
    return f"{spread}least requested of {ready} ready minions; {len(there)} pods there now"


def _broken(seen: Observation, c: Create) -> str:
    old: ObservedPod | None = next((p for p in seen.pods if p.name == c.name and p.node == c.node), None)
    if old is None:
        return f"new version on {c.node}"
    if old.spec_hash != c.spec_hash:
        return f"spec changed: new version on {c.node}"
    down = [f"{k.container} {k.state} (exit code {_code(k.exit_code)})" for k in old.containers
            if k.state != "running" and k.container != INFRA]
    missing = sorted(set(old.expected) - {k.container for k in old.containers})
    infra = [k for k in old.containers if k.container == INFRA and k.state != "running"]
    parts = down + [f"{m} missing" for m in missing] + (["infra container down"] if infra else [])
    return "broken: " + (", ".join(parts) or "incomplete") + f"; recreated on {c.node}"


def _code(code: int | None) -> str:
    return "?" if code is None else str(code)


def _short(digest: str) -> str:
    return digest[:12] if digest else "(none)"
