"""The layout's one rule, checked over the real import graph: a module imports only from its own layer's
package or from layers to its left (docs/architecture.md, "Modules")."""

from __future__ import annotations

import ast
from pathlib import Path

import cluster_pilot

ROOT = Path(cluster_pilot.__file__).parent

# data order: the pipeline's stages left to right, the drivers last
LAYERS: list[set[str]] = [
    {"model", "errors", "quantity", "home", "resources", "__init__"},
    {"api"},
    {"manifests"},
    {"host"},
    {"scheduler"},
    {"plan"},
    {"apply"},
    {"store"},
    {"master", "sandbox"},
    {"bench"},
    {"cli"},
    {"__main__"},
]


def _unit(module: str) -> str:
    """``cluster_pilot.host.observe`` -> ``host``; ``cluster_pilot.model`` -> ``model``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _layer(unit: str) -> int:
    for i, members in enumerate(LAYERS):
        if unit in members:
            return i
    raise AssertionError(f"cluster_pilot.{unit} belongs to no layer: add it to LAYERS and docs/architecture.md")


def _is_module(name: str) -> bool:
    return (ROOT / f"{name}.py").exists() or (ROOT / name).is_dir()


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "cluster_pilot":
                found |= {f"cluster_pilot.{a.name}" if _is_module(a.name) else "cluster_pilot" for a in node.names}
            elif node.module.startswith("cluster_pilot."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("cluster_pilot.")}
    return found


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        out.append((".".join(rel.parts), path))
    return out


def test_every_package_has_a_layer():
    for name, _ in _modules():
        _layer(_unit(name))


def test_imports_point_left_or_within_the_package():
    wrong = []
    for name, path in _modules():
        here = _unit(name)
        for target in _imports(path):
            there = _unit(target)
            if there == here or there == "__init__":
                continue
            if _layer(there) >= _layer(here):
                wrong.append(f"{name} imports {target}")
    assert wrong == []


def test_the_rule_catches_a_backward_import():
    """The check itself can fail: observe importing the scheduler would be caught."""
    assert _layer(_unit("cluster_pilot.scheduler.core")) > _layer(_unit("cluster_pilot.host.observe"))
    assert _layer(_unit("cluster_pilot.cli.get")) > _layer(_unit("cluster_pilot.master.api"))
