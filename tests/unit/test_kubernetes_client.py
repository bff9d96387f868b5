"""A second client of the v1 API beside kubectl: the official Python ``kubernetes`` client, as generated from
Kubernetes' own OpenAPI, over TLS with the master's token. It speaks the API as Kubernetes defines it, not as
kubectl happens to use it: typed models, PUT for replace, DeleteOptions, pages, watch."""

from __future__ import annotations

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from tests.unit.test_api_v1 import tls_master  # noqa: F401 - the fixture
from tests.unit.test_kubecfg import TOKEN


@pytest.fixture
def core(tls_master):  # noqa: F811
    config = client.Configuration(host=tls_master.url, api_key={"authorization": TOKEN},
                                  api_key_prefix={"authorization": "Bearer"})
    config.ssl_ca_cert = str(tls_master.certificate)
    with client.ApiClient(config) as api:
        yield client.CoreV1Api(api)


def _pod(name: str, image: str = "nginx") -> client.V1Pod:
    return client.V1Pod(metadata=client.V1ObjectMeta(name=name, labels={"client": "python"}),
                        spec=client.V1PodSpec(containers=[client.V1Container(
                            name="app", image=image, ports=[client.V1ContainerPort(container_port=80)])]))


def test_the_python_client_creates_reads_lists_patches_replaces_and_deletes(core):
    made = core.create_namespaced_pod("default", _pod("py-web"))
    assert made.metadata.name == "py-web" and made.metadata.uid and made.status.phase == "Pending"
    try:
        got = core.read_namespaced_pod("py-web", "default")
        assert got.spec.containers[0].image == "nginx"

        patched = core.patch_namespaced_pod("py-web", "default", {"metadata": {"labels": {"tier": "front"}}})
        assert patched.metadata.labels == {"client": "python", "tier": "front"}

        got = core.read_namespaced_pod("py-web", "default")
        got.spec.containers[0].image = "nginx:1.25"
        replaced = core.replace_namespaced_pod("py-web", "default", got)  # PUT of the object as read
        assert replaced.spec.containers[0].image == "nginx:1.25"
        assert int(replaced.metadata.resource_version) > int(got.metadata.resource_version)
        with pytest.raises(ApiException) as stale:
            core.replace_namespaced_pod("py-web", "default", got)  # the version it read is gone
        assert stale.value.status == 409 and "has been modified" in stale.value.body

        listed = core.list_namespaced_pod("default", label_selector="tier=front")
        assert [p.metadata.name for p in listed.items] == ["py-web"]
    finally:
        gone = core.delete_namespaced_pod("py-web", "default",
                                          body=client.V1DeleteOptions(propagation_policy="Foreground"))
    assert gone.kind == "Pod" and gone.metadata.deletion_timestamp is not None  # a graceful delete's answer
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_pod("py-web", "default")
    assert missing.value.status == 404


def test_the_python_client_is_told_what_is_invalid_and_reads_pages_nodes_and_a_watch(core):
    with pytest.raises(ApiException) as invalid:
        core.create_namespaced_pod("default", _pod("py-bad", image=""))
    assert invalid.value.status == 422 and "spec.containers[0].image" in invalid.value.body

    names = [f"py-page-{i}" for i in range(3)]
    for name in names:
        core.create_namespaced_pod("default", _pod(name))
    try:
        first = core.list_namespaced_pod("default", label_selector="client=python", limit=2)
        rest = core.list_namespaced_pod("default", label_selector="client=python", limit=2,
                                        _continue=first.metadata._continue)
        assert [p.metadata.name for p in first.items + rest.items] == names
        assert first.metadata.remaining_item_count == 1 and not rest.metadata._continue

        seen = [e["object"].metadata.name for e in watch.Watch().stream(
            core.list_namespaced_pod, "default", label_selector="client=python", timeout_seconds=2)
            if e["type"] == "ADDED"]
        assert sorted(seen) == names

        nodes = core.list_node()
        assert nodes.items and all(n.metadata.name for n in nodes.items)
    finally:
        for name in names:
            core.delete_namespaced_pod(name, "default")
