"""From a schedule and an observation to the smallest set of actions (``planner``) and the service proxies'
configuration (``proxy``). Pure."""
