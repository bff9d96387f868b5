"""Acting on a plan: rendering it to data for a static playbook (``render``), running Ansible (``runner``) and
the one path every driver takes (``pipeline``)."""
