"""The minions, read from an Ansible inventory by Ansible's own parser, so every format it reads works here:
YAML, INI, JSON, a directory of them, ``host_vars/`` and ``group_vars/`` beside them, templated values.

The hosts of the group ``minions`` run pods. Two host variables (set on the host or on any of its groups)
describe one to the scheduler:

- ``cp_capacity``: ``{cpu: "2" | "2000m" | 2, memory: "4Gi", pods: 110}``, quantities as Kubernetes writes
  them. A missing key takes its default: cpu 2, memory 4Gi, pods 110 (the defaults of a small VM and of
  the kubelet), so an inventory without ``cp_capacity`` still schedules.
- ``cp_labels``: ``{zone: eu-1a, disk: ssd}``, matched by nodeSelectors; ``zone`` also spreads replicas.

Two more make the fleet's policy (``fleet_policy``, judged by ``manifests.policy``): ``cp_allowed_host_paths``
(path prefixes a pod may bind; none by default) and ``cp_reserved_ports`` (ports no service or hostPort may
take, besides each host's SSH port, dockerd's and the registry's).

The node's address is ``ansible_host`` or else its inventory name; its ``vars`` keep the host's ``ansible_*``
variables (user, port, key, SSH arguments, interpreter...), so that later stages reach the host exactly as
Ansible does. Every problem is a ``UserError`` naming the file, the host and the variable; Ansible's own
warnings never reach the terminal.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

from cluster_pilot.errors import UserError
from cluster_pilot.manifests import network as service_network
from cluster_pilot.manifests.policy import HOST_PATHS_VAR, RESERVED_PORTS_VAR, SSH_PORT, Policy, fleet, normal_path
from cluster_pilot.model import Node, Resources
from cluster_pilot.quantity import cpu_millis, memory_bytes

GROUP = "minions"
CAPACITY_VAR = "cp_capacity"
LABELS_VAR = "cp_labels"
DEFAULT_CAPACITY = Resources(cpu_millis=2000, memory_bytes=4 << 30, pods=110)

# ``ansible_*`` variables that Ansible computes itself rather than reads from the inventory
_MAGIC = frozenset({"ansible_facts", "ansible_version", "ansible_playbook_python", "ansible_config_file"})


def load_inventory(path: str | os.PathLike[str]) -> list[Node]:
    """The hosts of group ``minions`` (and of its child groups), in inventory order; at least one."""
    source = Path(path).expanduser()
    if not source.exists():
        raise UserError(f"inventory {source}: no such file or directory")
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.template import Templar
    from ansible.vars.manager import VariableManager

    loader = _parse_once_loader()
    with _ansible_warnings() as warnings:
        try:
            inventory = InventoryManager(loader=loader, sources=[str(source.absolute())])
        except AnsibleError as exc:
            raise UserError(f"inventory {source}: {_first_line(exc)}") from exc
    _raise_unparsed(source, warnings)
    group = inventory.groups.get(GROUP)
    if group is None:
        raise UserError(f"inventory {source}: no group '{GROUP}' (put the hosts that run pods in a group of that name)")
    hosts = group.get_hosts()
    if not hosts:
        hint = next((str(args[0]) for kind, args, _ in warnings if kind == "warning" and args), "")
        raise UserError(f"inventory {source}: group '{GROUP}' has no hosts" + (f" (Ansible: {hint})" if hint else ""))
    variables = VariableManager(loader=loader, inventory=inventory)
    nodes = []
    for host in hosts:
        hostvars = variables.get_vars(host=host, include_hostvars=False)
        where = f"inventory {hostvars.get('inventory_file') or source}: host {host.name}"
        value = _HostValues(Templar(loader=loader, variables=hostvars), hostvars, where)
        nodes.append(
            Node(
                name=str(host.name),
                address=str(value("ansible_host") or host.name),
                capacity=_capacity(value(CAPACITY_VAR), where),
                labels=_labels(value(LABELS_VAR), where),
                vars={k: value(k) for k in hostvars
                      if (k.startswith("ansible_") and k not in _MAGIC) or k in _POLICY_VARS
                      or k in ("cp_lock_host", "cp_lock_hosts")},
            )
        )
    return nodes


class _HostValues:
    """A host's variables as plain values, templates rendered as Ansible would render them at run time."""

    def __init__(self, templar: Any, hostvars: Mapping[str, Any], where: str) -> None:
        self._templar, self._hostvars, self._where = templar, hostvars, where

    def __call__(self, name: str) -> Any:
        from ansible.errors import AnsibleError

        raw = self._hostvars.get(name)
        try:
            return _plain(self._templar.template(raw) if _templated(raw) else raw)
        except AnsibleError as exc:
            raise UserError(f"{self._where}: {name}: {_first_line(exc)}") from exc


def _capacity(raw: object, where: str) -> Resources:
    if raw is None:
        return DEFAULT_CAPACITY
    if not isinstance(raw, Mapping):
        example = '{cpu: "2", memory: "4Gi", pods: 110}'
        raise UserError(f"{where}: {CAPACITY_VAR} must be a mapping such as {example}, not {raw!r}")
    for key in raw:
        if key not in ("cpu", "memory", "pods"):
            raise UserError(f"{where}: {CAPACITY_VAR}.{key}: unknown (expected cpu, memory or pods)")
    try:
        cpu = cpu_millis(raw["cpu"]) if "cpu" in raw else DEFAULT_CAPACITY.cpu_millis
    except ValueError as exc:
        raise UserError(f"{where}: {CAPACITY_VAR}.cpu: {exc}") from exc
    try:
        memory = memory_bytes(raw["memory"]) if "memory" in raw else DEFAULT_CAPACITY.memory_bytes
    except ValueError as exc:
        raise UserError(f"{where}: {CAPACITY_VAR}.memory: {exc}") from exc
    pods = raw.get("pods", DEFAULT_CAPACITY.pods)
    if isinstance(pods, str) and pods.strip().isdigit():
        pods = int(pods)
    if isinstance(pods, bool) or not isinstance(pods, int) or pods < 0:
        raise UserError(f"{where}: {CAPACITY_VAR}.pods: {pods!r} is not a whole number of pods")
    return Resources(cpu_millis=cpu, memory_bytes=memory, pods=pods)


_POLICY_VARS = (HOST_PATHS_VAR, RESERVED_PORTS_VAR, service_network.NETWORK_VAR)


def fleet_policy(nodes: list[Node]) -> Policy:
    """The policy every minion agrees to: a host path only if each minion allows it (a pod may land on any),
    every minion's SSH port and reserved ports. A malformed value is a ``UserError`` naming the host."""
    allowed: set[str] | None = None
    reserved: set[int] = set()
    ssh: set[int] = set()
    for node in nodes:
        where = f"inventory: host {node.name}"
        paths = _list_of(node.vars.get(HOST_PATHS_VAR), str, HOST_PATHS_VAR, where)
        for path in paths:
            if normal_path(path) is None:
                raise UserError(f"{where}: {HOST_PATHS_VAR}: {path!r} is not an absolute path without \"..\"")
        mine = {normal_path(p) for p in paths}
        allowed = mine if allowed is None else allowed & mine
        reserved.update(_list_of(node.vars.get(RESERVED_PORTS_VAR), int, RESERVED_PORTS_VAR, where))
        ssh.add(_port(node.vars.get("ansible_port", SSH_PORT), where))
    return fleet(sorted(allowed or ()), reserved, ssh or (SSH_PORT,), network_of(nodes))


def network_of(nodes: list[Node]) -> service_network.ServiceNetwork:
    """The fleet's service network (``cp_service_network``): one for every minion, since every minion's proxy
    and DNS serve all of it. A malformed or disagreeing value is a ``UserError``."""
    found: dict[str, str] = {}
    for node in nodes:
        raw = node.vars.get(service_network.NETWORK_VAR, service_network.DEFAULT_NETWORK)
        try:
            found.setdefault(service_network.parse(raw, f"inventory: host {node.name}").cidr, node.name)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    if len(found) > 1:
        shown = ", ".join(f"{cidr} ({host})" for cidr, host in found.items())
        raise UserError(f"inventory: {service_network.NETWORK_VAR} differs between minions: {shown}; set it once "
                        "for the group minions")
    return service_network.ServiceNetwork(next(iter(found), service_network.DEFAULT_NETWORK))


def _list_of(raw: object, kind: type, name: str, where: str) -> list:
    if raw is None:
        return []
    if isinstance(raw, (str, Mapping)) or not isinstance(raw, (list, tuple)):
        raise UserError(f"{where}: {name} must be a list, not {raw!r}")
    if kind is int:
        return [_port(item, f"{where}: {name}") for item in raw]
    if not all(isinstance(item, str) for item in raw):
        raise UserError(f"{where}: {name} must be a list of strings, not {raw!r}")
    return list(raw)


def _port(raw: object, where: str) -> int:
    number = int(raw) if isinstance(raw, str) and raw.strip().isdigit() else raw
    if isinstance(number, bool) or not isinstance(number, int) or not 0 < number < 65536:
        raise UserError(f"{where}: {raw!r} is not a port number")
    return number


def _labels(raw: object, where: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise UserError(f"{where}: {LABELS_VAR} must be a mapping of label to value, not {raw!r}")
    labels = {}
    for key, value in raw.items():
        if isinstance(value, bool):
            value = "true" if value else "false"  # as YAML wrote it, so that a nodeSelector "true" matches
        elif isinstance(value, (int, float)):
            value = str(value)
        if not isinstance(key, str) or not isinstance(value, str):
            raise UserError(f"{where}: {LABELS_VAR}.{key}: {value!r} is not a label value (a string)")
        labels[key] = value
    return labels


def _templated(value: object) -> bool:
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, Mapping):
        return any(_templated(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_templated(v) for v in value)
    return False


def _plain(value: Any) -> Any:
    """Ansible's tagged values as plain Python ones (frozen model objects compare and print cleanly)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Mapping):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(getattr(exc, "message", "") or exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _parse_once_loader():
    """A DataLoader that parses each file once per inventory load and hands out the result uncopied.

    Ansible's ``auto`` and ``yaml`` inventory plugins each parse a YAML inventory and deep-copy the result;
    on a 1,000-host file that is three quarters of the time. Neither keeps or changes what it reads beyond
    normalising short forms in place, so one parse (trusted as template, as the yaml plugin asks) serves both.
    """
    import inspect

    from ansible.parsing.dataloader import DataLoader

    # ansible-core 2.19's data tagging: its yaml plugin asks for a file trusted as template; 2.18 has no such flag
    trusting = {"trusted_as_template": True} if "trusted_as_template" in inspect.signature(
        DataLoader.load_from_file).parameters else {}

    class ParseOnceLoader(DataLoader):
        def __init__(self) -> None:
            super().__init__()
            self._parsed: dict[tuple[str, bool], Any] = {}

        def load_from_file(self, file_name: str, cache: str = "all", unsafe: bool = False, json_only: bool = False,
                           trusted_as_template: bool = False) -> Any:
            key = (self.path_dwim(file_name), json_only)
            if key not in self._parsed:
                self._parsed[key] = super().load_from_file(file_name, cache="none", unsafe=True,
                                                           json_only=json_only, **trusting)
            return self._parsed[key]

    return ParseOnceLoader()


@contextmanager
def _ansible_warnings() -> Iterator[list[tuple[str, tuple, dict]]]:
    """Keep Ansible's warnings off the terminal; they are collected so the failures become our errors.

    Display is a process-wide singleton, so one loader at a time patches it (the master reads the
    inventory from its API and its reconcile loop at once)."""
    from ansible.utils.display import Display

    with _DISPLAY_LOCK:
        display = Display()  # a singleton: the instance every Ansible module prints through
        captured: list[tuple[str, tuple, dict]] = []
        names = ("warning", "error_as_warning", "deprecated")
        for name in names:
            setattr(display, name, lambda *args, _kind=name, **kwargs: captured.append((_kind, args, kwargs)))
        try:
            yield captured
        finally:
            for name in names:
                delattr(display, name)


_DISPLAY_LOCK = threading.RLock()


def _raise_unparsed(source: Path, warnings: list[tuple[str, tuple, dict]]) -> None:
    """A source Ansible could not parse is an error, with the reason its most fitting plugin gave.

    Ansible reports each plugin's failure, then that the source is unparsed: the failures seen since the
    last such report belong to it.
    """
    failures: dict[str, str] = {}
    for kind, args, kwargs in warnings:
        message = str(kwargs.get("msg", args[0] if args else ""))
        if kind == "error_as_warning":
            plugin = message.split("'")[1] if message.count("'") >= 2 else ""
            exception = kwargs.get("exception", args[1] if len(args) > 1 else None)
            failures.setdefault(plugin, _first_line(exception) if exception else message)
        elif message.startswith("Unable to parse ") and message.endswith(" as an inventory source"):
            bad = message[len("Unable to parse "):-len(" as an inventory source")]
            yaml = bad.endswith((".yml", ".yaml", ".json"))
            preferred = ("yaml", "auto", "ini") if yaml else ("ini", "yaml", "script", "auto")
            reason = next((failures[p] for p in preferred if p in failures), None)
            reason = reason or next(iter(failures.values()), "no inventory plugin accepts it")
            shown = source if Path(bad) == source.absolute() else bad
            raise UserError(f"inventory {shown}: not an inventory Ansible can parse: {reason}")
