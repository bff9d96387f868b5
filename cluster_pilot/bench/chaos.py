"""The chaos soak: two masters over one PostgreSQL store on the sandbox, a workload of writes through their API
and CI applies, random faults for a bounded time, and the invariants of issue 33 checked all along and at the
end. The RNG is seeded and the seed reported, so that a run that found something can be told again.

Faults (one at a time, a random pause between them):

- ``minion``: a minion stopped (``sandbox stop``), then started again after a few seconds;
- ``dockerd``: dockerd on a minion ended with SIGTERM, as a restart of the service does; the minion's init
  starts it again within a second, and the containers it ended come back by their restart policy;
- ``leader``: the leading master SIGKILLed (found with ``GET /leader``), started again a few seconds later;
- ``ssh``: one SSH control master of the masters' state dir SIGKILLed, mid-session;
- ``ci``: a CI job (``python -m cluster_pilot apply -f`` from a state dir of its own) SIGKILLed with its
  whole process group mid-apply, as a runner that dies takes its job; the CI system then runs it again.

Workload (meanwhile, one step at a time): controllers created through the masters' API (the masters
alternate), their replicas changed, and rolling updates as ``kubecfg rollingupdate`` did them (the template
changed, then the old pods deleted one at a time, each replaced before the next); a service on every minion
selecting one controller, asked for its page several times a second through every minion in turn.

Invariants (a violation is named by what broke; 0 is the goal):

- ``lost``: an acknowledged create is missing from the store (checked every few seconds on a live master, and
  at the end);
- ``surge``: a controller runs more pods than its replicas + 1 (counted with plain ``docker ps`` on every
  minion that answers). The master's rolling update deletes one pod at a time, so it surges by at most 1; while
  a scale-down is on its way the bound is the former count + 1, until the count is seen at or below the new one;
- ``converge``: after the last fault was repaired and the last write made, everything is at full count
  (``docker ps`` and the API agree: every controller's replicas Running, no container of a pod whose delete
  was acknowledged still running) within ``converge_bound`` seconds;
- ``service``: no minion answered the service for more than ``outage_bound`` seconds in a row.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from cluster_pilot.api.kinds import CONTROLLERS, PODS, SERVICES
from cluster_pilot.bench import BenchFailed
from cluster_pilot.bench.heal import _free_port, wait
from cluster_pilot.host.podformat import LABEL_CONTROLLER, LABEL_POD
from cluster_pilot.host.ssh import control_dir, ssh_command
from cluster_pilot.model import Node

FAULTS = ("minion", "dockerd", "leader", "ssh", "ci")
SURGE = 1  # the master's rolling update deletes one pod at a time; a replacement may start before it is gone
SERVE = ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"]


@dataclass(frozen=True)
class ChaosSettings:
    duration: float = 120.0  # seconds of faults
    seed: int | None = None  # None: one drawn at random (and reported)
    port: int = 18090  # the service's port on every minion
    converge_bound: float = 120.0  # seconds from the last fault repaired to everything at full count
    outage_bound: float = 5.0  # seconds the service may go unanswered on every minion at once
    gap: tuple[float, float] = (3.0, 8.0)  # pause between faults
    max_controllers: int = 4  # the workload's own, besides the service's and the CI job's


@dataclass(frozen=True)
class ChaosFigures:
    seed: int
    seconds: float  # of faults
    faults: tuple[tuple[str, int], ...]  # (kind, injected)
    violations: tuple[str, ...]
    converge_s: float | None  # last fault repaired (or last write) to everything at full count; None: never
    requests: int
    served: int
    operations: tuple[tuple[str, int], ...]  # (create/scale/roll/ci, acknowledged)
    load: tuple[float, float]  # load average (1 min) before and after


def rc_body(name: str, replicas: int, version: int, serve: bool = False) -> dict:
    """A v1beta1 controller; ``version`` is in the command, so a new one is a new template (a rolling update)."""
    labels = {"name": name}
    container: dict = {"name": "app", "image": "busybox",
                       "command": SERVE if serve else ["sleep", str(2147483000 + version)]}
    if serve:
        container["command"] = [*SERVE[:2], f"{SERVE[2]} # v{version}"]
        container["ports"] = [{"name": "http", "containerPort": 80}]
    return {"kind": CONTROLLERS.name, "apiVersion": "v1beta1", "id": name, "labels": labels,
            "desiredState": {"replicas": replicas, "replicaSelector": labels, "podTemplate": {
                "labels": labels, "desiredState": {"manifest": {"version": "v1beta1", "containers": [container]}}}}}


class Violations:
    """Named violations, each kept once with how often it was seen (thread-safe); the first sighting is said."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self._seen: dict[str, tuple[str, int]] = {}
        self._lock = threading.Lock()
        self._say = say

    def add(self, key: str, text: str) -> None:
        with self._lock:
            first = key not in self._seen
            text, n = self._seen.get(key, (text, 0))
            self._seen[key] = (text, n + 1)
        if first:
            self._say(f"VIOLATION {text}")

    def named(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(text + (f" (seen {n} times)" if n > 1 else "") for text, n in self._seen.values())


class Master:
    """``cluster-pilot master`` on loopback over the shared store, restartable on its port."""

    def __init__(self, home: Path, store: str, log: Path) -> None:
        self.home, self.store, self.log = home, store, log
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Master":
        env = {**os.environ, "CLUSTER_PILOT_HOME": str(self.home)}
        self.proc = subprocess.Popen([sys.executable, "-m", "cluster_pilot", "master", "--listen",
                                      f"127.0.0.1:{self.port}", "--insecure-loopback", "--store", self.store],
                                     env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, "ab"))
        wait(self._answers, 120, f"the master on port {self.port} to answer", 0.2)
        return self

    def _answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise BenchFailed(f"the master on port {self.port} exited: {self.log.read_text()[-500:]}")
        return self.leading() is not None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.alive():
            self.proc.send_signal(sig)
            self.proc.wait(timeout=120)

    def request(self, method: str, path: str, body: dict | None = None, timeout: float = 20) -> tuple[int, dict]:
        """(HTTP status, answer); (0, {}) when the master did not answer."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, {}
        except (OSError, ValueError):
            return 0, {}

    def leading(self) -> bool | None:
        status, doc = self.request("GET", "/leader", timeout=5)
        return doc.get("leading") if status == 200 else None


@dataclass
class Controller:
    name: str
    replicas: int
    version: int = 0
    serve: bool = False
    high: int = 0  # the count the surge bound is measured from (the former count while a scale-down goes on)
    acknowledged: bool = False

    def body(self) -> dict:
        return rc_body(self.name, self.replicas, self.version, self.serve)

    def scaled(self, replicas: int) -> None:
        self.high = max(self.high, self.replicas, replicas)
        self.replicas = replicas

    def bound(self, running: int) -> int:
        """The most pods it may run, given that ``running`` run now: replicas + surge, or the former count +
        surge while a scale-down is on its way (until the count is seen at or below the new replicas)."""
        if running <= self.replicas:
            self.high = self.replicas
        return max(self.high, self.replicas) + SURGE


@dataclass
class State:
    controllers: dict[str, Controller] = field(default_factory=dict)
    deleted: dict[str, str] = field(default_factory=dict)  # container id -> its pod, whose DELETE was acknowledged
    operations: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_write: float = 0.0

    def count(self, op: str) -> None:
        with self.lock:
            self.operations[op] = self.operations.get(op, 0) + 1
            self.last_write = time.monotonic()


class Soak:
    def __init__(self, nodes: Sequence[Node], inventory: Path, home: Path, sandbox, store: str,
                 settings: ChaosSettings, say: Callable[[str], None]) -> None:
        self.nodes, self.inventory, self.home, self.sandbox, self.s = nodes, inventory, home, sandbox, settings
        self.say = say
        self.seed = settings.seed if settings.seed is not None else random.SystemRandom().randrange(100_000)
        self.rng = random.Random(self.seed)
        self.prefix = f"chaos-{self.seed}"
        self.work = Path(tempfile.mkdtemp(prefix="bench-chaos-", dir=home))
        self.check_home = self.work / "check"  # the checker's SSH sessions, apart from the masters' (cut by faults)
        self.ci_home = self.work / "ci"
        for d in (self.check_home, self.ci_home):
            d.mkdir()
        self.masters = [Master(home, store, self.work / f"master-{i}.log") for i in range(2)]
        self.state = State()
        self.violations = Violations(say)
        self.faults = {kind: 0 for kind in FAULTS}
        self.stop = threading.Event()
        self.requests = self.served = 0
        self.down_since: float | None = None
        self.minion_down: str | None = None
        self.web = Controller(f"{self.prefix}-web", 3, serve=True, high=3)
        self.ci = Controller(f"{self.prefix}-ci", 2, high=2)
        self.ci_file = self.ci_home / "x.json"
        self.ci_file.write_text(json.dumps({"kind": "List", "items": [self.ci.body()]}))
        self._turn = 0
        self.last_shortfall = ""

    # --- talking to the masters ---------------------------------------------------------------------------
    def master(self) -> Master:
        """The masters in turn (a live one)."""
        self._turn += 1
        live = [m for m in self.masters if m.alive()] or self.masters
        return live[self._turn % len(live)]

    def write(self, method: str, path: str, body: dict | None = None) -> int:
        """One write, to the next master; tried once on the other when refused (no answer, or a follower's 503
        for what only the leader does)."""
        status, _ = self.master().request(method, path, body)
        if status in (0, 503):
            status, _ = self.master().request(method, path, body)
        return status

    def listed(self, resource: str, query: str = "") -> list[dict] | None:
        for m in self.masters:
            if m.alive():
                status, doc = m.request("GET", f"/api/v1beta1/{resource}{query}")
                if status == 200:
                    return doc.get("items", [])
        return None

    # --- what runs, with plain docker ----------------------------------------------------------------------
    def _docker_ps(self, node: Node) -> list[tuple[str, str, str]] | None:
        """(container id, controller, pod) of every running container of ours on a minion; None when it does
        not answer."""
        remote = (f"docker ps --no-trunc --filter label={LABEL_POD} --format "
                  f"'{{{{.ID}}}}|{{{{.Label \"{LABEL_CONTROLLER}\"}}}}|{{{{.Label \"{LABEL_POD}\"}}}}'")
        try:
            proc = subprocess.run(ssh_command(node, control_dir(self.check_home), remote), capture_output=True,
                                  text=True, timeout=15, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return None
        if proc.returncode != 0:
            return None
        return [tuple(line.split("|", 2)) for line in proc.stdout.splitlines() if line.count("|") == 2]

    def sample(self) -> tuple[dict[str, set[str]], dict[str, set[str]], int]:
        """controller -> its pods with a running container, and pod -> its running container ids, on the
        minions that answered; and how many did."""
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            seen = list(pool.map(self._docker_ps, self.nodes))
        pods: dict[str, set[str]] = {}
        containers: dict[str, set[str]] = {}
        for rows in seen:
            for cid, controller, pod in rows or ():
                pods.setdefault(controller, set()).add(pod)
                containers.setdefault(pod, set()).add(cid)
        return pods, containers, sum(1 for rows in seen if rows is not None)

    def running(self) -> tuple[dict[str, set[str]], int]:
        pods, _, answered = self.sample()
        return pods, answered

    def ours(self) -> list[Controller]:
        with self.state.lock:
            return [self.web, self.ci, *self.state.controllers.values()]

    def check_surge(self) -> None:
        pods, _ = self.running()
        for c in self.ours():
            n = len(pods.get(c.name, ()))
            with self.state.lock:
                bound = c.bound(n)
            if n > bound:
                self.violations.add(f"surge {c.name}", f"surge: {c.name} ran {n} pods, more than "
                                    f"{bound - SURGE} + {SURGE} ({sorted(pods[c.name])})")

    def check_store(self) -> None:
        items = self.listed(CONTROLLERS.v1beta1)
        if items is None:
            return
        stored = {i["id"] for i in items}
        for c in self.ours():
            if c.acknowledged and c is not self.ci and c.name not in stored:
                self.violations.add(f"lost {c.name}", f"lost: {c.name}, acknowledged, is not in the store")

    def checker(self) -> None:
        while not self.stop.is_set():
            self.check_surge()
            self.check_store()
            self.stop.wait(1.0)  # the sampling period of the checks

    # --- the service ---------------------------------------------------------------------------------------
    def prober(self) -> None:
        import http.client

        while not self.stop.is_set():
            answered = False
            for node in self.rng_nodes():
                conn = http.client.HTTPConnection(node.address, self.s.port, timeout=1.0)
                try:
                    conn.request("GET", "/")
                    resp = conn.getresponse()
                    resp.read()
                    answered = resp.status == 200
                except OSError:
                    answered = False
                finally:
                    conn.close()
                if answered:
                    break
            now = time.monotonic()
            self.requests += 1
            if answered:
                self.served += 1
                self.down_since = None
            elif self.down_since is None:
                self.down_since = now
            elif now - self.down_since > self.s.outage_bound:
                self.violations.add(f"service {self.down_since:.0f}", f"service: no minion answered port "
                                    f"{self.s.port} for more than {self.s.outage_bound:.0f} s")
            self.stop.wait(0.2)  # the request rate of the probe

    def rng_nodes(self) -> list[Node]:
        """Every minion, starting from a different one each time (each answers in turn)."""
        k = self.requests % len(self.nodes)
        return [*self.nodes[k:], *self.nodes[:k]]

    # --- the workload --------------------------------------------------------------------------------------
    def create(self, c: Controller) -> None:
        with self.state.lock:
            if c is not self.web:
                self.state.controllers[c.name] = c
        status = self.write("POST", f"/api/v1beta1/{CONTROLLERS.v1beta1}", c.body())
        if status in (200, 201, 202):
            c.acknowledged = True
            self.state.count("create")

    def scale(self, c: Controller, replicas: int) -> None:
        with self.state.lock:
            c.scaled(replicas)
        if self.write("PUT", f"/api/v1beta1/{CONTROLLERS.v1beta1}/{c.name}", c.body()) in (200, 201, 202):
            self.state.count("scale")

    def api_pods(self, c: Controller) -> dict[str, str] | None:
        items = self.listed(PODS.v1beta1, f"?labels=name%3D{c.name}")
        if items is None:
            return None
        return {i["id"]: i.get("currentState", {}).get("status", "") for i in items}

    def roll(self, c: Controller) -> None:
        """``kubecfg rollingupdate``: a new template, then each old pod deleted once the last one is replaced."""
        old = self.api_pods(c)
        c.version += 1
        if old is None or self.write("PUT", f"/api/v1beta1/{CONTROLLERS.v1beta1}/{c.name}", c.body()) not in (
                200, 201, 202):
            return
        for pod in sorted(old):
            if self.stop.is_set():
                return
            # the pod's containers as the delete is sent: its controller may give a later replica the same name
            # (replica names are deterministic), so what must go is these containers, not the name
            containers = self.sample()[1].get(pod, set())
            if self.write("DELETE", f"/api/v1beta1/{PODS.v1beta1}/{pod}") in (200, 202):
                with self.state.lock:
                    self.state.deleted.update(dict.fromkeys(containers, pod))
            try:
                wait(lambda: self.stop.is_set() or self._replaced(c, pod), 60, f"{pod} replaced", 0.5)
            except BenchFailed:
                return  # a fault in the way: the convergence check at the end says whether it ever was
        self.state.count("roll")

    def _replaced(self, c: Controller, pod: str) -> bool:
        pods = self.api_pods(c) or {}
        return pod not in pods and sum(1 for s in pods.values() if s == "Running") >= c.replicas

    def workload(self) -> None:
        i = 0
        while not self.stop.is_set():
            with self.state.lock:
                mine = list(self.state.controllers.values())
            choice = self.rng.random()
            if len(mine) < self.s.max_controllers and (not mine or choice < 0.3):
                i += 1
                self.create(Controller(f"{self.prefix}-rc-{i}", self.rng.randint(1, 3)))
            elif choice < 0.7 and mine:
                c = self.rng.choice(mine)
                self.scale(c, self.rng.choice([n for n in (1, 2, 3) if n != c.replicas]))
            else:
                self.roll(self.rng.choice([*mine, self.web]))
            self.stop.wait(self.rng.uniform(1.0, 3.0))  # the pace of the workload

    # --- the faults ----------------------------------------------------------------------------------------
    def ci_apply(self, timeout: float = 300) -> subprocess.Popen:
        env = {**os.environ, "CLUSTER_PILOT_HOME": str(self.ci_home)}
        return subprocess.Popen([sys.executable, "-m", "cluster_pilot", "apply", "-i", str(self.inventory),
                                 "-f", str(self.ci_file)], env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=open(self.ci_home / "apply.log", "ab"),
                                start_new_session=True)

    def ci_job(self) -> bool:
        """Run the CI job to its end (as the CI system retries one); True if it succeeded."""
        proc = self.ci_apply()
        try:
            ok = proc.wait(timeout=300) == 0
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            ok = False
        if ok:
            self.ci.acknowledged = True
            self.state.count("ci")
        return ok

    def inject(self, kind: str) -> bool:
        """One fault, repaired before it returns; False when there was nothing to inject it on."""
        r = self.rng
        if kind == "minion":
            name = r.choice(self.nodes).name
            self.say(f"fault: stop {name}")
            self.minion_down = name
            self.sandbox.stop(name)
            self.stop.wait(r.uniform(3.0, 8.0))  # how long the minion stays down
            self.sandbox.start(name)
            self.minion_down = None
        elif kind == "dockerd":
            node = r.choice(self.nodes)
            self.say(f"fault: dockerd restarted on {node.name}")
            subprocess.run(ssh_command(node, control_dir(self.check_home), "kill -TERM $(pidof dockerd)"),
                           capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
            # the minion's init starts dockerd again; repaired once it answers
            wait(lambda: self._docker_ps(node) is not None, 120, f"dockerd on {node.name} again", 0.5)
        elif kind == "leader":
            leader = next((m for m in self.masters if m.alive() and m.leading()), None)
            if leader is None:
                return False
            self.say(f"fault: SIGKILL the leader on port {leader.port}")
            leader.kill(signal.SIGKILL)
            self.stop.wait(r.uniform(1.0, 4.0))  # how long it stays dead
            leader.start()
        elif kind == "ssh":
            cm = str(control_dir(self.home))
            muxes = [pid for pid, args in _processes() if "[mux]" in args and cm in args]
            if not muxes:
                return False
            pid = r.choice(sorted(muxes))
            self.say(f"fault: SSH control master {pid} killed")
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                return False
        elif kind == "ci":
            proc = self.ci_apply()
            try:
                proc.wait(timeout=r.uniform(1.0, 5.0))  # the moment the runner dies, mid-apply
            except subprocess.TimeoutExpired:
                pass
            if proc.poll() is not None:
                return False  # it was done before its runner died
            self.say("fault: CI runner SIGKILLed mid-apply")
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            self.faults[kind] += 1
            self.ci_job()  # the CI system runs the job again
            return True
        self.faults[kind] += 1
        return True

    # --- the run -------------------------------------------------------------------------------------------
    def shortfall(self) -> str:
        """What is not yet at full count ("" once everything is): every controller's replicas running by
        ``docker ps`` (and Running in the API, for the masters' own), no pod whose delete was acknowledged."""
        pods, containers, answered = self.sample()
        if answered < len(self.nodes):
            return f"{len(self.nodes) - answered} minion(s) not answering"
        listed = self.listed(CONTROLLERS.v1beta1)
        if listed is None:
            return "no master answering"
        stored = {i["id"]: i for i in listed}
        api_running: dict[str, int] = {}
        for p in self.listed(PODS.v1beta1) or []:
            if p.get("currentState", {}).get("status") == "Running":
                name = (p.get("labels") or {}).get("name", "")
                api_running[name] = api_running.get(name, 0) + 1
        with self.state.lock:
            deleted = dict(self.state.deleted)
        short = []
        for c in self.ours():
            if c is self.ci:
                want = c.replicas
            elif c.name in stored:
                want = stored[c.name]["desiredState"]["replicas"]
            else:
                continue  # a create never acknowledged nor stored
            if len(pods.get(c.name, ())) != want:
                short.append(f"{c.name} runs {len(pods.get(c.name, ()))}/{want}")
            elif c is not self.ci and api_running.get(c.name, 0) != want:  # the CI job's objects are its own
                short.append(f"{c.name} Running in the API {api_running.get(c.name, 0)}/{want}")
        left = sorted({deleted[c] for cs in containers.values() for c in cs if c in deleted})
        if left:
            short.append(f"pods deleted (acknowledged) still running: {left}")
        self.last_shortfall = "; ".join(short)
        return self.last_shortfall

    def converged(self) -> bool:
        return not self.shortfall()

    def run(self) -> ChaosFigures:
        load = os.getloadavg()[0]
        self.say(f"chaos: seed {self.seed}, {self.s.duration:.0f} s of faults, objects named {self.prefix}-*")
        threads: list[threading.Thread] = []
        try:
            for m in self.masters:
                m.start()
            wait(lambda: any(m.leading() for m in self.masters), 60, "a leader")
            self.create(self.web)
            service = {"kind": "Service", "apiVersion": "v1beta1", "id": f"{self.prefix}-web", "port": self.s.port,
                       "containerPort": "http", "selector": {"name": self.web.name}, "labels": {"name": self.web.name}}
            if self.write("POST", f"/api/v1beta1/{SERVICES.v1beta1}", service) not in (200, 201, 202):
                raise BenchFailed("the service was not created")
            if not self.ci_job():
                raise BenchFailed(f"the CI job failed: {(self.ci_home / 'apply.log').read_text()[-500:]}")
            wait(self.converged, 300, "the service's controller and the CI job's at full count", 1.0)
            wait(lambda: self.served or self._probe_once(), 120, "the service to answer", 0.5)
            threads = [threading.Thread(target=t, daemon=True, name=t.__name__)
                       for t in (self.checker, self.prober, self.workload)]
            for t in threads:
                t.start()
            t0 = time.monotonic()
            last = t0
            kinds: list[str] = []
            while time.monotonic() - t0 < self.s.duration:
                self.stop.wait(self.rng.uniform(*self.s.gap))  # the pause between faults
                if not kinds:  # every kind once per round, in a random order: a short run sees them all
                    kinds = self.rng.sample(FAULTS, len(FAULTS))
                if self.inject(kinds.pop()):
                    last = time.monotonic()
            seconds = time.monotonic() - t0
            self.stop.set()
            for t in threads:
                t.join(timeout=120)
            since = max(last, self.state.last_write)
            # the CI job's objects are healed by its next run only (the masters show them, read-only): a CI
            # system runs it again after the faults, as after any failure of a runner
            if not self.ci_job():
                self.violations.add("ci", "ci: the CI job failed after the faults")
            self.stop.clear()
            checker = threading.Thread(target=self.checker, daemon=True)
            prober = threading.Thread(target=self.prober, daemon=True)
            checker.start()
            prober.start()
            try:
                wait(self.converged, self.s.converge_bound, "convergence", 1.0)
                converge = time.monotonic() - since
            except BenchFailed:
                converge = None
                self.violations.add("converge", f"converge: not at full count {self.s.converge_bound:.0f} s "
                                    f"after the last fault and write: {self.last_shortfall}")
            self.check_store()
            self.stop.set()
            checker.join(timeout=60)
            prober.join(timeout=60)
            faults = tuple(self.faults.items())
            self.say(f"faults: {dict(faults)}")
        finally:
            self.stop.set()
            self.cleanup()
        return ChaosFigures(self.seed, seconds, faults, self.violations.named(), converge, self.requests,
                            self.served, tuple(sorted(self.state.operations.items())), (load, os.getloadavg()[0]))

    def _probe_once(self) -> bool:
        import http.client

        for node in self.nodes:
            try:
                conn = http.client.HTTPConnection(node.address, self.s.port, timeout=1.0)
                conn.request("GET", "/")
                if conn.getresponse().status == 200:
                    return True
            except OSError:
                continue
            finally:
                conn.close()
        return False

    def cleanup(self) -> None:
        """Our objects deleted, our pods gone, the masters stopped; a stopped minion started again."""
        try:
            if self.minion_down:
                self.sandbox.start(self.minion_down)
            if not any(m.alive() for m in self.masters):
                self.masters[0].start()
            for c in self.ours():
                if c is not self.ci:
                    self.write("DELETE", f"/api/v1beta1/{CONTROLLERS.v1beta1}/{c.name}")
            self.write("DELETE", f"/api/v1beta1/{SERVICES.v1beta1}/{self.prefix}-web")
            env = {**os.environ, "CLUSTER_PILOT_HOME": str(self.ci_home)}
            subprocess.run([sys.executable, "-m", "cluster_pilot", "delete", "-i", str(self.inventory), "-f",
                            str(self.ci_file)], env=env, capture_output=True, timeout=300, stdin=subprocess.DEVNULL)
            wait(lambda: not any(n.startswith(self.prefix) for n in self.running()[0]), 180, "our pods to go", 1.0)
        finally:
            for m in self.masters:
                m.kill(signal.SIGTERM)


def _processes() -> list[tuple[int, str]]:
    out = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                args = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            out.append((int(entry.name), args))
    return out


def measure(nodes: Sequence[Node], inventory: Path, home: Path, sandbox, store: str, settings: ChaosSettings,
            say: Callable[[str], None] = lambda text: None) -> ChaosFigures:
    """The soak, from masters started to every object of it deleted; its figures."""
    if not store.startswith(("postgresql://", "postgres://")):
        raise BenchFailed("the chaos soak needs --store postgresql://...: two masters share one store")
    return Soak(nodes, inventory, home, sandbox, store, settings, say).run()


def report(f: ChaosFigures) -> list[str]:
    served = f.served / f.requests if f.requests else 0.0
    converge = f"{f.converge_s:.1f} s" if f.converge_s is not None else "never"
    return [
        f"chaos soak: seed {f.seed}, {f.seconds:.0f} s of faults (load average {f.load[0]:.1f} before, "
        f"{f.load[1]:.1f} after)",
        f"faults injected: {sum(n for _, n in f.faults)} ({', '.join(f'{k} {n}' for k, n in f.faults)})",
        f"workload acknowledged: {', '.join(f'{k} {n}' for k, n in f.operations) or 'nothing'}",
        f"violations: {len(f.violations)} (goal 0)",
        *(f"  - {v}" for v in f.violations),
        f"converged after the last fault: {converge}",
        f"service requests served: {f.served}/{f.requests} ({served:.1%})",
    ]
