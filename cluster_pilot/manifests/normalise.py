"""Both API styles into one model: ``v1beta1`` (2014, seed era) and ``v1`` (today) become the same classes.

Runs on data the schema has already accepted, so shapes and types are known here; what is left is meaning:
which kind an unlabelled 2014 object is, the first-release spellings (``replicasInSet``, ``taskTemplate``),
the 2014 defaults (a service without ``containerPort`` targets its pods' first port, a service without a
selector selects by its labels, a container without a name is named after its image), and quantities.
"""

from __future__ import annotations

import json
import re

from cluster_pilot import model, quantity
from cluster_pilot.api import kinds, names
from cluster_pilot.errors import UserError
from cluster_pilot.manifests.checks import Layout
from cluster_pilot.manifests.problem import Finding, show
from cluster_pilot.manifests.schema import LOOSENING, READ_ONLY, VERSIONS

V1BETA1, V1 = "v1beta1", "v1"
LIST = "List"
MAX_CPU_MILLIS = 2**31 - 1
MAX_MEMORY_BYTES = 2**63 - 1

PROBE_ACTIONS = ("httpGet", "tcpSocket", "exec")
_PULL = {"PullAlways": "Always", "PullNever": "Never", "PullIfNotPresent": "IfNotPresent"}
_RESTART = (("never", "Never"), ("onFailure", "OnFailure"), ("always", "Always"))

# Lenient reading of 2014-client bodies: Go's zero values mean "not set". Maps of labels keep their entries
# as written, and the Go pointer fields below mean "set" even when empty ({"emptyDir": {}}).
_FREE_FORM = frozenset({"labels", "annotations", "selector", "replicaSelector", "replicasInSet", "nodeSelector"})
_MARKERS = frozenset({"emptyDir", "hostDir", "always", "onFailure", "never"})
_MAX_STRIP_DEPTH = 64


def kind_from_hint(hint: str | None) -> str | None:
    """``Pod``, ``pods``, ``/pods``, ``replicationControllers``, ``svc``...: the kind a context stands for."""
    if hint is None:
        return None
    kind = kinds.find(hint, kinds.MANIFEST_KINDS)
    if kind is None:
        raise UserError(f"{hint!r} is not a kind: expected {kinds.spelled(k.name for k in kinds.MANIFEST_KINDS)}")
    return kind.name


# --- which schema applies -----------------------------------------------------------------------------------

def identify(data: dict, kind_hint: str | None, default_version: str | None = None,
             allow_list: bool = True) -> tuple[str, str] | Finding:
    """The (apiVersion, kind) of an object, or why they cannot be told."""
    version = data.get("apiVersion")
    if "apiVersion" not in data:
        if default_version is not None:
            version = default_version
        elif "metadata" in data or "spec" in data:
            return Finding("/apiVersion", "required field \"apiVersion\" is missing: this object has metadata/spec, "
                           "so write apiVersion: v1 (a v1beta1 object has id and desiredState instead)")
        else:
            version = V1BETA1
    elif version not in VERSIONS:
        return Finding("/apiVersion", f"{show(version)} is not an apiVersion cluster-pilot reads: "
                       "expected \"v1beta1\" or \"v1\"")
    if "kind" in data:
        kind = data["kind"]
        kinds = model.KINDS + ((LIST,) if allow_list else ())
        if kind not in kinds:
            expected = ", ".join(f"\"{k}\"" for k in kinds)
            if kind == LIST:
                return Finding("/kind", "a List is not allowed here: expected one Pod, ReplicationController or "
                               "Service (a List cannot hold another List)")
            return Finding("/kind", f"{show(kind)} is not a kind cluster-pilot reads: expected {expected}")
        return version, kind
    if kind_hint is not None:
        return version, kind_hint
    if version == V1:
        return Finding("/kind", "required field \"kind\" is missing: write kind: Pod, ReplicationController or Service")
    kind = _shape_of(data, allow_list)
    if kind is None:
        return Finding("", "cannot tell what kind of object this is: write \"kind\": \"Pod\", "
                       "\"ReplicationController\" or \"Service\" (or pass --kind). Without kind, "
                       "desiredState.manifest makes a Pod, desiredState.replicas with a selector and a template "
                       "makes a ReplicationController, and a top-level port makes a Service")
    return version, kind


def _shape_of(data: dict, allow_list: bool) -> str | None:
    """The kind of a kind-less 2014 object, told by its shape (the rules the error above spells out)."""
    state = data.get("desiredState")
    if isinstance(state, dict):
        if "manifest" in state:
            return model.POD
        has_selector = "replicaSelector" in state or "replicasInSet" in state
        has_template = "podTemplate" in state or "taskTemplate" in state
        if "replicas" in state and has_selector and has_template:
            return model.REPLICATION_CONTROLLER
    if "port" in data:
        return model.SERVICE
    if allow_list and isinstance(data.get("items"), list):
        return LIST
    return None


def name_finding(data: dict, version: str, kind: str) -> Finding | None:
    """What is wrong with the object's name (``id``, ``metadata.name``) by the one rule for names
    (``api.names``), or None. Asked beside the schema, so a bad name is told with the object's other errors."""
    if version == V1BETA1:
        pointer, name = "/id", data.get("id")
    else:
        metadata = data.get("metadata")
        pointer, name = "/metadata/name", metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(name, str):
        return None  # missing or not text: the schema says so
    why = names.refusal(kind, name, version)
    if why is None:
        return None
    printed = show(name) if name.isprintable() else json.dumps(name)  # escapes: the message stays one line of text
    return Finding(pointer, f"{printed} {why}")


# --- lenient reading ----------------------------------------------------------------------------------------

def strip_unset(data: dict) -> dict:
    """A 2014-client body with its "not set" values removed: the zero values Go writes for every field it
    knows (``null``, ``""``, ``0``, ``false``, ``{}``, ``[]``) and the fields only the server sets. ``v1``
    bodies lose only nulls and server-set fields: there ``replicas: 0`` means zero."""
    zeros = data.get("apiVersion") != V1
    return _strip(data, zeros, 0)


def _strip(value: object, zeros: bool, depth: int) -> object:
    if depth > _MAX_STRIP_DEPTH:
        return value
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            if key in READ_ONLY:
                continue
            if not (key in _FREE_FORM or key in _MARKERS):
                item = _strip(item, zeros, depth + 1)
            if item is None or (zeros and _is_zero(item) and key not in _MARKERS):
                continue
            result[key] = item
        return result
    if isinstance(value, list):
        return [_strip(item, zeros, depth + 1) for item in value]
    return value


def _is_zero(value: object) -> bool:
    return value is None or value is False or value == "" or value == {} or value == [] or (
        isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0)


# --- building the model -------------------------------------------------------------------------------------

def build(data: dict, version: str, kind: str, source: model.Source | None = None
          ) -> tuple[model.Object | None, Layout, list[Finding]]:
    """The model object for schema-valid ``data``; ``None`` (with findings) when its meaning is not clear."""
    builder = _V1beta1(source) if version == V1BETA1 else _V1(source)
    obj = {model.POD: builder.pod, model.REPLICATION_CONTROLLER: builder.controller,
           model.SERVICE: builder.service}[kind](data)
    return (obj if not builder.findings else None), builder.layout, builder.findings


def default_layout(obj: model.Object) -> Layout:
    """Where a canonically written object (no first-release spellings) has each part, by its apiVersion."""
    if obj.meta.api_version == V1BETA1:
        if isinstance(obj, model.Pod):
            return Layout(name="/id", containers="/desiredState/manifest/containers")
        if isinstance(obj, model.ReplicationController):
            return _v1beta1_controller_layout("replicaSelector", "podTemplate")
        return Layout(name="/id", selector="/selector", service_ports=("/port",) * len(obj.ports),
                      target_ports=("/containerPort",) * len(obj.ports), cluster_ip="/portalIP")
    if isinstance(obj, model.Pod):
        return Layout(name="/metadata/name", containers="/spec/containers")
    if isinstance(obj, model.ReplicationController):
        return _v1_controller_layout("/spec/selector")
    return v1_service_layout(len(obj.ports), [f"/spec/ports/{i}/targetPort" for i in range(len(obj.ports))])


def v1_service_layout(ports: int, target_ports: list[str]) -> Layout:
    return Layout(name="/metadata/name", selector="/spec/selector",
                  service_ports=tuple(f"/spec/ports/{i}/port" for i in range(ports)),
                  target_ports=tuple(target_ports), cluster_ip="/spec/clusterIP",
                  node_ports=tuple(f"/spec/ports/{i}/nodePort" for i in range(ports)))


def _v1beta1_controller_layout(selector_key: str, template_key: str) -> Layout:
    return Layout(name="/id", containers=f"/desiredState/{template_key}/desiredState/manifest/containers",
                  selector=f"/desiredState/{selector_key}", template_labels=f"/desiredState/{template_key}/labels")


def _v1_controller_layout(selector: str) -> Layout:
    return Layout(name="/metadata/name", containers="/spec/template/spec/containers", selector=selector,
                  template_labels="/spec/template/metadata/labels")


def container_name_from_image(image: str) -> str:
    """``brendanburns/redis-slave:v2`` -> ``redis-slave``: how a 2014 container without a name is called."""
    last = image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]
    name = re.sub(r"[^a-z0-9]+", "-", last.lower())[:63].strip("-")
    return name or "container"


def _container_names(containers: list[dict]) -> list[str]:
    """Names as written, and for nameless containers their image's name, made unique within the pod."""
    taken = {c["name"] for c in containers if "name" in c}
    names = []
    for c in containers:
        if "name" in c:
            names.append(c["name"])
            continue
        base = container_name_from_image(c["image"])
        name, n = base, 2
        while name in taken:
            suffix = f"-{n}"
            name, n = base[: 63 - len(suffix)].rstrip("-") + suffix, n + 1
        taken.add(name)
        names.append(name)
    return names


def _port(p: dict) -> model.Port:
    host = p.get("hostPort")
    return model.Port(container_port=int(p["containerPort"]), host_port=int(host) if host else None,
                      protocol=p.get("protocol", model.TCP), name=p.get("name") or None)


def _env(items: list[dict]) -> tuple[model.EnvVar, ...]:
    return tuple(model.EnvVar(e["name"], e.get("value", "")) for e in items)


def _mounts(items: list[dict]) -> tuple[model.VolumeMount, ...]:
    return tuple(model.VolumeMount(m["name"], m["mountPath"], bool(m.get("readOnly", False))) for m in items)


class _Builder:
    def __init__(self, source: model.Source | None) -> None:
        self.source = source
        self.findings: list[Finding] = []
        self.layout = Layout()

    def target_port(self, value: object, at: str) -> int | str:
        if isinstance(value, str):
            if value.isdigit():
                self.findings.append(Finding(at, f"\"{value}\" is a string: write the number {value} without quotes "
                                             "for a port number, or give a port name"))
            return value
        return int(value)


class _V1beta1(_Builder):
    def meta(self, data: dict) -> model.Meta:
        return model.Meta(name=data["id"], labels=dict(data.get("labels", {})),
                          namespace=data.get("namespace", "default"), api_version=V1BETA1, source=self.source)

    def pod(self, data: dict) -> model.Pod:
        self.layout = Layout(name="/id", containers="/desiredState/manifest/containers")
        return model.Pod(self.meta(data), self.spec(data["desiredState"], data.get("nodeSelector", {})))

    def spec(self, state: dict, node_selector: dict) -> model.PodSpec:
        manifest = state["manifest"]
        containers = manifest["containers"]
        names = _container_names(containers)
        policy = manifest.get("restartPolicy", {})
        return model.PodSpec(
            containers=tuple(self.container(c, name) for c, name in zip(containers, names, strict=True)),
            volumes=tuple(self.volume(v) for v in manifest.get("volumes", ())),
            node_selector=dict(node_selector),
            host=state.get("host") or None,
            restart_policy=next((policy_name for key, policy_name in _RESTART if key in policy), "Always"),
        )

    def container(self, c: dict, name: str) -> model.Container:
        return model.Container(
            name=name, image=c["image"], command=tuple(c.get("command", ())), working_dir=c.get("workingDir") or None,
            env=_env(c.get("env", ())), ports=tuple(_port(p) for p in c.get("ports", ())),
            cpu_millis=int(c.get("cpu", 0)), memory_bytes=int(c.get("memory", 0)),
            volume_mounts=_mounts(c.get("volumeMounts", ())),
            image_pull_policy=_PULL.get(c.get("imagePullPolicy", ""), ""),
        )

    def volume(self, v: dict) -> model.Volume:
        source = v.get("source", {})
        if "hostDir" in source:
            return model.Volume(v["name"], "hostDir", source["hostDir"]["path"])
        return model.Volume(v["name"])

    def controller(self, data: dict) -> model.ReplicationController | None:
        state = data["desiredState"]
        selector_key = self.alias(state, "replicaSelector", "replicasInSet",
                                  "a selector matching the template's labels")
        template_key = self.alias(state, "podTemplate", "taskTemplate", "the template of the pods to run")
        if selector_key is None or template_key is None:
            return None
        self.layout = _v1beta1_controller_layout(selector_key, template_key)
        template = state[template_key]
        spec = self.spec(template["desiredState"], template.get("nodeSelector", {}))
        return model.ReplicationController(
            self.meta(data), replicas=int(state.get("replicas", 0)), selector=dict(state[selector_key]),
            template=model.PodTemplate(labels=dict(template.get("labels", {})), spec=spec))

    def alias(self, state: dict, name: str, first_release: str, what: str) -> str | None:
        """Which of a field's two 2014 spellings is used; both, or neither, is an error."""
        if name in state and first_release in state:
            self.findings.append(Finding(f"/desiredState/{first_release}", f"\"{first_release}\" is the first-release "
                                         f"spelling of \"{name}\": give one of them, not both", at_key=True))
            return None
        if name not in state and first_release not in state:
            self.findings.append(Finding(f"/desiredState/{name}", f"required field \"{name}\" is missing: "
                                         f"a replication controller needs {what}"))
            return None
        return name if name in state else first_release

    def service(self, data: dict) -> model.Service:
        selector_key = "selector" if "selector" in data else "labels"
        target_at = "/containerPort" if "containerPort" in data else "/port"
        self.layout = Layout(name="/id", selector=f"/{selector_key}", service_ports=("/port",),
                             target_ports=(target_at,), cluster_ip="/portalIP")
        target = self.target_port(data["containerPort"], target_at) if "containerPort" in data else None
        port = model.ServicePort(port=int(data["port"]), target_port=target, protocol=data.get("protocol", model.TCP))
        return model.Service(self.meta(data), ports=(port,), selector=dict(data.get(selector_key, {})),
                             create_external_load_balancer=bool(data.get("createExternalLoadBalancer", False)),
                             cluster_ip=data.get("portalIP") or None)


class _V1(_Builder):
    def meta(self, metadata: dict) -> model.Meta:
        return model.Meta(name=metadata["name"], labels=dict(metadata.get("labels", {})),
                          annotations=dict(metadata.get("annotations", {})),
                          namespace=metadata.get("namespace", "default"), api_version=V1, source=self.source)

    def pod(self, data: dict) -> model.Pod:
        self.layout = Layout(name="/metadata/name", containers="/spec/containers")
        return model.Pod(self.meta(data["metadata"]), self.spec(data["spec"], "/spec"))

    def spec(self, spec: dict, at: str) -> model.PodSpec:
        security = self.security(spec.get("securityContext"), f"{at}/securityContext")
        containers = tuple(self.container(c, f"{at}/containers/{i}") for i, c in enumerate(spec["containers"]))
        for i, c in enumerate(containers):
            mine = model.effective_security(security, c.security)
            if mine.run_as_group is not None and mine.run_as_user is None:
                self.findings.append(Finding(f"{at}/containers/{i}/securityContext", "runAsGroup needs runAsUser "
                                             "(here or in the pod's securityContext): Docker sets a group only "
                                             "with a user"))
        return model.PodSpec(containers=containers, volumes=tuple(self.volume(v) for v in spec.get("volumes", ())),
                             security=security, **model.declared_values(model.PodSpec, spec))

    def security(self, sc: dict | None, at: str) -> model.SecurityContext | None:
        """A ``securityContext``: what tightens is kept; what would loosen the container (privileged, added
        capabilities, a seccomp profile other than Docker's own, root by number) is refused, never dropped."""
        if sc is None:
            return None
        if sc.get("privileged") is True:
            self.findings.append(Finding(f"{at}/privileged", f"privileged: true is not supported: {LOOSENING}"))
        if (sc.get("capabilities") or {}).get("add"):
            self.findings.append(Finding(f"{at}/capabilities/add", f"adding capabilities is not supported: "
                                         f"{LOOSENING}; drop is"))
        seccomp = (sc.get("seccompProfile") or {}).get("type", "RuntimeDefault")
        if seccomp != "RuntimeDefault":
            self.findings.append(Finding(f"{at}/seccompProfile/type", f"{show(seccomp)} is not supported: "
                                         f"{LOOSENING}; RuntimeDefault (Docker's own profile) is"))
        for key in ("runAsUser", "runAsGroup", "fsGroup"):
            if sc.get(key) == 0:
                self.findings.append(Finding(f"{at}/{key}", f"0 is root: cluster-pilot applies a securityContext "
                                             f"only where it tightens the container; leave {key} out to keep the "
                                             "image's own"))
        return model.SecurityContext(
            run_as_user=sc.get("runAsUser"), run_as_group=sc.get("runAsGroup"),
            run_as_non_root=bool(sc.get("runAsNonRoot")),
            read_only_root_filesystem=bool(sc.get("readOnlyRootFilesystem")),
            no_new_privileges=sc.get("allowPrivilegeEscalation") is False,
            drop=tuple((sc.get("capabilities") or {}).get("drop", ())), fs_group=sc.get("fsGroup"),
            supplemental_groups=tuple(sc.get("supplementalGroups", ())))

    def container(self, c: dict, at: str) -> model.Container:
        resources = c.get("resources", {})
        requests, limits = resources.get("requests", {}), resources.get("limits", {})
        amounts = {}
        for kind, convert, ceiling in (("cpu", quantity.cpu_millis, MAX_CPU_MILLIS),
                                       ("memory", quantity.memory_bytes, MAX_MEMORY_BYTES)):
            for part, values in (("requests", requests), ("limits", limits)):
                amounts[part, kind] = self.amount(values, kind, convert, ceiling, f"{at}/resources/{part}/{kind}")
        return model.Container(
            name=c["name"], image=c["image"], env=self.env(c.get("env", ()), f"{at}/env"),
            ports=tuple(_port(p) for p in c.get("ports", ())),
            cpu_millis=amounts["requests", "cpu"] if "cpu" in requests else amounts["limits", "cpu"],
            memory_bytes=amounts["requests", "memory"] if "memory" in requests else amounts["limits", "memory"],
            cpu_limit_millis=amounts["limits", "cpu"], memory_limit_bytes=amounts["limits", "memory"],
            volume_mounts=_mounts(c.get("volumeMounts", ())), **model.declared_values(model.Container, c),
            **{attr: self.probe(c, key, f"{at}/{key}") for key, attr in model.PROBE_FIELDS if key in c},
            security=self.security(c.get("securityContext"), f"{at}/securityContext"),
        )

    def env(self, items: list[dict], at: str) -> tuple[model.EnvVar, ...]:
        """Variables, a ``valueFrom.fieldRef`` among them checked: a field of the pod known when it is created."""
        out = []
        for i, e in enumerate(items):
            path = (e.get("valueFrom") or {}).get("fieldRef", {}).get("fieldPath")
            if path is not None and not model.FIELD_PATH.fullmatch(path):
                said = ("the pod's address is not known before it starts here (pods have no address of their own "
                        "yet): use status.hostIP and a published port") if path == "status.podIP" else (
                        "expected metadata.name, metadata.namespace, metadata.labels['KEY'], "
                        "metadata.annotations['KEY'], spec.nodeName or status.hostIP")
                self.findings.append(Finding(f"{at}/{i}/valueFrom/fieldRef/fieldPath", f"{show(path)}: {said}"))
            if path is not None and "value" in e:
                self.findings.append(Finding(f"{at}/{i}", "give value or valueFrom, not both"))
            out.append(model.EnvVar(e["name"], e.get("value", ""), path))
        return tuple(out)

    def probe(self, c: dict, key: str, at: str) -> model.Probe | None:
        """A probe, checked beyond its schema: one action, a port name the container has, and (liveness and
        startup) a success threshold of 1, as Kubernetes requires."""
        p = c[key]
        actions = [a for a in PROBE_ACTIONS if a in p]
        if len(actions) != 1:
            said = f"gives {' and '.join(actions)}" if actions else "gives none"
            self.findings.append(Finding(at, f"a probe needs exactly one of {', '.join(PROBE_ACTIONS)}: it {said}"))
            return None
        action = actions[0]
        handler = p[action]
        port = handler.get("port", 0)
        names = {q.get("name") for q in c.get("ports", ()) if q.get("name")}
        if isinstance(port, str) and port not in names:
            known = f": it has {', '.join(sorted(names))}" if names else ": it names none of its ports"
            self.findings.append(Finding(f"{at}/{action}/port", f"the container has no port named {show(port)}{known}"))
        if key != "readinessProbe" and p.get("successThreshold", 1) != 1:
            self.findings.append(Finding(f"{at}/successThreshold", f"must be 1 for a {key} (only a readiness "
                                         "probe passes after several successes)"))
        return model.Probe(
            action=action, port=port, path=handler.get("path", "/"), scheme=handler.get("scheme", "HTTP"),
            headers=tuple((h["name"], h["value"]) for h in handler.get("httpHeaders", ())),
            command=tuple(handler.get("command", ())), initial_delay_seconds=p.get("initialDelaySeconds", 0),
            period_seconds=p.get("periodSeconds", 10), timeout_seconds=p.get("timeoutSeconds", 1),
            success_threshold=p.get("successThreshold", 1), failure_threshold=p.get("failureThreshold", 3))

    def amount(self, values: dict, kind: str, convert, ceiling: int, at: str) -> int:
        if kind not in values:
            return 0
        try:
            amount = convert(values[kind])
        except (ValueError, ArithmeticError) as exc:
            self.findings.append(Finding(at, str(exc)))
            return 0
        if amount > ceiling:
            unit = "millicores" if kind == "cpu" else "bytes"
            self.findings.append(Finding(at, f"{show(values[kind])} is too large (at most {ceiling} {unit})"))
            return 0
        return amount

    def volume(self, v: dict) -> model.Volume:
        if "hostPath" in v:
            return model.Volume(v["name"], "hostDir", v["hostPath"]["path"])
        return model.Volume(v["name"])

    def controller(self, data: dict) -> model.ReplicationController:
        spec = data["spec"]
        template = spec["template"]
        labels = dict(template.get("metadata", {}).get("labels", {}))
        has_selector = "selector" in spec
        self.layout = _v1_controller_layout("/spec/selector" if has_selector else "/spec/template/metadata/labels")
        return model.ReplicationController(
            self.meta(data["metadata"]), replicas=int(spec.get("replicas", 1)),
            selector=dict(spec["selector"]) if has_selector else labels,
            template=model.PodTemplate(labels=labels, spec=self.spec(template["spec"], "/spec/template/spec")))

    def service(self, data: dict) -> model.Service:
        spec = data["spec"]
        ports, port_at, target_at = [], [], []
        for i, p in enumerate(spec["ports"]):
            at = f"/spec/ports/{i}"
            target = f"{at}/targetPort" if "targetPort" in p else f"{at}/port"
            ports.append(model.ServicePort(
                port=int(p["port"]), target_port=self.target_port(p.get("targetPort", p["port"]), target),
                protocol=p.get("protocol", model.TCP), name=p.get("name") or None,
                node_port=int(p["nodePort"]) if p.get("nodePort") else None))
            port_at.append(f"{at}/port")
            target_at.append(target)
        kind = spec.get("type", model.CLUSTER_IP)
        if kind == model.CLUSTER_IP:
            self.findings += [Finding(f"/spec/ports/{i}/nodePort", "a nodePort needs type NodePort or LoadBalancer: "
                                      "a ClusterIP service takes no port on the minions' own addresses")
                              for i, p in enumerate(spec["ports"]) if "nodePort" in p]
        self.layout = v1_service_layout(len(ports), target_at)
        return model.Service(self.meta(data["metadata"]), ports=tuple(ports), selector=dict(spec.get("selector", {})),
                             create_external_load_balancer=kind == model.LOAD_BALANCER,
                             cluster_ip=spec.get("clusterIP") or None, type=kind)
