"""The one table of kinds: every name a kind goes by, in the API's paths, on the command line and in manifests.

The master's paths, ``kubecfg``, ``get``/``delete`` and ``--kind`` all look words up here, so a kind, a plural or
a short name is added in one row. Words are matched in any case and with slashes around them (``/pods``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from cluster_pilot.model import POD, REPLICATION_CONTROLLER, SERVICE

MINION = "Minion"  # not a model object: minions come from the inventory, and the API only lists them
NAMESPACE = "Namespace"  # neither: the namespaces objects name, and ``default``
EVENT = "Event"


@dataclass(frozen=True)
class Kind:
    name: str  # as in ``kind:``
    v1beta1: str  # the 2014 API's path segment, ``/api/v1beta1/replicationControllers``
    v1: str  # today's plural
    short: str  # ``kubecfg``-era short name, shown in messages
    aliases: tuple[str, ...] = ()  # other words people type for it
    v1_kind: str = ""  # today's kind name where it differs (a Minion is a Node)
    namespaced: bool = True  # in today's API: under /api/v1/namespaces/NS/
    verbs: tuple[str, ...] = ("create", "delete", "get", "list", "patch", "update", "watch")  # what /api/v1 serves

    @property
    def kind_v1(self) -> str:
        return self.v1_kind or self.name

    @property
    def singular(self) -> str:
        return self.kind_v1.lower()

    @property
    def list_kind(self) -> str:
        return self.name + "List"

    @property
    def words(self) -> frozenset[str]:
        """Every word naming this kind, lower case."""
        return frozenset(w.lower() for w in (self.name, self.v1beta1, self.v1, self.short, *self.aliases) if w)


PODS = Kind(POD, "pods", "pods", "po")
CONTROLLERS = Kind(REPLICATION_CONTROLLER, "replicationControllers", "replicationcontrollers", "rc", ("rcs",))
SERVICES = Kind(SERVICE, "services", "services", "svc")
MINIONS = Kind(MINION, "minions", "nodes", "no", ("node",), "Node", namespaced=False, verbs=("get", "list", "watch"))
# Today's API only: namespaces are the ones objects name; events are the master's log (``/api/v1beta1/events``).
NAMESPACES = Kind(NAMESPACE, "", "namespaces", "ns", namespaced=False, verbs=("get", "list", "watch"))
EVENTS = Kind(EVENT, "events", "events", "ev", verbs=("get", "list", "watch"))

TABLE = (PODS, CONTROLLERS, SERVICES, MINIONS)
V1 = (PODS, CONTROLLERS, SERVICES, MINIONS, NAMESPACES, EVENTS)  # what ``/api/v1`` serves
MANIFEST_KINDS = (PODS, CONTROLLERS, SERVICES)  # what a manifest can hold (minions come from the inventory)
_BY_NAME = {k.name: k for k in TABLE}


def of(name: str) -> Kind:
    """The row of a kind name (``ReplicationController``)."""
    return _BY_NAME[name]


def find(word: str, among: Iterable[Kind] = TABLE) -> Kind | None:
    """``/pods``, ``pods``, ``po``, ``Pod``, ``replicationcontrollers``, ``RC``...: the kind a word names."""
    key = word.strip().strip("/").lower()
    return next((k for k in among if key in k.words), None)


def spelled(items: Iterable[str], last: str = "or") -> str:
    """``a, b, c or d``: a list of names for a message."""
    names = list(items)
    return f"{', '.join(names[:-1])} {last} {names[-1]}" if len(names) > 1 else "".join(names)
