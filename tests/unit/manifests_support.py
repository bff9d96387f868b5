"""Helpers shared by the manifests tests: load text, get the problems back."""

from __future__ import annotations

import textwrap

from cluster_pilot.errors import ValidationFailed
from cluster_pilot.manifests import Problem, load_documents


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
