"""Inputs to documents: files, directories and stdin read within bounds, then parsed as JSON or YAML.

The only module of the package that touches the file system. Every input is read whole but never more than
``MAX_BYTES``; an input that cannot be read becomes a problem like any other, so one run reports them all.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TextIO

from cluster_pilot.manifests.json_reader import read_json
from cluster_pilot.manifests.positions import Document
from cluster_pilot.manifests.problem import Problem

MAX_BYTES = 5 * 2**20
SUFFIXES = (".json", ".yaml", ".yml")
STDIN = "-"
STDIN_NAME = "<stdin>"


def read_inputs(paths: list[str], stdin: TextIO | None = None) -> tuple[list[tuple[str, str]], list[Problem]]:
    """(name, text) of every input named: files as given, directories searched recursively for
    ``*.json``, ``*.yaml`` and ``*.yml`` (sorted, hidden entries skipped), ``-`` for stdin."""
    inputs: list[tuple[str, str]] = []
    problems: list[Problem] = []
    for path in paths:
        if path == STDIN:
            if stdin is None:
                problems.append(Problem(STDIN_NAME, 0, 0, "", "no standard input to read"))
                continue
            text = stdin.read(MAX_BYTES + 1)
            if len(text) > MAX_BYTES:
                problems.append(_too_large(STDIN_NAME))
            else:
                inputs.append((STDIN_NAME, text))
            continue
        p = Path(path)
        if p.is_dir():
            found = _manifests_under(p)
            if not found:
                problems.append(Problem(path, 0, 0, "", "no *.json, *.yaml or *.yml files in this directory"))
            for file in found:
                _read_file(file, inputs, problems)
        else:
            _read_file(path, inputs, problems)
    return inputs, problems


def _manifests_under(root: Path) -> list[str]:
    found = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.extend(path for path in (os.path.join(directory, f) for f in files
                                       if f.endswith(SUFFIXES) and not f.startswith("."))
                     if os.path.isfile(path))  # not a FIFO or a device someone named *.yaml
    return sorted(found, key=lambda path: path.split(os.sep))


def _read_file(path: str, inputs: list[tuple[str, str]], problems: list[Problem]) -> None:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        problems.append(Problem(path, 0, 0, "", f"cannot read: {exc.strerror or exc}"))
        return
    if len(data) > MAX_BYTES:
        problems.append(_too_large(path))
        return
    text, problem = decode(path, data)
    if problem is not None:
        problems.append(problem)
    else:
        inputs.append((path, text))


def _too_large(name: str) -> Problem:
    return Problem(name, 0, 0, "", f"larger than {MAX_BYTES // 2**20} MiB: split it into several files")


def decode(name: str, data: bytes) -> tuple[str, Problem | None]:
    """UTF-8 text (a byte-order mark is dropped), or a problem naming the first byte that is not."""
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        column = len(before[before.rfind(b"\n") + 1:].decode("utf-8", "replace")) + 1
        return "", Problem(name, line, column, "", f"not UTF-8 text (byte 0x{data[exc.start]:02x})")


def parse(name: str, text: str) -> tuple[list[Document], list[Problem]]:
    """The documents of one input: ``.json`` files (and text starting with ``{``) as JSON, the rest as YAML."""
    if not text.strip():
        return [], [Problem(name, 1, 1, "", "the input is empty: expected a manifest")]
    if name.endswith(".json") or (not name.endswith((".yaml", ".yml")) and text.lstrip()[:1] == "{"):
        documents, problems = read_json(name, text)
    else:  # PyYAML loaded only here: an apply of JSON files never needs it
        from cluster_pilot.manifests.yaml_reader import read_yaml

        documents, problems = read_yaml(name, text)
    if not documents and not problems:
        problems = [Problem(name, 1, 1, "", "the input holds no document (only comments?): expected a manifest")]
    return documents, problems
