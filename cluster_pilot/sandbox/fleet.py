"""A real multi-host cluster on one machine: minions are containers with their own address, sshd and dockerd.

Everything the sandbox creates carries the label ``io.cluster-pilot.sandbox=<id>``, where the id is derived
from the state dir: a test run with a temporary home gets a sandbox of its own and ``down`` removes exactly
what its own ``up`` made. The files it writes (SSH key, ssh_config, the Ansible inventory) are the same kind
of files a user writes for real hosts.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import shlex
import subprocess
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import docker
import docker.errors
import yaml

from cluster_pilot.errors import UserError
from cluster_pilot.sandbox import engine, image, seeds

MAX_MINIONS = 32
REGISTRY_PORT = 5000
MINION_CAPACITY = {"cpu": "2", "memory": "4Gi", "pods": 40}
ZONES = ("zone-a", "zone-b")
SSH_OPTIONS = ("-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
               "-o", "BatchMode=yes", "-o", "ConnectTimeout=5")

# Debian's default config wants htpasswd auth; the sandbox registry is reachable only from this machine.
_REGISTRY_CONFIG = """version: 0.1
log: {level: warn, fields: {service: registry}}
storage: {filesystem: {rootdirectory: /var/lib/docker-registry}, delete: {enabled: true}}
http: {addr: ":5000"}
"""
_REGISTRY_START = f"cat > /etc/docker/registry/config.yml <<'EOF'\n{_REGISTRY_CONFIG}EOF\nexec docker-registry serve /etc/docker/registry/config.yml"

Progress = Callable[[str, str, float], None]  # step, outcome, seconds


def _quiet(step: str, outcome: str, seconds: float) -> None:
    return None


@dataclass(frozen=True)
class MinionStatus:
    name: str
    address: str
    container: str
    ready: bool


def minion_name(index: int) -> str:
    return f"minion-{index}"


def parse_minion(name: str) -> int:
    prefix, _, number = name.rpartition("-")
    if prefix != "minion" or not number.isdigit() or int(number) < 1:
        raise UserError(f"unknown minion {name!r}: minions are named minion-1, minion-2, ...")
    return int(number)


class Sandbox:
    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir / "sandbox"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.home = state_dir
        self.id = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:8]
        self.label = {image.SANDBOX_LABEL: self.id}
        self.key = self.dir / "id_ed25519"
        self.inventory = self.dir / "inventory.yml"
        self.ssh_config = self.dir / "ssh_config"
        self._client: docker.DockerClient | None = None

    # names of the things this sandbox owns
    @property
    def network_name(self) -> str:
        return f"cp-{self.id}"

    @property
    def registry_name(self) -> str:
        return f"cp-{self.id}-registry"

    def container_name(self, index: int) -> str:
        return f"cp-{self.id}-{minion_name(index)}"

    # --- engine -------------------------------------------------------------------------------------------
    def client(self, start: bool = False) -> docker.DockerClient:
        if self._client is None:
            if start:
                engine.ensure_host_tools(self.home)
                self._client = engine.ensure_engine(self.home)
            else:
                try:
                    self._client = docker.from_env(timeout=120)
                    self._client.ping()
                except docker.errors.DockerException as exc:
                    raise UserError("no Docker Engine answers: run 'cluster-pilot sandbox up' first") from exc
        return self._client

    # --- up -----------------------------------------------------------------------------------------------
    def up(self, minions: int, progress: Progress = _quiet) -> list[MinionStatus]:
        if not 1 <= minions <= MAX_MINIONS:
            raise UserError(f"--minions must be between 1 and {MAX_MINIONS}, not {minions}")
        step = _Stepper(progress)
        with step("docker engine"):
            client = self.client(start=True)
        with step("node image") as s:
            node_tag, built = image.ensure_node_image(client, self.dir, self.dir / "image-build.log")
            s.outcome = f"built {node_tag}" if built else f"cached {node_tag}"
        with step("ssh key"):
            self._ensure_key()
        with step("network") as s:
            network, created = self._ensure_network(client)
            s.outcome = ("created " if created else "exists ") + network.attrs["IPAM"]["Config"][0]["Subnet"]
        with step("registry") as s:
            registry, created = self._ensure_registry(client, node_tag, network)
            s.outcome = "started" if created else "running"
        with step("seed images") as s:
            s.outcome = self._seed_registry(client, node_tag)
        existing = self._minion_containers(client)
        wanted = range(1, max(minions, max(existing, default=0)) + 1)
        with step(f"{len(wanted)} minions") as s:
            started = self._start_minions(client, node_tag, network, list(wanted), existing)
            s.outcome = f"{len(started)} started, {len(wanted) - len(started)} already running"
        with step("minions ready") as s:
            statuses = self._wait_ready([minion_name(i) for i in wanted], deadline_s=120)
            s.outcome = ", ".join(m.name for m in statuses)
        with step("inventory") as s:
            self._write_inventory(statuses)
            s.outcome = str(self.inventory)
        return statuses

    def _ensure_key(self) -> None:
        if self.key.exists():
            return
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"cluster-pilot-sandbox-{self.id}",
                        "-f", str(self.key)], check=True, stdin=subprocess.DEVNULL)
        self.key.chmod(0o600)

    def _ensure_network(self, client: docker.DockerClient) -> tuple[object, bool]:
        try:
            return client.networks.get(self.network_name), False
        except docker.errors.NotFound:
            pass
        used = set()
        for net in client.networks.list():
            for cfg in (net.attrs.get("IPAM") or {}).get("Config") or []:
                if cfg.get("Subnet"):
                    used.add(ipaddress.ip_network(cfg["Subnet"], strict=False))
        for candidate in ipaddress.ip_network("172.28.0.0/14").subnets(new_prefix=24):
            if any(candidate.overlaps(u) for u in used):
                continue
            ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=str(candidate),
                                                                               gateway=str(candidate[1]))])
            try:
                return client.networks.create(self.network_name, driver="bridge", ipam=ipam, labels=self.label), True
            except docker.errors.APIError as exc:
                if "overlap" not in str(exc).lower():
                    raise
        raise UserError("no free /24 subnet in 172.28.0.0/14 for the sandbox network")

    def _subnet(self, network) -> ipaddress.IPv4Network:
        return ipaddress.ip_network(network.attrs["IPAM"]["Config"][0]["Subnet"])

    def _ensure_registry(self, client: docker.DockerClient, node_tag: str, network) -> tuple[object, bool]:
        try:
            registry = client.containers.get(self.registry_name)
            if registry.status != "running":
                registry.start()
            return registry, False
        except docker.errors.NotFound:
            pass
        volume = f"{self.registry_name}-data"
        self._ensure_volume(client, volume)
        registry = client.containers.create(
            node_tag, ["sh", "-ec", _REGISTRY_START], name=self.registry_name,
            hostname="registry", labels={**self.label, "io.cluster-pilot.role": "registry"},
            volumes={volume: {"bind": "/var/lib/docker-registry", "mode": "rw"}},
            ports={f"{REGISTRY_PORT}/tcp": ("127.0.0.1", None)}, restart_policy={"Name": "unless-stopped"},
            network=self.network_name, entrypoint=[],
        )
        registry.start()
        return registry, True

    def registry_host_port(self) -> int:
        registry = self.client().containers.get(self.registry_name)
        registry.reload()
        binding = registry.attrs["NetworkSettings"]["Ports"][f"{REGISTRY_PORT}/tcp"][0]
        return int(binding["HostPort"])

    def registry_address(self) -> str:
        """How minions reach the registry (Docker's DNS on the sandbox network)."""
        return f"{self.registry_name}:{REGISTRY_PORT}"

    def _ensure_volume(self, client: docker.DockerClient, name: str) -> None:
        try:
            client.volumes.get(name)
        except docker.errors.NotFound:
            client.volumes.create(name, labels=self.label)

    def _seed_registry(self, client: docker.DockerClient, node_tag: str) -> str:
        marker = self.dir / "seeded.json"
        seeded = json.loads(marker.read_text()) if marker.exists() else {}
        done = []
        for seed in seeds.SEED_IMAGES:
            tag, _ = seeds.ensure_seed_image(client, seed, node_tag, self.dir)
            if seeded.get(seed.name) == tag:
                continue
            self.push(tag, as_name=f"library/{seed.name}:latest")
            seeded[seed.name] = tag
            done.append(seed.name)
        marker.write_text(json.dumps(seeded))
        return ("pushed " + ", ".join(done)) if done else "cached " + ", ".join(s.name for s in seeds.SEED_IMAGES)

    def push(self, source: str, as_name: str | None = None) -> str:
        """Push a local image into the sandbox registry; minions then pull it by its plain name."""
        client = self.client()
        try:
            img = client.images.get(source)
        except docker.errors.ImageNotFound as exc:
            raise UserError(f"no image {source!r} in the local Docker Engine") from exc
        name = as_name or source
        repo, _, tag = name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] else (name, "", "latest")
        if "/" not in repo:
            repo = f"library/{repo}"
        target = f"127.0.0.1:{self._wait_registry()}/{repo}"
        img.tag(target, tag)
        try:
            for line in client.api.push(target, tag=tag, stream=True, decode=True):
                if "error" in line:
                    raise UserError(f"pushing {source} to the sandbox registry failed: {line['error']}")
        finally:
            client.api.remove_image(f"{target}:{tag}", noprune=True)
        return f"{repo}:{tag}"

    def _wait_registry(self, deadline_s: float = 30) -> int:
        port = self.registry_host_port()
        deadline = time.monotonic() + deadline_s
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2):
                    return port
            except OSError:
                if time.monotonic() > deadline:
                    raise UserError(f"the sandbox registry does not answer on 127.0.0.1:{port}") from None
                time.sleep(0.2)

    def _minion_containers(self, client: docker.DockerClient) -> dict[int, object]:
        found = {}
        for c in client.containers.list(all=True, filters={"label": [f"{image.SANDBOX_LABEL}={self.id}",
                                                                        "io.cluster-pilot.role=minion"]}):
            found[int(c.labels["io.cluster-pilot.minion-index"])] = c
        return found

    def _start_minions(self, client, node_tag: str, network, indexes: list[int], existing: dict) -> list[int]:
        subnet = self._subnet(network)
        public_key = (self.key.with_suffix(".pub")).read_text().strip()

        def one(index: int) -> int | None:
            container = existing.get(index)
            if container is not None:
                if container.status == "running":
                    return None
                container.start()
                return index
            volume = f"{self.container_name(index)}-docker"
            self._ensure_volume(client, volume)
            container = client.containers.create(
                node_tag, name=self.container_name(index), hostname=minion_name(index), init=True, detach=True,
                labels={**self.label, "io.cluster-pilot.role": "minion", "io.cluster-pilot.minion-index": str(index)},
                cap_add=["ALL"], cap_drop=["SYS_RESOURCE"], cgroupns="private",
                security_opt=["seccomp=unconfined", "apparmor=unconfined"],
                volumes={volume: {"bind": "/var/lib/docker", "mode": "rw"}},
                environment={"CP_AUTHORIZED_KEY": public_key, "CP_REGISTRY": self.registry_address()},
                network=self.network_name,
                networking_config={self.network_name: client.api.create_endpoint_config(
                    ipv4_address=str(subnet[10 + index]))},
            )
            container.start()
            return index

        with ThreadPoolExecutor(max_workers=8) as pool:
            return [i for i in pool.map(one, indexes) if i is not None]

    # --- status -------------------------------------------------------------------------------------------
    def minion_address(self, container) -> str:
        nets = container.attrs["NetworkSettings"]["Networks"]
        net = nets.get(self.network_name) or {}
        return net.get("IPAMConfig", {}) and net["IPAMConfig"].get("IPv4Address") or net.get("IPAddress", "")

    def probe(self, address: str) -> bool:
        """Ready: sshd answers and so does the dockerd behind it."""
        cmd = ["ssh", *SSH_OPTIONS, "-i", str(self.key), f"root@{address}", "docker version --format '{{.Server.Version}}'"]
        try:
            return subprocess.run(cmd, capture_output=True, timeout=10, stdin=subprocess.DEVNULL).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def status(self) -> list[MinionStatus]:
        client = self.client()
        containers = self._minion_containers(client)

        def one(item):
            index, c = item
            address = self.minion_address(c)
            ready = c.status == "running" and bool(address) and self.probe(address)
            return MinionStatus(minion_name(index), address, c.name, ready)

        with ThreadPoolExecutor(max_workers=max(1, len(containers))) as pool:
            return list(pool.map(one, sorted(containers.items())))

    def _wait_ready(self, names: list[str], deadline_s: float) -> list[MinionStatus]:
        deadline = time.monotonic() + deadline_s
        while True:
            statuses = {m.name: m for m in self.status()}
            pending = [n for n in names if not statuses.get(n) or not statuses[n].ready]
            if not pending:
                return sorted(statuses.values(), key=lambda m: parse_minion(m.name))
            if time.monotonic() > deadline:
                raise UserError(f"minions not ready after {deadline_s:.0f} s: {', '.join(pending)} "
                                f"(see 'docker logs {self.container_name(parse_minion(pending[0]))}')")
            time.sleep(0.5)

    def status_document(self) -> dict:
        try:
            registry = self.registry_address() if self.client().containers.get(self.registry_name) else ""
        except docker.errors.NotFound:
            registry = ""
        return {
            "minions": [asdict(m) for m in self.status()],
            "inventory": str(self.inventory),
            "ssh_config": str(self.ssh_config),
            "registry": registry,
        }

    # --- inventory ----------------------------------------------------------------------------------------
    def _write_inventory(self, minions: list[MinionStatus]) -> None:
        common = " ".join(shlex.quote(o) for o in SSH_OPTIONS)
        hosts = {}
        for m in minions:
            index = parse_minion(m.name)
            hosts[m.name] = {
                "ansible_host": m.address,
                "ansible_user": "root",
                "ansible_ssh_private_key_file": str(self.key),
                "ansible_ssh_common_args": common,
                "ansible_python_interpreter": "/usr/bin/python3",
                "cp_capacity": dict(MINION_CAPACITY),
                "cp_labels": {"zone": ZONES[(index - 1) % len(ZONES)]},
            }
        doc = {"all": {"children": {"minions": {"hosts": hosts}}}}
        header = "# Written by 'cluster-pilot sandbox up'. The same format describes real hosts.\n"
        _atomic_write(self.inventory, header + yaml.safe_dump(doc, sort_keys=False))
        blocks = []
        for m in minions:
            blocks.append(f"Host {m.name}\n  HostName {m.address}\n  User root\n  IdentityFile {self.key}\n"
                          "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n")
        _atomic_write(self.ssh_config, "\n".join(blocks))

    # --- power --------------------------------------------------------------------------------------------
    def _minion(self, name: str):
        index = parse_minion(name)
        container = self._minion_containers(self.client()).get(index)
        if container is None:
            raise UserError(f"unknown minion {name!r}: this sandbox has "
                            f"{', '.join(m.name for m in self.status()) or 'no minions'}")
        return container

    def stop(self, name: str) -> None:
        self._minion(name).stop(timeout=5)

    def start(self, name: str, deadline_s: float = 90) -> MinionStatus:
        container = self._minion(name)
        container.start()
        return next(m for m in self._wait_ready([name], deadline_s) if m.name == name)

    # --- down ---------------------------------------------------------------------------------------------
    def down(self) -> dict[str, int]:
        client = self.client()
        flt = {"label": f"{image.SANDBOX_LABEL}={self.id}"}
        containers = client.containers.list(all=True, filters=flt)
        networks = client.networks.list(filters=flt)
        # Containers of one network stopping together can deadlock a dockerd before 23.0 (Debian bookworm's is
        # 20.10; see roles/cp_pods' SAFE_CONCURRENT_STOPS): they leave it one after another, then go at once.
        for n in networks:
            n.reload()
            for member in n.attrs.get("Containers") or {}:
                try:
                    n.disconnect(member, force=True)
                except docker.errors.APIError:  # gone meanwhile, or dockerd refuses: removed below all the same
                    pass
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda c: c.remove(force=True, v=True), containers))
        for n in networks:
            n.remove()
        volumes = client.volumes.list(filters=flt)
        for v in volumes:
            v.remove(force=True)
        for path in (self.inventory, self.ssh_config, self.key, self.key.with_suffix(".pub"), self.dir / "seeded.json"):
            path.unlink(missing_ok=True)
        return {"containers": len(containers), "networks": len(networks), "volumes": len(volumes)}


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class _Step:
    outcome = "done"


class _Stepper:
    """Times each step of ``up`` and reports it, so a person sees where the minutes go."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    @contextmanager
    def __call__(self, name: str) -> Iterator[_Step]:
        step, t0 = _Step(), time.monotonic()
        self.progress(name, "…", -1.0)
        try:
            yield step
        except BaseException:
            self.progress(name, "failed", time.monotonic() - t0)
            raise
        self.progress(name, step.outcome, time.monotonic() - t0)
