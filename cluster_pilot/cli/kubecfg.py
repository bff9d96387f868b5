"""``kubecfg``: the 2014 client's verbs against a cluster-pilot master (filled in with the master)."""

from __future__ import annotations

import sys


def main() -> None:
    print("kubecfg: not yet: the cluster-pilot master and its kubecfg verbs are not implemented yet", file=sys.stderr)
    sys.exit(1)
