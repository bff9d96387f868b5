"""The local Docker Engine that hosts the sandbox: found, or installed and started from Debian's packages.

The sandbox must come up on a fresh machine with nothing but Python, so when no engine answers and we are
root on Debian we install ``docker.io`` (and ``debootstrap`` for the node image) and start ``dockerd``
ourselves, logging to the state dir. Anywhere else we say what to do instead of guessing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import docker
import docker.errors

from cluster_pilot.errors import UserError

HOST_PACKAGES = {"dockerd": "docker.io", "debootstrap": "debootstrap", "ssh": "openssh-client"}


def _is_root_debian() -> bool:
    return os.geteuid() == 0 and Path("/etc/debian_version").exists()


def ensure_host_tools(state_dir: Path) -> list[str]:
    """Install the Debian packages the sandbox needs that are missing; returns what was installed."""
    missing = sorted({pkg for tool, pkg in HOST_PACKAGES.items() if shutil.which(tool) is None
                      and not Path("/usr/sbin", tool).exists()})
    if not missing:
        return []
    if not _is_root_debian():
        raise UserError(f"the sandbox needs {', '.join(missing)}: install them (e.g. apt-get install {' '.join(missing)})"
                        " or run as root on Debian so cluster-pilot installs them")
    log = state_dir / "apt.log"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    with open(log, "ab") as out:
        for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", *missing]):
            if subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, check=False).returncode != 0:
                raise UserError(f"'{' '.join(cmd)}' failed: see {log}")
    return missing


def _client() -> docker.DockerClient | None:
    try:
        client = docker.from_env(timeout=120)
        client.ping()
        return client
    except docker.errors.DockerException:
        return None


def ensure_engine(state_dir: Path, wait_s: float = 60.0) -> docker.DockerClient:
    """A client of a running engine; starts ``dockerd`` in the background when none answers."""
    client = _client()
    if client is not None:
        return client
    dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
    if not Path(dockerd).exists() or os.geteuid() != 0:
        raise UserError("no Docker Engine answers: start dockerd (or run as root on Debian so cluster-pilot "
                        "installs docker.io and starts it)")
    log_path = state_dir / "dockerd.log"
    with open(log_path, "ab") as log:
        subprocess.Popen([dockerd], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        client = _client()
        if client is not None:
            return client
        time.sleep(0.2)
    raise UserError(f"dockerd did not answer within {wait_s:.0f} s: see {log_path}")
