"""Our Ansible modules, loaded from their files as Ansible would ship them, for unit tests."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Iterator
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


@contextlib.contextmanager
def module_args(args: dict) -> Iterator[None]:
    """``args`` as the next ``AnsibleModule`` reads them: ansible-core 2.19's ``patch_module_args``, or on
    earlier releases (CI runs these tests on the newest 2.18 too) the variable AnsiballZ sets."""
    try:
        from ansible.module_utils.testing import patch_module_args
    except ImportError:
        from ansible.module_utils import basic

        saved = basic._ANSIBLE_ARGS
        basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()
        try:
            yield
        finally:
            basic._ANSIBLE_ARGS = saved
        return
    with patch_module_args(args):
        yield


ACTION = load_file(ROLES / "cp_pods" / "action_plugins" / "cp_pods.py", "cp_test_action_plugin")


def run_action(module: Path, args: dict) -> dict:
    """The module at ``module`` as the roles' action plugin runs it on a minion: its bootstrap under ``sh -c``
    (the remote shell), the document on its standard input, the result read back as the plugin reads it."""
    proc = subprocess.run(["sh", "-c", ACTION.command(sys.executable)], capture_output=True, text=True,
                          input=json.dumps(ACTION.payload(module, args)), timeout=60)
    return ACTION.result_of(proc.returncode, proc.stdout, proc.stderr)
