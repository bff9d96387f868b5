"""Images for the sandbox registry (``busybox`` from busybox-static, ``redis`` from redis-server, ``nginx`` from
nginx-light, ``guestbook``: the example's frontend on python3), cut out of the node image's files so that they cost
seconds, not another bootstrap. Their recipes live apart from the node image's so that adding one never rebuilds
the node image. Each is tagged with the hash of its recipe.
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
    files: tuple[tuple[str, str], ...] = ()  # (path under /out, text) written before ``collect`` runs


def _with_libs(*paths: str) -> str:
    """Shell copying ``paths`` (words the shell expands) and every shared library they load into /out."""
    files = " ".join(paths)
    return f"""
for f in {files} $(ldd {files} | awk '/=>/ {{print $3}} /ld-linux/ {{print $1}}' | sort -u); do
  mkdir -p "/out$(dirname "$f")"; cp -L "$f" "/out$f"
done
"""


def _users(*users: tuple[str, int, str]) -> str:
    """Shell writing /out/etc/passwd and group: root and ``(name, id, home)`` each."""
    passwd = "".join(f"{n}:x:{i}:{i}:{n}:{h}:/bin/false\\n" for n, i, h in users)
    group = "".join(f"{n}:x:{i}:\\n" for n, i, _ in users)
    return f"""
mkdir -p /out/etc /out/tmp && chmod 1777 /out/tmp
printf 'root:x:0:0:root:/root:/bin/sh\\n{passwd}' > /out/etc/passwd
printf 'root:x:0:\\n{group}' > /out/etc/group
"""


_SHELL = "\nmkdir -p /out/bin && cp /bin/busybox /out/bin/busybox && ln -s busybox /out/bin/sh\n"

_BUSYBOX = """
mkdir -p /out/bin /out/var/www /out/root
cp /bin/busybox /out/bin/busybox
for applet in $(/bin/busybox --list); do [ "$applet" = busybox ] || ln -s busybox /out/bin/$applet; done
""" + _users(("nobody", 65534, "/"))

# As the official image does: protected mode off (pods connect from other addresses) also when a pod's command
# is its own ``redis-server --replicaof redis-master 6379``: redis-server is a wrapper; a later option wins.
_REDIS_WRAPPER = """#!/bin/sh
if [ -n "$1" ] && [ "${1#-}" = "$1" ]; then conf=$1; shift; exec /usr/libexec/redis-server "$conf" --protected-mode no "$@"; fi
exec /usr/libexec/redis-server --protected-mode no "$@"
"""

_REDIS = "\nmkdir -p /out/data\n" + _with_libs("/usr/bin/redis-server", "/usr/bin/redis-cli") + _SHELL + _users(
    ("redis", 999, "/data")) + """
mkdir -p /out/usr/libexec && mv /out/usr/bin/redis-server /out/usr/libexec/redis-server
cp /out/build/redis-server /out/usr/bin/redis-server && chmod 755 /out/usr/bin/redis-server && rm -r /out/build
"""

# Debian's nginx with a configuration of its own: a static page on port 80, keep-alive, logs to stdout/stderr,
# in the foreground (CMD). More servers: /etc/nginx/conf.d/*.conf. A busybox shell, so a pod can write a config.
_NGINX_CONF = """user www-data;
worker_processes auto;
pid /run/nginx.pid;
error_log stderr;
events { worker_connections 4096; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65s;
    keepalive_requests 100000;
    access_log /dev/stdout;
    server {
        listen 80 default_server;
        root /usr/share/nginx/html;
    }
    include /etc/nginx/conf.d/*.conf;
}
"""

_NGINX = """
mkdir -p /out/etc/nginx/conf.d /out/var/log/nginx /out/var/lib/nginx /out/run /out/usr/share/nginx/html
cp /etc/nginx/mime.types /out/etc/nginx/mime.types
cp /out/build/nginx.conf /out/etc/nginx/nginx.conf
cp /out/build/index.html /out/usr/share/nginx/html/index.html
ln -s /dev/stderr /out/var/log/nginx/error.log && ln -s /dev/stdout /out/var/log/nginx/access.log
rm -r /out/build
""" + _with_libs("/usr/sbin/nginx") + _SHELL + _users(("www-data", 33, "/var/www"))

# python3 with exactly the standard library modules the app imports (and the codecs a host name may need),
# their compiled forms, the extension modules' shared libraries; the app at /app/guestbook.py.
_PICK_MODULES = """
import importlib.util, os, sys
sys.dont_write_bytecode = True
sys.path.insert(0, "/out/app")
import guestbook, encodings.idna, encodings.ascii, encodings.latin_1
for module in list(sys.modules.values()):
    path = getattr(module, "__file__", None) or ""
    if path.startswith(sys.prefix + "/lib/python3"):
        print(path)
        cached = importlib.util.cache_from_source(path) if path.endswith(".py") else ""
        if cached and os.path.exists(cached):
            print(cached)
"""

_GUESTBOOK = f"""
mkdir -p /out/usr/bin
python3 -I -c '{_PICK_MODULES}' > /tmp/modules
for f in $(cat /tmp/modules); do mkdir -p "/out$(dirname "$f")"; cp "$f" "/out$f"; done
python=$(readlink -f /usr/bin/python3)
""" + _with_libs("$python", "$(grep '[.]so$' /tmp/modules)") + """
ln -s "$(basename "$python")" /out/usr/bin/python3
""" + _users(("guestbook", 999, "/app"))

_GUESTBOOK_APP = Path(__file__).with_name("guestbook_app.py")
_PAGE = "<!doctype html><html><body><h1>nginx on cluster-pilot</h1></body></html>\n"

SEED_IMAGES = (
    SeedImage("busybox", _BUSYBOX, ('CMD ["sh"]',)),
    SeedImage("redis", _REDIS, ('CMD ["redis-server"]', "WORKDIR /data", "EXPOSE 6379", "ENV PATH=/usr/bin:/bin"),
              (("build/redis-server", _REDIS_WRAPPER),)),
    SeedImage("nginx", _NGINX, ('CMD ["nginx", "-g", "daemon off;"]', "EXPOSE 80",
                                "ENV PATH=/usr/sbin:/usr/bin:/bin"),
              (("build/nginx.conf", _NGINX_CONF), ("build/index.html", _PAGE))),
    SeedImage("guestbook", _GUESTBOOK, ('CMD ["python3", "-I", "/app/guestbook.py"]', "EXPOSE 80",
                                        "ENV PATH=/usr/bin"),
              (("app/guestbook.py", _GUESTBOOK_APP.read_text()),)),
)


def seed_tag(seed: SeedImage, node_tag: str) -> str:
    files = "".join(path + text for path, text in seed.files)
    digest = hashlib.sha256((node_tag + seed.collect + "".join(seed.changes) + files).encode()).hexdigest()[:12]
    return f"cluster-pilot/seed-{seed.name}:{digest}"


def ensure_seed_image(client: docker.DockerClient, seed: SeedImage, node_tag: str, work_dir: Path) -> tuple[str, bool]:
    tag = seed_tag(seed, node_tag)
    if has_image(client, tag):
        return tag, False
    with tempfile.TemporaryDirectory(prefix=f"cp-seed-{seed.name}-", dir=work_dir) as tmp:
        out = Path(tmp) / "out"
        out.mkdir()
        for path, text in seed.files:
            (out / path).parent.mkdir(parents=True, exist_ok=True)
            (out / path).write_text(text)
        try:
            client.containers.run(node_tag, ["sh", "-ec", seed.collect], remove=True, entrypoint=[],
                                  volumes={str(out): {"bind": "/out", "mode": "rw"}},
                                  labels={SANDBOX_LABEL: "build"})
        except docker.errors.ContainerError as exc:
            raise UserError(f"building seed image {seed.name} failed: {exc.stderr!r}") from exc
        import_dir(client, out, tag, [*seed.changes, f"LABEL {SANDBOX_LABEL}=image"])
    return tag, True
