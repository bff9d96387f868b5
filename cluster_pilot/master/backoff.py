"""Back-off for pods that cannot run (pure): the master's memory of pods whose creation failed, and when each may
be tried again.

Without it a pod whose image is in no registry, or that dockerd refuses, is planned again by every pass, and every
pass after a run looks again: the audit counted 18-28 Ansible runs in 20 s for one such pod, for as long as it
existed. As Kubernetes' kubelet does, each failure of the same version of a pod doubles its wait, from ``BASE``
up to ``CAP``; the wait is per pod, and a pod that waits gets no action at all (``planner.plan``'s ``hold``), so
the rest of the fleet is planned, and healed, as if it were not there.

The memory is reset when the pod's spec changes (a new spec hash is a new version: it is tried at once), when
its creation is reported done, and when the pod is no longer wanted. It lives in the master only: a lost
memory (a restarted master) costs one more attempt, never a wrong action.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from cluster_pilot.model import POD
from cluster_pilot.plan.planner import Create
from cluster_pilot.store.events import Event

BASE = 10.0  # seconds before the first retry (the kubelet's)
CAP = 300.0  # the longest wait (the kubelet's 5 minutes)
IMAGE_PULL = "ImagePullBackOff"
CREATE = "CreateContainerError"
# how cp_pods words a failed pull: "pull IMAGE: ..." when dockerd's progress stream reports the error, dockerd's own
# "POST /images/create: 500 ..." when it answers the request with one (an unknown registry host, for one)
PULLS = ("pull ", "POST /images/create")
NOT_TRIED = "not done:"  # cp_pods' word for an action a cut run never reached: not the pod's fault


@dataclass(frozen=True)
class BackOff:
    """One pod's failed attempts at one version (``spec_hash``), and when it may be tried again (monotonic)."""

    spec_hash: str
    node: str
    controller: str | None  # whose pod it is (None: a bare pod): listings describe it by its owner
    attempts: int
    next_try: float
    reason: str  # IMAGE_PULL or CREATE, as ``get pods`` shows it
    message: str  # dockerd's refusal, environment values masked (``apply.masking``)


def delay(attempts: int) -> float:
    """The wait after ``attempts`` failures in a row: 10 s, 20 s, 40 s ... at most 300 s."""
    return CAP if attempts > 16 else min(BASE * 2 ** (max(attempts, 1) - 1), CAP)


def reason_of(error: str) -> str:
    return IMAGE_PULL if error.startswith(PULLS) else CREATE


def after_run(state: Mapping[str, BackOff], tried: Iterable[Create], failed: Mapping[str, str], created: Iterable[str],
              wanted: Mapping[str, str], now: float) -> dict[str, BackOff]:
    """The memory after one pass: ``tried``, the creations its run attempted; ``failed``, pod -> the module's
    error; ``created``, the pods it reported started; ``wanted``, pod -> the spec hash the schedule wants now
    (a pass that ran nothing passes no ``tried``: only forgetting happens)."""
    done = set(created)
    out = {pod: b for pod, b in state.items() if wanted.get(pod) == b.spec_hash and pod not in done}
    for c in tried:
        error = failed.get(c.name)
        if error is None or error.startswith(NOT_TRIED):
            continue  # started (forgotten above), or never reached: tried again as planned
        before = out.get(c.name)
        attempts = before.attempts + 1 if before is not None and before.spec_hash == c.spec_hash else 1
        out[c.name] = BackOff(c.spec_hash, c.node, c.controller, attempts, now + delay(attempts), reason_of(error),
                              error)
    return out


def held(state: Mapping[str, BackOff], now: float) -> frozenset[tuple[str, str]]:
    """(pod, spec hash) of every version whose next try is still to come: the planner leaves them out."""
    return frozenset((pod, b.spec_hash) for pod, b in state.items() if b.next_try > now)


def next_wake(state: Mapping[str, BackOff], since: float) -> float | None:
    """When the earliest wait that was still to come at ``since`` (a pass's start: it held those) ends, or
    None: a pass is due then. One that ended meanwhile is due at once; one that had ended before ``since``
    was planned by that pass, and waits for its renewal."""
    return min((b.next_try for b in state.values() if b.next_try > since), default=None)


def backoff_events(before: Mapping[str, BackOff], after: Mapping[str, BackOff], now: float) -> list[Event]:
    """One event per failed attempt (a new or renewed back-off), with the reason, dockerd's words and the wait."""
    return [Event(POD, pod, b.reason, f"{b.message}; attempt {b.attempts}, next try in {b.next_try - now:.0f} s",
                  b.node)
            for pod, b in sorted(after.items()) if before.get(pod) != b]
