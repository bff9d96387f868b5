"""Names and places on a minion that more than one module reads. Constants only: the first thing ``apply``
does, asking the hosts (``host.probe``), needs them before anything else is imported."""

from __future__ import annotations

LABEL_PREFIX = "io.cluster-pilot."
LABEL_POD = LABEL_PREFIX + "pod"  # every container of a pod carries it (see ``podformat``)
DOCKER_SOCKET = "/var/run/docker.sock"
PROXY_DOCUMENT = "/etc/cluster-pilot/proxy.json"  # the proxy document a minion's HAProxy serves
RECORDS_DOCUMENT = "/var/lib/cluster-pilot/objects.json"  # the object records (see ``records``)
LOCK_DIR = "/var/lib/cluster-pilot/apply.lock"  # the fleet lock (see ``lock``)
HEALTH_STATE = "/var/lib/cluster-pilot/health.json"  # cp-health's restarts (roles/cp_proxy/files/cp-health.py)
