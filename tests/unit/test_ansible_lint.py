"""The shipped playbook and roles pass ansible-lint with its strictest (production) profile.

ansible-lint is in the ``test`` extra: it must be there, this test never skips. ``--offline``: Ansible Galaxy is
not reachable, so ansible-lint must not try to install anything.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_playbooks_and_roles_are_ansible_lint_clean():
    env = dict(os.environ, NO_COLOR="1")
    proc = subprocess.run(
        [sys.executable, "-m", "ansiblelint", "--offline", "--profile", "production", "playbooks/", "roles/"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        check=False)
    assert proc.returncode == 0, f"ansible-lint exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    assert "Profile 'production' was required, and it passed" in proc.stdout + proc.stderr
