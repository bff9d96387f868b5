"""Request bodies: the same validation as manifest files, lenient about the zero values and read-only fields
the 2014 client sends, and checked against every other stored object as one set."""

from __future__ import annotations

import json
from typing import Sequence

from cluster_pilot.errors import ValidationFailed
from cluster_pilot.manifests import check_set, normalise_object
from cluster_pilot.manifests.normalise import strip_unset
from cluster_pilot.manifests.policy import Policy
from cluster_pilot.master.routes.errors import ApiError
from cluster_pilot.model import Object, from_json
from cluster_pilot.store import Record

BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}}


def parse_body(raw: bytes, kind: str, stored: Sequence[Record], name: str | None = None,
               policy: Policy | None = None, strict: bool = False) -> Object:
    """``strict``: unknown fields are refused (today's ``fieldValidation=Strict``, which kubectl sends), after
    the fields only the server sets and nulls are dropped; otherwise they are ignored, as the 2014 server did."""
    data = _json_object(raw)
    if name is not None and not data.get("id") and not (data.get("metadata") or {}).get("name"):
        data = {**data, "id": name}
    try:
        if strict:
            obj = normalise_object(strip_unset(data), "request body", kind_hint=kind, policy=policy)
        else:
            obj = normalise_object(data, "request body", kind_hint=kind, lenient=True, policy=policy)
    except ValidationFailed as exc:
        errors = [p for p in exc.problems if getattr(p, "severity", "error") == "error"] or exc.problems
        raise ApiError(400, "; ".join(_short(p) for p in errors[:5]), "Invalid") from None
    if obj.kind != kind:
        raise ApiError(400, f"request body: a {obj.kind} cannot be written to {kind} resources", "Invalid")
    if name is not None and obj.meta.name != name:
        raise ApiError(400, f"request body: id {obj.meta.name!r} does not match {name!r} in the path", "Invalid")
    others = [from_json(r.body) for r in stored if (r.kind, r.name) != (obj.kind, obj.meta.name)]
    errors, _ = check_set([*others, obj])
    mine = [p for p in errors if f"{obj.kind} {obj.meta.name}" in str(p) or "request body" in str(p)]
    if mine:
        raise ApiError(400, "; ".join(_short(p) for p in mine[:5]), "Invalid")
    return obj


def json_value(raw: bytes) -> object:
    """The body as JSON, any value (a JSON patch is a list); a 400 when it is not JSON."""
    try:
        data = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ApiError(400, f"request body: not JSON: {exc}", "Invalid") from None
    if _has_surrogate(data):
        raise ApiError(400, "request body: not JSON: a lone UTF-16 surrogate escape (\\ud800-\\udfff) is not "
                            "a character", "Invalid")
    return data


def _json_object(raw: bytes) -> dict:
    data = json_value(raw)
    if not isinstance(data, dict):
        raise ApiError(400, "request body: expected a JSON object", "Invalid")
    return data


def _has_surrogate(value) -> bool:
    """`json.loads` turns an unpaired `\\ud800` escape into a str that cannot be encoded again; found here it
    is the client's 400, found later, when the object is stored or logged, it would be our 500."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_surrogate(v) for v in value)
    return False


def resource_version(raw: bytes) -> int | None:
    """The version a PUT was based on; 0 or absent (the 2014 client's zero value) means "any". A value that
    is not a whole number is a 400: read as "any", it would turn a guarded update into a blind one."""
    data = json.loads(raw)  # parse_body has read it already: a JSON object
    metadata = data.get("metadata")
    value = data.get("resourceVersion") or (metadata.get("resourceVersion") if isinstance(metadata, dict) else None)
    if value in (None, "", 0):
        return None
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        number = int(value)
    except (ValueError, TypeError):
        raise ApiError(400, f"resourceVersion {value!r}: expected a whole number", "Invalid") from None
    return number or None


def _short(problem) -> str:
    """A problem without its file position (the file is the request body)."""
    text = str(problem)
    return text.split(": ", 1)[1] if text.startswith("request body") and ": " in text else text
