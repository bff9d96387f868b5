"""Everything that talks to a minion or reads its state: the inventory, SSH, the pod format on the host,
observation and the fleet lock. Nothing here knows the scheduler or the planner."""
