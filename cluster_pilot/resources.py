"""Locates the files shipped beside the code (playbooks, roles, schemas, examples).

In a wheel they sit inside the package; in a source checkout (editable install) at the repository's top level.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"cluster-pilot is installed without its {name}/ directory")
