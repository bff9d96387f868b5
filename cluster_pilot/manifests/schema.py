"""The JSON Schemas shipped in ``schemas/``: loaded and compiled once, and their errors told the way a person
fixes them (``/spec/replicas: "2" is not an integer``, not a dump of the schema).

The schemas are the contract editors see too (``cluster-pilot schema Pod``), so everything a schema can say
is said there, and the loader adds only what a schema cannot (``checks``). Strict schemas refuse unknown
fields, which catches typos; the lenient variant, for bodies sent by the 2014 client, ignores them as the
2014 server did.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
from dataclasses import dataclass
from typing import Callable

import jsonschema
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from cluster_pilot.manifests.fastcheck import Check, compile_pattern, compile_schema
from cluster_pilot.manifests.problem import Finding, escape, pointer_of, show
from cluster_pilot.resources import resource_dir

VERSIONS = ("v1beta1", "v1")
SCHEMA_KINDS = ("Pod", "ReplicationController", "Service", "List")

# Fields the server fills in; written in a manifest they are a sign of a copied `get -json` output.
READ_ONLY = frozenset({"currentState", "creationTimestamp", "resourceVersion", "selfLink", "uid", "status",
                       "generation", "managedFields"})
_V1_ONLY = frozenset({"metadata", "spec"})
_V1BETA1_ONLY = frozenset({"id", "desiredState", "labels", "port", "selector", "containerPort"})

MAX_FINDINGS = 100  # per object: a mapping with 400,000 wrong entries needs one message, not 400,000

_TYPE_NAMES = {
    "integer": "an integer", "number": "a number", "string": "a string", "boolean": "a boolean (true or false)",
    "object": "a mapping", "array": "a list", "null": "null",
}


def _pattern(validator, pattern: str, instance: object, schema: dict):
    if validator.is_type(instance, "string") and not compile_pattern(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


_Validator = jsonschema.validators.extend(Draft202012Validator, {"pattern": _pattern})


@dataclass(frozen=True)
class Compiled:
    is_valid: Check
    validator: Draft202012Validator
    version: str


def schema_path(version: str, kind: str):
    if version not in VERSIONS or kind not in SCHEMA_KINDS:
        raise KeyError(f"no schema for {kind} {version}")
    return resource_dir("schemas") / version / f"{kind}.json"


@functools.cache
def schema_of(version: str, kind: str) -> dict:
    with open(schema_path(version, kind), encoding="utf-8") as f:
        return json.load(f)


@functools.cache
def compiled(version: str, kind: str, lenient: bool = False) -> Compiled:
    schema = schema_of(version, kind)
    if lenient:
        schema = _relaxed(copy.deepcopy(schema))
    return Compiled(compile_schema(schema), _Validator(schema), version)


def _relaxed(node: object) -> object:
    """The schema with every ``additionalProperties: false`` removed: unknown fields are ignored."""
    if isinstance(node, dict):
        if node.get("additionalProperties") is False:
            del node["additionalProperties"]
        for value in node.values():
            _relaxed(value)
    elif isinstance(node, list):
        for value in node:
            _relaxed(value)
    return node


def check(data: object, version: str, kind: str, lenient: bool = False,
          plain: Callable[[str], str | None] | None = None) -> list[Finding]:
    """Every schema error of one object (empty when valid). ``plain`` gives the unquoted YAML text at a
    pointer, if there was one, so that a type error can say what YAML made of it."""
    schema = compiled(version, kind, lenient)
    if schema.is_valid(data):
        return []
    findings: list[Finding] = []
    done: set[tuple[str, str]] = set()
    ranked: dict[str, tuple[int, int]] = {}  # pointer -> (rank, index in findings) of the value error kept
    for error in schema.validator.iter_errors(data):
        if len(findings) >= MAX_FINDINGS:
            findings.append(Finding("", f"more problems in this object; only the first {MAX_FINDINGS} are shown"))
            break
        for finding in _explain(error, schema.version, plain, done):
            if error.validator in ("required", "additionalProperties"):
                findings.append(finding)
                continue
            # One message per value: "" is better told "must not be empty" than also "does not match".
            rank = _RANK.get(error.validator, len(_RANK))
            kept = ranked.get(finding.pointer)
            if kept is None:
                ranked[finding.pointer] = (rank, len(findings))
                findings.append(finding)
            elif rank < kept[0]:
                ranked[finding.pointer] = (rank, kept[1])
                findings[kept[1]] = finding
    return findings


_RANK = {"type": 0, "minLength": 1, "maxLength": 2, "pattern": 3}


def _explain(error: ValidationError, version: str, plain, done: set) -> list[Finding]:
    pointer = pointer_of(error.absolute_path)
    keyword = error.validator
    value = error.instance
    rule = error.validator_value
    schema = error.schema if isinstance(error.schema, dict) else {}
    in_names = "propertyNames" in error.relative_schema_path
    if in_names:  # the instance is a key of the mapping at `pointer`
        pointer = f"{pointer}/{escape(str(value))}"

    if keyword == "required":
        if (pointer, "required") in done:
            return []
        done.add((pointer, "required"))
        return [Finding(f"{pointer}/{escape(name)}", f"required field \"{name}\" is missing")
                for name in rule if isinstance(value, dict) and name not in value]
    if keyword == "additionalProperties":
        known = list(schema.get("properties", {}))
        return [Finding(f"{pointer}/{escape(k)}", _unknown_field(k, known, version, pointer), at_key=True)
                for k in value if k not in known]
    if keyword == "type":
        expected = [rule] if isinstance(rule, str) else list(rule)
        return [Finding(pointer, _type_message(value, expected, plain(pointer) if plain else None))]
    if keyword == "pattern":
        said = schema.get("patternErrorMessage")
        return [Finding(pointer, f"{show(value)} {said}" if said else f"{show(value)} does not match {rule}",
                        at_key=in_names)]
    if keyword in ("minimum", "maximum"):
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and high is not None:
            return [Finding(pointer, f"{show(value)} is out of range: expected {low} to {high}")]
        return [Finding(pointer, f"{show(value)} is {'less' if keyword == 'minimum' else 'more'} than {rule}")]
    if keyword == "enum":
        return [Finding(pointer, f"{show(value)} is not one of {', '.join(json.dumps(o) for o in rule)}")]
    if keyword == "const":
        return [Finding(pointer, f"{show(value)} is not {json.dumps(rule)}")]
    if keyword == "minLength":
        message = "must not be empty" if rule == 1 else f"is shorter than {rule} characters"
        return [Finding(pointer, f"{show(value)} {message}", at_key=in_names)]
    if keyword == "maxLength":
        return [Finding(pointer, f"{show(value)} is longer than {rule} characters", at_key=in_names)]
    if keyword == "minItems":
        return [Finding(pointer, f"must have at least {rule} item{'s' if rule != 1 else ''}")]
    if keyword == "maxProperties":
        names = ", ".join(f"\"{k}\"" for k in value)
        return [Finding(pointer, f"sets {names}: give at most {rule} of them")]
    return [Finding(pointer, error.message)]  # pragma: no cover - keywords our schemas do not use


def _type_message(value: object, expected: list[str], text: str | None) -> str:
    wanted = " or ".join(_TYPE_NAMES.get(t, t) for t in expected)
    if "string" in expected and text is not None and not isinstance(value, (dict, list, str)):
        if value is None and text == "":
            return f"the value is empty, which YAML reads as null, not {wanted}: write \"\" for an empty string"
        read = "null" if value is None else ("the boolean " + json.dumps(value) if isinstance(value, bool)
                                             else f"the number {json.dumps(value)}")
        return f"the unquoted {text} is read by YAML as {read}, not {wanted}: write \"{text}\" in quotes"
    return f"{show(value)} is not {wanted}"


def _unknown_field(key: str, known: list[str], version: str, parent: str) -> str:
    message = f"unknown field {show(key)}"
    if key in READ_ONLY:
        return message + ": it is set by the server, not written in a manifest; remove it"
    if parent == "" and version == "v1beta1" and key in _V1_ONLY:
        return message + ": it belongs to apiVersion v1, and this object is v1beta1"
    if parent == "" and version == "v1" and key in _V1BETA1_ONLY:
        return message + ": it is a v1beta1 field; v1 writes metadata.name, metadata.labels and spec"
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.7)
    if close:
        return message + f" (did you mean \"{close[0]}\"?)"
    if known:
        return message + "; expected one of: " + ", ".join(known)
    return message
