"""YAML to plain data with the place of every node, safe against hostile input.

Manifests arrive in pull requests, so reading one must never run code, never blow up, and never quietly
change what was written. This reader composes documents itself from the parser's event stream (libyaml's
when available) instead of using a PyYAML constructor, because that is the one place that sees everything
needed at once:

* tags: only JSON's types are produced; ``!!python/...``, ``!!binary``, ``!!set``, dates and custom tags
  are errors (nothing is ever constructed from a tag);
* aliases: anchored values are shared, not copied, and the expanded size is counted as it grows, so a
  "billion laughs" document is refused after at most ``MAX_NODES`` nodes, in bounded time and memory;
* nesting: bounded by ``MAX_DEPTH`` (libyaml's own composer recurses in C and would crash the process);
* duplicate keys are errors, not last-wins; keys must be strings;
* YAML 1.1 numbers that read differently than they look (``010`` octal, ``1:30`` base 60, ``.inf``) are
  errors; the text of every unquoted scalar read as a boolean, number or null is kept so that a later
  "expected a string" error can say what YAML did (the "Norway problem": ``no`` is false).
"""

from __future__ import annotations

import math
import re

import yaml

from cluster_pilot.manifests.positions import Document, LineIndex, Positions
from cluster_pilot.manifests.problem import Problem, escape, show

MAX_DEPTH = 100
MAX_NODES = 100_000  # per document, counting every alias at its expanded size
MAX_ALIAS_NODES = 100_000  # per input: nodes that exist only through aliases
MAX_DOCUMENTS = 10_000  # per input: millions of tiny documents would take long to read and to report

_T = "tag:yaml.org,2002:"
STR, NULL, BOOL, INT, FLOAT = (_T + s for s in ("str", "null", "bool", "int", "float"))
MAP, SEQ, MERGE = (_T + s for s in ("map", "seq", "merge"))
_MAP_TAGS = {None, "!", MAP}
_SEQ_TAGS = {None, "!", SEQ}
_DECIMAL_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)\Z")
_DECIMAL_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?\Z")
_TRUE = {"yes", "true", "on"}
_IMPLICIT = yaml.resolver.Resolver.yaml_implicit_resolvers  # first character -> [(tag, regexp)]

if yaml.__with_libyaml__:
    from yaml._yaml import CParser as _Parser
else:  # pragma: no cover - libyaml is present where cluster-pilot is built
    _Parser = yaml.SafeLoader

_E = yaml.events
_SCALAR, _ALIAS = _E.ScalarEvent, _E.AliasEvent
_MAP_START, _MAP_END = _E.MappingStartEvent, _E.MappingEndEvent
_SEQ_START, _SEQ_END = _E.SequenceStartEvent, _E.SequenceEndEvent
_DOC_START, _DOC_END, _STREAM_END = _E.DocumentStartEvent, _E.DocumentEndEvent, _E.StreamEndEvent


class _Abort(Exception):
    """A bound was crossed: the rest of the input is not read."""


class _Frame:
    __slots__ = ("container", "pointer", "anchor", "size", "key", "key_pointer", "key_lines", "merges")

    def __init__(self, container, pointer: str, anchor: str | None) -> None:
        self.container = container
        self.pointer = pointer
        self.anchor = anchor
        self.size = 1
        self.key = _NO_KEY
        self.key_pointer = ""
        self.key_lines: dict[str, tuple[int, int]] = {}
        self.merges: list[tuple[object, str]] = []


_NO_KEY = object()
_MERGE_KEY = object()
_BAD = object()  # a scalar that could not be read (already reported)


def read_yaml(name: str, text: str) -> tuple[list[Document], list[Problem]]:
    """Every document of a YAML stream, and the problems found; a syntax error ends the stream there."""
    reader = _Reader(name)
    parser = _Parser(text)
    try:
        while True:
            event = parser.get_event()
            if event is None or type(event) is _STREAM_END:
                break
            if type(event) is _DOC_START:
                if len(reader.documents) == MAX_DOCUMENTS:
                    reader.problem(event.start_mark, "", f"more than {MAX_DOCUMENTS} documents in one input: "
                                   "split it into several files")
                    break
                reader.documents.append(reader.document(parser))
    except _Abort:
        pass
    except yaml.MarkedYAMLError as exc:
        reader.problems.append(_syntax_problem(name, exc))
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow
        line, col = LineIndex(text).place(min(exc.position or 0, len(text)))
        char = f" #x{ord(exc.character):04x}" if isinstance(exc.character, str) else ""
        reader.problems.append(Problem(name, line, col, "", f"not readable as YAML: {exc.reason}{char}"))
    except yaml.YAMLError as exc:
        reader.problems.append(Problem(name, 1, 1, "", f"not readable as YAML: {exc}"))
    finally:
        dispose = getattr(parser, "dispose", None)
        if dispose is not None:
            dispose()
    return reader.documents, reader.problems


def _syntax_problem(name: str, exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    message = f"YAML syntax error: {exc.problem}" if exc.problem else "YAML syntax error"
    if exc.context:
        where = f" at line {exc.context_mark.line + 1}" if exc.context_mark is not None else ""
        message += f" ({exc.context}{where})"
    return Problem(name, line, col, "", message)


class _Reader:
    def __init__(self, name: str) -> None:
        self.name = name
        self.documents: list[Document] = []
        self.problems: list[Problem] = []
        self.alias_budget = MAX_ALIAS_NODES

    def problem(self, mark, pointer: str, message: str) -> None:
        self.problems.append(Problem(self.name, mark.line + 1, mark.column + 1, pointer, message))

    def abort(self, mark, pointer: str, message: str) -> _Abort:
        self.problem(mark, pointer, message)
        return _Abort()

    def document(self, parser) -> Document:  # one event loop: it reads best as one function
        positions = Positions()
        doc = Document(self.name, None, positions)
        anchors: dict[str, tuple[object, int, str | None]] = {}
        stack: list[_Frame] = []
        total = 0
        while True:
            event = parser.get_event()
            kind = type(event)
            top = stack[-1] if stack else None
            if top is None:
                pointer = ""
            elif top.key is _NO_KEY and type(top.container) is dict:
                pointer = None  # this node is a key
            elif type(top.container) is list:
                pointer = f"{top.pointer}/{len(top.container)}"
            else:
                pointer = top.key_pointer
            mark = event.start_mark

            if kind is _SCALAR:
                total += 1
                value = self.scalar(event, pointer, doc)
                if pointer is not None:
                    positions.values[pointer] = (mark.line + 1, mark.column + 1)
                if event.anchor is not None:
                    anchors[event.anchor] = (value, 1, pointer)
                done, size, origin = value, 1, None
            elif kind is _MAP_START or kind is _SEQ_START:
                total += 1
                if len(stack) >= MAX_DEPTH:
                    raise self.abort(mark, "", f"nested deeper than {MAX_DEPTH} levels")
                if pointer is None:
                    raise self.abort(mark, top.pointer, "a mapping key must be a plain string, not a list or mapping")
                if event.tag not in (_MAP_TAGS if kind is _MAP_START else _SEQ_TAGS):
                    self.problem(mark, pointer, _tag_message(event.tag))
                    doc.broken.add(pointer)
                positions.values[pointer] = (mark.line + 1, mark.column + 1)
                stack.append(_Frame({} if kind is _MAP_START else [], pointer, event.anchor))
                continue
            elif kind is _MAP_END or kind is _SEQ_END:
                frame = stack.pop()
                if frame.merges:
                    self.merge(frame, positions, mark, doc)
                done, size, pointer, origin = frame.container, frame.size, frame.pointer, None
                if frame.anchor is not None:
                    anchors[frame.anchor] = (done, size, pointer)
                top = stack[-1] if stack else None
            elif kind is _ALIAS:
                anchored = anchors.get(event.anchor)
                if anchored is None:
                    self.problem(mark, pointer or "", f"alias *{event.anchor} names no anchor defined before it")
                    done, size, origin = None, 1, None
                    if pointer is not None:
                        doc.broken.add(pointer)
                else:
                    done, size, origin = anchored
                    self.alias_budget -= size
                    if self.alias_budget < 0:
                        raise self.abort(mark, pointer or "", f"aliases expand to more than {MAX_ALIAS_NODES} nodes "
                                         "in this input (a \"billion laughs\" document?)")
                total += size
                if pointer is not None:
                    positions.values[pointer] = (mark.line + 1, mark.column + 1)
                    if origin is not None:
                        positions.redirects[pointer] = origin
            elif kind is _DOC_END:
                return doc
            else:  # pragma: no cover - the parser emits nothing else inside a document
                continue

            if total > MAX_NODES:
                raise self.abort(mark, pointer or "", f"the document expands to more than {MAX_NODES} nodes "
                                 "(aliases counted at their full size)")
            if top is None:
                doc.data = done
            else:
                top.size += size
                if type(top.container) is list:
                    top.container.append(done)
                elif top.key is _NO_KEY:
                    self.key(top, done, event, positions)
                else:
                    self.value(top, done, origin, doc)

    def scalar(self, event, pointer: str | None, doc: Document) -> object:
        text = event.value
        tag = event.tag
        if tag is None or tag == "!":
            tag = _resolve(text) if event.implicit[0] else STR
        if tag == STR:
            return text
        value, message = _construct(tag, text)
        if message is not None:
            self.problem(event.start_mark, pointer or "", message)
            if pointer is None:
                return _BAD
            doc.broken.add(pointer)
            return None
        if value is _MERGE_KEY:
            return value if pointer is None else text  # "<<" merges only as a key; as a value it is text
        if event.implicit[0] and pointer is not None:
            doc.positions.plain[pointer] = text
        return value

    def key(self, frame: _Frame, key, event, positions: Positions) -> None:
        mark = event.start_mark
        if key is _MERGE_KEY:
            frame.key, frame.key_pointer = _MERGE_KEY, f"{frame.pointer}/<<"
            return
        raw = getattr(event, "value", None)
        if key is _BAD:
            key = raw
        elif not isinstance(key, str):
            raw = raw if isinstance(raw, str) else repr(key)
            self.problem(mark, f"{frame.pointer}/{escape(raw)}", f"the key {raw} is read by YAML as {_describe(key)}; "
                         f"keys must be strings: write {show(raw)}")
            key = raw
        key_pointer = f"{frame.pointer}/{escape(key)}"
        first = frame.key_lines.get(key)
        if first is not None:
            self.problem(mark, key_pointer, f"duplicate key {show(key)} (first at line {first[0]}, column {first[1]}); "
                         "a key may appear once")
        else:
            frame.key_lines[key] = (mark.line + 1, mark.column + 1)
        frame.key, frame.key_pointer = key, key_pointer
        positions.keys[key_pointer] = (mark.line + 1, mark.column + 1)

    def value(self, frame: _Frame, value, origin: str | None, doc: Document) -> None:
        if frame.key is _MERGE_KEY:
            frame.merges.append((value, origin or frame.key_pointer))
        else:
            frame.container[frame.key] = value
        frame.key = _NO_KEY

    def merge(self, frame: _Frame, positions: Positions, mark, doc: Document) -> None:
        """``<<: *base`` (or a list of them): keys written here win, then earlier merged mappings."""
        sources: list[tuple[object, str]] = []
        for value, origin in frame.merges:
            if isinstance(value, list):
                sources.extend((v, f"{origin}/{i}") for i, v in enumerate(value))
            else:
                sources.append((value, origin))
        for value, origin in sources:
            if not isinstance(value, dict):
                self.problem(mark, f"{frame.pointer}/<<", "<< (merge) takes a mapping or a list of mappings")
                doc.broken.add(frame.pointer)
                continue
            for k, v in value.items():
                if k not in frame.container:
                    frame.container[k] = v
                    positions.redirects[f"{frame.pointer}/{escape(k)}"] = f"{origin}/{escape(k)}"


def _resolve(text: str) -> str:
    """The tag YAML 1.1 gives an unquoted scalar (what PyYAML's resolver does, without its overhead)."""
    for tag, regexp in _IMPLICIT.get(text[:1], ()):
        if regexp.match(text):
            return tag
    return STR


def _construct(tag: str, text: str) -> tuple[object, str | None]:
    if tag == NULL:
        return None, None
    if tag == BOOL:
        return text.lower() in _TRUE, None
    if tag == INT:
        if not _DECIMAL_INT.match(text):
            return None, (f"{text} is an octal, hexadecimal, base-60 or underscored number in YAML 1.1: "
                          f"write the number in decimal, or \"{text}\" in quotes if it is text")
        try:
            return int(text), None
        except ValueError:
            return None, "the number has too many digits"
    if tag == FLOAT:
        if not _DECIMAL_FLOAT.match(text):
            return None, (f"{text} is not a finite decimal number (YAML reads it as a special or base-60 float): "
                          f"write \"{text}\" in quotes if it is text")
        value = float(text)
        if not math.isfinite(value):
            return None, f"{text} is too large a number"
        return value, None
    if tag == MERGE:
        return _MERGE_KEY, None
    if tag == _T + "value":  # YAML 1.1 reads a lone "=" as a "value" tag; it means the text "="
        return text, None
    if tag == _T + "timestamp":
        return None, f"{text} is read by YAML as a date: write \"{text}\" in quotes"
    return None, _tag_message(tag)


def _tag_message(tag: str | None) -> str:
    short = "!!" + tag[len(_T):] if tag and tag.startswith(_T) else tag
    return (f"the tag {short} is not allowed: manifests hold only strings, numbers, booleans, null, "
            "lists and mappings")


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {'true' if value else 'false'}"
    return f"the number {value}"
