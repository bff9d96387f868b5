"""A CI runner for the sandbox: a fresh container of the node image (Debian bookworm's python3, no pip) with
cluster-pilot's dependencies installed offline from a wheelhouse built on this machine, and the project's own
wheel offered to the job's ``pip install cluster-pilot``. No registry outside the machine is reached from
inside; every job starts from the image, so its state dir is empty.

The image is tagged with the hash of the node image and the dependencies: built once (about a minute), then a
job costs seconds. The wheelhouse it was built from is kept under ``~/.cache/cluster-pilot``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import docker
import docker.errors

from cluster_pilot.sandbox import image
from tests.ci_recipe import SECRETS_DIR

ROOT = Path(__file__).resolve().parents[2]
VENV = "/opt/ci"  # the runner's python, with pip on PATH as in a CI image
LABEL = {image.SANDBOX_LABEL: "ci-runner"}


def dependencies() -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "cluster-pilot" / "ci-runner"


def runner_tag(node_tag: str) -> str:
    digest = hashlib.sha256("\n".join([node_tag, *dependencies()]).encode()).hexdigest()[:12]
    return f"cluster-pilot/ci-runner:{digest}"


def _pip(*args: str, timeout: float = 900) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", *args, "-q", "--disable-pip-version-check"],
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise AssertionError(f"pip {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")


def wheelhouse(tag: str) -> Path:
    """pip and every dependency as wheels (binary ones for this machine's CPython 3.11, as Debian's is)."""
    where = cache_dir() / f"wheels-{tag.rpartition(':')[2]}"
    done = where / ".complete"
    if not done.exists():
        where.mkdir(parents=True, exist_ok=True)
        _pip("wheel", "-w", str(where), "pip", *dependencies())
        done.touch()
    return where


def ensure_runner_image(client: docker.DockerClient) -> str:
    """The runner image's tag, built from the node image when missing."""
    node_tag = image.node_image_tag()
    tag = runner_tag(node_tag)
    if image.has_image(client, tag):
        return tag
    wheels = wheelhouse(tag)
    install = (f"pipw=$(ls /wheels/pip-*.whl) && python3 -m venv --without-pip {VENV} && "
               f"{VENV}/bin/python $pipw/pip install -q --no-index --no-cache-dir $pipw && "
               f"{VENV}/bin/pip install -q --no-index --no-cache-dir --find-links /wheels "
               + " ".join(f"'{d}'" for d in dependencies()))
    box = client.containers.run(node_tag, ["bash", "-ec", install], entrypoint=[], detach=True, labels=LABEL,
                                volumes={str(wheels): {"bind": "/wheels", "mode": "ro"}})
    try:
        status = box.wait(timeout=900)
        if status["StatusCode"] != 0:
            raise AssertionError(f"building {tag} failed:\n{box.logs().decode()[-3000:]}")
        repo, _, version = tag.rpartition(":")
        box.commit(repo, version, changes=[f"ENV PATH={VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                                           "/usr/bin:/sbin:/bin", "ENV PIP_NO_INDEX=1",
                                           "ENV PIP_FIND_LINKS=/wheels", "ENV PIP_DISABLE_PIP_VERSION_CHECK=1",
                                           'CMD ["bash"]', "ENTRYPOINT []", f"LABEL {image.SANDBOX_LABEL}=image"])
    finally:
        box.remove(force=True)
    return tag


def project_wheel(out: Path) -> Path:
    """This checkout as a wheel: what ``pip install cluster-pilot`` finds in the job (the only wheel offered)."""
    _pip("wheel", str(ROOT), "--no-deps", "-w", str(out))
    (found,) = out.glob("cluster_pilot-*.whl")
    return found


@dataclass(frozen=True)
class JobRun:
    name: str
    code: int
    output: str


@dataclass(frozen=True)
class Runner:
    """Starts jobs: each a fresh container on the sandbox's network, the repository checked out at
    ``/builds/repo`` (its cwd), the project's wheel at ``/wheels``, the secrets as files."""

    client: docker.DockerClient
    tag: str
    network: str
    wheels: Path
    secrets: Path

    def start(self, script: str, repo: Path, env: Mapping[str, str], network: str | None = None):
        return self.client.containers.run(
            self.tag, ["bash", "-c", script], detach=True, labels=LABEL, network=network or self.network,
            working_dir="/builds/repo", environment={"CI": "true", **env}, hostname="runner",
            volumes={str(repo): {"bind": "/builds/repo", "mode": "rw"},
                     str(self.wheels): {"bind": "/wheels", "mode": "ro"},
                     str(self.secrets): {"bind": SECRETS_DIR, "mode": "ro"}})

    def finish(self, name: str, box, timeout: float = 300) -> JobRun:
        try:
            status = box.wait(timeout=timeout)
            return JobRun(name, status["StatusCode"], box.logs().decode(errors="replace"))
        finally:
            box.remove(force=True)
