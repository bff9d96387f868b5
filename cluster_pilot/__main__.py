"""``cluster-pilot`` and ``python -m cluster_pilot``: asks the hosts first, then loads the command line.

An ``apply`` on a fleet whose inventory is cached starts its SSH round trips here, before click, the
pipeline and the manifests are imported (about 0.1 s of a no-op's 0.4-0.7 s); the verb takes that
observation (``host.probe.ask_ahead``) or, when it reads its options otherwise, asks again itself.
"""

from __future__ import annotations

import sys

from cluster_pilot.apply import timings

_VALUED = {"-f", "--filename", "--kind", "--applyset", "--lock-timeout", "--certificate-authority", "--token"}


def apply_inventory(args: list[str]) -> str | None:
    """The ``-i`` of an ``apply`` that works on the fleet itself ("" for the default), else None: another verb,
    ``--server`` or help. Only a guess made ahead of click: a wrong one costs an observation nobody takes."""
    if args[:1] != ["apply"]:
        return None
    inventory, rest = "", iter(args[1:])
    for arg in rest:
        if arg == "--" or arg in ("-h", "--help") or arg.startswith("--server"):
            return None
        if arg in _VALUED:
            next(rest, None)
        elif arg in ("-i", "--inventory"):
            inventory = next(rest, "")
        elif arg.startswith("--inventory="):
            inventory = arg.partition("=")[2]
        elif arg.startswith("-i") and not arg.startswith("--"):
            inventory = arg[2:]
    return inventory


def _ask_ahead(args: list[str]) -> None:
    given = apply_inventory(args)
    if given is None:
        return
    from cluster_pilot.home import default_inventory, state_dir
    from cluster_pilot.host.inventory_cache import cached_docs
    from cluster_pilot.host.probe import ask_ahead

    home = state_dir()
    hosts = cached_docs(given or default_inventory(), home / "cache")
    if hosts:
        ask_ahead(hosts, home)


def main() -> None:
    timings.mark("python")
    try:
        _ask_ahead(sys.argv[1:])
    except Exception:  # noqa: BLE001 - only a head start: the verb itself reports whatever is wrong
        pass
    timings.mark("asked")
    from cluster_pilot.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
