"""What an object's name (a v1beta1 ``id``, a v1 ``metadata.name``) may be: the one rule for every place a name
comes in. Manifests and request bodies (``manifests.checks``), names on our command line and ``kubecfg``'s
(``cli.options.named``) and in the master's paths (``master.routes.errors.named``) all ask ``refusal``.

Kubernetes' rule for the kind: a pod's and a controller's name is a DNS-1123 subdomain (lower-case letters,
digits, ``-`` and ``.``, each dot-separated part starting and ending with a letter or digit, at most 253
characters), a service's a DNS-1123 label (no ``.``, at most 63), since it becomes a DNS name. A v1beta1 name
(and a name whose version is not known, as on a command line: it may be either) may also hold upper-case
letters, because the seed's 2014 ids are camelCase (``redisSlaveController``, ``frontendController``). Either
way a name never starts with ``-``: names reach command lines (``docker``, ``ssh``, Ansible), where ``-rf`` or
``--privileged`` would be one ``--`` away from an option; nor is it ``.`` or ``..``, or holds ``/``, which
would make it a path. A minion's name comes from the fleet's inventory, whose host names are Ansible's
business: it is only held to those last rules.
"""

from __future__ import annotations

import re

from cluster_pilot.model import POD, REPLICATION_CONTROLLER, SERVICE

LABEL_MAX = 63
SUBDOMAIN_MAX = 253

_PART = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_PART_2014 = r"[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?"
_LABEL = re.compile(_PART + r"\Z")
_LABEL_2014 = re.compile(_PART_2014 + r"\Z")
_SUBDOMAIN = re.compile(rf"{_PART}(\.{_PART})*\Z")
_SUBDOMAIN_2014 = re.compile(rf"{_PART_2014}(\.{_PART_2014})*\Z")

_SUBDOMAIN_KINDS = (POD, REPLICATION_CONTROLLER)


def refusal(kind: str, name: object, api_version: str | None = None) -> str | None:
    """Why ``name`` cannot name an object of ``kind`` (``Pod``, ``Service``...; ``api_version`` ``v1``,
    ``v1beta1`` or None for "either"), worded to follow the name; or None."""
    if not isinstance(name, str):
        return "is not a string"
    if not name:
        return "must not be empty"
    if name.startswith("-"):
        return 'starts with "-", which a command line would read as an option: start it with a letter or digit'
    if name in (".", "..") or "/" in name:
        return 'must not be "." or ".." or hold "/": a name is one word, not a path'
    if any("\ud800" <= c <= "\udfff" for c in name):
        return "holds a lone surrogate (a \\ud800-\\udfff escape not part of a pair): it is not Unicode text"
    if not name.isprintable() or any(c.isspace() for c in name):
        return "holds a space or a control character: a name is one word of printable text"
    if kind not in (POD, REPLICATION_CONTROLLER, SERVICE):
        return None  # a minion's (the inventory's host names), or a kind we do not name
    old = api_version != "v1"
    if kind in _SUBDOMAIN_KINDS:
        pattern, limit = (_SUBDOMAIN_2014 if old else _SUBDOMAIN), SUBDOMAIN_MAX
        shape = 'a DNS-1123 subdomain: letters, digits, "-" and ".", each part between dots starting and ending ' \
                "with a letter or digit"
    else:
        pattern, limit = (_LABEL_2014 if old else _LABEL), LABEL_MAX
        shape = 'a DNS-1123 label: letters, digits and "-", starting and ending with a letter or digit'
    if len(name) > limit:
        return f"is longer than {limit} characters"
    if pattern.match(name):
        return None
    if old:
        return f"must be {shape} (upper-case letters too, as in the 2014 id \"redisSlaveController\")"
    if (_SUBDOMAIN_2014 if kind in _SUBDOMAIN_KINDS else _LABEL_2014).match(name):
        return f"must be {shape.replace('letters', 'lower-case letters', 1)} (e.g. \"redis-master\"): " \
               "upper-case letters are for v1beta1 ids only"
    return f"must be {shape.replace('letters', 'lower-case letters', 1)} (e.g. \"redis-master\")"
