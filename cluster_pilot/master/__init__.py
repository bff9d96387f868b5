"""The master: a REST API over the store, and a reconcile loop that keeps the minions matching it."""
