"""A 2014 client's read-modify-write keeps what v1beta1 cannot say about an object made from a v1 manifest."""

from __future__ import annotations

from dataclasses import replace

from cluster_pilot.manifests import normalise_object
from cluster_pilot.api import v1beta1
from cluster_pilot.model import Container, Meta, PodSpec, PodTemplate, ReplicationController


def v1_controller() -> ReplicationController:
    c = Container("app", "busybox", ("sh", "-c"), ("sleep 1d",), cpu_millis=100, cpu_limit_millis=500,
                  memory_bytes=64 << 20, memory_limit_bytes=128 << 20)
    return ReplicationController(Meta("web", {"app": "web"}, {"team": "a"}, api_version="v1"), 3, {"app": "web"},
                                 PodTemplate({"app": "web"}, PodSpec((c,))))


def test_resize_through_v1beta1_keeps_requests_limits_args_and_annotations():
    stored = v1_controller()
    read = v1beta1.controller(stored, 5, 0.0)
    read["desiredState"]["replicas"] = 1  # what `kubecfg resize web 1` sends back
    incoming = normalise_object(read, "request body", kind_hint="ReplicationController", lenient=True)
    merged = v1beta1.carry_over(stored, incoming)
    assert merged.replicas == 1
    assert merged.template.spec == stored.template.spec
    assert merged.meta.annotations == {"team": "a"}


def test_a_changed_value_wins_over_the_stored_one():
    stored = v1_controller()
    read = v1beta1.controller(stored, 5, 0.0)
    read["desiredState"]["podTemplate"]["desiredState"]["manifest"]["containers"][0]["image"] = "busybox:2"
    read["desiredState"]["podTemplate"]["desiredState"]["manifest"]["containers"][0]["cpu"] = 250
    incoming = normalise_object(read, "request body", kind_hint="ReplicationController", lenient=True)
    merged = v1beta1.carry_over(stored, incoming)
    c = merged.template.spec.containers[0]
    assert c.image == "busybox:2" and (c.cpu_millis, c.cpu_limit_millis) != (100, 500)
    assert (c.memory_bytes, c.memory_limit_bytes) == (64 << 20, 128 << 20)  # untouched: kept


def test_objects_made_in_v1beta1_are_taken_as_sent():
    stored = replace(v1_controller(), meta=replace(v1_controller().meta, api_version="v1beta1"))
    incoming = replace(stored, replicas=2)
    assert v1beta1.carry_over(stored, incoming) is incoming


def test_a_listed_pod_shows_the_image_it_runs_not_the_template_it_will_get():
    from cluster_pilot.master.registry import described as _pod_model
    from cluster_pilot.host.observed import ObservedContainer, ObservedPod

    def observed(image: str) -> ObservedPod:
        containers = (ObservedContainer("i", "x", "web-1", "POD", "h", "running", "pause"),
                      ObservedContainer("a", "y", "web-1", "app", "h", "running", image))
        return ObservedPod("web-1", "m1", "h", "web", "ReplicationController", {"app": "web"}, containers,
                           ("POD", "app"))

    updated = replace(v1_controller(), template=PodTemplate(
        {"app": "web"}, PodSpec((replace(v1_controller().template.spec.containers[0], image="busybox:2"),))))
    old = _pod_model(observed("busybox"), updated)  # rollingupdate has not reached this pod yet
    assert [c.image for c in old.spec.containers] == ["busybox"]
    assert old.spec.containers[0].args == ("sleep 1d",)  # the rest is the controller's
    new = _pod_model(observed("busybox:2"), updated)
    assert new.spec == updated.template.spec
    unknown = _pod_model(observed("redis"), None)  # nobody stored it: described from what runs
    assert [(c.name, c.image) for c in unknown.spec.containers] == [("app", "redis")]


def _pinned_everything(version: str) -> ReplicationController:
    """A v1beta1 object using every field v1beta1 can say: pull policy, pin, volumes, restart policy."""
    from cluster_pilot.model import EnvVar, Port, Volume, VolumeMount

    c = Container("app", "busybox", ("sleep", "1d"), working_dir="/w", env=(EnvVar("A", ""),),
                  ports=(Port(80, 8080, "UDP", "http"),), cpu_millis=100, memory_bytes=64 << 20,
                  volume_mounts=(VolumeMount("v", "/v"), VolumeMount("h", "/h", True)), image_pull_policy="Always")
    spec = PodSpec((c,), (Volume("v"), Volume("h", "hostDir", "/tmp")), {"disk": "ssd"}, "m1", "OnFailure")
    return ReplicationController(Meta("web", {"app": "web"}, api_version=version), 2, {"app": "web"},
                                 PodTemplate({"app": "web"}, spec))


def test_what_the_master_serves_reads_back_as_the_same_object():
    """A 2014 client writes back what it read (resize): the pull policy is spelled as v1beta1 spells it
    (``PullAlways``, not v1's ``Always``) and a pinned template keeps its minion."""
    from cluster_pilot.manifests import load_paths
    from cluster_pilot.resources import resource_dir

    examples = resource_dir("examples")
    objects = [*load_paths([str(examples / "seed-2014")]), *load_paths([str(examples / "guestbook" / "v1beta1")]),
               _pinned_everything("v1beta1")]
    for obj in objects:
        served = {"Pod": v1beta1.pod, "ReplicationController": v1beta1.controller,
                  "Service": v1beta1.service}[obj.kind](obj, 3, 0.0)
        assert normalise_object(served, "request body", kind_hint=obj.kind, lenient=True) == obj


def test_a_manifest_is_the_served_object_without_what_the_master_adds():
    from cluster_pilot.api import to_manifest

    rc = _pinned_everything("v1beta1")
    served, written = v1beta1.controller(rc, 3, 0.0), to_manifest(rc)
    assert set(served) - set(written) == {"creationTimestamp", "resourceVersion", "namespace", "selfLink",
                                          "currentState"}
    assert written["desiredState"] == served["desiredState"] | {"podTemplate": written["desiredState"]["podTemplate"]}
    assert "id" not in written["desiredState"]["podTemplate"]["desiredState"]["manifest"]  # a template has none
    assert served["desiredState"]["podTemplate"]["desiredState"]["manifest"]["id"] == ""  # Go's zero value
