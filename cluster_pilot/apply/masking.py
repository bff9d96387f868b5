"""Pod environment values masked out of every error text a run hands on (CLI output, the master's log and
events): dockerd's refusal of a container, for one, quotes its ``NAME=VALUE`` variables.

A value is masked wherever it appears after its name and ``=``; a value of ``MIN_ANYWHERE`` characters or
more is masked wherever it appears at all (a shorter one, such as ``1``, would mask unrelated text).
"""

from __future__ import annotations

from typing import Iterable

MASK = "***"
MIN_ANYWHERE = 4


def mask(text: str, env: Iterable[tuple[str, str]]) -> str:
    """``text`` with the values of ``env`` (name, value pairs) replaced by ``***``."""
    pairs = [(name, value) for name, value in env if value]
    for name, value in sorted(pairs, key=lambda p: -len(p[1])):
        text = text.replace(f"{name}={value}", f"{name}={MASK}")
    for value in sorted({v for _, v in pairs if len(v) >= MIN_ANYWHERE}, key=len, reverse=True):
        text = text.replace(value, MASK)
    return text

