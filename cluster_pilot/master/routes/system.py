"""``/healthz``, ``/version`` (the seed's v0.4, as the 2014 client checks it; spelled as semver, which kubectl
parses), ``/leader`` (which master of the store reconciles) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from cluster_pilot import __version__
from cluster_pilot.master.routes.context import Context
from cluster_pilot.master.routes.minions import Minions


def router(ctx: Context) -> APIRouter:
    routes = APIRouter()

    @routes.get("/healthz", response_class=PlainTextResponse)
    async def healthz() -> str:  # on the event loop: it answers while every worker thread waits on a write
        return "ok"

    @routes.get("/version")
    def version() -> dict[str, str]:
        return {"major": "0", "minor": "4", "gitVersion": f"v0.4.0-cluster-pilot-{__version__}",
                "gitCommit": "cluster-pilot", "gitTreeState": "clean"}

    @routes.get("/leader")
    def leader() -> dict[str, object]:
        """Whether this master reconciles, and which master of the store does (its lease's holder and term)."""
        held = ctx.reconciler.store.leader()
        return {"leading": ctx.reconciler.term is not None, "term": ctx.reconciler.term,
                "leader": held[0] if held else None, "leaderTerm": held[1] if held else None,
                "leaseSecondsLeft": round(held[2], 3) if held else None}

    @routes.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> Response:
        minions, _ = Minions(ctx).entries()
        text = ctx.reconciler.metrics.exposition(sum(m.ready for m in minions), len(minions))
        return Response(text, media_type=CONTENT_TYPE_PLAIN_0_0_4)

    return routes
