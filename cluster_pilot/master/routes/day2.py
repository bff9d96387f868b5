"""Day-2 routes, mounted by ``master.api`` before its generic ``/api/v1beta1/{resource}`` ones: events, pod
logs and the dashboard."""

from __future__ import annotations

from fastapi import FastAPI

from cluster_pilot.master.reconcile import Reconciler
from cluster_pilot.master.routes import events, logs
from cluster_pilot.master import ui
from cluster_pilot.store import Store


def mount(app: FastAPI, store: Store, reconciler: Reconciler, token: str) -> None:
    if reconciler.events is not None:
        app.include_router(events.router(reconciler.events))
    app.include_router(logs.router(reconciler))
    app.include_router(ui.router(store, reconciler, token))
