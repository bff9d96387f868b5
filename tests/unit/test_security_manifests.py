"""A manifest's reach: host paths only where the fleet allows them, never the root or dockerd's socket;
ports the minions use themselves; fields we do not run refused, never dropped; ids that are paths; label
values that would forge table rows."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from cluster_pilot.cli import cli, run
from cluster_pilot.cli.kubecfg import table
from cluster_pilot.cli.options import format_labels
from cluster_pilot.errors import UserError, ValidationFailed
from cluster_pilot.host.inventory import fleet_policy, load_inventory
from cluster_pilot.manifests import load, normalise_object
from cluster_pilot.manifests.policy import NO_INVENTORY, fleet
from cluster_pilot.model import Node, Resources

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = fleet(["/srv/data"])


def pod_with(tmp_path: Path, paths: list[str], name: str = "p.yaml") -> Path:
    volumes = "".join(f"\n  - {{name: v{i}, hostPath: {{path: {json.dumps(p)}}}}}" for i, p in enumerate(paths))
    mounts = ", ".join(f"{{name: v{i}, mountPath: /m{i}}}" for i in range(len(paths)))
    f = tmp_path / name
    f.write_text(f"apiVersion: v1\nkind: Pod\nmetadata: {{name: web}}\nspec:\n  containers:\n"
                 f"  - {{name: c, image: busybox, volumeMounts: [{mounts}]}}\n  volumes:{volumes}\n")
    return f


def failures(path: Path, policy) -> list:
    with pytest.raises(ValidationFailed) as failed:
        load([str(path)], policy=policy)
    return failed.value.problems


def test_a_host_path_the_fleet_does_not_allow_is_refused_at_its_line(tmp_path):
    f = pod_with(tmp_path, ["/srv/data/app", "/opt"])
    [problem] = failures(f, ALLOWED)
    assert str(problem) == (f"{f}:9:33: /spec/volumes/1/hostPath/path: host path /opt is not allowed on this fleet "
                            "(cp_allowed_host_paths)")


@pytest.mark.parametrize("path", ["/", "//", "/var/run/docker.sock", "/run/docker.sock", "/var/run", "/run", "/var",
                                  "/srv/data/../../etc", "srv/data", "/srv/data/..",
                                  "/srv/data/x:/etc", "/var/lib/cluster-pilot/pods/web", "/run/cluster-pilot/binds",
                                  "/var/lib", "/etc"])
def test_root_socket_and_parent_steps_are_refused_even_when_allowed(tmp_path, path):
    """cluster-pilot's own places too: a pod there could reach other pods' volumes and anchors, or the records."""
    everything = fleet(["/", "/var", "/run", "/srv/data", "/etc"])
    [problem] = failures(pod_with(tmp_path, [path]), everything)
    assert problem.pointer == "/spec/volumes/0/hostPath/path" and problem.severity == "error"
    assert any(why in problem.message for why in ("never allowed", "not an absolute path", "normal form",
                                                  "climbs", "holds \":\""))


@pytest.mark.parametrize("path,ok", [("/srv/data", True), ("/srv/data/x", True),
                                     ("/srv/database", False), ("/srv", False)])
def test_allowed_paths_are_prefixes(tmp_path, path, ok):
    f = pod_with(tmp_path, [path])
    if ok:
        assert load([str(f)], policy=ALLOWED).warnings == []
    else:
        assert "not allowed on this fleet" in failures(f, ALLOWED)[0].message


@pytest.mark.parametrize("path,normal", [("/srv//data/x", "/srv/data/x"), ("/srv/data/./x", "/srv/data/x"),
                                         ("/srv/data/x/", "/srv/data/x")])
def test_a_host_path_is_written_in_normal_form(tmp_path, path, normal):
    """What the policy judged is what the minion binds: no spelling of a path for the prefixes to fold."""
    [problem] = failures(pod_with(tmp_path, [path]), ALLOWED)
    assert problem.pointer == "/spec/volumes/0/hostPath/path"
    assert problem.message == f'"{path}" is not in normal form: write "{normal}"'


def test_validate_without_an_inventory_warns_and_with_one_refuses(tmp_path):
    f = pod_with(tmp_path, ["/opt"])
    [warning] = load([str(f)], policy=NO_INVENTORY).warnings
    assert warning.severity == "warning" and "cp_allowed_host_paths" in warning.message
    result = CliRunner().invoke(cli, ["validate", str(f)])
    assert result.exit_code == 0 and "warning: host path /opt" in result.output
    inventory = tmp_path / "inv.yml"
    inventory.write_text("all:\n  vars: {cp_allowed_host_paths: [/srv/data]}\n  children:\n    minions:\n"
                         "      hosts: {m1: {ansible_host: 10.9.9.9}}\n")
    result = CliRunner().invoke(cli, ["validate", "-i", str(inventory), str(f)])
    assert result.exit_code == 1 and "host path /opt is not allowed on this fleet" in result.output


def test_plan_refuses_before_contacting_any_host(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CLUSTER_PILOT_HOME", str(tmp_path / "home"))
    inventory = tmp_path / "inv.yml"
    inventory.write_text("minions:\n  hosts: {m1: {ansible_host: 10.9.9.9}}\n")
    f = pod_with(tmp_path, ["/opt"])
    assert run(cli, "cluster-pilot", ["plan", "--assume-empty", "-i", str(inventory), "-f", str(f)]) == 1
    assert capsys.readouterr().err.endswith(f"{f}:8:33: /spec/volumes/0/hostPath/path: host path /opt is not "
                                            "allowed on this fleet (cp_allowed_host_paths)\n")


def test_the_inventory_is_the_policy(tmp_path):
    inventory = tmp_path / "inv.yml"
    inventory.write_text(textwrap.dedent("""
        all:
          vars: {cp_allowed_host_paths: [/srv/data, /srv/logs/], cp_reserved_ports: [9100]}
          children:
            minions:
              hosts:
                m1: {ansible_port: 2222}
                m2: {cp_allowed_host_paths: [/srv/data]}
        """))
    policy = fleet_policy(load_inventory(inventory))
    assert policy.allowed_host_paths == ("/srv/data",)  # what every minion allows
    assert {22, 2222, 2375, 2376, 5000, 9100} <= policy.reserved_ports
    bad = Node("m", "m", Resources(1, 1, 1), vars={"cp_allowed_host_paths": "/srv"})
    with pytest.raises(UserError, match="must be a list"):
        fleet_policy([bad])


@pytest.mark.parametrize("port", [22, 2375, 2376, 5000, 9100])
def test_reserved_ports_are_refused_for_services_and_host_ports(tmp_path, port):
    f = tmp_path / "s.yaml"
    f.write_text(f"apiVersion: v1\nkind: Service\nmetadata: {{name: s}}\nspec:\n  selector: {{a: b}}\n"
                 f"  ports: [{{port: {port}}}]\n---\napiVersion: v1\nkind: Pod\n"
                 f"metadata: {{name: p, labels: {{a: b}}}}\nspec:\n  containers: [{{name: c, image: busybox, "
                 f"ports: [{{containerPort: 1, hostPort: {port}}}]}}]\n")
    found = failures(f, fleet(reserved_ports=[9100]))
    reserved = sorted(p.pointer for p in found if f"port {port} is reserved" in p.message)
    assert reserved == ["/spec/containers/0/ports/0/hostPort", "/spec/ports/0/port"]


UNSUPPORTED = [("container", "privileged", True), ("container", "securityContext", {"privileged": True}),
               ("container", "capabilities", {"add": ["SYS_ADMIN"]}), ("spec", "hostNetwork", True),
               ("spec", "hostPID", True), ("spec", "hostIPC", True)]


@pytest.mark.parametrize("where,field,value", UNSUPPORTED)
@pytest.mark.parametrize("lenient", [False, True])
def test_unsupported_fields_are_refused_never_dropped(where, field, value, lenient):
    container = {"name": "c", "image": "busybox"}
    spec = {"containers": [container]}
    (container if where == "container" else spec)[field] = value
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}
    with pytest.raises(ValidationFailed) as failed:
        normalise_object(body, "request body", lenient=lenient)
    # a field refused whole names itself; a securityContext names what in it would loosen the container
    assert any(f'field "{field}" is not supported' in str(p) or
               (f"/{field}/" in p.pointer and "is not supported" in p.message) for p in failed.value.problems)


def test_a_2014_body_with_privileged_true_is_refused_and_its_zero_value_is_not():
    container = {"name": "c", "image": "busybox", "privileged": False}
    body = {"id": "p", "desiredState": {"manifest": {"version": "v1beta1", "containers": [container]}}}
    assert normalise_object(body, "request body", "Pod", lenient=True).meta.name == "p"
    container["privileged"] = True
    with pytest.raises(ValidationFailed, match="privileged"):
        normalise_object(body, "request body", "Pod", lenient=True)


@pytest.mark.parametrize("name", [".", ".."])
@pytest.mark.parametrize("kind", ["Pod", "ReplicationController", "Service"])
def test_ids_that_are_paths_are_refused(name, kind):
    bodies = {
        "Pod": {"desiredState": {"manifest": {"version": "v1beta1", "containers": [{"name": "c", "image": "b"}]}}},
        "ReplicationController": {"desiredState": {"replicas": 1, "replicaSelector": {"a": "b"}, "podTemplate": {
            "desiredState": {"manifest": {"version": "v1beta1", "containers": [{"name": "c", "image": "b"}]}},
            "labels": {"a": "b"}}}},
        "Service": {"port": 80, "selector": {"a": "b"}},
    }
    for lenient in (False, True):
        with pytest.raises(ValidationFailed, match='must not be "." or ".."'):
            normalise_object({"id": name, "kind": kind, **bodies[kind]}, "request body", kind, lenient=lenient)


def test_label_values_cannot_forge_table_rows():
    labels = {"app": "web\nforged-pod   busybox   m1/10.0.0.1", "x": "\x1b[2J"}
    shown = format_labels(labels)
    assert "\n" not in shown and "\x1b" not in shown and "\\n" in shown and "\\x1b" in shown
    text = table(["ID", "Labels"], [["p", labels["app"]]])
    assert text.count("\n") == 4 and "forged-pod" in text.splitlines()[2]


def test_module_arguments_and_target_syslog_stay_quiet():
    from cluster_pilot.apply.runner import ansible_env

    assert ansible_env(Path("/tmp"), Path("/tmp"))["ANSIBLE_NO_TARGET_SYSLOG"] == "True"
    from tests.unit.ansible_modules import load_module

    for role, module, secret in (("cp_pods", "cp_pods", ("create", "remove", "records")),
                                 ("cp_proxy", "cp_proxy_apply", ("config", "document"))):
        spec = load_module(role, module).ARGUMENT_SPEC  # the one AnsibleModule and the action plugin both use
        assert all(spec[name].get("no_log") is True for name in secret), module


def test_a_minion_refuses_a_host_path_through_a_symbolic_link_at_any_level(tmp_path):
    from tests.unit.ansible_modules import load_module

    cp_pods = load_module("cp_pods", "cp_pods")
    (tmp_path / "data" / "real").mkdir(parents=True)
    (tmp_path / "data" / "link").symlink_to("/")
    (tmp_path / "up").symlink_to(tmp_path / "data")
    for bad in (f"{tmp_path}/data/link", f"{tmp_path}/up/real", f"{tmp_path}/data/link/etc"):
        with pytest.raises(ValueError, match="symbolic link"):
            cp_pods.open_checked(bad)
    for unnormal in (f"{tmp_path}//data", f"{tmp_path}/data/./real", f"{tmp_path}/data/../data", "data", "/"):
        with pytest.raises(ValueError, match="normalised"):
            cp_pods.open_checked(unnormal)
    os.close(cp_pods.open_checked(f"{tmp_path}/data/real"))
    os.close(cp_pods.open_checked(f"{tmp_path}/data/new/sub"))  # made, as Docker made a missing bind source
    assert (tmp_path / "data" / "new" / "sub").is_dir()


def test_an_anchored_host_path_swapped_for_a_link_to_the_root_still_leads_to_the_checked_directory(tmp_path):
    """The audit's critical finding: the path swapped after the check, the anchor dockerd reads at a restart
    still names the directory that was checked; the pod's removal unbinds it and leaves its data alone."""
    from tests.unit.ansible_modules import load_module

    cp_pods = load_module("cp_pods", "cp_pods")
    data, root = tmp_path / "srv" / "data", tmp_path / "binds"
    (data / "x").mkdir(parents=True)
    (data / "x" / "kept").write_text("pod data")
    (data / "file").write_text("a file")
    pod = root / "web" / "1a2b"
    try:
        cp_pods.anchor_bind(f"{data}/x", f"{pod}/v", str(root))
        cp_pods.anchor_bind(f"{data}/file", f"{pod}/f", str(root))
        cp_pods.anchor_bind(f"{data}/x", f"{pod}/v", str(root))  # a retried create binds it once, anew
        (data / "x").rename(data / "x.old")
        (data / "x").symlink_to("/")
        assert sorted(os.listdir(pod / "v")) == ["kept"] and (pod / "f").read_text() == "a file"
        with pytest.raises(ValueError, match="symbolic link"):  # a pod made after the swap is refused
            cp_pods.anchor_bind(f"{data}/x", f"{tmp_path}/binds/other/3c4d/v", str(root))
        with pytest.raises(ValueError, match="not below"):
            cp_pods.anchor_bind(f"{data}/x.old", f"{tmp_path}/elsewhere", str(root))
    finally:
        cp_pods.unbind_all(str(pod), str(root))
    assert not (root / "web").exists()
    assert (data / "x.old" / "kept").read_text() == "pod data" and (data / "file").read_text() == "a file"
    assert str(pod) not in Path("/proc/self/mountinfo").read_text()
