"""The three PATCH forms of the Kubernetes API, over plain JSON documents. Pure.

- JSON patch (RFC 6902, ``application/json-patch+json``): a list of operations at JSON pointers;
- merge patch (RFC 7386, ``application/merge-patch+json``): maps merge, ``null`` deletes, lists are replaced;
- strategic merge patch (``application/strategic-merge-patch+json``, what ``kubectl apply``, ``label`` and
  ``edit`` send): a merge patch in which the lists of the core kinds that have a merge key are merged item by
  item (containers by ``name``, container ports by ``containerPort``, env by ``name``, volume mounts by
  ``mountPath``, volumes by ``name``, service ports by ``port``), with the directives ``$patch`` (``delete``,
  ``replace``, ``merge``), ``$setElementOrder/FIELD``, ``$deleteFromPrimitiveList/FIELD`` and ``$retainKeys``.
  Merge keys are those of Kubernetes' Go types for these kinds (``patchMergeKey`` tags); every other list is
  replaced whole, as there.

A patch that cannot apply raises ``PatchError`` (the API answers 422, or 409 for a failed ``test``).
"""

from __future__ import annotations

import copy
from typing import Any

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH)

# field name -> merge key, by what the list holds (a Service's ``ports`` are keyed by ``port``)
_MERGE_KEYS = {"containers": "name", "initContainers": "name", "volumes": "name", "env": "name",
               "volumeMounts": "mountPath", "imagePullSecrets": "name"}


class PatchError(ValueError):
    def __init__(self, message: str, failed_test: bool = False) -> None:
        super().__init__(message)
        self.failed_test = failed_test


def apply(media_type: str, document: dict[str, Any], patch: Any, kind: str) -> dict[str, Any]:
    """``document`` (an object of ``kind``) with ``patch`` of ``media_type`` applied; the input is not changed."""
    if media_type == JSON_PATCH:
        return json_patch(document, patch)
    if not isinstance(patch, dict):
        raise PatchError("a merge patch is a JSON object")
    if media_type == MERGE_PATCH:
        return merge_patch(document, patch)
    if media_type == STRATEGIC_MERGE_PATCH:
        return strategic_merge(document, patch, kind)
    raise PatchError(f"unknown patch type {media_type!r}: {', '.join(TYPES)}")


# --- RFC 7386 ---------------------------------------------------------------------------------------------

def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


# --- RFC 6902 ---------------------------------------------------------------------------------------------

def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise PatchError(f"path {path!r}: expected a JSON pointer such as /spec/replicas")
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]] if path else []


def _parent(doc: Any, parts: list[str], path: str) -> tuple[Any, str]:
    node = doc
    for part in parts[:-1]:
        node = _child(node, part, path)
    return node, parts[-1]


def _child(node: Any, part: str, path: str) -> Any:
    if isinstance(node, dict) and part in node:
        return node[part]
    if isinstance(node, list) and part.isdigit() and int(part) < len(node):
        return node[int(part)]
    raise PatchError(f"path {path!r}: {part!r} does not exist")


def _get(doc: Any, path: str) -> Any:
    node = doc
    for part in _pointer(path):
        node = _child(node, part, path)
    return node


def _remove(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        raise PatchError("cannot remove the whole document")
    parent, last = _parent(doc, parts, path)
    value = _child(parent, last, path)
    if isinstance(parent, list):
        del parent[int(last)]
    else:
        del parent[last]
    return value


def _add(doc: Any, path: str, value: Any) -> Any:
    parts = _pointer(path)
    if not parts:
        return value
    parent, last = _parent(doc, parts, path)
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise PatchError(f"path {path!r}: index {last!r} is out of range")
    else:
        raise PatchError(f"path {path!r}: the parent is neither an object nor a list")
    return doc


def json_patch(document: dict[str, Any], operations: Any) -> dict[str, Any]:
    if not isinstance(operations, list):
        raise PatchError("a JSON patch is a list of operations")
    doc: Any = copy.deepcopy(document)
    for i, op in enumerate(operations):
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"operation {i}: expected {{\"op\": ..., \"path\": ...}}")
        kind, path = op["op"], op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"operation {i} ({kind}): no value")
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)  # must exist
            if _pointer(path):
                _remove(doc, path)
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind in ("move", "copy"):
            if "from" not in op:
                raise PatchError(f"operation {i} ({kind}): no from")
            value = _remove(doc, op["from"]) if kind == "move" else copy.deepcopy(_get(doc, op["from"]))
            doc = _add(doc, path, value)
        elif kind == "test":
            if _get(doc, path) != op["value"]:
                raise PatchError(f"operation {i}: test of {path} failed", failed_test=True)
        else:
            raise PatchError(f"operation {i}: unknown op {kind!r}")
    if not isinstance(doc, dict):
        raise PatchError("the patched document is not an object")
    return doc


# --- strategic merge --------------------------------------------------------------------------------------

def merge_key(field: str, kind: str, path: tuple[str, ...]) -> str | None:
    """The key a list field's items are merged by, or None (replaced whole)."""
    if field == "ports":
        return "port" if kind == "Service" and path == ("spec",) else "containerPort"
    return _MERGE_KEYS.get(field)


def strategic_merge(document: dict[str, Any], patch: dict[str, Any], kind: str) -> dict[str, Any]:
    out = _merge_map(document, patch, kind, ())
    if out is None:
        raise PatchError("$patch: delete of the whole object: use DELETE")
    return out


def _merge_map(original: Any, patch: dict[str, Any], kind: str, path: tuple[str, ...]) -> dict[str, Any] | None:
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    body = {k: v for k, v in patch.items() if k != "$patch"}
    if directive == "replace":
        return _without_directives(body)
    if directive not in (None, "merge"):
        raise PatchError(f"unknown $patch directive {directive!r}")
    out = dict(original) if isinstance(original, dict) else {}
    orders = {k.split("/", 1)[1]: v for k, v in body.items() if k.startswith("$setElementOrder/")}
    deletions = {k.split("/", 1)[1]: v for k, v in body.items() if k.startswith("$deleteFromPrimitiveList/")}
    retain = body.get("$retainKeys")
    for key, value in body.items():
        if key.startswith("$"):
            continue
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict):
            merged = _merge_map(out.get(key), value, kind, (*path, key))
            if merged is None:
                out.pop(key, None)
            else:
                out[key] = merged
        elif isinstance(value, list):
            out[key] = _merge_list(out.get(key), value, key, kind, path)
        else:
            out[key] = value
    for key, values in deletions.items():
        if isinstance(out.get(key), list) and isinstance(values, list):
            out[key] = [v for v in out[key] if v not in values]
    for key, order in orders.items():
        if isinstance(out.get(key), list) and isinstance(order, list):
            out[key] = _ordered(out[key], order, merge_key(key, kind, path))
    if isinstance(retain, list):
        out = {k: v for k, v in out.items() if k in retain}
    return out


def _merge_list(original: Any, patch: list[Any], field: str, kind: str, path: tuple[str, ...]) -> list[Any]:
    key = merge_key(field, kind, path)
    if any(isinstance(item, dict) and item.get("$patch") == "replace" and len(item) == 1 for item in patch):
        return [_without_directives(i) for i in patch if not (isinstance(i, dict) and i.get("$patch") == "replace")]
    if key is None or not all(isinstance(item, dict) for item in patch):
        return [_without_directives(i) for i in patch]
    out = [dict(i) if isinstance(i, dict) else i for i in (original if isinstance(original, list) else [])]
    for item in patch:
        if key not in item:
            raise PatchError(f"{'.'.join((*path, field))}: an item without its merge key {key!r}")
        at = next((n for n, o in enumerate(out) if isinstance(o, dict) and o.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if at is not None:
                del out[at]
            continue
        merged = _merge_map(out[at] if at is not None else {}, item, kind, (*path, field))
        if merged is None:
            continue
        if at is None:
            out.append(merged)
        else:
            out[at] = merged
    return out


def _ordered(items: list[Any], order: list[Any], key: str | None) -> list[Any]:
    """``items`` in the order ``$setElementOrder`` gives; items it does not name keep their place after."""
    def ident(item: Any) -> Any:
        return item.get(key) if key and isinstance(item, dict) else item

    wanted = [ident(o) for o in order]
    rank = {w: n for n, w in enumerate(wanted) if not isinstance(w, (dict, list))}
    named = [i for i in items if not isinstance(ident(i), (dict, list)) and ident(i) in rank]
    return sorted(named, key=lambda i: rank[ident(i)]) + [i for i in items if i not in named]


def _without_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_without_directives(v) for v in value]
    return value
