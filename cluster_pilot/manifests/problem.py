"""What is wrong with an input, and where: the unit every manifest error is reported in.

A ``Finding`` is produced by the pure stages (schema, normalise, checks), which know only JSON pointers inside
one object; the pipeline turns it into a ``Problem`` by adding the file and the line and column the pointer
was written at, so every stage reports places the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    """A problem at ``pointer`` (relative to whatever the producer was given). ``at_key`` places it on the
    key rather than the value: an unknown or duplicate field is best shown where its name is written."""

    pointer: str
    message: str
    at_key: bool = False
    severity: str = ERROR

    def under(self, prefix: str) -> Finding:
        return Finding(prefix + self.pointer, self.message, self.at_key, self.severity)


@dataclass(frozen=True)
class Problem:
    """One line of ``cluster-pilot validate`` output: ``FILE:LINE:COL: /pointer: message``.

    ``line`` 0 means the place is not known (an object that did not come from a file); the pointer is left
    out when it is the whole document.
    """

    file: str
    line: int
    column: int
    pointer: str
    message: str
    severity: str = ERROR

    def __str__(self) -> str:
        place = f"{self.file}:{self.line}:{self.column or 1}" if self.line else self.file
        severity = "warning: " if self.severity == WARNING else ""
        if self.pointer:
            return f"{place}: {self.pointer}: {severity}{self.message}"
        return f"{place}: {severity}{self.message}"

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "pointer": self.pointer,
            "message": self.message,
            "severity": self.severity,
        }


def show(value: object, limit: int = 40) -> str:
    """A value as a message quotes it: JSON for scalars (shortened), the kind of thing for collections."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 2] + "…" + text[-1]


def escape(token: str) -> str:
    """One JSON-pointer reference token (RFC 6901): label keys such as ``example.com/tier`` contain ``/``."""
    if "~" in token or "/" in token:
        return token.replace("~", "~0").replace("/", "~1")
    return token


def pointer_of(path) -> str:
    return "".join("/" + escape(str(p)) for p in path)


def split(pointer: str) -> list[str]:
    """Reference tokens of a pointer, still escaped (pointers are only ever compared, never resolved)."""
    return pointer.split("/")[1:] if pointer else []
