"""JSON to plain data: fast when the text is right, precise when it is not.

The common case (a well-formed file) is read by the C decoder alone and the places of its nodes are worked
out only if a message later needs one. A file with a duplicate key, a ``NaN`` or an over-long number is read
a second time by a small tracking parser that knows the offset of every node, so each such problem names its
own line; syntax errors carry the decoder's own line and column.
"""

from __future__ import annotations

import json
import math
import re

from cluster_pilot.manifests.positions import Document, LineIndex, Positions
from cluster_pilot.manifests.problem import Problem, escape, show

MAX_DEPTH = 100  # places are recorded this deep; deeper values are read whole (the schema never goes there)


class _Invalid(ValueError):
    """A value JSON's grammar admits in Python but a manifest must not hold."""


class _Duplicate(ValueError):
    pass


def _constant(name: str) -> object:
    raise _Invalid(f"{name} is not a number a manifest may hold")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Invalid(f"{text} is too large a number")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise _Invalid("the number has too many digits") from None


def _unique(pairs: list[tuple[str, object]]) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _Duplicate
    return result


def _lenient_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


_STRICT = json.JSONDecoder(object_pairs_hook=_unique, parse_constant=_constant, parse_float=_float, parse_int=_int)
_LENIENT = json.JSONDecoder(parse_int=_lenient_int)  # only to tell whether the text is well-formed
_WS = re.compile(r"[ \t\n\r]*")
_TOKEN = re.compile(r"-?(?:NaN|Infinity|[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)")
_scanstring = json.decoder.scanstring


def read_json(name: str, text: str) -> tuple[list[Document], list[Problem]]:
    try:
        data = _STRICT.decode(text)
    except json.JSONDecodeError as exc:
        return [], [Problem(name, exc.lineno, exc.colno, "", f"JSON syntax error: {exc.msg}")]
    except RecursionError:
        return [], [Problem(name, 1, 1, "", "nested too deeply")]
    except (_Invalid, _Duplicate):
        return _read_slowly(name, text)
    if isinstance(data, dict) and "items" in data:  # a List: its objects' places are worth one shallow pass
        shallow = lambda: _Tracker(name, text, depth=2).run()[1]  # noqa: E731
    else:
        shallow = lambda: _root_only(text)  # noqa: E731
    return [Document(name, data, locate=lambda: _Tracker(name, text).run()[1], shallow=shallow)], []


def _root_only(text: str) -> Positions:
    start = _WS.match(text).end()
    positions = Positions()
    positions.values[""] = (text.count("\n", 0, start) + 1, start - text.rfind("\n", 0, start))
    return positions


def _read_slowly(name: str, text: str) -> tuple[list[Document], list[Problem]]:
    try:
        _LENIENT.decode(text)
    except json.JSONDecodeError as exc:
        return [], [Problem(name, exc.lineno, exc.colno, "", f"JSON syntax error: {exc.msg}")]
    except RecursionError:
        return [], [Problem(name, 1, 1, "", "nested too deeply")]
    tracker = _Tracker(name, text)
    data, positions = tracker.run()
    return [Document(name, data, positions, broken=tracker.broken)], tracker.problems


class _Tracker:
    """Reads well-formed JSON again, noting the offset of every key and value (up to ``MAX_DEPTH``)."""

    def __init__(self, name: str, text: str, depth: int = MAX_DEPTH) -> None:
        self.name = name
        self.text = text
        self.depth = depth
        self.lines = LineIndex(text)
        self.values: dict[str, int] = {}
        self.keys: dict[str, int] = {}
        self.problems: list[Problem] = []
        self.broken: set[str] = set()

    def run(self) -> tuple[object, Positions]:
        data, _ = self.value(0, "", 0)
        positions = Positions()
        place = self.lines.place
        positions.values = {p: place(i) for p, i in self.values.items()}
        positions.keys = {p: place(i) for p, i in self.keys.items()}
        return data, positions

    def problem(self, offset: int, pointer: str, message: str) -> None:
        line, col = self.lines.place(offset)
        self.problems.append(Problem(self.name, line, col, pointer, message))

    def value(self, idx: int, pointer: str, depth: int) -> tuple[object, int]:
        text = self.text
        idx = _WS.match(text, idx).end()
        self.values[pointer] = idx
        char = text[idx]
        if depth < self.depth:
            if char == "{":
                return self.object(idx + 1, pointer, depth + 1)
            if char == "[":
                return self.array(idx + 1, pointer, depth + 1)
        try:
            return _STRICT.raw_decode(text, idx)
        except _Invalid as exc:
            self.problem(idx, pointer, str(exc))
        except _Duplicate:
            self.problem(idx, pointer, f"a mapping nested more than {MAX_DEPTH} levels deep has a duplicate key")
        self.broken.add(pointer)
        match = _TOKEN.match(text, idx)
        return None, match.end() if char not in "{[" else _LENIENT.raw_decode(text, idx)[1]

    def object(self, idx: int, pointer: str, depth: int) -> tuple[dict, int]:
        text = self.text
        result: dict[str, object] = {}
        idx = _WS.match(text, idx).end()
        if text[idx] == "}":
            return result, idx + 1
        while True:
            key, end = _scanstring(text, idx + 1)
            key_pointer = f"{pointer}/{escape(key)}"
            if key_pointer in self.keys:
                line, column = self.lines.place(self.keys[key_pointer])
                self.problem(idx, key_pointer, f"duplicate key {show(key)} (first at line {line}, column {column}); "
                             "a key may appear once")
            else:
                self.keys[key_pointer] = idx
            idx = _WS.match(text, end).end() + 1  # past ':'
            result[key], idx = self.value(idx, key_pointer, depth)
            idx = _WS.match(text, idx).end()
            if text[idx] == "}":
                return result, idx + 1
            idx = _WS.match(text, idx + 1).end()  # past ','

    def array(self, idx: int, pointer: str, depth: int) -> tuple[list, int]:
        text = self.text
        result: list[object] = []
        idx = _WS.match(text, idx).end()
        if text[idx] == "]":
            return result, idx + 1
        while True:
            item, idx = self.value(idx, f"{pointer}/{len(result)}", depth)
            result.append(item)
            idx = _WS.match(text, idx).end()
            if text[idx] == "]":
                return result, idx + 1
            idx = _WS.match(text, idx + 1).end()
