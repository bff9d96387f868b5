"""The pod format on a host: how a pod becomes named, labelled containers, and how they are read back.

Render writes it and observation reads it; the ``cp_pods`` module on the host follows it too.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Published:
    """One container port of a pod and where the minion publishes it."""

    container: str
    container_port: int
    protocol: str
    host_port: int
    name: str | None = None
