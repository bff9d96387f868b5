"""A pod's container on its minion: find it in one observation, read its logs, run a command in it.

Everything goes over the inventory's own SSH (``ssh.ssh_command``) to the minion's ``docker`` command; the CLI
and the master's log route build the same remote commands here. Container ids come from dockerd and every
user value is quoted, so nothing a user types becomes shell text on the minion.

``--previous``: our containers are restarted in place by dockerd's restart policy, so there is no separate
exited container to read. dockerd keeps one log per container across its restarts and the times of its
current (or last) run only. A container that is down between two runs (a crash loop's back-off, or exited)
shows exactly its last run (``--since StartedAt --until FinishedAt``); a running container that restarted
shows everything logged before its current run started (``--until StartedAt``): the last exited instance's
lines are the last ones of it.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from cluster_pilot.errors import UserError
from cluster_pilot.model import Node
from cluster_pilot.host.observed import Observation
from cluster_pilot.host.podformat import INFRA
from cluster_pilot.host.ssh import ssh_command

_SINCE = re.compile(r"^(\d+(\.\d+)?[smh]|\d{4}-\d\d-\d\d(T[0-9:.]+(Z|[+-]\d\d:\d\d)?)?)$")


@dataclass(frozen=True)
class Target:
    node: str
    pod: str
    container: str
    id: str


@dataclass(frozen=True)
class LogOptions:
    follow: bool = False
    tail: int | None = None
    since: str | None = None  # "10m", "90s", "2h" or an RFC 3339 time
    previous: bool = False
    timestamps: bool = False


def locate(seen: Observation, pod: str, container: str | None = None) -> Target:
    """The one container a user means; every way to miss it is a one-line error naming the choices."""
    found = seen.current().get(pod)
    if found is None:
        down = sorted(n for n, v in seen.hosts.items() if not v.reachable)
        hint = f" (not answering: {', '.join(down)})" if down else ""
        raise UserError(f"pod {pod!r} not found on any minion{hint}")
    members = {c.container: c for c in found.containers if c.container != INFRA}
    if container is None:
        if len(members) != 1:
            raise UserError(f"pod {pod!r} has containers {', '.join(sorted(members))}: choose one with -c")
        container = next(iter(members))
    if container not in members:
        raise UserError(f"pod {pod!r} has no container {container!r} (it has: {', '.join(sorted(members))})")
    return Target(found.node, pod, container, members[container].id)


def check_log_options(options: LogOptions) -> LogOptions:
    if options.tail is not None and options.tail < 0:
        raise UserError(f"--tail {options.tail}: expected a number of lines >= 0")
    if options.since is not None and not _SINCE.match(options.since):
        raise UserError(f"--since {options.since!r}: expected a duration such as 10m, 90s, 2h, or an RFC 3339 time")
    return options


def logs_remote(container_id: str, options: LogOptions) -> str:
    """The shell text the minion runs: ``docker logs`` with both streams kept apart (stdout to stdout)."""
    flags = []
    if options.tail is not None:
        flags.append(f"--tail {int(options.tail)}")
    if options.since is not None:
        flags.append("--since " + shlex.quote(options.since))
    if options.timestamps:
        flags.append("--timestamps")
    cid = shlex.quote(container_id)
    if options.previous:
        window = ('set -- $(docker inspect -f "{{.RestartCount}} {{.State.Running}} {{.State.StartedAt}} '
                  '{{.State.FinishedAt}}" ' + cid + ') || exit 1\n'
                  'if [ "$1" = 0 ] && [ "$2" = true ]; then '
                  'echo "no previous instance: the container has not restarted" >&2; exit 1; fi\n'
                  'if [ "$2" = true ]; then w="--until $3"; else w="--since $3 --until $4"; fi\n')
        return window + "exec docker logs $w " + " ".join(flags) + " " + cid
    if options.follow:
        flags.append("--follow")
        # the session's stdin closes when the client goes away: then stop following (no pty, no SIGHUP)
        return ("exec 3<&0; (cat <&3 >/dev/null 2>&1; kill $$ 2>/dev/null) >/dev/null 2>&1 & exec 3<&-\n"
                "exec docker logs " + " ".join(flags) + " " + cid)
    return "exec docker logs " + " ".join(flags) + " " + cid


def exec_remote(container_id: str, argv: Sequence[str], interactive: bool, tty: bool) -> str:
    flags = ("-i " if interactive else "") + ("-t " if tty else "")
    return f"exec docker exec {flags}{shlex.quote(container_id)} " + " ".join(shlex.quote(a) for a in argv)


def ssh_to(node: Node, cm_dir: Path, remote: str, tty: bool = False) -> list[str]:
    """``ssh_command`` for a pod's minion; ``tty`` asks for a terminal on the minion (``exec -t``)."""
    cmd = ssh_command(node, cm_dir, remote)
    return [cmd[0], "-tt", *cmd[1:]] if tty else cmd
