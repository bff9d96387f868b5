"""Every test runs with a temporary CLUSTER_PILOT_HOME: nothing a test does touches a user's state."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _temporary_home(tmp_path_factory, monkeypatch, request):
    if request.node.get_closest_marker("e2e"):
        return  # end-to-end tests share the session's sandbox home (tests/e2e/conftest.py)
    monkeypatch.setenv("CLUSTER_PILOT_HOME", str(tmp_path_factory.mktemp("cphome")))
