#!/usr/bin/python3
"""Write this minion's copy of the object records, atomically: every runner reads it back (host.records)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: cp_records
short_description: Keep the cluster-pilot object records on this minion
description:
  - Writes the object records document (pods, replication controllers and services as asked, their owner
    and version) in place of the old one, atomically (a reader never sees half a document), mode 0600.
options:
  document:
    description: The records document (JSON text).
    type: str
    required: true
  path:
    description: Where the document lives.
    type: str
    default: /var/lib/cluster-pilot/objects.json
author: cluster-pilot developers
"""

EXAMPLES = r"""
- name: Record the objects the fleet runs and serves
  cp_records:
    document: "{{ cp_records_json }}"
"""

RETURN = r"""
changed:
  description: Whether the document was replaced.
  returned: always
  type: bool
"""

import json
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(argument_spec=dict(document=dict(type="str", required=True),
                                              path=dict(type="str", default="/var/lib/cluster-pilot/objects.json")),
                           supports_check_mode=True)
    text, path = module.params["document"], module.params["path"]
    try:
        json.loads(text)
    except ValueError as exc:
        module.fail_json(msg=f"not a records document: {exc}")
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                module.exit_json(changed=False)
    except OSError:
        pass
    if not module.check_mode:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".objects-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    module.exit_json(changed=True)


if __name__ == "__main__":
    main()
