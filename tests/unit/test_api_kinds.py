"""The one table of kinds: every word of a row names that kind on the command line, in kubecfg and in
``--kind``, no word names two kinds, and no module outside ``api/kinds.py`` spells a plural or a short name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import cluster_pilot
from cluster_pilot.api import kinds
from cluster_pilot.cli.options import kind_of
from cluster_pilot.errors import UserError
from cluster_pilot.manifests.normalise import kind_from_hint
from cluster_pilot.master.client import resource_name, resource_of

ROOT = Path(cluster_pilot.__file__).parent


def test_no_word_names_two_kinds():
    seen: dict[str, str] = {}
    for kind in kinds.TABLE:
        for word in kind.words:
            assert seen.setdefault(word, kind.name) == kind.name, word


@pytest.mark.parametrize("kind", kinds.TABLE, ids=lambda k: k.name)
def test_every_word_of_a_row_names_its_kind_everywhere(kind):
    for word in kind.words | {kind.v1beta1, kind.name, f"/{kind.v1beta1}", kind.short.upper()}:
        assert kind_of(word) == kind.name
        assert resource_name(word) == kind.v1beta1
        if kind in kinds.MANIFEST_KINDS:
            assert kind_from_hint(word) == kind.name
    assert resource_of(kind.name) == kind.v1beta1


def test_minions_are_not_a_manifest_kind():
    with pytest.raises(UserError, match=r"^'minions' is not a kind: expected Pod, ReplicationController or Service$"):
        kind_from_hint("minions")


def test_unknown_words_are_refused_with_the_list_of_kinds():
    with pytest.raises(UserError, match=r"^unknown kind 'deployments': expected one of pods \(po\), "
                                        r"replicationControllers \(rc\), services \(svc\), minions \(no\)$"):
        kind_of("deployments")
    with pytest.raises(UserError, match=r"^unknown resource 'x': expected pods, replicationControllers, "
                                        r"services or minions$"):
        resource_name("x")


# words that stand for a kind and nothing else (``pods``, ``no``, ``node``, ``("rc", name)`` also mean other things)
_SPELLINGS = sorted((kinds.CONTROLLERS.words | {kinds.CONTROLLERS.v1beta1, kinds.PODS.short})
                    - {kinds.CONTROLLERS.short})


def test_no_module_but_the_table_spells_a_kind_word():
    pattern = re.compile("[\"'](" + "|".join(map(re.escape, _SPELLINGS)) + ")[\"']")
    found = []
    for path in ROOT.rglob("*.py"):
        if path != ROOT / "api" / "kinds.py":
            found += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in pattern.finditer(path.read_text())]
    assert found == []
