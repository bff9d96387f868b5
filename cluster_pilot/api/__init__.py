"""The API's kinds and versions, in the manner of Kubernetes' ``pkg/api``: ``kinds`` is the one table of kind
names, paths and aliases; ``v1beta1`` and ``v1`` each write their version. Pure; imports only the model."""

from __future__ import annotations

from cluster_pilot import model
from cluster_pilot.api import v1, v1beta1

VERSIONS = (v1beta1.VERSION, v1.VERSION)
_WRITERS = {v1beta1.VERSION: v1beta1.manifest, v1.VERSION: v1.manifest}


def to_manifest(obj: model.Object, api_version: str | None = None) -> dict:
    """``obj`` as a manifest of ``api_version`` (default: its own). Within one version nothing is lost; across
    versions what has no spelling on the other side is dropped or approximated (v1 args, limits, annotations,
    the ports of a multi-port service after the first; a v1beta1 service's "first port of the pods" target)."""
    version = api_version or obj.meta.api_version
    if version not in _WRITERS:
        raise ValueError(f"cannot write apiVersion {version!r}")
    return _WRITERS[version](obj)
