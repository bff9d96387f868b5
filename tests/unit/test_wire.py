"""A 2014 client's read-modify-write keeps what v1beta1 cannot say about an object made from a v1 manifest."""

from __future__ import annotations

from dataclasses import replace

from cluster_pilot.manifests import normalise_object
from cluster_pilot.master import wire
from cluster_pilot.model import Container, Meta, PodSpec, PodTemplate, ReplicationController


def v1_controller() -> ReplicationController:
    c = Container("app", "busybox", ("sh", "-c"), ("sleep 1d",), cpu_millis=100, cpu_limit_millis=500,
                  memory_bytes=64 << 20, memory_limit_bytes=128 << 20)
    return ReplicationController(Meta("web", {"app": "web"}, {"team": "a"}, api_version="v1"), 3, {"app": "web"},
                                 PodTemplate({"app": "web"}, PodSpec((c,))))


def test_resize_through_v1beta1_keeps_requests_limits_args_and_annotations():
    stored = v1_controller()
    read = wire.controller(stored, 5, 0.0)
    read["desiredState"]["replicas"] = 1  # what `kubecfg resize web 1` sends back
    incoming = normalise_object(read, "request body", kind_hint="ReplicationController", lenient=True)
    merged = wire.carry_over(stored, incoming)
    assert merged.replicas == 1
    assert merged.template.spec == stored.template.spec
    assert merged.meta.annotations == {"team": "a"}


def test_a_changed_value_wins_over_the_stored_one():
    stored = v1_controller()
    read = wire.controller(stored, 5, 0.0)
    read["desiredState"]["podTemplate"]["desiredState"]["manifest"]["containers"][0]["image"] = "busybox:2"
    read["desiredState"]["podTemplate"]["desiredState"]["manifest"]["containers"][0]["cpu"] = 250
    incoming = normalise_object(read, "request body", kind_hint="ReplicationController", lenient=True)
    merged = wire.carry_over(stored, incoming)
    c = merged.template.spec.containers[0]
    assert c.image == "busybox:2" and (c.cpu_millis, c.cpu_limit_millis) != (100, 500)
    assert (c.memory_bytes, c.memory_limit_bytes) == (64 << 20, 128 << 20)  # untouched: kept


def test_objects_made_in_v1beta1_are_taken_as_sent():
    stored = replace(v1_controller(), meta=replace(v1_controller().meta, api_version="v1beta1"))
    incoming = replace(stored, replicas=2)
    assert wire.carry_over(stored, incoming) is incoming


def test_a_listed_pod_shows_the_image_it_runs_not_the_template_it_will_get():
    from cluster_pilot.master.registry import described as _pod_model
    from cluster_pilot.host.observe import ObservedContainer, ObservedPod

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
