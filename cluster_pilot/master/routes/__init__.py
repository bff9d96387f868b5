"""The master's routes beyond the v1beta1 objects, one router module each, mounted by ``master.api``."""
