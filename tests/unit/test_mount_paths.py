"""Issue 28, item 2: a mount path cannot reshape Docker's bind string. Every spelling of a container's mount
path and of a host path is judged by one rule (``checks.path_refusal``) before anything touches a host, and
each bad one is told as ``FILE:LINE:COL: /pointer: message``."""

from __future__ import annotations

import json

import pytest

from cluster_pilot.cli import cli, run
from cluster_pilot.errors import ValidationFailed
from cluster_pilot.manifests import load, normalise_object
from cluster_pilot.manifests.checks import path_refusal

# The audit's probes (all accepted by validate before this change), and the rule each breaks.
PROBES = [
    ("/x:ro", 'holds ":"'), ("/x:rw,rshared", 'holds ":"'), ("/x:/y", 'holds ":"'), ("/x:z", 'holds ":"'),
    ("x", "not an absolute path"), ("/", "replace the container's whole filesystem"),
    ("/data\n", "control character U+000A"), ("/data\x00", "control character U+0000"),
    ("/data\x7f", "control character U+007F"), ("/proc/1", "on /proc"), ("/proc", "on /proc"),
    ("/sys", "on /sys"), ("/sys/fs/cgroup", "on /sys"), ("/a/../b", 'climbs with ".."'),
    ("/a/./b", 'normal form: write "/a/b"'), ("//a", 'normal form: write "/a"'), ("/a/", 'normal form: write "/a"'),
]
GOOD = ["/data", "/var/lib/redis", "/proc2", "/system", "/srv/sys", "/a b", "/é"]


def v1_pod(mount_paths: list[str]) -> str:
    mounts = ", ".join(f"{{name: v, mountPath: {json.dumps(p)}}}" for p in mount_paths)
    return ("apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers:\n"
            f"  - name: c\n    image: busybox\n    volumeMounts: [{mounts}]\n"
            "  volumes: [{name: v, emptyDir: {}}]\n")


def v1beta1_controller(mount_path: str) -> dict:
    manifest = {"version": "v1beta1", "containers": [
        {"name": "c", "image": "busybox", "volumeMounts": [{"name": "v", "mountPath": mount_path}]}],
        "volumes": [{"name": "v"}]}
    return {"id": "redisSlaveController", "kind": "ReplicationController", "desiredState": {
        "replicas": 1, "replicaSelector": {"a": "b"},
        "podTemplate": {"desiredState": {"manifest": manifest}, "labels": {"a": "b"}}}}


def problems_of(path) -> list:
    with pytest.raises(ValidationFailed) as failed:
        load([str(path)])
    return failed.value.problems


@pytest.mark.parametrize("path,why", PROBES)
def test_the_one_rule_refuses_every_probe(path, why):
    assert why in path_refusal(path)


@pytest.mark.parametrize("path", GOOD)
def test_the_one_rule_allows_plain_absolute_paths(path):
    assert path_refusal(path) is None and path_refusal(path, in_container=False) is None


@pytest.mark.parametrize("path,why", PROBES)
def test_validate_tells_each_probe_at_its_line_and_exits_1(tmp_path, capsys, path, why):
    f = tmp_path / "pod.yaml"
    f.write_text(v1_pod([path]))
    code = run(cli, "cluster-pilot", ["validate", str(f)])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in out + err
    [line] = out.splitlines()
    assert line.startswith(f"{f}:8:41: /spec/containers/0/volumeMounts/0/mountPath: ") and why in line, line


@pytest.mark.parametrize("path,why", PROBES)
@pytest.mark.parametrize("lenient", [False, True])
def test_a_2014_controller_template_and_a_request_body_are_held_to_the_same_rule(path, why, lenient):
    with pytest.raises(ValidationFailed) as failed:
        normalise_object(v1beta1_controller(path), "request body", lenient=lenient)
    [problem] = failed.value.problems
    assert problem.pointer == ("/desiredState/podTemplate/desiredState/manifest/containers/0/volumeMounts/0"
                               "/mountPath") and why in problem.message


def test_a_v1beta1_file_is_told_at_its_line(tmp_path):
    f = tmp_path / "rc.json"
    f.write_text(json.dumps(v1beta1_controller("/x:ro"), indent=1))
    [problem] = problems_of(f)
    assert (problem.line, problem.column) == (20, 23)
    assert str(problem).startswith(f"{f}:20:23: /desiredState/podTemplate/desiredState/manifest/containers/0/"
                                   'volumeMounts/0/mountPath: "/x:ro" holds ":"')


def test_a_mount_path_is_unique_within_a_container(tmp_path):
    f = tmp_path / "pod.yaml"
    f.write_text(v1_pod(["/data", "/other", "/data"]))
    [problem] = problems_of(f)
    assert problem.pointer == "/spec/containers/0/volumeMounts/2/mountPath"
    assert problem.message == ('"/data" is also the mountPath of volumeMounts/0 of this container: a container '
                               "mounts one volume at a path")


def test_two_containers_may_mount_at_the_same_path(tmp_path):
    f = tmp_path / "pod.yaml"
    f.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers:\n"
                 "  - {name: a, image: busybox, volumeMounts: [{name: v, mountPath: /data}]}\n"
                 "  - {name: b, image: busybox, volumeMounts: [{name: v, mountPath: /data}]}\n"
                 "  volumes: [{name: v, emptyDir: {}}]\n")
    assert len(load([str(f)]).objects) == 1


@pytest.mark.parametrize("lenient", [False, True])
def test_the_early_2014_spelling_path_is_no_way_around_the_rule(lenient):
    """The first 2014 API also spelled a mount ``path``; we read only ``mountPath``, so ``path`` can neither
    carry a bad path past the rule nor stand in for ``mountPath``."""
    body = v1beta1_controller("/data")
    mount = body["desiredState"]["podTemplate"]["desiredState"]["manifest"]["containers"][0]["volumeMounts"][0]
    del mount["mountPath"]
    mount["path"] = "/x:ro"
    with pytest.raises(ValidationFailed, match='required field "mountPath" is missing'):
        normalise_object(body, "request body", lenient=lenient)


@pytest.mark.parametrize("path,why", [("/srv/data:/etc", 'holds ":"'), ("/srv/data\n", "control character"),
                                      ("srv/data", "not an absolute path"), ("/srv/../etc", "climbs"),
                                      ("/srv/data/", "normal form")])
@pytest.mark.parametrize("version", ["v1", "v1beta1"])
def test_a_host_path_is_held_to_the_same_rule_without_a_fleet(path, why, version):
    if version == "v1":
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {
            "containers": [{"name": "c", "image": "busybox", "volumeMounts": [{"name": "v", "mountPath": "/d"}]}],
            "volumes": [{"name": "v", "hostPath": {"path": path}}]}}
        pointer = "/spec/volumes/0/hostPath/path"
    else:
        body = {"id": "p", "desiredState": {"manifest": {"version": "v1beta1", "containers": [
            {"name": "c", "image": "busybox", "volumeMounts": [{"name": "v", "mountPath": "/d"}]}],
            "volumes": [{"name": "v", "source": {"hostDir": {"path": path}}}]}}}
        pointer = "/desiredState/manifest/volumes/0/source/hostDir/path"
    with pytest.raises(ValidationFailed) as failed:
        normalise_object(body, "request body", kind_hint="Pod")
    [problem] = failed.value.problems
    assert problem.pointer == pointer and why in problem.message


def test_plan_refuses_a_bad_mount_path_before_contacting_any_host(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CLUSTER_PILOT_HOME", str(tmp_path / "home"))
    inventory = tmp_path / "inv.yml"
    inventory.write_text("minions:\n  hosts: {m1: {ansible_host: 10.9.9.9}}\n")  # unreachable: never asked
    f = tmp_path / "pod.yaml"
    f.write_text(v1_pod(["/x:rw,rshared"]))
    assert run(cli, "cluster-pilot", ["plan", "--assume-empty", "-i", str(inventory), "-f", str(f)]) == 1
    err = capsys.readouterr().err
    assert err.endswith(f'{f}:8:41: /spec/containers/0/volumeMounts/0/mountPath: "/x:rw,rshared" holds ":", which '
                        "Docker would read as the end of the path and the start of the bind's options or another "
                        "path: use readOnly for a read-only mount\n")
