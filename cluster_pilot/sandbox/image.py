"""Images the sandbox builds from Debian packages, since no registry outside this machine can be reached.

- the node image (a whole Debian with sshd, dockerd, python3, haproxy): every minion and the registry run it;
- seed images for the sandbox registry are cut out of it (``seeds.py``: a recipe there never rebuilds this one).

Each image is tagged with the hash of its recipe: it is rebuilt only when the recipe changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import docker
import docker.errors

from cluster_pilot.errors import UserError

SUITE = "bookworm"
NODE_PACKAGES = (
    "python3", "python3-requests", "openssh-server", "docker.io", "iproute2", "haproxy", "busybox-static",
    "ca-certificates", "redis-server", "docker-registry", "procps", "runit", "socat",
    "dnsmasq-base", "nginx-light",  # the service DNS on every minion; a fast backend for the proxy bench
)
INIT_SCRIPT = Path(__file__).with_name("minion-init.sh")
SANDBOX_LABEL = "io.cluster-pilot.sandbox"


def debian_mirror() -> str:
    """The mirror apt already uses here, so the node image comes from where this machine's packages come."""
    explicit = os.environ.get("CLUSTER_PILOT_DEBIAN_MIRROR")
    if explicit:
        return explicit
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            words = line.split()
            for word in words:
                if word.startswith("http") and word.rstrip("/").endswith("/debian"):
                    return word.rstrip("/")
    return "http://deb.debian.org/debian"


def node_recipe_hash() -> str:
    h = hashlib.sha256()
    h.update(SUITE.encode())
    h.update(",".join(NODE_PACKAGES).encode())
    h.update(INIT_SCRIPT.read_bytes())
    h.update(Path(__file__).read_bytes())  # the build steps themselves
    return h.hexdigest()[:12]


def node_image_tag() -> str:
    return f"cluster-pilot/node:{node_recipe_hash()}"


def has_image(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def ensure_node_image(client: docker.DockerClient, work_dir: Path, log_path: Path) -> tuple[str, bool]:
    """The node image's tag, and whether it had to be built."""
    tag = node_image_tag()
    if has_image(client, tag):
        return tag, False
    if os.geteuid() != 0:
        raise UserError("building the sandbox node image needs root (debootstrap)")
    with tempfile.TemporaryDirectory(prefix="cp-rootfs-", dir=work_dir) as tmp:
        rootfs = Path(tmp) / "rootfs"
        cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(NODE_PACKAGES)}", SUITE, str(rootfs),
               debian_mirror()]
        with open(log_path, "ab") as log:
            if subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False).returncode != 0:
                raise UserError(f"debootstrap of the node image failed: see {log_path}")
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man"):
            shutil.rmtree(rootfs / junk, ignore_errors=True)
        for service in (rootfs / "etc/service").glob("*"):  # Debian's runit services: sshd is the init's own
            service.unlink()
        (rootfs / "usr/local/sbin").mkdir(parents=True, exist_ok=True)
        shutil.copy2(INIT_SCRIPT, rootfs / "usr/local/sbin/cp-minion-init")
        import_dir(client, rootfs, tag, ['CMD ["/usr/local/sbin/cp-minion-init"]', f"LABEL {SANDBOX_LABEL}=image"])
    return tag, True


def import_dir(client: docker.DockerClient, root: Path, tag: str, changes: list[str]) -> None:
    """``docker import`` of a directory, streamed from tar so a 600 MB tree never sits in memory."""
    repo, _, version = tag.rpartition(":")
    tar = subprocess.Popen(["tar", "-C", str(root), "--numeric-owner", "-cf", "-", "."], stdout=subprocess.PIPE)
    try:
        client.api.import_image_from_stream(tar.stdout, repository=repo, tag=version, changes=changes)
    finally:
        tar.stdout.close()
        if tar.wait() != 0:
            raise UserError(f"could not pack {root} into image {tag}")
