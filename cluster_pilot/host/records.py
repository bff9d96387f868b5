"""The object records every minion keeps: what the fleet was asked to run and serve, and who asked. Pure.

Pods announce themselves through their containers' labels, but a service or a controller has no container
to carry it, and a runner with an empty state dir (a CI job) must still know them: otherwise its plan would
rewrite every proxy without them. So each apply writes one document on every minion it reaches, with every
pod, controller and service as asked (full spec), its owner (the master or an apply set) and a version.
Every runner reads it back in the observation's round trip; across minions the newest version of each
object wins (a minion that was down keeps an older copy until the next run rewrites it); a deletion is a
tombstone with a version of its own, so an old copy cannot bring the object back.

Tombstones do not pile up: a run that writes the records anyway drops those every minion's copy already holds,
and those older than ``TOMBSTONE_AGE_MS`` (by the version, a millisecond clock every runner reads alike). The
document then carries a horizon: it knows every object up to that version, so an entry at or below it that
the document lacks was deleted and collected, and an old copy (a minion that was down) cannot bring it back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

from cluster_pilot.model import KINDS, POD, REPLICATION_CONTROLLER, SERVICE, Object, from_json, to_json

if TYPE_CHECKING:
    from cluster_pilot.host.observed import Observation

FORMAT = 1
TOMBSTONE_AGE_MS = 7 * 24 * 3600 * 1000  # a minion down longer than this may lose a write only it received
_WORDS = {POD: "pod", REPLICATION_CONTROLLER: "replicationController", SERVICE: "service"}


@dataclass(frozen=True)
class Owner:
    """Who manages an object: the master (at its URL), or the CLI's applies of one apply set."""

    applyset: str
    master: str = ""

    def same(self, other: "Owner") -> bool:
        """A fleet has one master: any master-made record is the master's, whatever URL it served on then."""
        if self.master or other.master:
            return bool(self.master and other.master)
        return self.applyset == other.applyset

    def describe(self) -> str:
        return f"the master at {self.master}" if self.master else f"apply set {self.applyset!r}"


@dataclass(frozen=True)
class Entry:
    kind: str
    name: str
    version: int
    owner: Owner
    body: Mapping | None  # the object as ``model.to_json`` writes it; None: deleted (a tombstone)

    @property
    def key(self) -> tuple[str, str]:
        return self.kind, self.name

    def doc(self) -> dict:
        return {"kind": self.kind, "name": self.name, "version": self.version, "applyset": self.owner.applyset,
                "master": self.owner.master, "body": self.body}


@dataclass(frozen=True)
class Records:
    entries: Mapping[tuple[str, str], Entry] = field(default_factory=dict)
    horizon: int = 0  # every object up to this version is here, or was deleted and its tombstone collected

    @property
    def top(self) -> int:
        return max((e.version for e in self.entries.values()), default=self.horizon)

    def holds(self, e: Entry) -> bool:
        """This copy has ``e`` or something newer for its object."""
        mine = self.entries.get(e.key)
        return mine is not None and mine.version >= e.version

    def live(self, kind: str | None = None) -> list[Entry]:
        return [e for k, e in sorted(self.entries.items())
                if e.body is not None and (kind is None or e.kind == kind)]

    def get(self, kind: str, name: str) -> Entry | None:
        e = self.entries.get((kind, name))
        return e if e is not None and e.body is not None else None

    def objects(self, kind: str) -> list[Object]:
        return [from_json(e.body) for e in self.live(kind)]

    def encode(self) -> str:
        """Canonical text: the same records give the same bytes on every runner."""
        docs = [e.doc() for _, e in sorted(self.entries.items())]
        doc = {"format": FORMAT, "objects": docs} | ({"horizon": self.horizon} if self.horizon else {})
        return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def decode(text: str | None) -> tuple[Records, list[str]]:
    """A minion's document -> records, and what could not be read (never fatal: that minion's copy is
    rewritten by the next run)."""
    if not text:
        return Records(), []
    if text.startswith("\0"):  # the probe could not read it (a directory, say): rewritten, set aside first
        return Records(), [f"unreadable object records ({text[1:]})"]
    try:
        doc = json.loads(text)
        items, horizon = doc["objects"], int(doc.get("horizon", 0))
        if not isinstance(items, list):
            raise TypeError("objects is not a list")
    except (ValueError, KeyError, TypeError) as exc:
        return Records(), [f"unreadable object records ({exc})"]
    entries: dict[tuple[str, str], Entry] = {}
    problems = []
    for i, item in enumerate(items):
        try:
            e = Entry(str(item["kind"]), str(item["name"]), int(item["version"]),
                      Owner(str(item.get("applyset", "")), str(item.get("master", ""))), item.get("body"))
            if e.kind not in KINDS or not (e.body is None or isinstance(e.body, dict)):
                raise ValueError(f"kind {e.kind!r}")
            if e.body is not None:
                from_json(e.body)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            problems.append(f"object record {i} skipped ({exc})")
            continue
        entries[e.key] = newest(entries.get(e.key), e)
    return Records(entries, horizon), problems


def newest(a: Entry | None, b: Entry) -> Entry:
    """The higher version wins; a tie (two writers never share one under the fleet lock) is broken by the
    entry's text, so every runner picks the same."""
    if a is None:
        return b
    return max(a, b, key=lambda e: (e.version, json.dumps(e.doc(), sort_keys=True)))


def merge(copies: Iterable[Records]) -> Records:
    """The newest entry of each object, but none that a copy knowing everything up to its horizon lacks."""
    copies = list(copies)
    knowing = [c for c in copies if c.horizon]
    entries: dict[tuple[str, str], Entry] = {}
    for copy in copies:
        for key, e in copy.entries.items():
            if not any(c.horizon >= e.version and not c.holds(e) for c in knowing):
                entries[key] = newest(entries.get(key), e)
    return Records(entries, max((c.horizon for c in copies), default=0))


def collect(records: Records, copies: Iterable[Records | None], now_ms: int) -> Records:
    """``records`` without the tombstones every minion's copy holds (``None``: a minion that did not answer)
    or older than ``TOMBSTONE_AGE_MS``; the horizon moves up to the newest one dropped."""
    copies = list(copies)
    everywhere = bool(copies) and all(c is not None for c in copies)
    gone = {k: e.version for k, e in records.entries.items() if e.body is None and (
        now_ms - e.version >= TOMBSTONE_AGE_MS or everywhere and all(c.holds(e) for c in copies))}
    if not gone:
        return records
    entries = {k: e for k, e in records.entries.items() if k not in gone}
    return Records(entries, max(records.horizon, *gone.values()))


def settle(records: Records, copies: Mapping[str, Records | None], now_ms: int,
           busy: bool) -> tuple[str, tuple[str, ...]]:
    """The document every minion should keep, and the answering minions whose copy differs. Tombstones are
    collected only when the records are written anyway (some copy differs) or the run reaches every answering
    minion anyway (``busy``), so that collecting alone never makes a plan nor widens one (a pod healed on one
    minion of thirty must not rewrite the other twenty-nine copies)."""
    def differ(document: str) -> tuple[str, ...]:
        return tuple(sorted(n for n, c in copies.items() if c is not None and c.encode() != document))

    document = records.encode()
    if busy or differ(document):
        document = collect(records, copies.values(), now_ms).encode()
    return document, differ(document)


@dataclass(frozen=True)
class Update:
    records: Records  # what every minion should keep after this run
    refused: tuple[str, ...] = ()  # objects another owner manages: one message each
    refused_keys: frozenset[tuple[str, str]] = frozenset()


def refusal(kind: str, name: str, holder: Owner, me: Owner) -> str:
    hint = "use --server" if holder.master else "apply it with that --applyset"
    if me.master:
        hint = "change it with cluster-pilot apply"
    return f"{_WORDS.get(kind, kind)} {name!r} is managed by {holder.describe()}; {hint} (or --force-adopt)"


def update(current: Records, objects: Sequence[Object], deleting: Iterable[tuple[str, str]], owner: Owner, *,
           prune: bool = False, adopt: bool = False, version: int = 0) -> Update:
    """The records after an apply: the inputs' objects recorded (unchanged ones keep their version, so two
    runners applying the same object write one copy), deletions and, with ``prune``, the owner's objects the
    inputs no longer name turned into tombstones; everything else kept as it is. ``version``: a floor for new
    versions (a clock), so a write made while the minion with the newest copy was down still wins later."""
    entries = dict(current.entries)
    next_version = max(current.top + 1, version)
    refused: dict[tuple[str, str], str] = {}

    def mine(kind: str, name: str) -> bool:
        e = current.get(kind, name)
        if e is None or e.owner.same(owner) or adopt:
            return True
        refused[(kind, name)] = refusal(kind, name, e.owner, owner)
        return False

    named = set()
    for obj in objects:
        key = (obj.kind, obj.meta.name)
        named.add(key)
        if not mine(*key):
            continue
        body = as_body(obj)
        old = current.get(*key)
        if old is None or old.body != body or old.owner != owner:
            entries[key] = Entry(obj.kind, obj.meta.name, next_version, owner, body)
    doomed = {k for k in deleting if k[0] in KINDS}
    if prune:
        doomed |= {e.key for e in current.live() if e.owner.same(owner) and e.key not in named}
    for key in sorted(doomed):
        if current.get(*key) is not None and mine(*key):
            entries[key] = replace(entries[key], version=next_version, owner=owner, body=None)
    return Update(Records(entries, current.horizon), tuple(refused[k] for k in sorted(refused)), frozenset(refused))


@dataclass(frozen=True)
class ObjectChange:
    action: str  # "create", "update" or "delete"
    kind: str
    name: str

    def describe(self) -> str:
        mark = {"create": "+", "update": "~", "delete": "-"}[self.action]
        return f"{mark} {_WORDS.get(self.kind, self.kind)} {self.name}"


def changes(before: Records, after: Records, kinds: Iterable[str] = KINDS) -> list[ObjectChange]:
    """What an apply asks differently of the fleet, object by object (what a reviewer reads, rather than
    which minions' copies are rewritten)."""
    out = []
    for kind, name in sorted(set(before.entries) | set(after.entries)):
        if kind not in kinds:
            continue
        old, new = before.get(kind, name), after.get(kind, name)
        if old is None and new is not None:
            out.append(ObjectChange("create", kind, name))
        elif old is not None and new is None:
            out.append(ObjectChange("delete", kind, name))
        elif old is not None and new is not None and (old.body, old.owner) != (new.body, new.owner):
            out.append(ObjectChange("update", kind, name))
    return out


def readdress(records: Records, objects: Iterable[Object], version: int) -> Records:
    """``records`` with the bodies of ``objects`` (the same objects, their addresses allocated), each under its
    own owner, at a new version."""
    entries = dict(records.entries)
    next_version = max(records.top + 1, version)
    for obj in objects:
        key = (obj.kind, obj.meta.name)
        if key in entries:
            entries[key] = replace(entries[key], version=next_version, body=as_body(obj))
    return Records(entries)


def as_body(obj: Object) -> dict:
    """``to_json`` as it reads back from a document (lists, not tuples), so equal objects compare equal."""
    return json.loads(json.dumps(to_json(obj), sort_keys=True))


def seed(objects: Iterable[tuple[Object, str]]) -> Records:
    """Records for a fleet that has none yet (its runs predate them): a driver's own store, at version 0."""
    return Records({(o.kind, o.meta.name): Entry(o.kind, o.meta.name, 0, Owner(applyset), as_body(o))
                    for o, applyset in objects})


def fleet_records(seen: Observation, known: Records | None = None) -> tuple[Records, list[str]]:
    """The newest record of every object across the minions' copies. ``known``: what a driver's own store
    remembers, used only on a fleet where no minion has a copy yet (its applies predate the records)."""
    copies, problems = [], []
    for name, view in sorted(seen.hosts.items()):
        if view.records is not None:
            records, bad = decode(view.records)
            copies.append(records)
            problems += [f"{name}: {p}" for p in bad]
    if not copies and known is not None:
        return known, problems
    return merge(copies), problems
