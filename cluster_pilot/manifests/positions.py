"""Where each node of a document was written, so that an error found by pointer can name a line.

The loaders fill a ``Positions`` as they read; the pipeline asks it for the place of a pointer. A pointer
that was never written (a missing field) answers with its nearest written ancestor, and a pointer under a
YAML alias answers with the place inside the anchored node, where the offending text really is.
"""

from __future__ import annotations

import bisect
import re
from typing import Callable

from cluster_pilot.manifests.problem import split

Place = tuple[int, int]  # 1-based line and column

_MAX_HOPS = 16


class Positions:
    """Places of one document's nodes, by JSON pointer."""

    __slots__ = ("values", "keys", "redirects", "plain")

    def __init__(self) -> None:
        self.values: dict[str, Place] = {}
        self.keys: dict[str, Place] = {}
        self.redirects: dict[str, str] = {}  # pointer of an alias (or merged key) -> pointer of its origin
        self.plain: dict[str, str] = {}  # unquoted YAML text that was read as a non-string

    def value(self, pointer: str) -> Place:
        tokens = split(pointer)
        for i in range(len(tokens), -1, -1):
            hit = self._find(self.values, _join(tokens[:i]))
            if hit is not None:
                return hit
        return (0, 0)  # nothing was written down: the document did not come from text

    def key(self, pointer: str) -> Place:
        hit = self._find(self.keys, pointer)
        return hit if hit is not None else self.value(pointer)

    def plain_text(self, pointer: str) -> str | None:
        return self._find(self.plain, pointer)

    def _find(self, table: dict, pointer: str, hops: int = 0):
        hit = table.get(pointer)
        if hit is not None or hops > _MAX_HOPS or not self.redirects:
            return hit
        tokens = split(pointer)
        for i in range(len(tokens), 0, -1):
            prefix = _join(tokens[:i])
            target = self.redirects.get(prefix)
            if target is not None:
                return self._find(table, target + pointer[len(prefix):], hops + 1)
        return None


def _join(tokens: list[str]) -> str:
    return "".join("/" + t for t in tokens)


class LineIndex:
    """Turns character offsets of a text into 1-based (line, column)."""

    __slots__ = ("_starts",)

    def __init__(self, text: str) -> None:
        self._starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def place(self, offset: int) -> Place:
        line = bisect.bisect_right(self._starts, offset)
        return line, offset - self._starts[line - 1] + 1


class Document:
    """One parsed document of an input: its data, where its nodes were written, and which values could not be
    read at all (their problems are already reported, so nothing more is said about them).

    Positions may be computed on first use: the JSON fast path skips them until a message needs a line.
    """

    __slots__ = ("file", "data", "broken", "_positions", "_locate", "_shallow")

    def __init__(self, file: str, data: object, positions: Positions | None = None,
                 locate: Callable[[], Positions] | None = None, broken: set[str] | None = None,
                 shallow: Callable[[], Positions] | None = None) -> None:
        self.file = file
        self.data = data
        self.broken = broken if broken is not None else set()
        self._positions = positions
        self._locate = locate
        self._shallow = shallow  # places of the top two levels only (the objects of a List), when cheaper

    def place(self, pointer: str) -> Place:
        """Where the value at ``pointer`` starts; for an object's root, without reading the document again."""
        if self._positions is None and self._shallow is not None and pointer.count("/") <= 2:
            if not isinstance(self._shallow, Positions):
                self._shallow = self._shallow()
            return self._shallow.value(pointer)
        return self.positions.value(pointer)

    @property
    def positions(self) -> Positions:
        if self._positions is None:
            self._positions = self._locate() if self._locate is not None else Positions()
        return self._positions

    def is_broken(self, pointer: str) -> bool:
        """Whether ``pointer`` is at or under a value that could not be read."""
        return any(pointer == b or pointer.startswith(b + "/") for b in self.broken)
