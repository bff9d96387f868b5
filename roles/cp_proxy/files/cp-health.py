#!/usr/bin/python3
"""cp-health: the container probes of this minion's pods (readiness, liveness, startup), run on the minion
itself, so that a fleet driven only by CI behaves as one with a master.

- It finds the containers to probe by their ``io.cluster-pilot.probes`` label (what render wrote from the
  manifest), asking dockerd every second.
- Readiness is told to every minion's HAProxy, which asks this agent about each backend that has a readiness
  probe (``agent-check``, ``agent-send "POD@SPECHASH\\n"``): ``up`` or ``down #why``. A pod that is not ready gets
  no new connection through any proxy, and gets them again once it is.
- Liveness (and a startup probe that runs out of tries) restarts the container, with Kubernetes' back-off
  between restarts (10 s doubling to 5 min, forgotten after 10 min without one); the count is kept in
  ``STATE`` (by container id) for observation, which adds it to dockerd's own restart count. ``STATE`` also
  holds each gated container's readiness, rewritten when one changes, for ``get pods`` and the API.

Standard library only. Pure parts (``Check``, ``backoff``) are tested on the controller.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import os
import socket
import socketserver
import ssl
import sys
import tempfile
import threading
import time
import urllib.parse

DOCKER_SOCKET = "/var/run/docker.sock"
LABEL_POD = "io.cluster-pilot.pod"
LABEL_SPEC_HASH = "io.cluster-pilot.spec-hash"
LABEL_CONTAINER = "io.cluster-pilot.container"
LABEL_PROBES = "io.cluster-pilot.probes"
STATE = "/var/lib/cluster-pilot/health.json"
PORT = 10251
DISCOVER_EVERY = 1.0
BACKOFF_FIRST, BACKOFF_MAX, BACKOFF_RESET = 10.0, 300.0, 600.0
STOP_GRACE = 2  # seconds, as cp_pods stops a container


def backoff(restarts):
    """Seconds to wait after the ``restarts``-th restart before the next one may happen."""
    return 0.0 if restarts <= 0 else min(BACKOFF_FIRST * 2 ** (restarts - 1), BACKOFF_MAX)


class Check:
    """One probe of one container as Kubernetes runs it (``spec`` as ``podformat.probes_label`` writes it):
    first after ``initial`` seconds, then every ``period``; ``success`` successes in a row make it pass,
    ``failure`` failures in a row make it fail. ``passed`` starts as ``initially`` (readiness and startup: not
    yet; liveness: yes)."""

    def __init__(self, spec, started, initially):
        self.spec = spec
        self.passed = initially
        self.successes = 0
        self.failures = 0
        self.due = started + spec["initial"]
        self.running = False
        self.last = ""  # why the last try failed

    def result(self, ok, why, now):
        """Count one try's outcome; True when ``passed`` changed."""
        self.running = False
        self.due = now + self.spec["period"]
        before = self.passed
        if ok:
            self.successes, self.failures, self.last = self.successes + 1, 0, ""
            if self.successes >= self.spec["success"]:
                self.passed = True
        else:
            self.successes, self.failures, self.last = 0, self.failures + 1, why
            if self.failures >= self.spec["failure"]:
                self.passed = False
        return self.passed != before


class Docker:
    def __init__(self, path=DOCKER_SOCKET):
        self.path = path

    def call(self, method, url, body=None, timeout=10.0):
        conn = http.client.HTTPConnection("docker", timeout=timeout)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(self.path)
        conn.sock = sock
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, url, body=data, headers={"Content-Type": "application/json"} if data else {})
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        if resp.status >= 400:
            raise OSError("dockerd: %s %s: %d %s" % (method, url.split("?")[0], resp.status, raw[:200]))
        return json.loads(raw) if raw.strip() else None


def address_of(docker, doc):
    """The container's address, or that of the container whose network namespace it joined."""
    mode = doc.get("HostConfig", {}).get("NetworkMode", "")
    if mode.startswith("container:"):
        doc = docker.call("GET", "/containers/%s/json" % mode.split(":", 1)[1])
    settings = doc.get("NetworkSettings") or {}
    if settings.get("IPAddress"):
        return settings["IPAddress"]
    for net in (settings.get("Networks") or {}).values():
        if net.get("IPAddress"):
            return net["IPAddress"]
    return "127.0.0.1"


def try_http(address, spec, timeout):
    if spec["scheme"] == "HTTPS":
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # as the kubelet: no verification
        conn = http.client.HTTPSConnection(address, spec["port"], timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(address, spec["port"], timeout=timeout)
    try:
        headers = {"User-Agent": "cp-health", "Connection": "close", **dict(spec["headers"])}
        conn.request("GET", spec["path"], headers=headers)
        status = conn.getresponse().status
    finally:
        conn.close()
    return 200 <= status < 400, "HTTP probe failed with statuscode: %d" % status


def try_tcp(address, spec, timeout):
    with socket.create_connection((address, spec["port"]), timeout=timeout):
        return True, ""


def try_exec(docker, ident, spec, timeout):
    made = docker.call("POST", "/containers/%s/exec" % ident,
                       {"Cmd": spec["command"], "AttachStdout": False, "AttachStderr": False})
    docker.call("POST", "/exec/%s/start" % made["Id"], {"Detach": True, "Tty": False})
    deadline = time.monotonic() + timeout
    while True:
        state = docker.call("GET", "/exec/%s/json" % made["Id"])
        if not state.get("Running"):
            code = state.get("ExitCode")
            return code == 0, "command exited with %s" % code
        if time.monotonic() > deadline:
            return False, "command timed out after %gs" % timeout
        time.sleep(0.05)


class Container:
    """The checks of one running container, and what it belongs to."""

    def __init__(self, ident, name, labels, address, probes, now):
        self.ident, self.name, self.address = ident, name, address
        self.pod = "%s@%s" % (labels.get(LABEL_POD, ""), labels.get(LABEL_SPEC_HASH, ""))
        self.probes = probes
        self.start(now)

    def start(self, now):
        p = self.probes
        self.startup = Check(p["startup"], now, False) if "startup" in p else None
        self.readiness = Check(p["readiness"], now, False) if "readiness" in p else None
        self.liveness = Check(p["liveness"], now, True) if "liveness" in p else None

    def started(self):
        return self.startup is None or self.startup.passed

    def ready(self):
        """(ready, why not)."""
        if not self.started():
            return False, "%s: startup probe has not passed" % self.name
        if self.readiness is not None and not self.readiness.passed:
            return False, "%s: readiness probe %s" % (self.name, self.readiness.last or "has not passed yet")
        return True, ""

    def due(self, now):
        """The checks to run now: startup first; the others once it passed."""
        checks = [self.startup] if not self.started() else [c for c in (self.readiness, self.liveness) if c]
        return [c for c in checks if c is not None and not c.running and c.due <= now]


class Health:
    def __init__(self, docker, state_path=STATE):
        self.docker = docker
        self.state_path = state_path
        self.lock = threading.Lock()
        self.containers = {}
        self.restarts = self._load()
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=16)

    def _load(self):
        try:
            with open(self.state_path) as f:
                return json.load(f).get("restarts", {})
        except (OSError, ValueError, AttributeError):
            return {}

    def _save(self):
        """Under the lock: the restarts, and the readiness of every gated container (a readiness or startup
        probe) as it is now."""
        ready = {c.ident: c.ready()[0] for c in self.containers.values() if c.readiness or c.startup}
        directory = os.path.dirname(self.state_path)
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".health-")
        with os.fdopen(fd, "w") as f:
            json.dump({"restarts": self.restarts, "ready": ready}, f, sort_keys=True)
        os.replace(tmp, self.state_path)

    def discover(self, now):
        query = urllib.parse.quote(json.dumps({"label": [LABEL_PROBES], "status": ["running"]}))
        listed = {c["Id"]: c for c in self.docker.call("GET", "/containers/json?filters=" + query)}
        with self.lock:
            gone = [i for i in self.containers if i not in listed]
            for ident in gone:
                del self.containers[ident]
            fresh = [i for i in listed if i not in self.containers]
        found = {}
        for ident in fresh:
            try:
                doc = self.docker.call("GET", "/containers/%s/json" % ident)
                probes = json.loads(doc["Config"]["Labels"][LABEL_PROBES])
                c = Container(ident, doc.get("Name", "").lstrip("/"), doc["Config"]["Labels"],
                              address_of(self.docker, doc), probes, now)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                print("cp-health: container %s: %s" % (ident[:12], exc), file=sys.stderr, flush=True)
                continue
            found[ident] = c
        if gone or found:  # one write for the whole look, not one per container
            with self.lock:
                self.containers.update(found)
                self._save()

    def ready(self, pod):
        """The agent's answer for a pod: ``up``, or ``down #why`` (HAProxy reads a description only after a
    space: ``down#why`` changes nothing); a pod not running here is not ready."""
        with self.lock:
            members = [c for c in self.containers.values() if c.pod == pod]
            if not members:
                return "down #no probed container of %s runs here" % pod
            for c in members:
                ok, why = c.ready()
                if not ok:
                    return "down #" + why.replace("\n", " ")[:200]
        return "up"

    def tick(self, now):
        with self.lock:
            work = [(c, check) for c in self.containers.values() for check in c.due(now)]
            for _, check in work:
                check.running = True
        for c, check in work:
            self.pool.submit(self._run, c, check)

    def _run(self, c, check):
        timeout = check.spec["timeout"]
        try:
            if check.spec["action"] == "httpGet":
                ok, why = try_http(c.address, check.spec, timeout)
            elif check.spec["action"] == "tcpSocket":
                ok, why = try_tcp(c.address, check.spec, timeout)
            else:
                ok, why = try_exec(self.docker, c.ident, check.spec, timeout)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            ok, why = False, str(exc) or type(exc).__name__
        now = time.monotonic()
        with self.lock:
            changed = check.result(ok, why, now)
            # liveness failed, or startup ran out of tries
            dead = check is not c.readiness and not ok and check.failures >= check.spec["failure"]
            if changed and check is not c.liveness:
                self._save()
        if changed:
            print("cp-health: %s %s probe %s%s" % (c.name, "readiness" if check is c.readiness else
                  "liveness" if check is c.liveness else "startup", "passed" if check.passed else "failed: ",
                  "" if check.passed else why), file=sys.stderr, flush=True)
        if dead:
            self._restart(c, now)

    def _restart(self, c, now):
        """Restart a container whose liveness (or startup) failed, unless its back-off says wait."""
        wall = time.time()
        record = self.restarts.get(c.ident, {"count": 0, "last": 0.0})
        if wall - record["last"] > BACKOFF_RESET:
            record["count"] = 0
        wait = record["last"] + backoff(record["count"]) - wall
        if wait > 0:
            with self.lock:
                for check in (c.startup, c.liveness):
                    if check is not None:  # try again when the back-off ends; it fails again if still dead
                        check.passed, check.failures, check.due = check is c.liveness, 0, now + wait
            return
        try:
            self.docker.call("POST", "/containers/%s/restart?t=%d" % (c.ident, STOP_GRACE), timeout=60)
        except OSError as exc:
            print("cp-health: restarting %s: %s" % (c.name, exc), file=sys.stderr, flush=True)
            return
        record = {"count": record["count"] + 1, "last": wall}
        with self.lock:
            self.restarts[c.ident] = record
            c.start(time.monotonic())
            self._save()


def serve(health, port):
    class Agent(socketserver.StreamRequestHandler):
        timeout = 2

        def handle(self):
            try:
                pod = self.rfile.readline(512).decode("utf-8", "replace").strip()
                self.wfile.write((health.ready(pod) + "\n").encode())
            except OSError:
                pass

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    server = socketserver.ThreadingTCPServer(("0.0.0.0", port), Agent)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv):
    port = int(argv[1]) if len(argv) > 1 else PORT
    health = Health(Docker())
    serve(health, port)
    last = 0.0
    while True:
        now = time.monotonic()
        if now - last >= DISCOVER_EVERY:
            try:
                health.discover(now)
            except (OSError, ValueError) as exc:
                print("cp-health: dockerd: %s" % exc, file=sys.stderr, flush=True)
            last = now
        health.tick(now)
        time.sleep(0.1)


if __name__ == "__main__":
    main(sys.argv)
