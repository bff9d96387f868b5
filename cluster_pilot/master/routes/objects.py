"""The generic ``/api/v1beta1/{resource}[/{name}]`` routes, as the 2014 API server's one REST handler over a
storage per resource: reads go to the resource's module, writes to the store (acknowledged once it has them
durably), and every write wakes the reconcile loop, which makes the minions match."""

from __future__ import annotations

from typing import Any, Callable, Protocol

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response

from cluster_pilot.api import v1beta1 as wire
from cluster_pilot.master import guard
from cluster_pilot.master.reconcile import holder_url
from cluster_pilot.master.routes.bodies import BODY, parse_body, resource_version
from cluster_pilot.master.routes.context import MINION, Context, kind_of
from cluster_pilot.master.routes.controllers import Controllers
from cluster_pilot.master.routes.errors import ApiError, named, not_found
from cluster_pilot.master.routes.minions import Minions, read_only
from cluster_pilot.master.routes.pods import Pods
from cluster_pilot.master.routes.services import Services
from cluster_pilot.model import (POD, REPLICATION_CONTROLLER, SERVICE, Object, from_json, parse_selector, selector_admits,
                                 to_json)
from cluster_pilot.store import Conflict, NotFound, Record


class Resource(Protocol):
    def items(self) -> list[dict[str, Any]]: ...
    def item(self, name: str) -> dict[str, Any] | None: ...
    def encode(self, record: Record) -> dict[str, Any]: ...  # as written, the answer to a write


def router(ctx: Context) -> APIRouter:
    pods = Pods(ctx)
    resources: dict[str, Resource] = {POD: pods, REPLICATION_CONTROLLER: Controllers(ctx), SERVICE: Services(ctx),
                                      MINION: Minions(ctx)}
    routes = APIRouter()
    _reads(routes, ctx, resources, pods)
    _writes(routes, ctx, resources, pods)
    return routes


def _reads(routes: APIRouter, ctx: Context, resources: dict[str, Resource], pods: Pods) -> None:
    @routes.get("/api/v1beta1/{resource}")
    def list_objects(resource: str, labels: str | None = None) -> Response:
        kind = kind_of(resource)
        try:
            selector = parse_selector(labels)
        except ValueError as exc:
            raise ApiError(400, str(exc), "Invalid") from None
        if kind == POD and not selector:
            return Response(pods.body(), media_type="application/json")
        items = [i for i in resources[kind].items() if selector_admits(selector, i.get("labels") or {})]
        return JSONResponse(wire.listing(kind, items, ctx.version()))

    @routes.get("/api/v1beta1/{resource}/{name}")
    def get_object(resource: str, name: str) -> JSONResponse:
        kind = kind_of(resource)
        found = resources[kind].item(named(kind, name))
        if found is None:
            raise not_found(resource, name)
        return JSONResponse(found)


def _writes(routes: APIRouter, ctx: Context, resources: dict[str, Resource], pods: Pods) -> None:
    @routes.post("/api/v1beta1/{resource}", openapi_extra=BODY)
    @guard.one_writer
    def create_object(resource: str, raw: bytes = Depends(guard.raw_body)) -> JSONResponse:
        kind = _writable(kind_of(resource))
        record = create(ctx, parse_body(raw, kind, ctx.store.list(), policy=ctx.policy),
                        lambda name: f"{resource} {name!r}")
        return JSONResponse(resources[kind].encode(record))

    @routes.put("/api/v1beta1/{resource}/{name}", openapi_extra=BODY)
    @guard.one_writer
    def update_object(resource: str, name: str, raw: bytes = Depends(guard.raw_body)) -> JSONResponse:
        kind = _writable(kind_of(resource))
        obj = parse_body(raw, kind, ctx.store.list(), named(kind, name), ctx.policy)
        expect = resource_version(raw)
        owned(ctx, kind, name)
        before = ctx.stored(kind, name)
        if before is None:
            raise not_found(resource, name)
        try:
            record = ctx.store.put(kind, name, to_json(wire.carry_over(from_json(before.body), obj)),
                                   expect_version=expect, applyset="master", actor="api")
        except Conflict as exc:
            raise ApiError(409, f"{resource} {name!r}: {exc}", "Conflict") from None
        ctx.reconciler.trigger()
        return JSONResponse(resources[kind].encode(record))

    @routes.delete("/api/v1beta1/{resource}/{name}")
    @guard.one_writer
    def delete_object(resource: str, name: str) -> JSONResponse:
        kind = _writable(kind_of(resource))
        delete(ctx, pods, kind, named(kind, name), not_found(resource, name))
        return JSONResponse(wire.status(200, f"{resource} {name!r} deleted"))


def create(ctx: Context, obj: Object, label: Callable[[str], str]) -> Record:
    """Store a new object for the master (both API versions' create): refused when a CLI apply set owns that
    name (issue 15's rules) or when it exists. ``label`` words an object for the message."""
    if (why := ctx.reconciler.foreign(obj.kind, obj.meta.name)) is not None:
        raise ApiError(409, why, "Conflict")
    try:
        record = ctx.store.put(obj.kind, obj.meta.name, to_json(obj), create_only=True, applyset="master",
                               actor="api")
    except Conflict:
        raise ApiError(409, f"{label(obj.meta.name)} already exists", "AlreadyExists") from None
    ctx.reconciler.trigger()
    return record


def update(ctx: Context, obj: Object, expect: int | None, label: Callable[[str], str]) -> Record:
    """Store a changed object for the master (today's PATCH; the 2014 PUT keeps its own read-modify-write):
    refused on what a CLI apply set owns; ``expect``: the version it was based on (None: any)."""
    owned(ctx, obj.kind, obj.meta.name)
    try:
        record = ctx.store.put(obj.kind, obj.meta.name, to_json(obj), expect_version=expect, applyset="master",
                               actor="api")
    except Conflict as exc:
        raise ApiError(409, f"{label(obj.meta.name)}: {exc}", "Conflict") from None
    ctx.reconciler.trigger()
    return record


def delete(ctx: Context, pods: Pods, kind: str, name: str, missing: ApiError) -> None:
    """Delete for the master (both API versions): refused on what a CLI apply set owns; a controller's pod is
    evicted (removed, and replaced by its controller); ``missing`` is raised when there is nothing to delete."""
    owned(ctx, kind, name)
    try:
        ctx.store.delete(kind, name, actor="api")
    except NotFound:
        if kind != POD or not pods.running(name):
            raise missing from None
        leading(ctx, name)
        ctx.reconciler.evict(name)
    ctx.reconciler.trigger()


def leading(ctx: Context, pod: str) -> None:
    """An eviction lives in the memory of the master that reconciles: one a follower took would never be done
    (the chaos soak saw a rolling update wait forever on it), so a follower refuses it and names the leader."""
    if ctx.reconciler.term is None:
        held = ctx.reconciler.store.leader()
        leader = f" the leader ({holder_url(held[0])})" if held else " the leader, once one is elected,"
        raise ApiError(503, f"pod {pod!r}: this master follows and evicts nothing; send the delete to{leader}",
                       "ServiceUnavailable", {"leader": held[0] if held else None})


def owned(ctx: Context, kind: str, name: str) -> None:
    """409 on what a CLI apply set owns (issue 15's rules)."""
    if (why := ctx.read_only(kind, name)) is not None:
        raise ApiError(409, why, "Conflict")


def _writable(kind: str) -> str:
    if kind == MINION:
        raise read_only()
    return kind
