"""The local multi-host sandbox: minions as containers with sshd and dockerd, a registry, an inventory."""

from cluster_pilot.sandbox.fleet import MAX_MINIONS, MinionStatus, Sandbox

__all__ = ["MAX_MINIONS", "MinionStatus", "Sandbox"]
