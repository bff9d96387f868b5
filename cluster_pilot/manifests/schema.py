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

import jsonschema_rs

from cluster_pilot import model
from cluster_pilot.manifests.problem import Finding, escape, pointer_of, show
from cluster_pilot.resources import resource_dir

VERSIONS = ("v1beta1", "v1")
SCHEMA_KINDS = (*model.KINDS, "List")  # each with a file in every version's folder

# Fields the server fills in; written in a manifest they are a sign of a copied `get -json` output.
READ_ONLY = frozenset({"currentState", "creationTimestamp", "resourceVersion", "selfLink", "uid", "status",
                       "generation", "managedFields"})
_V1_ONLY = frozenset({"metadata", "spec"})
_V1BETA1_ONLY = frozenset({"id", "desiredState", "labels", "port", "selector", "containerPort"})

LOOSENING = "cluster-pilot runs no privileged, host-namespace or capability-changing container"

MAX_FINDINGS = 100  # per object: a mapping with 400,000 wrong entries needs one message, not 400,000

_TYPE_NAMES = {
    "integer": "an integer", "number": "a number", "string": "a string", "boolean": "a boolean (true or false)",
    "object": "a mapping", "array": "a list", "null": "null",
}


@dataclass(frozen=True)
class Compiled:
    """A schema compiled by jsonschema-rs (Draft 2020-12, patterns with ECMA-262 meaning: ``$`` is the end of
    the text), and the schema itself, where an error's keyword location leads to the rule it broke."""
    validator: jsonschema_rs.Draft202012Validator
    schema: dict
    version: str

    def is_valid(self, data: object) -> bool:
        return self.validator.is_valid(data)


def schema_path(version: str, kind: str):
    if version not in VERSIONS or kind not in SCHEMA_KINDS:
        raise KeyError(f"no schema for {kind} {version}")
    return resource_dir("schemas") / version / f"{kind}.json"


DEFS = "defs.json"  # a version's shared definitions: each field has its one home there, whichever kinds carry it


def _read(path) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@functools.cache
def definitions(version: str) -> dict:
    if version not in VERSIONS:
        raise KeyError(f"no definitions for {version}")
    return _read(resource_dir("schemas") / version / DEFS)["$defs"]


@functools.cache
def schema_of(version: str, kind: str) -> dict:
    """The kind's schema as one document: its references into ``defs.json`` made local, with the definitions
    they reach copied into its ``$defs``. What jsonschema-rs compiles, ``cluster-pilot schema`` prints and the
    OpenAPI document converts: none of them has to resolve a second file."""
    return bundled(_read(schema_path(version, kind)), definitions(version))


def bundled(schema: dict, shared: dict) -> dict:
    used: list[str] = []

    def local(node: object) -> object:
        if isinstance(node, list):
            return [local(v) for v in node]
        if not isinstance(node, dict):
            return node
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith((f"{DEFS}#/$defs/", "#/$defs/")):
                name = value.rsplit("/", 1)[1]
                if name not in shared:
                    raise KeyError(f"{value}: no such definition in {DEFS}")
                if name not in used:
                    used.append(name)
                out[key] = f"#/$defs/{name}"
            else:
                out[key] = local(value)
        return out

    out = local(schema)
    done: dict[str, object] = {}
    while len(done) < len(used):  # a definition may use others: copy in all it reaches
        name = next(n for n in used if n not in done)
        done[name] = local(shared[name])
    if done:
        out["$defs"] = {name: done[name] for name in shared if name in done}
    return out


@functools.cache
def compiled(version: str, kind: str, lenient: bool = False) -> Compiled:
    schema = schema_of(version, kind)
    if lenient:
        schema = _relaxed(copy.deepcopy(schema))
    return Compiled(jsonschema_rs.Draft202012Validator(schema), schema, version)


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
    try:
        if schema.is_valid(data):
            return []
    except UnicodeEncodeError:  # a lone surrogate (JSON's "\ud800"): not text jsonschema-rs can read
        return [_surrogate(data, "") or Finding("", "the object is not valid Unicode text")]
    findings: list[Finding] = []
    done: set[tuple[str, str]] = set()
    ranked: dict[str, tuple[int, int]] = {}  # pointer -> (rank, index in findings) of the value error kept
    for error in schema.validator.iter_errors(data):
        if len(findings) >= MAX_FINDINGS:
            findings.append(Finding("", f"more problems in this object; only the first {MAX_FINDINGS} are shown"))
            break
        broken = _broken(error, data, schema.schema)
        for finding in _explain(broken, schema.version, plain, done):
            if broken.keyword in ("required", "additionalProperties"):
                findings.append(finding)
                continue
            # One message per value: "" is better told "must not be empty" than also "does not match".
            rank = _RANK.get(broken.keyword, len(_RANK))
            kept = ranked.get(finding.pointer)
            if kept is None:
                ranked[finding.pointer] = (rank, len(findings))
                findings.append(finding)
            elif rank < kept[0]:
                ranked[finding.pointer] = (rank, kept[1])
                findings[kept[1]] = finding
    return findings


_RANK = {"type": 0, "minLength": 1, "maxLength": 2, "pattern": 3}


@dataclass(frozen=True)
class _Broken:
    """One rule a value broke, read off a jsonschema-rs error: all that a message is worded from."""
    keyword: str
    pointer: str  # of the value; under ``propertyNames``, of the mapping whose key broke the rule
    value: object
    rule: object  # the keyword's value in the schema
    schema: dict  # the (sub)schema holding the keyword
    in_names: bool  # the value is a key (``propertyNames``)
    message: str  # jsonschema-rs's own words, for a keyword our schemas do not use


def _broken(error: jsonschema_rs.ValidationError, data: object, root: dict) -> _Broken:
    in_names = error.kind.name == "propertyNames"
    inner = error.kind.error if in_names else error
    keyword = inner.kind.name
    schema: object = root
    try:  # the keyword location: after $ref, a path within the root schema
        for step in error.schema_path[:-1]:
            schema = schema[step]
    except (KeyError, IndexError, TypeError):
        schema = {}
    schema = schema if isinstance(schema, dict) else {}
    value = inner.instance if in_names else _at(data, error.instance_path)
    return _Broken(keyword, pointer_of(error.instance_path), value, schema.get(keyword), schema, in_names,
                   inner.message)


def _at(data: object, path) -> object:
    """The value itself, not jsonschema-rs's copy of it (which reads NaN as null)."""
    for step in path:
        data = data[step]
    return data


def _surrogate(node: object, pointer: str) -> Finding | None:
    """Where a string holds a lone surrogate, which no UTF-8 text can carry."""
    if isinstance(node, str):
        return None if _encodes(node) else Finding(pointer, "holds a lone surrogate (a \\ud800-\\udfff escape "
                                                            "not part of a pair): it is not Unicode text")
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        if not _encodes(str(key)):
            return Finding(pointer, "a key holds a lone surrogate (a \\ud800-\\udfff escape not part of a pair): "
                                    "it is not Unicode text")
        found = _surrogate(value, f"{pointer}/{escape(str(key))}")
        if found:
            return found
    return None


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _explain(broken: _Broken, version: str, plain, done: set) -> list[Finding]:
    pointer, keyword, value, rule, schema = broken.pointer, broken.keyword, broken.value, broken.rule, broken.schema
    in_names = broken.in_names
    if in_names:  # the value is a key of the mapping at `pointer`
        pointer = f"{pointer}/{escape(str(value))}"

    # A field the schema lists with ``not: {}`` (privileged, host namespaces...): refused in the lenient reading
    # too, so that a client sending it is told, rather than believing it was applied.
    if keyword == "not" and rule == {}:
        name = pointer.rsplit("/", 1)[-1]
        return [Finding(pointer, f"field {show(name)} is not supported: {LOOSENING}; remove it", at_key=True)]
    if keyword == "required":
        if (pointer, "required") in done:
            return []
        done.add((pointer, "required"))
        return [Finding(f"{pointer}/{escape(name)}", f"required field \"{name}\" is missing")
                for name in rule if isinstance(value, dict) and name not in value]
    if keyword == "additionalProperties":
        listed = schema.get("properties", {})
        known = [k for k, v in listed.items() if "not" not in v]
        return [Finding(f"{pointer}/{escape(k)}", _unknown_field(k, known, version, pointer), at_key=True)
                for k in value if k not in listed]
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
    return [Finding(pointer, broken.message)]  # pragma: no cover - keywords our schemas do not use


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
