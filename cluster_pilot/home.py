"""Where cluster-pilot keeps its state: ``$CLUSTER_PILOT_HOME``, else the XDG data dir."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    explicit = os.environ.get("CLUSTER_PILOT_HOME")
    if explicit:
        base = Path(explicit)
    else:
        xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        base = Path(xdg) / "cluster-pilot"
    base.mkdir(mode=0o700, parents=True, exist_ok=True)  # the store and the master's token live here
    return base


def sandbox_dir() -> Path:
    d = state_dir() / "sandbox"
    d.mkdir(parents=True, exist_ok=True)
    return d


def default_inventory() -> Path:
    """With no ``-i``, every command works on the sandbox's inventory."""
    return state_dir() / "sandbox" / "inventory.yml"
