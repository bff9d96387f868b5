"""The master's OpenAPI v3 documents for today's API, generated from the project's own JSON Schemas
(``schemas/v1``): the same contract ``validate`` and editors use, written as OpenAPI. Pure but for reading the
shipped schema files.

kubectl reads ``/openapi/v3`` and the ``api/v1`` document for three things: whether the server validates
fields itself (a ``fieldValidation`` parameter on the kind's PATCH operation, so kubectl sends
``fieldValidation=Strict`` instead of checking the file against a schema of its own), the merge keys of a
strategic merge patch (``x-kubernetes-patch-merge-key``, the same keys ``api.patch`` merges by), and
``kubectl explain``. Each kind's schema carries its ``x-kubernetes-group-version-kind``.

From JSON Schema 2020-12 to OpenAPI 3.0: ``$defs`` become components named ``<kind>.<def>``, ``const`` an
``enum`` of one, a type list of integer and string ``x-kubernetes-int-or-string``; ``propertyNames`` and our
``patternErrorMessage`` have no OpenAPI spelling and are left out (the server still checks them).
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from cluster_pilot.api import kinds
from cluster_pilot.api.patch import MERGE_PATCH, STRATEGIC_MERGE_PATCH, JSON_PATCH, merge_key
from cluster_pilot.manifests.schema import schema_of

PREFIX = "io.cluster-pilot.api.core.v1"
SCHEMA_KINDS = kinds.MANIFEST_KINDS  # the kinds with a schema: what can be written
_DROPPED = frozenset({"$schema", "propertyNames", "patternErrorMessage", "$defs"})


def _gvk(kind: str) -> dict[str, str]:
    return {"group": "", "version": "v1", "kind": kind}


def _convert(node: Any, kind: str, path: tuple[str, ...] = ()) -> Any:
    if isinstance(node, list):
        return [_convert(v, kind, path) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
            out["$ref"] = f"#/components/schemas/{PREFIX}.{kind}.{value.rsplit('/', 1)[1]}"
        elif key == "const":
            out["enum"] = [value]
        elif key == "type" and isinstance(value, list):
            if set(value) == {"integer", "string"}:
                out |= {"x-kubernetes-int-or-string": True, "format": "int-or-string"}
            else:
                out["anyOf"] = [{"type": t} for t in value]
        elif key == "properties" and isinstance(value, dict):
            out["properties"] = {name: _property(name, sub, kind, path) for name, sub in value.items()}
        else:
            out[key] = _convert(value, kind, path)
    return out


def _property(name: str, schema: Any, kind: str, path: tuple[str, ...]) -> Any:
    converted = _convert(schema, kind, (*path, name))
    key = merge_key(name, kind, path) if isinstance(converted, dict) and converted.get("type") == "array" else None
    if key is not None:
        converted |= {"x-kubernetes-patch-merge-key": key, "x-kubernetes-patch-strategy": "merge",
                      "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": [key]}
    return converted


def schemas() -> dict[str, Any]:
    """Every component: each writable kind (with ``status``, which the server fills in) and its definitions,
    and an open schema for the kinds the API only lists (nodes, namespaces, events)."""
    out: dict[str, Any] = {}
    for k in SCHEMA_KINDS:
        source = schema_of("v1", k.name)
        for name, definition in source.get("$defs", {}).items():
            out[f"{PREFIX}.{k.name}.{name}"] = _convert(definition, k.name, ("$defs", name))
        top = _convert(source, k.name)
        top["properties"] = {**top.get("properties", {}),
                             "status": {"type": "object", "description": "What the fleet reports; set by the server."}}
        top["x-kubernetes-group-version-kind"] = [_gvk(k.kind_v1)]
        out[f"{PREFIX}.{k.kind_v1}"] = top
    for k in kinds.V1:
        if k not in SCHEMA_KINDS:
            out[f"{PREFIX}.{k.kind_v1}"] = {"type": "object", "description": f"A {k.kind_v1}, as the master lists it.",
                                            "x-kubernetes-group-version-kind": [_gvk(k.kind_v1)]}
    return out


def _query(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": {"type": "string"}, "description": description}


_FIELD_VALIDATION = _query("fieldValidation", "Strict: an unknown field is an error; Ignore or Warn: dropped.")
_DRY_RUN = _query("dryRun", "All: check and answer, store nothing.")
_FIELD_MANAGER = _query("fieldManager", "Accepted; field managers are not kept yet.")
_SELECTORS = [_query("labelSelector", "a=b,c!=d"), _query("fieldSelector", "metadata.name=x, and per kind"),
              _query("watch", "true: a stream of changes"), _query("resourceVersion", "a list's, to watch from"),
              _query("allowWatchBookmarks", "true: BOOKMARK events"), _query("timeoutSeconds", "of a watch")]


def _operation(k: kinds.Kind, action: str, verb: str, parameters: list[dict[str, Any]],
               body: dict[str, Any] | None = None) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{PREFIX}.{k.kind_v1}"}
    answer = {"type": "object"} if action in ("list", "delete") else ref
    op: dict[str, Any] = {"operationId": f"{verb}CoreV1{k.kind_v1}", "x-kubernetes-action": action,
                          "x-kubernetes-group-version-kind": _gvk(k.kind_v1), "parameters": parameters,
                          "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": answer}}}}}
    if body is not None:
        op["requestBody"] = body
    return op


def _paths() -> dict[str, Any]:
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    namespace = {"name": "namespace", "in": "path", "required": True, "schema": {"type": "string"}}
    out: dict[str, Any] = {}
    for k in kinds.V1:
        scope = [namespace] if k.namespaced else []
        base = f"/api/v1/namespaces/{{namespace}}/{k.v1}" if k.namespaced else f"/api/v1/{k.v1}"
        collection: dict[str, Any] = {"get": _operation(k, "list", "list", [*scope, *_SELECTORS])}
        item: dict[str, Any] = {"get": _operation(k, "get", "read", [*scope, name])}
        if "create" in k.verbs:
            ref = {"$ref": f"#/components/schemas/{PREFIX}.{k.kind_v1}"}
            collection["post"] = _operation(k, "post", "create", [*scope, _FIELD_VALIDATION, _DRY_RUN, _FIELD_MANAGER],
                                            {"required": True, "content": {"application/json": {"schema": ref}}})
        if "patch" in k.verbs:
            patch = {"type": "object"}
            item["patch"] = _operation(k, "patch", "patch", [*scope, name, _FIELD_VALIDATION, _DRY_RUN, _FIELD_MANAGER],
                                       {"required": True, "content": {t: {"schema": patch} for t in
                                                                      (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH)}})
        if "delete" in k.verbs:
            item["delete"] = _operation(k, "delete", "delete", [*scope, name])
        out[base] = collection
        out[f"{base}/{{name}}"] = item
    return out


def core_v1() -> dict[str, Any]:
    """The ``api/v1`` document."""
    return {"openapi": "3.0.0", "info": {"title": "cluster-pilot master", "version": "v1"},
            "paths": _paths(), "components": {"schemas": copy.deepcopy(schemas())}}


def digest(document: dict[str, Any]) -> str:
    return hashlib.sha512(json.dumps(document, sort_keys=True).encode()).hexdigest()[:32].upper()


def root(core_digest: str) -> dict[str, Any]:
    """``/openapi/v3``: where each group version's document is, with its hash (kubectl caches by it)."""
    return {"paths": {"api/v1": {"serverRelativeURL": f"/openapi/v3/api/v1?hash={core_digest}"}}}
