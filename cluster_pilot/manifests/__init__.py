"""Manifests in, typed model out: JSON and YAML in the 2014 (``v1beta1``) and today's (``v1``) styles,
checked against the JSON Schemas in ``schemas/`` and the rules beyond them, with every problem reported at
its file, line, column and JSON pointer (see ``Problem``)."""

from cluster_pilot.api import to_manifest
from cluster_pilot.manifests.pipeline import (
    Loaded,
    check_set,
    load,
    load_documents,
    load_paths,
    normalise_object,
)
from cluster_pilot.manifests.problem import Problem

__all__ = ["Loaded", "Problem", "check_set", "load", "load_documents", "load_paths", "normalise_object", "to_manifest"]
