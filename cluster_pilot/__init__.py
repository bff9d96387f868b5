"""cluster-pilot: pods, replication controllers and services on an Ansible inventory of Docker hosts."""

__version__ = "0.1.0"
