"""The wheel carries everything cluster-pilot needs beside its code, and works installed, from any directory.

Builds the wheel from this checkout, checks its contents, installs it (``--no-deps``) into a fresh venv that
borrows this machine's packages for the dependencies (``--system-site-packages``: no network needed), and runs
it from a temporary directory, far from the checkout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]

SHIPPED = [
    "cluster_pilot/playbooks/apply.yml",
    "cluster_pilot/roles/cp_pods/library/cp_pods.py",
    "cluster_pilot/roles/cp_pods/action_plugins/cp_pods.py",
    "cluster_pilot/roles/cp_proxy/action_plugins/cp_proxy_apply.py",  # a link in the checkout: a file in the wheel
    "cluster_pilot/roles/cp_pods/module_utils/cp_podformat.py",
    "cluster_pilot/roles/cp_pods/module_utils/cp_fence.py",
    "cluster_pilot/roles/cp_proxy/module_utils/cp_fence.py",  # a link too
    "cluster_pilot/roles/cp_pods/tasks/main.yml",
    "cluster_pilot/roles/cp_proxy/tasks/main.yml",
    "cluster_pilot/roles/cp_proxy/library/cp_proxy_apply.py",
    "cluster_pilot/roles/cp_proxy/templates/haproxy.cfg.j2",
    "cluster_pilot/schemas/v1beta1/Pod.json",
    "cluster_pilot/schemas/v1/Pod.json",
    "cluster_pilot/examples/guestbook/v1beta1/redis-master-pod.json",
    "cluster_pilot/sandbox/minion-init.sh",
]


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--disable-pip-version-check", "-q", "-w", str(out)],
        cwd=ROOT, timeout=600)
    (found,) = out.glob("cluster_pilot-*.whl")
    return found


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> tuple[Path, dict[str, str], Path]:
    """(venv python, environment to run it in, a working directory outside the checkout)."""
    venv = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], cwd=venv)
    python = venv / "bin" / "python"
    if sys.prefix != sys.base_prefix:  # the tests run in a venv themselves: lend its packages too
        purelib = run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=venv)
        (Path(purelib.strip()) / "cp-test-deps.pth").write_text(
            "".join(f"{p}\n" for p in sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})))
    # --ignore-installed: this machine may have cluster-pilot installed already (editable, from this checkout)
    run([str(python), "-m", "pip", "install", "--no-deps", "--ignore-installed", "--disable-pip-version-check",
         "-q", str(wheel)], cwd=venv, timeout=600)
    cwd = tmp_path_factory.mktemp("elsewhere")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSAFEPATH")}
    env["CLUSTER_PILOT_HOME"] = str(tmp_path_factory.mktemp("cphome"))
    return python, env, cwd


def test_wheel_ships_playbooks_roles_schemas_examples_and_the_init_script(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        init_mode = zf.getinfo("cluster_pilot/sandbox/minion-init.sh").external_attr >> 16
    missing = [n for n in SHIPPED if n not in names]
    assert not missing, f"missing from {wheel.name}: {missing}"
    assert init_mode & 0o111, "minion-init.sh lost its executable bit in the wheel"
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_installed_package_finds_its_files_inside_site_packages(installed):
    python, env, cwd = installed
    out = run([str(python), "-c", (
        "import json, sysconfig, cluster_pilot\n"
        "from cluster_pilot.resources import resource_dir\n"
        "print(json.dumps({'purelib': sysconfig.get_paths()['purelib'], 'package': cluster_pilot.__file__,\n"
        "  'dirs': {n: str(resource_dir(n)) for n in ('playbooks', 'roles', 'schemas', 'examples')}}))"
    )], cwd=cwd, env=env)
    where = json.loads(out)
    purelib = Path(where["purelib"]).resolve()
    assert purelib.is_relative_to(python.parent.parent.resolve())
    assert Path(where["package"]).resolve().is_relative_to(purelib / "cluster_pilot"), where
    for name, path in where["dirs"].items():
        assert Path(path).resolve() == purelib / "cluster_pilot" / name, where
    assert os.access(purelib / "cluster_pilot/sandbox/minion-init.sh", os.X_OK)


def test_installed_cli_runs_from_another_directory(installed):
    python, env, cwd = installed
    assert "validate" in run([str(python), "-m", "cluster_pilot", "--help"], cwd=cwd, env=env)
    schema = json.loads(run([str(python), "-m", "cluster_pilot", "schema", "Pod"], cwd=cwd, env=env))
    assert schema["title"].startswith("Pod")
    where = "from cluster_pilot.resources import resource_dir; print(resource_dir('examples'))"
    examples = Path(run([str(python), "-c", where], cwd=cwd, env=env).strip())
    out = run([str(python), "-m", "cluster_pilot", "validate", str(examples / "guestbook" / "v1beta1")], cwd=cwd,
              env=env)
    assert out.startswith("ok:"), out
    script = python.parent / "cluster-pilot"  # the console script, as a user runs it
    assert "Usage:" in run([str(script), "--help"], cwd=cwd, env=env)
