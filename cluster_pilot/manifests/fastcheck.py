"""A compiled yes/no JSON Schema check for the keywords our schemas use, about ten times faster than asking
``jsonschema`` for its errors.

Validating ten thousand objects in well under two seconds needs this; explaining errors does not, so the
division of labour is: this predicate says whether a document is valid, and only when it says no does
``jsonschema`` (the reference) walk the document to list every error. A property test holds the two to the
same answers. A schema using a keyword outside the supported set is refused at compile time, so the subset
cannot silently drift from the schemas.
"""

from __future__ import annotations

import functools
import re
from typing import Callable

Check = Callable[[object], bool]

_ANNOTATIONS = frozenset({
    "$schema", "$id", "$comment", "title", "description", "default", "examples", "deprecated",
    "patternErrorMessage", "errorMessage", "markdownDescription",
})
_SUPPORTED = frozenset({
    "$ref", "$defs", "type", "enum", "const", "pattern", "minLength", "maxLength", "minimum", "maximum",
    "properties", "additionalProperties", "required", "propertyNames", "minProperties", "maxProperties",
    "items", "minItems", "maxItems",
})


@functools.cache
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """A schema pattern with ECMA-262 meaning: ``$`` at the end is the end of the text. (Python's ``$`` also
    matches before a final newline, which would let ``"redis\\n"`` pass as a name.)"""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def compile_schema(schema: dict) -> Check:
    defs = schema.get("$defs", {})
    return _Compiler(defs).build(schema)


def _always(value: object) -> bool:
    return True


def _never(value: object) -> bool:
    return False


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_TYPES: dict[str, Check] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": _is_number,
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
}


def equal(a: object, b: object) -> bool:
    """JSON equality: ``true`` is not ``1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    if _is_number(a) and _is_number(b):
        return a == b
    return type(a) is type(b) and a == b


def _all(checks: list[Check]) -> Check:
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda v: first(v) and second(v)
    checks_tuple = tuple(checks)

    def check(v: object) -> bool:
        for c in checks_tuple:
            if not c(v):
                return False
        return True

    return check


class _Compiler:
    def __init__(self, defs: dict) -> None:
        self.defs = defs
        self.refs: dict[str, Check] = {}

    def build(self, node: object) -> Check:
        if node is True:
            return _always
        if node is False:
            return _never
        assert isinstance(node, dict), node
        unknown = set(node) - _SUPPORTED - _ANNOTATIONS
        if unknown:
            raise ValueError(f"the fast schema check does not support {sorted(unknown)}")
        kinds = node.get("type")
        single = kinds if isinstance(kinds, str) else None
        # A single type folds into the check of that type's keywords (one call per node instead of two).
        structural = [
            self.object(node, strict=single == "object"),
            self.array(node, strict=single == "array"),
            self.string(node, strict=single == "string"),
            self.number(node, strict=single if single in ("integer", "number") else None),
        ]
        folded = any(c is not None for c, t in zip(structural, ("object", "array", "string", "number"), strict=True)
                     if t == single or (t == "number" and single == "integer"))
        checks = [c for c in (self.ref(node), None if folded else self.type(node), self.enum(node), *structural)
                  if c is not None]
        return _all(checks)

    def ref(self, node: dict) -> Check | None:
        target = node.get("$ref")
        if target is None:
            return None
        if not target.startswith("#/$defs/"):
            raise ValueError(f"only local $defs references are supported, not {target}")
        name = target[len("#/$defs/"):]
        if name not in self.refs:
            cell: list[Check] = []
            self.refs[name] = lambda v: cell[0](v)  # until built: lets a definition refer to itself
            cell.append(self.build(self.defs[name]))
            self.refs[name] = cell[0]
        return self.refs[name]

    def type(self, node: dict) -> Check | None:
        kinds = node.get("type")
        if kinds is None:
            return None
        if isinstance(kinds, str):
            return _TYPES[kinds]
        alternatives = tuple(_TYPES[k] for k in kinds)
        return lambda v: any(t(v) for t in alternatives)

    def enum(self, node: dict) -> Check | None:
        if "const" in node:
            const = node["const"]
            return lambda v: equal(v, const)
        if "enum" in node:
            options = tuple(node["enum"])
            return lambda v: any(equal(v, o) for o in options)
        return None

    def string(self, node: dict, strict: bool) -> Check | None:
        pattern = node.get("pattern")
        low, high = node.get("minLength"), node.get("maxLength")
        if pattern is None and low is None and high is None:
            return None
        search = compile_pattern(pattern).search if pattern is not None else None

        def check(v: object) -> bool:
            if not isinstance(v, str):
                return not strict
            if (low is not None and len(v) < low) or (high is not None and len(v) > high):
                return False
            return search is None or search(v) is not None

        return check

    def number(self, node: dict, strict: str | None) -> Check | None:
        low, high = node.get("minimum"), node.get("maximum")
        if low is None and high is None:
            return None
        is_type = _TYPES[strict] if strict else None

        def check(v: object) -> bool:
            if not _is_number(v):
                return not strict
            if is_type is not None and not is_type(v):
                return False
            return (low is None or v >= low) and (high is None or v <= high)

        return check

    def object(self, node: dict, strict: bool) -> Check | None:
        keys = ("properties", "additionalProperties", "required", "propertyNames", "minProperties", "maxProperties")
        if not any(k in node for k in keys):
            return None
        properties = {k: self.build(s) for k, s in node.get("properties", {}).items()}
        additional = self.build(node["additionalProperties"]) if "additionalProperties" in node else None
        required = tuple(node.get("required", ()))
        names = self.build(node["propertyNames"]) if "propertyNames" in node else None
        low, high = node.get("minProperties"), node.get("maxProperties")

        def check(v: object) -> bool:
            if not isinstance(v, dict):
                return not strict
            for name in required:
                if name not in v:
                    return False
            if (low is not None and len(v) < low) or (high is not None and len(v) > high):
                return False
            for key, item in v.items():
                known = properties.get(key)
                if known is not None:
                    if not known(item):
                        return False
                elif additional is not None and not additional(item):
                    return False
                if names is not None and not names(key):
                    return False
            return True

        return check

    def array(self, node: dict, strict: bool) -> Check | None:
        if not any(k in node for k in ("items", "minItems", "maxItems")):
            return None
        items = self.build(node["items"]) if "items" in node else None
        low, high = node.get("minItems"), node.get("maxItems")

        def check(v: object) -> bool:
            if not isinstance(v, list):
                return not strict
            if (low is not None and len(v) < low) or (high is not None and len(v) > high):
                return False
            if items is not None:
                for x in v:
                    if not items(x):
                        return False
            return True

        return check
