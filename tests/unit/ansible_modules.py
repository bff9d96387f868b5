"""Our Ansible modules, loaded from their files as Ansible would ship them, for unit tests."""

from __future__ import annotations

import importlib.util
import json
import subprocess
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


ACTION = load_file(ROLES / "cp_pods" / "action_plugins" / "cp_pods.py", "cp_test_action_plugin")


def run_action(module: Path, args: dict) -> dict:
    """The module at ``module`` as the roles' action plugin runs it on a minion: its bootstrap under ``sh -c``
    (the remote shell), the document on its standard input, the result read back as the plugin reads it."""
    proc = subprocess.run(["sh", "-c", ACTION.command(sys.executable)], capture_output=True, text=True,
                          input=json.dumps(ACTION.payload(module, args)), timeout=60)
    return ACTION.result_of(proc.returncode, proc.stdout, proc.stderr)
