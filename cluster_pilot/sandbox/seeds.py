"""Images for the sandbox registry (``busybox`` from busybox-static, ``redis`` from redis-server, ...), cut out
of the node image's files so that they cost seconds, not another bootstrap. Their recipes live apart from the node
image's so that adding one never rebuilds the node image. Each is tagged with the hash of its recipe.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from cluster_pilot.errors import UserError
from cluster_pilot.sandbox.image import SANDBOX_LABEL, has_image, import_dir


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
    if has_image(client, tag):
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
        import_dir(client, out, tag, [*seed.changes, f"LABEL {SANDBOX_LABEL}=image"])
    return tag, True
