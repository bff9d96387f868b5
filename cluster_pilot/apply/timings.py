"""A timing trace of one ``cluster-pilot`` process, so that ``bench apply`` can split a whole run it timed from
outside (interpreter start, imports, observation, the lock, Ansible, the module's Docker work ...).

Off unless ``CLUSTER_PILOT_TIMINGS`` names a file: then every mark is kept in memory and the list is written
there, as JSON, when the command ends. A mark is (wall-clock seconds, name, host): the wall clock, because
the reader compares it with the moment it started the process.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

ENV = "CLUSTER_PILOT_TIMINGS"

_marks: list[tuple[float, str, str]] = []


def enabled() -> bool:
    return bool(os.environ.get(ENV))


def mark(name: str, host: str = "", at: float | None = None) -> None:
    if enabled():
        _marks.append((time.time() if at is None else at, name, host))


def write() -> None:
    """Write the trace (with a last mark, ``exit``) where the environment says; a no-op when off."""
    path = os.environ.get(ENV)
    if path:
        mark("exit")
        Path(path).write_text(json.dumps(_marks))


def take() -> list[tuple[float, str, str]]:
    """The marks so far, forgotten here: a long-lived process (the master) hands them on pass by pass."""
    taken = list(_marks)
    del _marks[: len(taken)]
    return taken
