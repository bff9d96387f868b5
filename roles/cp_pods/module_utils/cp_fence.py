"""The fencing check that every write of ours on a minion makes, standard library only (it travels with the
modules: ``roles/cp_proxy/module_utils/cp_fence.py`` is a link to this file).

Each holding of the fleet lock has a fencing token, higher than any earlier holding's (see
``cluster_pilot/host/lock.py``). A minion keeps the highest token it has been written with; a write carrying
a lower one comes from a run whose lease ran out (paused, cut off) after a later run took the lock, and is
refused before it changes anything.
"""

from __future__ import annotations

import fcntl
import os

FENCE = "/var/lib/cluster-pilot/fence"  # the highest fencing token a write on this minion carried


class Fenced(Exception):
    pass


def _read(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def check(path, token):
    """Refuse ``token`` when this minion has seen a higher one; remember it when it is the highest. One step
    under an exclusive ``flock`` (the file replaced atomically), so two writers cannot both pass with their
    tokens in the wrong order. Token 0 (a module run by hand, an older runner) is not checked."""
    token = int(token or 0)
    if token <= 0:
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".guard", "a") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        seen = _read(path)
        if token < seen:
            raise Fenced("fencing token %d is older than %d, which this minion has seen: a later run holds the "
                         "fleet lock (this run's lease ran out); nothing changed here" % (token, seen))
        if token > seen:
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                f.write("%d\n" % token)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
