"""Helpers shared by the manifests tests: load text, get the problems back."""

from __future__ import annotations

import functools
import re
import textwrap

import jsonschema
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from cluster_pilot.errors import ValidationFailed
from cluster_pilot.manifests import Problem, load_documents, schema


def problems(*docs: tuple[str, str], kind: str | None = None) -> list[Problem]:
    """Every problem (errors and warnings) of loading these (name, text) pairs; [] when they load."""
    try:
        load_documents([(name, textwrap.dedent(text).lstrip("\n")) for name, text in docs], kind)
    except ValidationFailed as failed:
        return failed.problems
    return []


def errors(*docs: tuple[str, str], kind: str | None = None) -> list[Problem]:
    return [p for p in problems(*docs, kind=kind) if p.severity == "error"]


def only(found: list[Problem]) -> Problem:
    assert len(found) == 1, "\n".join(map(str, found))
    return found[0]


def objects(*docs: tuple[str, str], kind: str | None = None) -> list:
    return load_documents([(name, textwrap.dedent(text).lstrip("\n")) for name, text in docs], kind)


def _ecma_pattern(validator, pattern: str, instance: object, schema: dict):
    """``pattern`` as ECMA-262 (and jsonschema-rs) read it: a final ``$`` is the end of the text, where Python's
    ``$`` also matches before a final newline."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    if validator.is_type(instance, "string") and not re.search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


_Reference = jsonschema.validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})


@functools.cache
def reference(version: str, kind: str, lenient: bool = False) -> Draft202012Validator:
    """The Python ``jsonschema`` library over the very schema the loader compiles with jsonschema-rs: a second,
    independent implementation the property tests hold the loader's answers to."""
    return _Reference(schema.compiled(version, kind, lenient).schema)
