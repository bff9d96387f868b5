"""``securityContext``: what tightens a container reaches Docker, what would loosen it is refused at the line
that asks for it, and ``runAsNonRoot`` is checked against the image on the host before the start."""

from __future__ import annotations

import json

import pytest

from cluster_pilot.api import to_manifest
from cluster_pilot.apply.render import Settings, render_create
from cluster_pilot.host import podformat
from cluster_pilot.host.observed import HostView, Observation
from cluster_pilot.manifests import load_documents
from cluster_pilot.model import Node, Resources
from cluster_pilot.plan.planner import plan
from cluster_pilot.scheduler import schedule
from tests.unit.ansible_modules import load_module
from tests.unit.manifests_support import errors

cp_pods = load_module("cp_pods", "cp_pods")

POD = """
apiVersion: v1
kind: Pod
metadata: {name: locked}
spec:
  securityContext: {runAsUser: 1000, runAsGroup: 3000, fsGroup: 2000, supplementalGroups: [4000]}
  volumes: [{name: data, emptyDir: {}}]
  containers:
  - name: app
    image: busybox
    volumeMounts: [{name: data, mountPath: /data}]
    securityContext:
      runAsNonRoot: true
      readOnlyRootFilesystem: true
      allowPrivilegeEscalation: false
      privileged: false
      capabilities: {drop: [ALL]}
      seccompProfile: {type: RuntimeDefault}
"""
NODE = Node("m1", "10.0.0.1", Resources(2000, 4 << 30, 40))


def _rendered(text: str) -> dict:
    (pod,) = load_documents([("pod.yaml", text)])
    (create,) = plan(schedule([pod], [NODE], []), Observation({"m1": HostView("m1", True)})).creates
    return render_create(create, Settings())


def test_what_tightens_reaches_the_containers_body():
    action = _rendered(POD)
    (container,) = action["containers"]
    body, host = container["body"], container["body"]["HostConfig"]
    assert body["User"] == "1000:3000"
    assert (host["ReadonlyRootfs"], host["SecurityOpt"], host["CapDrop"], host["GroupAdd"]) == (
        True, ["no-new-privileges"], ["ALL"], ["2000", "4000"])
    assert action["group"] == 2000  # the emptyDir volume's group
    assert podformat.LABEL_NON_ROOT not in body["Labels"]  # a user of its own: nothing to check on the host
    plain = _rendered(POD.split("  securityContext:")[0] + "  containers: [{name: app, image: busybox}]\n")
    plain_body = plain["containers"][0]["body"]
    assert "User" not in plain_body and "group" not in plain and not {"ReadonlyRootfs", "CapDrop", "SecurityOpt",
                                                                       "GroupAdd"} & set(plain_body["HostConfig"])


def test_a_container_setting_wins_over_the_pods_and_the_manifest_reads_back():
    text = POD.replace("runAsNonRoot: true", "runAsNonRoot: true\n      runAsUser: 1500")
    assert _rendered(text)["containers"][0]["body"]["User"] == "1500:3000"
    (pod,) = load_documents([("pod.yaml", text)])
    written = to_manifest(pod)["spec"]
    assert written["securityContext"]["fsGroup"] == 2000
    assert written["containers"][0]["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert load_documents([("again.json", json.dumps(to_manifest(pod)))]) == [pod]


def test_run_as_non_root_without_a_user_is_left_to_the_host_to_check():
    text = POD.replace("runAsUser: 1000, runAsGroup: 3000, ", "")
    body = _rendered(text)["containers"][0]["body"]
    assert "User" not in body and body["Labels"][podformat.LABEL_NON_ROOT] == "true"


@pytest.mark.parametrize("change,pointer,words", [
    (("privileged: false", "privileged: true"), "/spec/containers/0/securityContext/privileged",
     "privileged: true is not supported"),
    (("drop: [ALL]", "drop: [ALL], add: [SYS_ADMIN]"), "/spec/containers/0/securityContext/capabilities/add",
     "adding capabilities is not supported"),
    (("type: RuntimeDefault", "type: Unconfined"), "/spec/containers/0/securityContext/seccompProfile/type",
     "\"Unconfined\" is not supported"),
    (("runAsUser: 1000, ", "runAsUser: 0, "), "/spec/securityContext/runAsUser", "0 is root"),
    (("runAsUser: 1000, ", ""), "/spec/containers/0/securityContext", "runAsGroup needs runAsUser"),
    (("runAsNonRoot: true", "runAsNonRoot: true\n      procMount: Unmasked"),
     "/spec/containers/0/securityContext/procMount", "unknown field"),
])
def test_what_would_loosen_the_container_is_refused_at_its_line(change, pointer, words):
    found = errors(("pod.yaml", POD.replace(*change)))
    assert [p.pointer for p in found] == [pointer] and words in found[0].message, found


class _Images:
    def __init__(self, user):
        self.user = user

    def image_user(self, image):
        return self.user


@pytest.mark.parametrize("user,root", [("", True), ("root", True), ("0", True), ("0:0", True), ("root:staff", True),
                                       ("1000", False), ("nobody", False), ("1000:0", False)])
def test_the_host_refuses_to_start_a_non_root_container_whose_image_runs_as_root(user, root):
    assert cp_pods.runs_as_root(user) is root
    action = {"containers": [{"name": "cp_x_app_h", "body": {"Image": "busybox",
                                                             "Labels": {podformat.LABEL_NON_ROOT: "true"}}}]}
    if root:
        with pytest.raises(cp_pods.DockerError, match="runAsNonRoot is set and image busybox runs as root"):
            cp_pods.check_non_root(_Images(user), action)
    else:
        cp_pods.check_non_root(_Images(user), action)
