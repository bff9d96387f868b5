"""Which minions are alive, judged from their watch's heartbeats alone (pure: the caller says what time it is).

A minion is ``READY`` while its last healthy beat (one whose dockerd answered) is recent, ``SILENT`` once
beats stop but before ``grace`` has passed (its pods count as last seen), and ``LOST`` after it: not ready, its
controllers' pods are replaced elsewhere. A healthy beat brings a lost minion back at once. Flapping is damped:
for ``hold_down`` seconds after it came back, a minion is not declared lost again, so a host that drops a
few beats right after its return does not send its new pods off a second time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

READY, SILENT, LOST = "ready", "silent", "lost"
BEAT_EVERY = 1.0  # the helper's period
LATE = 2 * BEAT_EVERY  # a minion whose last healthy beat is older is silent (one missed beat is jitter)


@dataclass
class Liveness:
    grace: float = 4.0
    hold_down: float = 10.0
    started: float = 0.0  # a minion never heard of is judged from here
    first_grace: float = 15.0  # ... with this much room at least: 30 sessions opening at once take a while
    last_beat: dict[str, float] = field(default_factory=dict)  # node -> its last healthy beat
    lost: set[str] = field(default_factory=set)
    back: dict[str, float] = field(default_factory=dict)  # node -> when it last came back from lost

    def beat(self, node: str, now: float, docker: bool) -> bool:
        """Record a beat; True when it brings a lost minion back. A beat whose dockerd did not answer keeps
        nothing alive: such a minion cannot run pods."""
        if not docker:
            return False
        self.last_beat[node] = now
        if node in self.lost:
            self.lost.discard(node)
            self.back[node] = now
            return True
        return False

    def state(self, node: str, now: float) -> str:
        """Judge one minion now; declaring it lost is remembered (it stays lost until a healthy beat)."""
        if node in self.lost:
            return LOST
        heard = node in self.last_beat
        silent_for = now - self.last_beat.get(node, self.started)
        if heard and silent_for < LATE:
            return READY
        held = now < self.back.get(node, float("-inf")) + self.hold_down
        if silent_for < (self.grace if heard else max(self.grace, self.first_grace)) or held:
            return SILENT
        self.lost.add(node)
        return LOST

    def states(self, nodes: list[str], now: float) -> dict[str, str]:
        return {n: self.state(n, now) for n in nodes}
