"""Discovery documents of today's API, from the kinds table: what a client reads before anything else to learn
which resources exist, their kinds, scopes, verbs and short names (``kubectl get po`` resolves ``po`` here).

Two forms: the plain one (``/api`` APIVersions, ``/api/v1`` APIResourceList, ``/apis`` APIGroupList) and the
aggregated one (``apidiscovery.k8s.io/v2`` APIGroupDiscoveryList: every resource of every version in one
answer), which kubectl asks for first through its ``Accept`` header and which saves it a round trip per
group. There are no API groups yet (``apps/v1`` comes with Deployments). Pure."""

from __future__ import annotations

from typing import Any

from cluster_pilot.api import kinds

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
CATEGORY_ALL = frozenset({kinds.PODS, kinds.CONTROLLERS, kinds.SERVICES})  # what ``kubectl get all`` lists
SCALE = ("autoscaling", "v1", "Scale")  # what a scale subresource answers: group, version, kind
# name, (group, version, kind) answered, verbs
SUBRESOURCES = {kinds.PODS: (("log", ("", "v1", kinds.PODS.name), ("get",)),),
                kinds.CONTROLLERS: (("scale", SCALE, ("get", "patch", "update")),)}


def wants_aggregated(accept: str) -> bool:
    """Whether an ``Accept`` header asks for the aggregated form (kubectl's first choice; a plain answer makes
    it fall back to one request per group version)."""
    for part in accept.split(","):
        params = {k.strip(): v.strip() for k, _, v in (p.partition("=") for p in part.split(";")[1:])}
        if params.get("g") == "apidiscovery.k8s.io" and params.get("v") == "v2" \
                and params.get("as") == "APIGroupDiscoveryList":
            return True
    return False


def api_versions(server_address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def group_list() -> dict[str, Any]:
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": []}


def resource_list() -> dict[str, Any]:
    resources: list[dict[str, Any]] = []
    for k in kinds.V1:
        resources.append({"name": k.v1, "singularName": k.singular, "namespaced": k.namespaced, "kind": k.kind_v1,
                          "verbs": list(k.verbs), "shortNames": [k.short],
                          **({"categories": ["all"]} if k in CATEGORY_ALL else {})})
        for sub, (group, version, kind), verbs in SUBRESOURCES.get(k, ()):
            resources.append({"name": f"{k.v1}/{sub}", "singularName": "", "namespaced": k.namespaced,
                              "kind": kind, "verbs": list(verbs), **({"group": group, "version": version}
                                                                     if group else {})})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1", "resources": resources}


def aggregated(core: bool) -> dict[str, Any]:
    """``/api`` (``core``: the one legacy group, version v1) or ``/apis`` (no groups yet), aggregated."""
    items = []
    if core:
        resources = []
        for k in kinds.V1:
            entry: dict[str, Any] = {"resource": k.v1, "responseKind": {"group": "", "version": "v1", "kind": k.kind_v1},
                                     "scope": "Namespaced" if k.namespaced else "Cluster",
                                     "singularResource": k.singular, "verbs": list(k.verbs), "shortNames": [k.short]}
            if k in CATEGORY_ALL:
                entry["categories"] = ["all"]
            subs = [{"subresource": sub, "responseKind": {"group": group, "version": version, "kind": kind},
                     "verbs": list(verbs)} for sub, (group, version, kind), verbs in SUBRESOURCES.get(k, ())]
            if subs:
                entry["subresources"] = subs
            resources.append(entry)
        items.append({"metadata": {"creationTimestamp": None},
                      "versions": [{"version": "v1", "resources": resources, "freshness": "Current"}]})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items}
