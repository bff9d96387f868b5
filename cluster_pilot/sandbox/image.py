"""Images the sandbox builds from Debian packages, since no registry outside this machine can be reached.

- the node image (a whole Debian with sshd, dockerd, python3, haproxy): every minion and the registry run it;
- seed images for the sandbox registry (``busybox`` from busybox-static, ``redis`` from redis-server), cut
  out of the node image so that they cost seconds, not another bootstrap.

Each image is tagged with the hash of its recipe: it is rebuilt only when the recipe changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
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


def _has_image(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def ensure_node_image(client: docker.DockerClient, work_dir: Path, log_path: Path) -> tuple[str, bool]:
    """The node image's tag, and whether it had to be built."""
    tag = node_image_tag()
    if _has_image(client, tag):
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
        _import_dir(client, rootfs, tag, ['CMD ["/usr/local/sbin/cp-minion-init"]', f"LABEL {SANDBOX_LABEL}=image"])
    return tag, True


def _import_dir(client: docker.DockerClient, root: Path, tag: str, changes: list[str]) -> None:
    """``docker import`` of a directory, streamed from tar so a 600 MB tree never sits in memory."""
    repo, _, version = tag.rpartition(":")
    tar = subprocess.Popen(["tar", "-C", str(root), "--numeric-owner", "-cf", "-", "."], stdout=subprocess.PIPE)
    try:
        client.api.import_image_from_stream(tar.stdout, repository=repo, tag=version, changes=changes)
    finally:
        tar.stdout.close()
        if tar.wait() != 0:
            raise UserError(f"could not pack {root} into image {tag}")


@dataclass(frozen=True)
class SeedImage:
    """An image for the sandbox registry, cut from the node image's files."""

    name: str  # as users write it in manifests: ``busybox`` resolves to docker.io/library/busybox
    collect: str  # shell run in the node image; fills /out with the image's root
    changes: tuple[str, ...]


_BUSYBOX = """
mkdir -p /out/bin /out/tmp /out/etc /out/var/www /out/root
cp /bin/busybox /out/bin/busybox
for applet in $(/bin/busybox --list); do [ "$applet" = busybox ] || ln -s busybox /out/bin/$applet; done
printf 'root:x:0:0:root:/root:/bin/sh\\nnobody:x:65534:65534:nobody:/:/bin/false\\n' > /out/etc/passwd
printf 'root:x:0:\\nnogroup:x:65534:\\n' > /out/etc/group
chmod 1777 /out/tmp
"""

_REDIS = """
mkdir -p /out/data /out/tmp /out/etc /out/bin
for f in /usr/bin/redis-server /usr/bin/redis-cli $(ldd /usr/bin/redis-server /usr/bin/redis-cli | awk '/=>/ {print $3} /ld-linux/ {print $1}' | sort -u); do
  mkdir -p "/out$(dirname "$f")"; cp -L "$f" "/out$f"
done
cp /bin/busybox /out/bin/busybox && ln -s busybox /out/bin/sh
printf 'root:x:0:0:root:/root:/bin/sh\\nredis:x:999:999:redis:/data:/bin/false\\n' > /out/etc/passwd
printf 'root:x:0:\\nredis:x:999:\\n' > /out/etc/group
chmod 1777 /out/tmp
"""

SEED_IMAGES = (
    SeedImage("busybox", _BUSYBOX, ('CMD ["sh"]',)),
    SeedImage("redis", _REDIS, ('CMD ["redis-server", "--protected-mode", "no"]', "WORKDIR /data",
                                "EXPOSE 6379", 'ENV PATH=/usr/bin:/bin')),
)


def seed_tag(seed: SeedImage, node_tag: str) -> str:
    digest = hashlib.sha256((node_tag + seed.collect + "".join(seed.changes)).encode()).hexdigest()[:12]
    return f"cluster-pilot/seed-{seed.name}:{digest}"


def ensure_seed_image(client: docker.DockerClient, seed: SeedImage, node_tag: str, work_dir: Path) -> tuple[str, bool]:
    tag = seed_tag(seed, node_tag)
    if _has_image(client, tag):
        return tag, False
    with tempfile.TemporaryDirectory(prefix=f"cp-seed-{seed.name}-", dir=work_dir) as tmp:
        out = Path(tmp) / "out"
        out.mkdir()
        try:
            client.containers.run(node_tag, ["sh", "-ec", seed.collect], remove=True, entrypoint=[],
                                  volumes={str(out): {"bind": "/out", "mode": "rw"}},
                                  labels={SANDBOX_LABEL: "build"})
        except docker.errors.ContainerError as exc:
            raise UserError(f"building seed image {seed.name} failed: {exc.stderr!r}") from exc
        _import_dir(client, out, tag, [*seed.changes, f"LABEL {SANDBOX_LABEL}=image"])
    return tag, True
