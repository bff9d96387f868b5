"""The model written back as a manifest, in either API version: what the master answers a 2014 client
with, what ``-o yaml`` style output shows, and the other half of the round-trip property the tests hold
(reading what was rendered gives the same model back).

Within one version nothing is lost. Across versions a few things have no spelling on the other side and are
dropped or approximated: v1 ``args`` (v1beta1 has one command line), v1 limits and annotations, the ports
of a multi-port v1 service after the first, and a v1beta1 service's "first port of the pods" target
(v1 then targets the service's own port number).
"""

from __future__ import annotations

from cluster_pilot import model

_PULL_V1BETA1 = {"Always": "PullAlways", "Never": "PullNever", "IfNotPresent": "PullIfNotPresent"}
_RESTART_V1BETA1 = {"Always": "always", "OnFailure": "onFailure", "Never": "never"}


def to_manifest(obj: model.Object, api_version: str | None = None) -> dict:
    version = api_version or obj.meta.api_version
    if version == "v1beta1":
        return _v1beta1(obj)
    if version == "v1":
        return _v1(obj)
    raise ValueError(f"cannot write apiVersion {version!r}")


def _some(**fields: object) -> dict:
    """The fields that are set: a rendered manifest reads like a hand-written one."""
    return {k: v for k, v in fields.items() if v not in (None, "", (), [], {}, 0, False)}


def _port(p: model.Port) -> dict:
    return _some(name=p.name, containerPort=p.container_port, hostPort=p.host_port, protocol=p.protocol)


def _common_container(c: model.Container) -> dict:
    return _some(
        workingDir=c.working_dir,
        env=[{"name": e.name, "value": e.value} for e in c.env],
        ports=[_port(p) for p in c.ports],
        volumeMounts=[_some(name=m.name, mountPath=m.mount_path, readOnly=m.read_only) for m in c.volume_mounts],
    )


# --- v1beta1 ------------------------------------------------------------------------------------------------

def _v1beta1_meta(obj: model.Object) -> dict:
    meta = obj.meta
    return {"kind": obj.kind, "apiVersion": "v1beta1", "id": meta.name,
            **_some(namespace=meta.namespace if meta.namespace != "default" else None, labels=dict(meta.labels))}


def _v1beta1_container(c: model.Container) -> dict:
    return {"name": c.name, "image": c.image,
            **_some(command=list(c.command) + list(c.args) if c.command else [], cpu=c.cpu_millis,
                    memory=c.memory_bytes, imagePullPolicy=_PULL_V1BETA1.get(c.image_pull_policy)),
            **_common_container(c)}


def _v1beta1_volume(v: model.Volume) -> dict:
    if v.kind == "hostDir":
        return {"name": v.name, "source": {"hostDir": {"path": v.host_path}}}
    return {"name": v.name, "source": {"emptyDir": {}}}


def _v1beta1_state(spec: model.PodSpec, name: str | None) -> dict:
    manifest = {"version": "v1beta1", **_some(id=name), "containers": [_v1beta1_container(c) for c in spec.containers],
                **_some(volumes=[_v1beta1_volume(v) for v in spec.volumes])}
    if spec.restart_policy != "Always":
        manifest["restartPolicy"] = {_RESTART_V1BETA1[spec.restart_policy]: {}}
    return {"manifest": manifest, **_some(host=spec.host)}


def _v1beta1(obj: model.Object) -> dict:
    result = _v1beta1_meta(obj)
    if isinstance(obj, model.Pod):
        result["desiredState"] = _v1beta1_state(obj.spec, obj.meta.name)
        result.update(_some(nodeSelector=dict(obj.spec.node_selector)))
    elif isinstance(obj, model.ReplicationController):
        template = {"desiredState": _v1beta1_state(obj.template.spec, None),
                    **_some(labels=dict(obj.template.labels), nodeSelector=dict(obj.template.spec.node_selector))}
        result["desiredState"] = {"replicas": obj.replicas, "replicaSelector": dict(obj.selector),
                                  "podTemplate": template}
    else:
        port = obj.ports[0]
        result.update(port=port.port, selector=dict(obj.selector))
        if port.target_port is not None:
            result["containerPort"] = port.target_port
        result.update(_some(protocol=port.protocol if port.protocol != model.TCP else None,
                            createExternalLoadBalancer=obj.create_external_load_balancer))
    return result


# --- v1 -----------------------------------------------------------------------------------------------------

def _v1_meta(meta: model.Meta) -> dict:
    return {"name": meta.name, **_some(namespace=meta.namespace if meta.namespace != "default" else None,
                                       labels=dict(meta.labels), annotations=dict(meta.annotations))}


def _v1_container(c: model.Container) -> dict:
    requests = _some(cpu=f"{c.cpu_millis}m" if c.cpu_millis else None,
                     memory=str(c.memory_bytes) if c.memory_bytes else None)
    limits = _some(cpu=f"{c.cpu_limit_millis}m" if c.cpu_limit_millis else None,
                   memory=str(c.memory_limit_bytes) if c.memory_limit_bytes else None)
    return {"name": c.name, "image": c.image,
            **_some(command=list(c.command), args=list(c.args), imagePullPolicy=c.image_pull_policy,
                    resources=_some(requests=requests, limits=limits)),
            **_common_container(c)}


def _v1_spec(spec: model.PodSpec) -> dict:
    volumes = [{"name": v.name, "hostPath": {"path": v.host_path}} if v.kind == "hostDir"
               else {"name": v.name, "emptyDir": {}} for v in spec.volumes]
    return {"containers": [_v1_container(c) for c in spec.containers],
            **_some(volumes=volumes, nodeSelector=dict(spec.node_selector), nodeName=spec.host,
                    restartPolicy=spec.restart_policy if spec.restart_policy != "Always" else None)}


def _v1(obj: model.Object) -> dict:
    result = {"apiVersion": "v1", "kind": obj.kind, "metadata": _v1_meta(obj.meta)}
    if isinstance(obj, model.Pod):
        result["spec"] = _v1_spec(obj.spec)
    elif isinstance(obj, model.ReplicationController):
        result["spec"] = {"replicas": obj.replicas, "selector": dict(obj.selector),
                          "template": {"metadata": _some(labels=dict(obj.template.labels)),
                                       "spec": _v1_spec(obj.template.spec)}}
    else:
        ports = [_some(name=p.name, port=p.port, targetPort=p.target_port,
                       protocol=p.protocol if p.protocol != model.TCP else None) for p in obj.ports]
        result["spec"] = {"ports": ports, **_some(selector=dict(obj.selector),
                                                  type="LoadBalancer" if obj.create_external_load_balancer else None)}
    return result
