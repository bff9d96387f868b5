"""The pod format's constants that modules on the host need, standard library only.

A copy of what ``cluster_pilot/host/podformat.py`` defines (hosts have no cluster-pilot installed; Ansible
ships this file with the role's modules); ``tests/unit/test_podformat.py`` holds every name here equal to the
original.
"""

from __future__ import annotations

POD_DIR = "/var/lib/cluster-pilot/pods"  # cp_pods removes pod directories only below it
BIND_DIR = "/run/cluster-pilot/binds"  # cp_pods binds checked host paths only below it
LABEL_NON_ROOT = "io.cluster-pilot.run-as-non-root"  # cp_pods checks the image's user before it starts one
