"""The layout's rules, checked over the real import graph (docs/architecture.md, "Modules"): a module imports
only from its own layer's package or from layers to its left, and the pure core reaches no module that opens
a connection, however indirectly."""

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
    {"plan", "store"},  # beside each other: neither imports the other, and apply may use both
    {"apply"},
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


# the pure core: values to values; "cluster_pilot.plan" means every module of that package
PURE = ("cluster_pilot.scheduler", "cluster_pilot.plan", "cluster_pilot.apply.render", "cluster_pilot.master.registry",
        "cluster_pilot.master.events", "cluster_pilot.master.backoff")
# what opens a connection to a host: SSH, the observation probe's clients, the master's sessions, the lock's client
CONNECTS = {"cluster_pilot.host.ssh", "cluster_pilot.host.probe", "cluster_pilot.host.watch", "cluster_pilot.host.lock"}


def _runs(node: ast.AST) -> bool:
    """Whether an ``if`` block runs when its module is imported (``if TYPE_CHECKING:`` does not)."""
    test = node.test if isinstance(node, ast.If) else None
    return not (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"
                or isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_imports(path: Path) -> set[str]:
    """Every cluster_pilot module importing ``path`` (or calling into it) may load: imports anywhere in it, in
    functions too, but not those for type checkers only; ``from P import m`` names the module ``P.m``."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and not _runs(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and (
                node.module == "cluster_pilot" or node.module.startswith("cluster_pilot.")):
            found.add(node.module)
            sub = ROOT.parent.joinpath(*node.module.split("."))
            found.update(f"{node.module}.{a.name}" for a in node.names
                         if (sub / f"{a.name}.py").exists() or (sub / a.name).is_dir())
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("cluster_pilot."))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return found


def _loads(start: str) -> dict[str, str]:
    """Every module importing ``start`` loads (its packages' ``__init__`` included), each with the module that
    imported it, so a failure can name the chain."""
    paths = dict(_modules())
    by = {start: ""}
    todo = [start]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        nexts = {".".join(parts[:i]) for i in range(2, len(parts))}  # the packages it sits in
        path = paths.get(name) or paths.get(f"{name}.__init__")
        if path is not None:
            nexts |= _runtime_imports(path)
        for other in nexts:
            if other not in by and (other in paths or f"{other}.__init__" in paths):
                by[other] = name
                todo.append(other)
    return by


def _chain(by: dict[str, str], name: str) -> str:
    chain = [name]
    while by[chain[-1]]:
        chain.append(by[chain[-1]])
    return " <- ".join(chain)


def test_the_pure_core_reaches_no_connection():
    """The scheduler, the planner, render and the master's registry and events work on values: importing
    them loads nothing that opens a connection, directly or through another module."""
    starts = [n.removesuffix(".__init__") for n, _ in _modules() if any(n == p or n.startswith(p + ".") for p in PURE)]
    assert len(starts) > len(PURE)
    wrong = []
    for start in starts:
        by = _loads(start)
        wrong += [_chain(by, hit) for hit in sorted(CONNECTS & by.keys())]
    assert wrong == []


def test_the_pure_rule_catches_a_connection_reached_indirectly():
    """The check itself can fail: the pipeline observes (through host.observe), the lock talks to its hosts."""
    assert "cluster_pilot.host.ssh" in _loads("cluster_pilot.apply.pipeline")
    assert "cluster_pilot.host.ssh" in _loads("cluster_pilot.host.lock")
    assert "cluster_pilot.host.ssh" not in _loads("cluster_pilot.host.observed")
