"""Our Ansible modules, loaded from their files as Ansible would ship them, for unit tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROLES = Path(__file__).resolve().parents[2] / "roles"


def load_file(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_module(role: str, module: str) -> ModuleType:
    """The module from ``roles/ROLE/library/``, its role's ``module_utils/`` importable as AnsiballZ makes them
    (``ansible.module_utils.NAME``)."""
    for utils in sorted((ROLES / role / "module_utils").glob("*.py")):
        name = f"ansible.module_utils.{utils.stem}"
        if name not in sys.modules:
            sys.modules[name] = load_file(utils, name)
    return load_file(ROLES / role / "library" / f"{module}.py", f"cp_test_{module}")
