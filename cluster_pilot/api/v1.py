"""Today's API (``v1``), written as a manifest. Pure; reading is the manifests package's."""

from __future__ import annotations

from cluster_pilot import model
from cluster_pilot.api.fields import env, port, some

VERSION = "v1"


def _meta(meta: model.Meta) -> dict:
    return {"name": meta.name, **some(namespace=meta.namespace if meta.namespace != "default" else None,
                                      labels=dict(meta.labels), annotations=dict(meta.annotations))}


def _container(c: model.Container) -> dict:
    requests = some(cpu=f"{c.cpu_millis}m" if c.cpu_millis else None,
                    memory=str(c.memory_bytes) if c.memory_bytes else None)
    limits = some(cpu=f"{c.cpu_limit_millis}m" if c.cpu_limit_millis else None,
                  memory=str(c.memory_limit_bytes) if c.memory_limit_bytes else None)
    mounts = [some(name=m.name, mountPath=m.mount_path, readOnly=m.read_only) for m in c.volume_mounts]
    return {"name": c.name, "image": c.image,
            **some(command=list(c.command), args=list(c.args), imagePullPolicy=c.image_pull_policy,
                   resources=some(requests=requests, limits=limits)),
            **some(workingDir=c.working_dir, env=env(c), ports=[port(p) for p in c.ports], volumeMounts=mounts)}


def _spec(spec: model.PodSpec) -> dict:
    volumes = [{"name": v.name, "hostPath": {"path": v.host_path}} if v.kind == "hostDir"
               else {"name": v.name, "emptyDir": {}} for v in spec.volumes]
    return {"containers": [_container(c) for c in spec.containers],
            **some(volumes=volumes, nodeSelector=dict(spec.node_selector), nodeName=spec.host,
                   restartPolicy=spec.restart_policy if spec.restart_policy != "Always" else None)}


def manifest(obj: model.Object) -> dict:
    """``obj`` as a v1 manifest, with only the fields that are set."""
    result = {"apiVersion": VERSION, "kind": obj.kind, "metadata": _meta(obj.meta)}
    if isinstance(obj, model.Pod):
        result["spec"] = _spec(obj.spec)
    elif isinstance(obj, model.ReplicationController):
        result["spec"] = {"replicas": obj.replicas, "selector": dict(obj.selector),
                          "template": {"metadata": some(labels=dict(obj.template.labels)),
                                       "spec": _spec(obj.template.spec)}}
    else:
        ports = [some(name=p.name, port=p.port, targetPort=p.target_port,
                      protocol=p.protocol if p.protocol != model.TCP else None,
                      nodePort=p.node_port if obj.type != model.CLUSTER_IP else None) for p in obj.ports]
        kind = model.LOAD_BALANCER if obj.create_external_load_balancer else obj.type
        result["spec"] = {"ports": ports, **some(selector=dict(obj.selector), clusterIP=obj.cluster_ip,
                                                 type=kind if kind != model.CLUSTER_IP else None)}
    return result
