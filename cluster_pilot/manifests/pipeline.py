"""Inputs to model objects, or to every problem with its place: the one path the CLI and the master share.

read -> parse (JSON/YAML, with places) -> per object: identify kind and version -> schema -> model ->
object checks -> checks across all objects. Problems of every stage are gathered, never raised one by one,
so a person sees all of them in one run; a stage that finds a problem in an object stops work on that object
only (the next stage would just repeat it in other words).
"""

from __future__ import annotations

import contextlib
import gc
from dataclasses import dataclass
from typing import Iterator, TextIO

from cluster_pilot import model
from cluster_pilot.errors import ValidationFailed
from cluster_pilot.manifests import checks, normalise, policy as fleet_policy, schema
from cluster_pilot.manifests.loader import parse, read_inputs
from cluster_pilot.manifests.positions import Document
from cluster_pilot.manifests.problem import Finding, Problem, show

MAX_PROBLEMS_PER_INPUT = 1000


@dataclass(frozen=True)
class Loaded:
    """What a run read: its objects in input order, the warnings about them, and how many inputs it read."""

    objects: list[model.Object]
    warnings: list[Problem]
    inputs: int


def load(paths: list[str], kind_hint: str | None = None, stdin: TextIO | None = None,
         policy: fleet_policy.Policy | None = None) -> Loaded:
    """Every object in ``paths`` (files, directories, ``-``); ``ValidationFailed`` with every problem.
    With ``policy`` (the fleet's, see ``manifests.policy``) what breaks it is a problem too; whatever touches
    a host passes one."""
    hint = normalise.kind_from_hint(kind_hint)
    inputs, problems = read_inputs(paths, stdin)
    return _load(inputs, problems, hint, policy)


def load_paths(paths: list[str], kind_hint: str | None = None, stdin: TextIO | None = None,
               policy: fleet_policy.Policy | None = None) -> list[model.Object]:
    return load(paths, kind_hint, stdin, policy).objects


def load_documents(docs: list[tuple[str, str]], kind_hint: str | None = None) -> list[model.Object]:
    """Objects from (name, text) pairs, such as request bodies; the same rules as for files."""
    return _load(list(docs), [], normalise.kind_from_hint(kind_hint)).objects


def normalise_object(data: object, source_name: str, kind_hint: str | None = None,
                     lenient: bool = False, policy: fleet_policy.Policy | None = None) -> model.Object:
    """One already-parsed object (a request body) to the model. ``lenient`` reads it as the 2014 server
    read what its client sent: zero values and server-set fields mean "not set", unknown fields are ignored
    (those a schema marks unsupported are still refused). With ``policy``, what breaks it is refused too."""
    hint = normalise.kind_from_hint(kind_hint)
    if lenient and isinstance(data, dict):
        data = normalise.strip_unset(data)
    doc = Document(source_name, data)
    placed, problems = _objects_in(doc, hint, lenient=lenient, allow_list=False)
    if policy is not None and not problems:
        problems, _ = fleet_policy.check(placed, policy)
    if problems:
        raise ValidationFailed(problems)
    return placed[0].obj


def check_set(objects: list[model.Object]) -> tuple[list[Problem], list[str]]:
    """The checks across objects, for objects that are already in the model (e.g. the master's store):
    errors as problems, warnings as lines."""
    placed = [checks.Placed(obj, normalise.default_layout(obj), _source_place(obj)) for obj in objects]
    errors, warnings = checks.check_set(placed)
    return errors, [str(w) for w in warnings]


def _source_place(obj: model.Object):
    source = obj.meta.source

    def place(pointer: str, at_key: bool) -> tuple[str, int, int]:
        if source is None:
            return f"{obj.kind} {obj.meta.name}", 0, 0
        return source.file, source.line, source.column

    return place


def _load(inputs: list[tuple[str, str]], problems: list[Problem], hint: str | None,
          policy: fleet_policy.Policy | None = None) -> Loaded:
    order = [p.file for p in problems] + [name for name, _ in inputs]  # unreadable inputs first, then as read
    placed: list[checks.Placed] = []
    with _collector_paused():
        for name, text in inputs:
            documents, found = parse(name, text)
            for doc in documents:
                if len(found) > MAX_PROBLEMS_PER_INPUT:
                    break
                objects, found_here = _objects_in(doc, hint)
                placed += objects
                found += found_here
            problems += _capped(name, found)
        errors, warnings = checks.check_set(placed)
        refused, doubtful = fleet_policy.check(placed, policy) if policy is not None else ([], [])
    problems += errors + refused
    warnings += doubtful
    if problems:
        raise ValidationFailed(_sorted(problems + warnings, order))
    return Loaded([p.obj for p in placed], _sorted(warnings, order), len(inputs))


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Reading makes a great many small containers and no reference cycles, so the cyclic garbage collector
    would only walk the growing heap again and again (half the time of a 10,000-object run). It is paused
    meanwhile; at the end, freeze-then-unfreeze moves what was made straight to the oldest generation, in
    constant time, instead of letting the first collection after the pause walk all of it at once.
    Memory is unaffected: these objects are freed by reference counting like any other."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.unfreeze()
        if enabled:
            gc.enable()


def _capped(name: str, found: list[Problem]) -> list[Problem]:
    """At most ``MAX_PROBLEMS_PER_INPUT`` problems of one input: a generated file with 100,000 duplicate keys
    needs its first lines fixed, not 100,000 lines of output."""
    if len(found) <= MAX_PROBLEMS_PER_INPUT:
        return found
    first = sorted(found, key=lambda p: (p.line, p.column))[:MAX_PROBLEMS_PER_INPUT]
    last = first[-1]
    return first + [Problem(name, last.line, last.column, "", f"more problems after this point; only the first "
                            f"{MAX_PROBLEMS_PER_INPUT} of this input are shown")]


def _sorted(problems: list[Problem], order: list[str]) -> list[Problem]:
    """Input by input, in the order they were given, and by line within each."""
    rank = {name: i for i, name in reversed(list(enumerate(order)))}
    return sorted(problems, key=lambda p: (rank.get(p.file, len(rank)), p.file, p.line, p.column))


def _objects_in(doc: Document, hint: str | None, lenient: bool = False,
                allow_list: bool = True) -> tuple[list[checks.Placed], list[Problem]]:
    data = doc.data
    if not isinstance(data, dict):
        what = "empty" if data is None else show(data)
        return [], _problems(doc, "", [Finding("", f"the document is {what}: expected a mapping (one object, "
                                                   "or a List with items)")])
    identity = normalise.identify(data, hint, allow_list=allow_list)
    if isinstance(identity, Finding):
        return [], _problems(doc, "", [identity])
    version, kind = identity
    if kind != normalise.LIST:
        return _object(doc, data, "", version, kind, lenient)
    findings = schema.check(data, version, normalise.LIST, plain=_plain(doc, ""))
    if findings:
        return [], _problems(doc, "", findings)
    placed: list[checks.Placed] = []
    problems: list[Problem] = []
    for i, item in enumerate(data["items"]):
        root = f"/items/{i}"
        identity = normalise.identify(item, hint, default_version=version, allow_list=False)
        if isinstance(identity, Finding):
            problems += _problems(doc, root, [identity])
            continue
        objects, found = _object(doc, item, root, *identity, lenient)
        placed += objects
        problems += found
    return placed, problems


def _object(doc: Document, data: dict, root: str, version: str, kind: str,
            lenient: bool) -> tuple[list[checks.Placed], list[Problem]]:
    findings = schema.check(data, version, kind, lenient, plain=_plain(doc, root))
    named = normalise.name_finding(data, version, kind)
    if named is not None and not any(f.pointer == named.pointer for f in findings):
        findings.append(named)
    if findings:
        return [], _problems(doc, root, findings)
    line, column = doc.place(root)
    source = model.Source(doc.file, line, column, root)
    obj, layout, findings = normalise.build(data, version, kind, source)
    if obj is not None:
        findings += checks.check_object(obj, layout)
    if findings:
        return [], _problems(doc, root, findings)
    return [checks.Placed(obj, layout, _document_place(doc, root))], []


def _plain(doc: Document, root: str):
    return lambda pointer: doc.positions.plain_text(root + pointer)


def _document_place(doc: Document, root: str):
    def place(pointer: str, at_key: bool) -> tuple[str, int, int]:
        if not pointer:
            return (doc.file, *doc.place(root))  # cheap: no second reading of a JSON document
        positions = doc.positions
        return (doc.file, *(positions.key(root + pointer) if at_key else positions.value(root + pointer)))

    return place


def _problems(doc: Document, root: str, findings: list[Finding]) -> list[Problem]:
    return [p for p in (_problem(doc, root, f) for f in findings) if p is not None]


def _problem(doc: Document, root: str, finding: Finding) -> Problem | None:
    pointer = root + finding.pointer
    if doc.broken and doc.is_broken(pointer):
        return None  # the value could not be read; that is already reported
    positions = doc.positions
    line, column = positions.key(pointer) if finding.at_key else positions.value(pointer)
    return Problem(doc.file, line, column, pointer, finding.message, finding.severity)
