#!/usr/bin/python3
"""Converge one host's pods in one task: pull, create and start, or stop and remove containers.

Talks to dockerd over its socket with the standard library only (no Docker SDK needed on the host), and
works on many pods at once, so a host's whole share of a plan costs one module run, not one task per
container. Each action is idempotent: a container that exists already (an earlier run cut short) is
started, not created twice; a container that is gone already counts as removed.

A run whose controller is gone (Ctrl-C, a lost connection) stops before its next Docker change: the module's
standard output is the pipe to the SSH session, and its far end closing is the sign. Otherwise it would go on
creating pods that the next apply, already looking at the host, does not know of.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: cp_pods
short_description: Create or remove cluster-pilot pods (groups of containers) on this host
description:
  - Executes pod actions rendered by cluster-pilot against the local Docker Engine API.
options:
  create:
    description:
      - JSON list of pods to create; each has C(pod), C(images), C(pull), C(dirs) and C(containers), the one
        owning the pod's network namespace first (the infra container, or a single-container pod's own), and
        C(group) (fsGroup) when its volumes belong to a group.
      - A container labelled C(io.cluster-pilot.run-as-non-root) is not started if its image runs as root.
      - JSON text rather than a structure, so that no value is re-typed or templated on the way.
    type: str
    default: "[]"
  remove:
    description:
      - JSON list of pods to remove; each has C(pod), C(ids) and C(dir).
      - Removed before any pod of C(create) is made, which is not made when a removal failed.
    type: str
    default: "[]"
  records:
    description:
      - The object records document (JSON text) this minion keeps for every runner to read back, written
        after the pods' actions when they all succeeded, atomically, mode 0600; empty leaves it alone.
      - Written here rather than by a module run of its own, which cost every run that rewrote it 0.6 s.
    type: str
    default: ""
  records_path:
    description: Where the object records document lives.
    type: str
    default: /var/lib/cluster-pilot/objects.json
  fence:
    description:
      - The fencing token of the fleet lock's holding this run acts under. Checked against the highest this
        minion has seen before every Docker change and the records write; a lower one is refused (its lease
        ran out and a later run holds the lock). 0 is not checked.
    type: int
    default: 0
  fence_path:
    description: Where this minion keeps the highest fencing token it has seen.
    type: str
    default: /var/lib/cluster-pilot/fence
  socket:
    description: Path of the Docker Engine socket.
    type: str
    default: /var/run/docker.sock
notes:
  - Does not support check mode.
author: cluster-pilot developers
"""

EXAMPLES = r"""
# As roles/cp_pods/tasks/main.yml runs it: one task per stage, each batch's JSON texts rendered by cluster-pilot
# (passed as unsafe extra variables, so that Ansible never templates what is inside); removals before creations.
- name: Converge pods (remove those in the way, create new ones)
  cp_pods:
    remove: "{{ item.remove }}"
    create: "{{ item.create }}"
    records: "{{ cp_records_json if item.records else '' }}"
    fence: "{{ cp_fence | default(0) }}"
  loop: "{{ (cp_hosts[inventory_hostname] | default({})).converge | default([]) }}"
  loop_control:
    label: batch

# By hand: remove one pod, its container IDs infra first, its directory (pod name, then spec hash).
- name: Remove one pod
  cp_pods:
    remove: >-
      [{"pod": "web-1a2b3", "ids": ["4f1c9e0b7a2d", "9b3e5d7c1f0a"],
        "dir": "/var/lib/cluster-pilot/pods/web-1a2b3/5e8a"}]
"""

RETURN = r"""
created:
  description: Pods whose containers were created and started (or found created and started again).
  returned: always
  type: list
  elements: str
  sample: ["web-1a2b3"]
removed:
  description: Pods whose containers were stopped and removed (or were gone already).
  returned: always
  type: list
  elements: str
  sample: ["web-4c5d6"]
pulled:
  description: Images pulled for the pods to create.
  returned: always
  type: list
  elements: str
  sample: ["busybox"]
records:
  description: Whether the object records document was replaced (it is left alone when unchanged).
  returned: always
  type: bool
failed_pods:
  description: The pods whose action failed, each with its error; the other pods' actions still ran.
  returned: failed
  type: list
  elements: dict
  sample: [{"pod": "web-1a2b3", "error": "pull nosuchimage: not found"}]
"""

import ctypes
import errno
import json
import os
import select
import stat
import shutil
import socket
import tempfile
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.cp_fence import FENCE, Fenced, check
from ansible.module_utils.cp_podformat import BIND_DIR, LABEL_NON_ROOT, POD_DIR

ARGUMENT_SPEC = dict(
    create=dict(type="str", default="[]", no_log=True),  # pod environments: never logged
    remove=dict(type="str", default="[]", no_log=True),
    records=dict(type="str", default="", no_log=True),  # pods as asked: their environments too
    records_path=dict(type="str", default="/var/lib/cluster-pilot/objects.json"),
    socket=dict(type="str", default="/var/run/docker.sock"),
    fence=dict(type="int", default=0),
    fence_path=dict(type="str", default=FENCE),
)


# Pods worked on at once (render's MODULE_WIDTH): a minion's dockerd made 10 containers in 1.6-1.8 s ten at
# a time, 1.9-2.0 s five at a time, 2.8-3.2 s one after another.
WIDTH = 16

# dockerd before Engine API 1.42 (Docker 23.0; Debian bookworm's docker.io is 20.10.24) can lock itself up for
# good when containers of one network stop at the same moment: libnetwork takes its network and controller
# locks in opposite orders while one container leaves the network and another's endpoint is deleted
# (moby/moby#42545). There, pods are removed one after another.
SAFE_CONCURRENT_STOPS = (1, 42)
STOP_WAIT = 60  # seconds for dockerd to answer a stop (its 2 s grace included) or a removal


class DockerError(Exception):
    pass


class Abandoned(Exception):
    pass


def check_controller():
    """Raise ``Abandoned`` when the reader of our standard output (the controller's session) has gone."""
    poll = select.poll()
    poll.register(1, select.POLLERR | select.POLLHUP)
    if poll.poll(0):
        raise Abandoned("the controller's session closed: stopped before the next change")


def http(path, request, timeout):
    """One HTTP/1.0 exchange over the Unix socket at ``path``: (status, body). dockerd closes the connection
    after its answer, so the body runs to the close (a pull's progress stream included). Not http.client:
    importing it (email, ssl) cost as much CPU on the host as the rest of the module's imports together."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(request)
        chunks = []
        while True:
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        s.close()
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    try:
        return int(head.split(None, 2)[1]), body
    except (IndexError, ValueError):
        raise DockerError("not an HTTP answer from %s: %r" % (path, head[:80]))


class Docker:
    def __init__(self, path, fence=0, fence_path=FENCE):
        self.path = path
        self.unanswered = ""  # the request dockerd left unanswered: no further one is sent
        self.fence, self.fence_path = fence, fence_path

    def may_change(self):
        """Before each Docker change: the controller is still there, and no later lock holder wrote here."""
        check_controller()
        check(self.fence_path, self.fence)

    def call(self, method, url, body=None, query=None, ok=(200, 201, 204, 304), timeout=300):
        """A dockerd that leaves a request (other than a pull, which may be slow) unanswered in time is taken
        as locked up: the other pods' requests then fail at once, each naming it, instead of waiting as long
        again one after another."""
        if self.unanswered:
            raise DockerError("not tried: dockerd stopped answering (%s)" % self.unanswered)
        request = "%s %s" % (method, url)  # as errors name it: without the query
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = json.dumps(body).encode("utf-8") if body is not None else b""
        head = "%s %s HTTP/1.0\r\nHost: docker\r\nContent-Length: %d\r\n" % (method, url, len(data))
        if body is not None:
            head += "Content-Type: application/json\r\n"
        try:
            status, raw = http(self.path, head.encode("utf-8") + b"\r\n" + data, timeout)
        except socket.timeout:
            said = "%s: dockerd gave no answer in %g s" % (request, timeout)
            if not url.startswith("/images/create"):
                self.unanswered = said
            raise DockerError(said)
        if status not in ok:
            try:
                message = json.loads(raw).get("message", raw.decode("utf-8", "replace"))
            except ValueError:
                message = raw.decode("utf-8", "replace")
            raise DockerError("%s: %d %s" % (request, status, message.strip()))
        return status, raw

    def stops_at_once(self):
        """Whether containers may be stopped concurrently here (see ``SAFE_CONCURRENT_STOPS``); an engine
        whose version cannot be read is taken as an old one."""
        try:
            _, raw = self.call("GET", "/version", ok=(200,), timeout=20)
            api = tuple(int(p) for p in json.loads(raw)["ApiVersion"].split("."))
        except (DockerError, OSError, ValueError, KeyError, TypeError, AttributeError):
            return False
        return api >= SAFE_CONCURRENT_STOPS

    def has_image(self, image):
        status, _ = self.call("GET", "/images/%s/json" % urllib.parse.quote(image, safe=""), ok=(200, 404))
        return status == 200

    def image_user(self, image):
        """The user the image runs as ("" when it says none: root)."""
        _, raw = self.call("GET", "/images/%s/json" % urllib.parse.quote(image, safe=""), ok=(200,))
        return (json.loads(raw).get("Config") or {}).get("User") or ""

    def pull(self, image):
        self.may_change()
        name, tag = image, "latest"
        if "@" not in image and ":" in image.rsplit("/", 1)[-1]:
            name, tag = image.rsplit(":", 1)
        _, raw = self.call("POST", "/images/create", query={"fromImage": name, "tag": tag}, timeout=900)
        for line in raw.splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if doc.get("error"):
                raise DockerError("pull %s: %s" % (image, doc["error"]))

    def run(self, name, body):
        self.may_change()
        status, raw = self.call("POST", "/containers/create", body=body, query={"name": name}, ok=(201, 409))
        ident = json.loads(raw)["Id"] if status == 201 else name
        self.call("POST", "/containers/%s/start" % ident)
        return status == 201

    def remove(self, ident):
        self.may_change()
        self.call("POST", "/containers/%s/stop" % ident, query={"t": "2"}, ok=(204, 304, 404), timeout=STOP_WAIT)
        self.call("DELETE", "/containers/%s" % ident, query={"force": "1", "v": "1"}, ok=(204, 404), timeout=STOP_WAIT)


def _safe_dir(path, root=None):
    """Whether ``path`` lies below ``root`` (``POD_DIR``), links resolved: what cp_pods removes or binds stays in
    its own place."""
    return os.path.realpath(path).startswith((root or POD_DIR) + "/")


MS_BIND, MNT_DETACH = 4096, 2
_libc = None


def _syscall(name, *args):
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if getattr(_libc, name)(*args) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def bind_root():
    """The anchors' own tmpfs, mounted once per boot: after a reboot no anchor is there, so a container dockerd
    starts again fails to (its mount's source is missing) rather than getting an empty directory."""
    os.makedirs(BIND_DIR, mode=0o700, exist_ok=True)
    if not os.path.ismount(BIND_DIR):
        _syscall("mount", b"cp-binds", BIND_DIR.encode(), b"tmpfs", 0, b"mode=0700")


def open_checked(path):
    """``path`` opened (O_PATH) one component at a time from ``/``, following no symbolic link at any level, so
    what is opened is what the path names now; missing directories are made as Docker would make them."""
    parts = path.split("/")[1:]
    if not path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError("host path %r is not absolute and normalised: refused" % path)
    fd = os.open("/", os.O_PATH | os.O_DIRECTORY)
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            try:
                step = os.open(part, os.O_PATH | os.O_NOFOLLOW | (0 if last else os.O_DIRECTORY), dir_fd=fd)
            except FileNotFoundError:
                try:
                    os.mkdir(part, 0o755, dir_fd=fd)
                except FileExistsError:
                    pass
                step = os.open(part, os.O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise ValueError("host path %s passes through a symbolic link or a file on this minion: "
                                     "refused" % path)
                raise
            os.close(fd)
            fd = step
            if stat.S_ISLNK(os.fstat(fd).st_mode):
                raise ValueError("host path %s is a symbolic link on this minion: refused" % path)
        return fd
    except BaseException:
        os.close(fd)
        raise


def unbind(target):
    try:
        _syscall("umount2", target.encode(), MNT_DETACH)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOENT):  # EINVAL: not a mount point
            raise


def anchor_bind(source, target, root=BIND_DIR):
    """Bind what ``source`` names now (checked by ``open_checked``) at ``target``, below ``BIND_DIR``, where no
    pod can write: dockerd resolves ``target`` again at every start, and it still leads to the checked
    directory (or file), whatever becomes of ``source``'s path later."""
    if not _safe_dir(target, root):
        raise ValueError("anchor %s is not below %s: refused" % (target, root))
    fd = open_checked(source)
    try:
        seen = os.fstat(fd)
        os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
        unbind(target)
        if stat.S_ISDIR(seen.st_mode):
            if not os.path.isdir(target) or os.path.islink(target):
                _clear(target)
                os.mkdir(target, 0o700)
        elif not os.path.isfile(target) or os.path.islink(target):
            _clear(target)
            os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600))
        _syscall("mount", ("/proc/self/fd/%d" % fd).encode(), target.encode(), None, MS_BIND, None)
        bound = os.stat(target)
        if (bound.st_dev, bound.st_ino) != (seen.st_dev, seen.st_ino):
            unbind(target)
            raise ValueError("host path %s: its bind at %s is not what was checked: refused" % (source, target))
    finally:
        os.close(fd)


def _clear(target):
    """An unmounted leftover at ``target`` (never a mount: ``unbind`` ran first), removed without recursing."""
    if os.path.islink(target) or os.path.isfile(target):
        os.unlink(target)
    elif os.path.isdir(target):
        os.rmdir(target)


def unbind_all(directory, root=BIND_DIR):
    """A pod version's anchors unmounted and removed, one level, never recursively: a mount still there makes
    the removal fail rather than reach into the host path."""
    if not _safe_dir(directory, root) or not os.path.isdir(directory):
        return
    for name in os.listdir(directory):
        target = os.path.join(directory, name)
        unbind(target)
        _clear(target)
    os.rmdir(directory)
    parent = os.path.dirname(directory)
    if _safe_dir(parent, root) and not os.listdir(parent):
        os.rmdir(parent)


def network_owner(action):
    """The container that owns the pod's network namespace (its hostname, ports, and whatever else is set per
    pod network): rendered first, the others join it; a pod of one container has no infra container."""
    return action["containers"][0]


def runs_as_root(user):
    """Whether an image's ``User`` is root: none, ``root`` or uid 0, with or without a group."""
    name = user.split(":", 1)[0]
    return name in ("", "root", "0")


def check_non_root(docker, action):
    """runAsNonRoot with no user of its own: refused before anything starts if the image would run as root,
    as the kubelet refuses it (CreateContainerConfigError)."""
    for c in action["containers"]:
        body = c["body"]
        if (body.get("Labels") or {}).get(LABEL_NON_ROOT) and runs_as_root(docker.image_user(body["Image"])):
            raise DockerError("container %s: runAsNonRoot is set and image %s runs as root: give runAsUser, "
                              "or an image whose USER is not root" % (c["name"], body["Image"]))


def create_pod(docker, action):
    check_non_root(docker, action)
    for b in action.get("binds", []):
        anchor_bind(b["source"], b["anchor"])
    for d in action.get("dirs", []):
        os.makedirs(d, exist_ok=True)
        if action.get("group") is not None:  # fsGroup: the volume is the group's, and so is what is made in it
            os.chown(d, -1, int(action["group"]))
            os.chmod(d, 0o2775)
    owner = network_owner(action)
    created = docker.run(owner["name"], owner["body"])  # the namespace the others join must run first
    for c in action["containers"][1:]:
        created = docker.run(c["name"], c["body"]) or created
    return created


def remove_pod(docker, action):
    ids = list(action.get("ids", []))
    # the containers joining a network namespace before the one owning it
    for ident in ids[1:] + ids[:1]:
        docker.remove(ident)
    d = action.get("dir")
    if d and _safe_dir(d) and os.path.isdir(d):
        shutil.rmtree(d, ignore_errors=True)
        parent = os.path.dirname(d)
        if _safe_dir(parent) and os.path.isdir(parent) and not os.listdir(parent):
            os.rmdir(parent)
    if action.get("binds"):
        unbind_all(action["binds"])


def finish(done, failed, jobs):
    """Wait for each (kind, pod, future); note it done or failed, with why."""
    for kind, pod, future in jobs:
        try:
            future.result()
            done[kind].append(pod)
        except Abandoned:
            failed.append({"pod": pod, "error": "not done: the run was abandoned"})
        except Exception as exc:
            failed.append({"pod": pod, "error": str(exc)})


def act(docker, creates, removes):
    """Pull what is missing, remove, then create (nothing when a removal failed): what was done, what failed."""
    failed, done = [], {"created": [], "removed": [], "pulled": []}
    wanted = {}
    for action in creates:
        for image in action.get("images", []):
            wanted[image] = wanted.get(image, False) or action.get("pull") == "always"

    def pull(item):
        image, always = item
        if always or not docker.has_image(image):
            docker.pull(image)
            return image
        return None

    if any(a.get("binds") for a in creates):
        bind_root()  # once, before the pods' threads: two mounting it would hide each other's anchors
    workers = max(1, min(WIDTH, len(wanted) + len(creates) + len(removes)))
    removers = workers if len(removes) < 2 or docker.stops_at_once() else 1
    with ThreadPoolExecutor(max_workers=workers) as pool, ThreadPoolExecutor(max_workers=removers) as removing:
        pulls = [(image, pool.submit(pull, (image, always))) for image, always in sorted(wanted.items())]
        # removals before creations: a pod going away may hold the host ports or the container names
        # (a broken copy of the same version) that a new one needs
        finish(done, failed, [("removed", a["pod"], removing.submit(remove_pod, docker, a)) for a in removes])
        bad_images = {}
        for image, future in pulls:
            try:
                if future.result():
                    done["pulled"].append(image)
            except Exception as exc:  # reported per pod below, the others go on
                bad_images[image] = str(exc)
        jobs = []
        for action in creates:
            missing = [i for i in action.get("images", []) if i in bad_images]
            if failed:
                failed.append({"pod": action["pod"], "error": "not created: a pod to remove first was not removed"})
            elif missing:
                failed.append({"pod": action["pod"], "error": bad_images[missing[0]]})
            else:
                jobs.append(("created", action["pod"], pool.submit(create_pod, docker, action)))
        finish(done, failed, jobs)

    return done, failed


def main(module=None):
    """``module``: the role's action plugin passes its stand-in for ``AnsibleModule`` (no AnsiballZ)."""
    if module is None:
        from ansible.module_utils.basic import AnsibleModule

        module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=False)
    docker = Docker(module.params["socket"], module.params["fence"], module.params["fence_path"])
    try:
        check(docker.fence_path, docker.fence)
    except Fenced as exc:
        module.fail_json(msg=str(exc), fenced=True, changed=False, records=False, created=[], removed=[], pulled=[])
    try:
        creates, removes = json.loads(module.params["create"]), json.loads(module.params["remove"])
    except ValueError as exc:
        module.fail_json(msg="create/remove must be JSON lists: %s" % exc)
    try:
        if module.params["records"]:
            json.loads(module.params["records"])
    except ValueError as exc:
        module.fail_json(msg="not a records document: %s" % exc)
    done, failed = act(docker, creates, removes)
    changed = bool(done["created"] or done["removed"] or done["pulled"])
    if failed:
        module.fail_json(msg="; ".join("%s: %s" % (f["pod"], f["error"]) for f in failed), failed_pods=failed,
                         changed=changed, records=False, **done)
    try:
        if module.params["records"]:
            check(docker.fence_path, docker.fence)
        records = bool(module.params["records"]) and write_records(module.params["records_path"],
                                                                   module.params["records"], module.warn)
    except Fenced as exc:
        module.fail_json(msg="object records: %s" % exc, fenced=True, changed=changed, records=False, **done)
    except OSError as exc:
        module.fail_json(msg="object records: %s" % exc, changed=changed, records=False, **done)
    module.exit_json(changed=changed or records, records=records, **done)


def write_records(path, text, warn=lambda message: None):
    """Replace the records document atomically (a reader never sees half of it); False when unchanged. A
    document that cannot be read back (a directory, not UTF-8 JSON, truncated) is set aside first, renamed
    beside it, and ``warn`` says so: the new one is written from the other minions' copies."""
    why = damaged(path)
    if why is None:
        with open(path, "rb") as f:
            if f.read() == text.encode("utf-8"):
                return False
    elif why:
        aside = "%s.damaged-%d" % (path, time.time_ns())
        os.rename(path, aside)
        warn("object records %s %s: set aside as %s, rewritten" % (path, why, aside))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".objects-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return True


def damaged(path):
    """None: a readable records document; "": none there; else why the thing at ``path`` is not one."""
    if not os.path.lexists(path):
        return ""
    if os.path.islink(path) or not os.path.isfile(path):
        return "is not a file"
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read().decode("utf-8"))
    except OSError as exc:
        return "is unreadable (%s)" % exc.strerror
    except ValueError:  # UnicodeDecodeError included: binary, or truncated JSON
        return "is not UTF-8 JSON"
    return None if isinstance(doc, dict) else "is not a JSON object"

if __name__ == "__main__":
    main()
