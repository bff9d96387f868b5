"""``kubecfg``: the seed era's client, against a cluster-pilot master, with the 2014 client's command line.

    kubecfg [-h URL] [-c FILE] [-l SELECTOR] [-json|-yaml] get|list|create|update|delete RESOURCE[/ID]
    kubecfg [-h URL] [-p HOST:CONTAINER] [-s PORT] run IMAGE REPLICAS NAME
    kubecfg [-h URL] resize NAME N | stop NAME | rm NAME | [-u PERIOD] [-image IMG] rollingupdate NAME

Flags are Go-style (``-json``, ``--json``, ``-c FILE``, ``-c=FILE``) and may come before or after the verb.
Files are validated locally by the manifests loader before anything is sent. Every request goes through
``cluster_pilot.master.client.MasterClient``; failures are one line (``kubecfg: error: ...``) and exit 1.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import click

from cluster_pilot import __version__
from cluster_pilot.api import kinds
from cluster_pilot.api.kinds import CONTROLLERS, MINION, MINIONS, PODS, SERVICES
from cluster_pilot.master.client import TLS, ApiError, MasterClient, manifest_body, resource_name, resource_of
from cluster_pilot.cli.options import named, printable
from cluster_pilot.errors import UserError

PROG = "kubecfg"
ROLLING_POLL = 5.0  # seconds between two looks at the pods after a rolling update (as the 2014 client)
ROLLING_TIMEOUT = 300.0

# flag -> (attribute, takes a value)
_FLAGS: dict[str, tuple[str, bool]] = {
    "h": ("host", True), "c": ("config", True), "l": ("selector", True), "p": ("ports", True),
    "s": ("service_port", True), "u": ("period", True), "image": ("image", True),
    "certificate_authority": ("ca_file", True), "client_certificate": ("cert_file", True),
    "client_key": ("key_file", True), "auth": ("auth", True), "token": ("token", True), "api_version": ("api_version", True),
    "json": ("json", False), "yaml": ("yaml", False), "insecure_skip_tls_verify": ("insecure", False),
    "server_version": ("server_version", False), "version": ("version", False), "verbose": ("verbose", False),
    "help": ("help", False),
}

USAGE = """Usage: kubecfg [OPTIONS] VERB ARGS  (cluster-pilot's kubecfg, API v1beta1)

  kubecfg [OPTIONS] get|list|create|delete|update <minions|pods|replicationControllers|services>[/<id>]
  kubecfg [OPTIONS] stop|rm <controller>
  kubecfg [OPTIONS] [-u <time>] [-image <image>] rollingupdate <controller>
  kubecfg [OPTIONS] resize <controller> <replicas>
  kubecfg [OPTIONS] [-p <port spec>] [-s <port>] run <image> <replicas> <controller>

Options:
  -h URL                     the master (default $KUBERNETES_MASTER, else http://127.0.0.1:8080)
  -c FILE                    manifest for create/update (JSON or YAML, v1beta1 or v1; - for stdin)
  -l SELECTOR                label selector for list, e.g. name=web,tier!=db
  -json | -yaml              print the objects as JSON or YAML instead of a table
  -p SPEC                    run: ports, comma-separated HOST:CONTAINER or CONTAINER
  -s PORT                    run: also create a service on PORT
  -u PERIOD                  rollingupdate: pause between two pods (Go duration: 1s, 1m30s; default 1m)
  -image IMAGE               rollingupdate: the new image of the first container
  -certificate_authority F   https: CA bundle to check the master with (default: the system's)
  -insecure_skip_tls_verify  https: do not check the master's certificate
  -client_certificate F, -client_key F   https: client certificate
  -auth FILE                 https without a local token: {"User","Password"} file (default ~/.kubernetes_auth)
  -token TOKEN               the master's token (default: the state dir's, if it is for this master)
  -server_version            print the master's version
  -version                   print this client's version

Requests send the token of $CLUSTER_PILOT_HOME/master-token (Bearer) when it is for this master (its URL is in
master-token.urls beside it).
"""


@dataclass
class Flags:
    host: str | None = None
    config: str | None = None
    selector: str | None = None
    ports: str | None = None
    service_port: str | None = None
    period: str | None = None
    image: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    auth: str | None = None
    token: str | None = None
    api_version: str | None = None
    json: bool = False
    yaml: bool = False
    insecure: bool = False
    server_version: bool = False
    version: bool = False
    verbose: bool = False
    help: bool = False
    args: list[str] = field(default_factory=list)


_TRUE = {"1", "t", "T", "true", "TRUE", "True"}
_FALSE = {"0", "f", "F", "false", "FALSE", "False"}


def parse_flags(argv: list[str]) -> Flags:
    """Go's flag syntax (``-f``, ``--f``, ``-f value``, ``-f=value``), flags anywhere; ``--`` ends them."""
    flags = Flags()
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            flags.args += argv[i:]
            break
        if not arg.startswith("-") or arg == "-":
            flags.args.append(arg)
            continue
        name, eq, value = arg.lstrip("-").partition("=")
        if name not in _FLAGS:
            raise UserError(f"flag provided but not defined: -{name} (kubecfg -help)")
        attr, takes_value = _FLAGS[name]
        if takes_value:
            if not eq:
                if i >= len(argv):
                    raise UserError(f"flag needs an argument: -{name}")
                value = argv[i]
                i += 1
            setattr(flags, attr, value)
        else:
            if eq and value not in _TRUE | _FALSE:
                raise UserError(f"invalid boolean value {value!r} for -{name}")
            setattr(flags, attr, not eq or value in _TRUE)
    return flags


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in a Go duration (``1s``, ``1m30s``, ``500ms``); a bare number is seconds."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        pos, value = 0, 0.0
        for m in _DURATION.finditer(text):
            if m.start() != pos:
                break
            value += float(m.group(1)) * _UNITS[m.group(2)]
            pos = m.end()
        if pos != len(text) or not text:
            raise UserError(f"-u {text!r}: expected a duration such as 1s, 30s or 1m30s") from None
    if value < 0:
        raise UserError(f"-u {text!r}: a duration cannot be negative")
    return value


def parse_ports(spec: str) -> list[dict[str, int]]:
    """``8080:80,443``: hostPort 8080 to containerPort 80, and containerPort 443 (no host port)."""
    out = []
    for part in spec.split(","):
        pieces = part.strip().split(":")
        try:
            numbers = [int(p) for p in pieces]
        except ValueError:
            numbers = []
        if len(numbers) not in (1, 2) or not all(0 < n < 65536 for n in numbers):
            raise UserError(f"-p {spec!r}: bad port spec {part!r}: expected CONTAINER or HOST:CONTAINER "
                            "(1-65535), comma-separated, e.g. 8080:80")
        port = {"containerPort": numbers[-1]}
        if len(numbers) == 2:
            port = {"hostPort": numbers[0], **port}
        out.append(port)
    return out


_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")


# --- printing ---------------------------------------------------------------------------------------------

def _labels(labels: Mapping[str, Any] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items()))


def _images(manifest: Mapping[str, Any] | None) -> str:
    return ",".join(str(c.get("image", "")) for c in (manifest or {}).get("containers") or [])


def _host(state: Mapping[str, Any]) -> str:
    host, ip = state.get("host") or "", state.get("hostIP") or ""
    return "<unassigned>" if not host and not ip else f"{host}/{ip}"


_COLUMNS: dict[str, tuple[list[str], Callable[[dict], list[str]]]] = {
    "Pod": (["ID", "Image(s)", "Host", "Labels", "Status"], lambda o: [
        o.get("id", ""), _images((o.get("desiredState") or {}).get("manifest")), _host(o.get("currentState") or {}),
        _labels(o.get("labels")), str((o.get("currentState") or {}).get("status") or "")]),
    "ReplicationController": (["ID", "Image(s)", "Selector", "Replicas"], lambda o: [
        o.get("id", ""),
        _images((((o.get("desiredState") or {}).get("podTemplate") or {}).get("desiredState") or {}).get("manifest")),
        _labels((o.get("desiredState") or {}).get("replicaSelector")),
        str((o.get("desiredState") or {}).get("replicas") or 0)]),
    "Service": (["ID", "Labels", "Selector", "IP", "Port"], lambda o: [
        o.get("id", ""), _labels(o.get("labels")), _labels(o.get("selector")), str(o.get("portalIP") or ""),
        str(o.get("port") or 0)]),
    MINION: (["Minion identifier"], lambda o: [o.get("id", "")]),
    "Status": (["Status"], lambda o: [str(o.get("status", ""))]),
}


def table(columns: list[str], rows: list[list[str]]) -> str:
    """The 2014 client's tables: Go's tabwriter (min width 20, padding 3), a row of dashes, a blank line."""
    lines = [columns, ["----------"] * len(columns), *([printable(cell) for cell in row] for row in rows)]
    widths = [max(20, *(len(line[c]) + 3 for line in lines)) for c in range(len(columns) - 1)]
    text = "".join("".join(cell.ljust(widths[c]) for c, cell in enumerate(line[:-1])) + line[-1] + "\n"
                   for line in lines)
    return text + "\n"


def render(obj: dict[str, Any], flags: Flags, default: str = "table") -> str:
    """An answer as ``-json`` (one line, as the 2014 client), ``-yaml`` or its table."""
    form = "json" if flags.json else "yaml" if flags.yaml else default
    if form == "json":
        return json.dumps(obj, separators=(",", ":")) + "\n"
    if form == "yaml":
        import yaml

        return yaml.safe_dump(obj, sort_keys=False)
    kind = str(obj.get("kind", ""))
    items = obj.get("items") if kind.endswith("List") else [obj]
    kind = kind.removesuffix("List")
    if kind not in _COLUMNS:
        return json.dumps(obj, indent=2) + "\n"
    columns, row = _COLUMNS[kind]
    return table(columns, [row(o) for o in items or []])


# --- the verbs --------------------------------------------------------------------------------------------

class Kubecfg:
    def __init__(self, flags: Flags, client: MasterClient, out: Callable[[str], None]) -> None:
        self.flags, self.client, self.out = flags, client, out

    def show(self, obj: dict[str, Any], default: str = "table") -> None:
        self.out(render(obj, self.flags, default))

    # REST verbs
    def rest(self, verb: str, args: list[str]) -> None:
        if len(args) != 1:
            raise UserError(f"{verb}: expected one argument, RESOURCE[/ID] (e.g. {verb} /pods"
                            f"{'' if verb in ('list', 'create') else '/ID'})")
        resource, _, name = args[0].strip("/").partition("/")
        resource = resource_name(resource)
        needs_id = verb in ("get", "update", "delete")
        if needs_id and not name:
            raise UserError(f"{verb} {args[0]}: expected {resource}/ID")
        if not needs_id and name:
            raise UserError(f"{verb} {args[0]}: expected {resource} without an id")
        if name:
            named(kinds.find(resource).name, name)
        if resource == MINIONS.v1beta1 and verb in ("create", "update", "delete"):
            raise UserError("minions come from the master's inventory and are read-only")
        if verb == "list":
            self.show(self.client.list(resource, self.flags.selector))
        elif verb == "get":
            self.show(self.client.get(resource, name))
        elif verb == "delete":
            self.show(self.client.delete(resource, name))
        elif verb == "create":
            self.show(self.client.create(resource, self.read_config(resource)))
        else:
            body = self.read_config(resource, name)
            current = self.client.get(resource, name)  # the version this update is based on
            self.show(self.client.update(resource, name, body, current.get("resourceVersion")))

    def read_config(self, resource: str, name: str | None = None) -> dict[str, Any]:
        """``-c FILE``: one object, checked by the manifests loader exactly as ``validate`` checks it."""
        from cluster_pilot.manifests import load_paths

        if not self.flags.config:
            raise UserError("this verb needs a manifest: -c FILE (or -c - for stdin)")
        objects = load_paths([self.flags.config], kind_hint=resource, stdin=sys.stdin)
        if len(objects) != 1:
            raise UserError(f"-c {self.flags.config}: expected one object, found {len(objects)}")
        obj = objects[0]
        if resource_of(obj.kind) != resource:
            raise UserError(f"-c {self.flags.config}: a {obj.kind} cannot be written to {resource}")
        if name is not None and obj.meta.name != name:
            raise UserError(f"-c {self.flags.config}: the file's id {obj.meta.name!r} is not {name!r}")
        return manifest_body(obj)

    # controller verbs
    def controller(self, name: str) -> dict[str, Any]:
        return self.client.get(CONTROLLERS.v1beta1, named(CONTROLLERS.name, name))

    def resize(self, name: str, replicas: int) -> dict[str, Any]:
        rc = self.controller(name)
        rc.setdefault("desiredState", {})["replicas"] = replicas
        return self.client.update(CONTROLLERS.v1beta1, name, rc, rc.get("resourceVersion"))

    def run(self, image: str, replicas: int, name: str) -> None:
        named(CONTROLLERS.name, name)
        port = _service_port(self.flags.service_port)
        if port > 0 and not (len(name) <= 63 and _DNS_LABEL.match(name)):
            raise UserError(f"service creation requested, but an invalid name for a service was provided "
                            f"({name}). Service names must be valid DNS labels.")
        container: dict[str, Any] = {"name": name.lower(), "image": image}
        if self.flags.ports:
            container["ports"] = parse_ports(self.flags.ports)
        selector = {"simpleService": name}  # what the 2014 binary sends (its README says otherwise)
        rc = {"kind": "ReplicationController", "apiVersion": "v1beta1", "id": name,
              "desiredState": {"replicas": replicas, "replicaSelector": selector,
                               "podTemplate": {"desiredState": {"manifest": {"version": "v1beta1",
                                                                             "containers": [container]}},
                                               "labels": selector}}}
        self.show(self.client.create(CONTROLLERS.v1beta1, rc), "yaml")
        if port > 0:
            svc = {"kind": "Service", "apiVersion": "v1beta1", "id": name, "port": port,
                   "labels": selector, "selector": selector}
            if not (self.flags.json or self.flags.yaml):
                self.out("---\n")
            self.show(self.client.create(SERVICES.v1beta1, svc), "yaml")

    def rm(self, name: str) -> None:
        rc = self.controller(name)
        replicas = (rc.get("desiredState") or {}).get("replicas") or 0
        if replicas > 0:
            raise UserError(f"controller {name} has non-zero replicas ({replicas}): stop it first (kubecfg stop {name})")
        self.client.delete(CONTROLLERS.v1beta1, name)

    def rolling_update(self, name: str, period: float, image: str | None,
                       sleep: Callable[[float], None] = time.sleep) -> None:
        """Replace the controller's pods one at a time: (new image,) delete each with ``period`` between,
        then wait until the controller is back at its count with none of the deleted pods left."""
        rc = self.controller(name)
        if image:
            containers = (((rc.get("desiredState") or {}).get("podTemplate") or {}).get("desiredState") or {}) \
                .get("manifest", {}).get("containers") or []
            if not containers:
                raise UserError(f"controller {name} has no container to give image {image}")
            containers[0]["image"] = image
            rc = self.client.update(CONTROLLERS.v1beta1, name, rc, rc.get("resourceVersion"))
        selector = _labels((rc.get("desiredState") or {}).get("replicaSelector"))
        replicas = int((rc.get("desiredState") or {}).get("replicas") or 0)
        pods = [p["id"] for p in self.client.list(PODS.v1beta1, selector).get("items") or []]
        if not pods:
            _note(f"controller {name}: no pods to replace")
            return
        for i, pod in enumerate(pods, 1):
            try:
                self.client.delete(PODS.v1beta1, pod)
            except ApiError as exc:
                if exc.code != 404:  # gone meanwhile: nothing to replace
                    raise
            _note(f"pod {pod} deleted ({i}/{len(pods)})")
            sleep(period)
        deleted = set(pods)
        deadline = time.monotonic() + ROLLING_TIMEOUT
        while True:
            now = {p["id"] for p in self.client.list(PODS.v1beta1, selector).get("items") or []}
            if len(now) == replicas and not now & deleted:
                _note(f"controller {name}: {replicas} new pods")
                return
            if time.monotonic() >= deadline:
                raise UserError(f"rollingupdate {name}: {len(now)} of {replicas} pods after "
                                f"{ROLLING_TIMEOUT:g} s ({len(now & deleted)} old ones still there)")
            sleep(ROLLING_POLL)


def _note(text: str) -> None:
    click.echo(text, err=True)


def _service_port(text: str | None) -> int:
    if text is None:
        return -1
    try:
        return int(text)
    except ValueError:
        raise UserError(f"-s {text!r}: expected a port number") from None


def _count(text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise UserError(f"{what} {text!r}: expected a whole number >= 0")
    return value


def _expect(verb: str, args: list[str], names: str) -> None:
    wanted = names.split()
    if len(args) != len(wanted):
        raise UserError(f"usage: kubecfg [OPTIONS] {verb} {names}")


def execute(argv: list[str], out: Callable[[str], None] | None = None) -> int:
    """The whole command, raising ``UserError`` for anything a person must fix; returns the exit code."""
    write = out or (lambda text: click.echo(text, nl=False))
    flags = parse_flags(argv)
    if flags.help:
        write(USAGE)
        return 0
    if flags.version:
        write(f"kubecfg (cluster-pilot) {__version__}, API v1beta1\n")
        return 0
    if flags.api_version not in (None, "v1beta1"):
        raise UserError(f"-api_version {flags.api_version}: this master speaks v1beta1 only")
    if flags.json and flags.yaml:
        raise UserError("-json and -yaml: choose one")
    tls = TLS(ca_file=flags.ca_file, insecure=flags.insecure, cert_file=flags.cert_file, key_file=flags.key_file)
    client = MasterClient.from_environment(flags.host, tls=tls, auth_file=flags.auth, token=flags.token)
    if flags.server_version:
        info = client.version()
        write(f"Server: Kubernetes {info.get('gitVersion', '')}\n")
        return 0
    if not flags.args:
        raise UserError("no verb: expected get, list, create, update, delete, run, resize, stop, rm or "
                        "rollingupdate (kubecfg -help)")
    verb, args = flags.args[0], flags.args[1:]
    k = Kubecfg(flags, client, write)
    if verb in ("get", "list", "create", "update", "delete"):
        k.rest(verb, args)
    elif verb == "run":
        _expect(verb, args, "IMAGE REPLICAS NAME")
        k.run(args[0], _count(args[1], "replicas"), args[2])
    elif verb == "resize":
        _expect(verb, args, "NAME REPLICAS")
        k.show(k.resize(args[0], _count(args[1], "replicas")), "yaml")
    elif verb == "stop":
        _expect(verb, args, "NAME")
        k.show(k.resize(args[0], 0), "yaml")
    elif verb == "rm":
        _expect(verb, args, "NAME")
        k.rm(args[0])
    elif verb == "rollingupdate":
        _expect(verb, args, "NAME")
        k.rolling_update(args[0], parse_duration(flags.period) if flags.period else 60.0, flags.image)
    else:
        raise UserError(f"unknown verb {verb!r}: expected get, list, create, update, delete, run, resize, stop, "
                        "rm or rollingupdate (kubecfg -help)")
    return 0


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False,
                                 "help_option_names": []}, add_help_option=False)
@click.argument("argv", nargs=-1, type=click.UNPROCESSED)
def kubecfg(argv: tuple[str, ...]) -> int:
    """Go-style flags do not fit click's parser: click only carries the words, ``parse_flags`` reads them."""
    return execute(list(argv))


def run_kubecfg(argv: list[str]) -> int:
    """``kubecfg ARGS`` with cluster-pilot's error contract (one line on stderr, exit 1); the exit code."""
    from cluster_pilot.cli import run

    return run(kubecfg, PROG, ["--", *argv])


def main() -> None:
    sys.exit(run_kubecfg(sys.argv[1:]))


if __name__ == "__main__":
    main()
