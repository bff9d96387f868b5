"""The master's REST API: the seed era's ``/api/v1beta1/`` resources over the store and the reconcile loop.

Bodies go through the same validation as manifest files (lenient about the zero values and read-only fields
the 2014 client sends); every answer is v1beta1 JSON with ``kind``/``apiVersion``, errors are Status objects.
A write is acknowledged once the store has it durably; the reconcile loop then makes the minions match.
Every request but ``/healthz`` needs the master's token (``routes/auth``); ``guard`` stands in front of every
route (Host, Origin, body type and size). The routes live in ``routes/``, one module
per resource over ``registry``; this module puts the application together.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from fastapi import FastAPI, Request

from cluster_pilot import __version__
from cluster_pilot.manifests.policy import Policy
from cluster_pilot.master import guard
from cluster_pilot.master.reconcile import Reconciler
from cluster_pilot.master.routes import auth, errors, objects, system, v1
from cluster_pilot.master.routes.context import Context
from cluster_pilot.master.routes.day2 import mount as mount_day2
from cluster_pilot.store import Store
from cluster_pilot.store.sqlite import SqlStore
from cluster_pilot.store.events import EventLog


@dataclass
class Settings:
    token: str
    insecure_loopback: bool = False
    rules: guard.Rules = guard.Rules()
    policy: Policy = Policy()  # the fleet's; the default allows no host path


def _denied(settings: Settings, request: Request) -> tuple[int, str] | None:
    if auth.needs_token(request) and not auth.authorized(request, settings.token, settings.insecure_loopback):
        return 401, auth.DENIED
    return None


def create_app(store: Store, reconciler: Reconciler, settings: Settings) -> FastAPI:
    if reconciler.events is None and isinstance(store, SqlStore):
        reconciler.events = EventLog(store)  # its passes record what they did where the events route reads it
    app = FastAPI(title="cluster-pilot master", version=__version__,
                  description="The seed era's Kubernetes API (v1beta1) over an Ansible-driven fleet.")
    errors.install(app)

    @app.middleware("http")
    async def _no_bare_500(request: Request, call_next):
        try:
            return await call_next(request)
        except Exception as exc:  # never a bare 500 page: a Status the 2014 client can print
            return errors.status(500, f"internal error: {type(exc).__name__}: {exc}", "InternalError", request.url.path)

    mount_day2(app, store, reconciler, settings.token)  # events, pod logs, /ui/: before the generic routes
    context = Context(store, reconciler, settings.policy)
    app.include_router(system.router(context))
    app.include_router(objects.router(context))
    app.include_router(v1.router(context))  # today's API, beside the 2014 one: the same objects
    guard.install(app, settings.rules, functools.partial(_denied, settings))
    return app
