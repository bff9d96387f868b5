"""Properties: what our schemas allow loads and round-trips; anything else fails only as ``ValidationFailed``."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from cluster_pilot.errors import ValidationFailed
from cluster_pilot.manifests import Problem, load_documents, normalise_object, schema
from cluster_pilot.manifests.loader import decode
from cluster_pilot.api import to_manifest
from cluster_pilot.resources import resource_dir
from tests.unit.manifests_support import reference

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
KINDS = [(v, k) for v in schema.VERSIONS for k in ("Pod", "ReplicationController", "Service")]

_IMAGE = r"^[a-z][a-z0-9]{0,6}(/[a-z][a-z0-9]{0,6})?(:[a-z0-9]{1,4})?\Z"
_LABEL_KEY = r"^([a-z]{1,5}\.[a-z]{2,3}/)?[a-z][a-z0-9]{0,8}\Z"
_NAME = r"^[a-z][a-z0-9]{0,8}\Z"


def narrowed(node: object) -> object:
    """Our schema, narrowed so that hypothesis-jsonschema generates quickly: two simpler patterns, short
    strings, short lists and maps. Every instance of the narrowed schema is an instance of ours (asserted)."""
    if isinstance(node, list):
        return [narrowed(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "patternErrorMessage":
            continue
        if key == "pattern":
            if "{0,127}" in value:
                value = _IMAGE
            elif value.startswith("^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\."):
                value = _LABEL_KEY
            elif value.endswith("$"):  # ECMA meaning: the end of the text
                value = value[:-1] + r"\Z"
        out[key] = {k: narrowed(v) for k, v in value.items()} if key in ("properties", "$defs") else narrowed(value)
    if str(node.get("description", "")).startswith(("Object id", "Object name")):
        out["pattern"] = _NAME  # names are checked beside the schema (api/names.py): generate ones it allows
    if out.get("type") == "array":
        out.setdefault("maxItems", 2)
    if out.get("type") == "object" and "properties" not in out:
        out.setdefault("maxProperties", 3)
    if out.get("type") in ("string", ["string", "number"]):
        out.setdefault("maxLength", 20)
    return out


@functools.cache
def _objects_of(version_kind: tuple[str, str]) -> st.SearchStrategy:
    """Built once per kind: ``from_schema`` takes ~0.3 s to read a schema, and flatmap asks for every example."""
    return st.tuples(st.just(version_kind), from_schema(narrowed(schema.schema_of(*version_kind))))


GENERATED = st.sampled_from(KINDS).flatmap(_objects_of)


@SETTINGS
@given(GENERATED)
def test_objects_generated_from_our_schemas_load_and_round_trip(case):
    (version, kind), data = case
    compiled = schema.compiled(version, kind)
    assert reference(version, kind).is_valid(data), "the narrowed schema only narrows"
    assert compiled.is_valid(data), "jsonschema-rs agrees with the Python jsonschema"
    try:
        obj = normalise_object(data, "generated", kind_hint=kind)
    except ValidationFailed as failed:  # a rule beyond the schema (e.g. two containers with one name)
        assert failed.problems and all(p.pointer.startswith("/") for p in failed.problems)
        return
    assert obj.kind == kind
    assert normalise_object(to_manifest(obj), "rendered") == obj
    for name, text in (("g.json", json.dumps(data)), ("g.yaml", yaml.safe_dump(data))):
        [again] = load_documents([(name, text)], kind_hint=kind)
        assert again == obj


def _load_text(name: str, text: str) -> None:
    try:
        load_documents([(name, text)])
    except ValidationFailed as failed:
        assert failed.problems and all(isinstance(p, Problem) and str(p) for p in failed.problems)


@SETTINGS
@given(st.binary(max_size=300), st.sampled_from(["x.json", "x.yaml", "-"]))
def test_random_bytes_fail_only_as_validation_errors(data, name):
    text, problem = decode(name, data)
    if problem is None:
        _load_text(name, text)


YAMLISH = st.lists(st.sampled_from(list("{}[]:,-&*!|>'\"#%@`?~ \n\tab01.e<=") + ["id", "port", "<<", "!!"]),
                   max_size=60).map("".join)


@SETTINGS
@given(YAMLISH, st.sampled_from(["x.json", "x.yaml"]))
def test_random_yaml_like_text_fails_only_as_validation_errors(text, name):
    _load_text(name, text)


CORPUS = sorted((str(p), p.read_text()) for p in Path(resource_dir("examples")).rglob("*")
                if p.suffix in (".json", ".yaml"))

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 70000) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8) | st.sampled_from(["", "no", "80", "http", "v1", "v1beta1", "Pod", "List", "redis"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6)


def _nodes(node: object, path: tuple = ()) -> list[tuple]:
    found = [path]
    if isinstance(node, dict):
        for k, v in node.items():
            found += _nodes(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found += _nodes(v, path + (i,))
    return found


def _mutate(doc: object, draw) -> object:
    doc = copy.deepcopy(doc)
    path = draw(st.sampled_from(_nodes(doc)))
    if not path:
        return draw(JSON_VALUES)
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    action = draw(st.sampled_from(["replace", "delete", "rename", "wrap", "add"]))
    if action == "replace":
        parent[last] = draw(JSON_VALUES)
    elif action == "delete":
        del parent[last]
    elif action == "rename" and isinstance(parent, dict):
        parent[draw(st.text(max_size=10))] = parent.pop(last)
    elif action == "wrap":
        parent[last] = [parent[last]]
    elif isinstance(parent[last], dict):
        parent[last][draw(st.sampled_from(["kind", "apiVersion", "id", "items", "<<", "labels", "port"]))] = \
            draw(JSON_VALUES)
    return doc


def _documents(name: str, text: str) -> list[object]:
    return [json.loads(text)] if name.endswith(".json") else list(yaml.safe_load_all(text))


@SETTINGS
@given(st.data())
def test_mutated_manifests_fail_only_as_validation_errors_and_both_checks_agree(data):
    name, text = data.draw(st.sampled_from(CORPUS))
    doc = data.draw(st.sampled_from(_documents(name, text)))
    for _ in range(data.draw(st.integers(1, 3))):
        doc = _mutate(doc, data.draw)
    for new_name, new_text in ((name + ".json", json.dumps(doc)), (name + ".yaml", yaml.safe_dump(doc))):
        _load_text(new_name, new_text)
    try:
        normalise_object(doc, "body", lenient=data.draw(st.booleans()))
    except ValidationFailed as failed:
        assert failed.problems
    for version, kind in KINDS:
        for lenient in (False, True):
            compiled = schema.compiled(version, kind, lenient)
            assert compiled.is_valid(doc) == reference(version, kind, lenient).is_valid(doc)


@SETTINGS
@given(st.data())
def test_text_edits_of_valid_manifests_fail_only_as_validation_errors(data):
    name, text = data.draw(st.sampled_from(CORPUS))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text)))
        cut = data.draw(st.integers(0, 3))
        text = text[:at] + data.draw(st.text(alphabet="{}[]:,\"'- \n\t&*!#0aZ", max_size=3)) + text[at + cut:]
    _load_text(name, text)
