"""``get events [--for pod/NAME] [-w]``: what the master did and why.

Events live where a master runs: with ``--server`` they are asked of that master, otherwise read from this
machine's master store (``$CLUSTER_PILOT_HOME/master.db``), which is where ``cluster-pilot master`` keeps them.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, Callable

import click

from cluster_pilot.errors import UserError
from cluster_pilot.home import state_dir

EVENT_WORDS = ("events", "event", "ev")

Source = Callable[[str | None, int], list[dict[str, Any]]]  # (object filter, after id) -> events, oldest first


def source(server: str | None, ca_file: str | None = None, insecure: bool = False) -> Source:
    if server is not None:
        from cluster_pilot.cli.logs import client_for

        client = client_for(server, ca_file, insecure)

        def remote(what: str | None, after: int) -> list[dict[str, Any]]:
            query = {"after": str(after), **({"object": what} if what else {})}
            return client.request("GET", "/api/v1beta1/events", query=query)["items"]
        return remote
    path = state_dir() / "master.db"
    if not path.exists():
        raise UserError(f"no events here: events are kept by a master (none ran with state in {path.parent}); "
                        "use --server URL")
    from cluster_pilot.master.routes.events import object_filter
    from cluster_pilot.store.events import EventLog

    log = EventLog.open(path)
    return lambda what, after: [e.to_json() for e in log.list(*object_filter(what), after=after)]


def line(e: dict[str, Any]) -> str:
    at = datetime.fromtimestamp(e["at"]).strftime("%H:%M:%S")
    return f"{at}  {e['reason']:<18} {e['kind'].lower()}/{e['name']}  {e['message']}"


def show(events: Source, what: str | None, watch: bool, poll: float = 1.0) -> int:
    click.echo(f"{'TIME':<9} {'REASON':<18} OBJECT  MESSAGE")
    last = 0
    while True:
        for e in events(what, last):
            click.echo(line(e))
            last = max(last, e["id"])
        if not watch:
            return 0
        time.sleep(poll)  # -w: the poll interval of a follow, not a wait for a condition
