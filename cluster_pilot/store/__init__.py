"""The record of what was asked (see ``sqlite``): one backend today behind the small ``Store`` protocol."""

from cluster_pilot.store.sqlite import Conflict, NotFound, Record, SQLiteStore, Store, open_store

__all__ = ["Conflict", "NotFound", "Record", "SQLiteStore", "Store", "open_store"]
