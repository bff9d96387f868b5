"""The minions of an inventory file read again from what Ansible's parser made of it last time.

Importing Ansible and parsing an inventory costs a command 0.5-1.5 s before anything else happens, most of a
no-op apply. The nodes are kept in the home, keyed by everything the parse depends on: the file's path and
bytes, the ``ANSIBLE_*`` environment and the Ansible config files. Only a plain file is cached: not a
directory, a script, a file with ``host_vars``/``group_vars`` beside it, an inventory plugin's file (its hosts
come from elsewhere), nor one whose values are templates (they may read the environment or other files) or
vault-encrypted (the cache would keep them in clear). Anything else, and any miss, takes Ansible's parser. One
entry per inventory path, private to the user: a changed file replaces its entry.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where nodes are made: ``apply`` asks the hosts from the raw entries first
    from cluster_pilot.model import Node

_CONFIGS = ("ansible.cfg", "~/.ansible.cfg", "/etc/ansible/ansible.cfg")
FORMAT = b"3"  # raised whenever load_inventory keeps other variables (2: cp_service_network, 3: cp_lock_hosts)


def _key(source: Path, text: bytes) -> str:
    digest = hashlib.sha256(FORMAT + b"\0" + str(source.resolve()).encode() + b"\0" + text)
    digest.update(json.dumps(sorted((k, v) for k, v in os.environ.items() if k.startswith("ANSIBLE_"))).encode())
    for cfg in _CONFIGS:
        try:
            st = Path(cfg).expanduser().stat()
            digest.update(f"{Path(cfg).expanduser().resolve()}:{st.st_mtime_ns}:{st.st_size}".encode())
        except OSError:
            pass
    return digest.hexdigest()[:32]


_NOT_PLAIN = (b"{{", b"{%", b"$ANSIBLE_VAULT", b"!vault", b"plugin:")


def _cacheable(source: Path, text: bytes) -> bool:
    return (source.is_file() and not os.access(source, os.X_OK) and not any(m in text for m in _NOT_PLAIN)
            and not any((source.parent / d).exists() for d in ("host_vars", "group_vars")))


def _node(doc: dict[str, Any]) -> Node:
    from cluster_pilot.model import Node, Resources

    return Node(doc["name"], doc["address"], Resources(**doc["capacity"]), doc["labels"], doc["ready"], doc["vars"])


def _parse(path: str | os.PathLike[str]) -> list[Node]:
    """Ansible's parser, imported only on a miss: a hit must not pay for it (nor for the manifests it uses),
    as ``apply`` asks the hosts as soon as it has their addresses."""
    from cluster_pilot.host.inventory import load_inventory as parse

    return parse(path)


def cached(path: str | os.PathLike[str], cache_dir: Path) -> list[Node] | None:
    """The nodes kept for this inventory, or None when it is not a plain file or not seen as it is now."""
    docs = cached_docs(path, cache_dir)
    return None if docs is None else [_node(d) for d in docs]


def cached_docs(path: str | os.PathLike[str], cache_dir: Path) -> list[dict[str, Any]] | None:
    """``cached``'s nodes as kept (name, address, capacity, labels, ready, vars), no ``Node`` made."""
    source = Path(path).expanduser()
    try:
        text = source.read_bytes() if source.is_file() else b""
    except OSError:
        return None
    if not text or not _cacheable(source, text):
        return None
    try:
        doc = json.loads(_entry(source, cache_dir).read_text())
        if doc["key"] == _key(source, text) and isinstance(doc["nodes"], list):
            return doc["nodes"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _entry(source: Path, cache_dir: Path) -> Path:
    return cache_dir / f"inventory-{hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:16]}.json"


def load_inventory_cached(path: str | os.PathLike[str], cache_dir: Path) -> list[Node]:
    """``load_inventory(path)``, from the cache in ``cache_dir`` when the inventory is a plain file seen before."""
    hit = cached(path, cache_dir)
    if hit is not None:
        return hit
    source = Path(path).expanduser()
    try:  # the bytes before the parse: a file changed meanwhile is keyed as it was, and parsed again next time
        text = source.read_bytes() if source.is_file() else b""
    except OSError:
        text = b""
    nodes = _parse(path)
    if not text or not _cacheable(source, text):
        return nodes
    try:
        entry = _entry(source, cache_dir)
        cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        part = entry.with_suffix(f".{os.getpid()}.tmp")
        with os.fdopen(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            from dataclasses import asdict

            json.dump({"key": _key(source, text), "nodes": [asdict(n) for n in nodes]}, f)
        part.replace(entry)
    except (OSError, TypeError, ValueError):
        pass  # a cache that cannot be written only costs the next run the parse
    return nodes
