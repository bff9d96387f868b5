"""The master's REST API: the seed era's ``/api/v1beta1/`` resources over the store and the reconcile loop.

Bodies go through the same validation as manifest files (lenient about the zero values and read-only fields
the 2014 client sends); every answer is v1beta1 JSON with ``kind``/``apiVersion``, errors are Status objects.
A write is acknowledged once the store has it durably; the reconcile loop then makes the minions match.
Reads are open; writes need the master's token (Bearer, or HTTP Basic with the token as password), except
from loopback over plain HTTP when ``--insecure-loopback`` allows it, as the 2014 API server's local port did.
"""

from __future__ import annotations

import base64
import hmac
import json
import time
from dataclasses import dataclass, replace
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from cluster_pilot import __version__
from cluster_pilot.api import v1beta1 as wire
from cluster_pilot.api.kinds import MINION
from cluster_pilot.master.client import is_loopback
from cluster_pilot.errors import ValidationFailed
from cluster_pilot.manifests import check_set, normalise_object
from cluster_pilot.master.reconcile import Reconciler
from cluster_pilot.model import (POD, REPLICATION_CONTROLLER, SERVICE, Container, Meta, Object, Pod, PodSpec,
                                 ReplicationController,
                                 from_json, parse_selector, selector_admits, selector_matches, to_json)
from cluster_pilot.host.observe import ObservedPod
from cluster_pilot.host.podformat import INFRA
from cluster_pilot.scheduler.replicas import replica
from cluster_pilot.store import Conflict, NotFound, Record, Store


@dataclass
class Settings:
    token: str
    insecure_loopback: bool = False


class ApiError(Exception):
    def __init__(self, code: int, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.reason = code, message, reason


def _status(code: int, message: str, reason: str | None = None) -> JSONResponse:
    return JSONResponse(wire.status(code, message, reason), status_code=code)


def _authorized(request: Request, settings: Settings) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), settings.token.encode()):
        return True
    if scheme.lower() == "basic":
        try:
            _, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(password.encode(), settings.token.encode())
    if settings.insecure_loopback and request.url.scheme == "http" and request.client is not None:
        return is_loopback(request.client.host)
    return False


def create_app(store: Store, reconciler: Reconciler, settings: Settings) -> FastAPI:
    app = FastAPI(title="cluster-pilot master", version=__version__,
                  description="The seed era's Kubernetes API (v1beta1) over an Ansible-driven fleet.")

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _status(exc.code, exc.message, exc.reason)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # unknown paths and methods too answer a Status, not FastAPI's {"detail": ...}
        message = f"{request.method} {request.url.path}: {exc.detail}"
        return JSONResponse(wire.status(exc.status_code, message), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _request_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = "/".join(str(p) for p in first.get("loc", ()))
        return _status(400, f"{where}: {first.get('msg', 'invalid request')}", "Invalid")

    @app.middleware("http")
    async def _guard(request: Request, call_next):
        if request.method not in ("GET", "HEAD", "OPTIONS") and request.url.path.startswith("/api/"):
            if not _authorized(request, settings):
                return _status(401, "writes need the master's token (Authorization: Bearer TOKEN, or HTTP "
                                    "Basic with the token as password)", "Unauthorized")
        try:
            return await call_next(request)
        except Exception as exc:  # never a bare 500 page: a Status the 2014 client can print
            return _status(500, f"internal error: {type(exc).__name__}: {exc}", "InternalError")

    # --- helpers over the store and the last observation ---------------------------------------------------
    def kind_of(resource: str) -> str:
        kind = wire.RESOURCES.get(resource) or wire.RESOURCES.get(resource.lower().rstrip("s") + "s")
        if kind is None:
            for name, k in wire.RESOURCES.items():
                if name.lower() == resource.lower():
                    return k
            raise ApiError(404, f"unknown resource {resource!r}: pods, replicationControllers, services, minions",
                           "NotFound")
        return kind

    def pods_view() -> list[tuple[Pod, int, float, wire.PodState, str | None]]:
        """Every pod: those the minions run (observed), then bare pods asked for and not running yet."""
        seen = reconciler.last
        records = {(r.kind, r.name): r for r in store.list()}
        nodes = {n.name: n for n in reconciler.nodes()}
        out = []
        shown: set[str] = set()
        decoded: dict[str, Object] = {}  # each record decoded once, not once per pod
        if seen is not None:
            newest = seen.current()
            with reconciler._lock:
                leaving = set(reconciler.evicting)  # deleted through the API: gone for clients at once
            for name in sorted(newest):
                if name in leaving:
                    continue
                p = newest[name]
                view = seen.hosts.get(p.node)
                status = p.status if view is not None and (view.reachable or view.stale) else "Unknown"
                node = nodes.get(p.node)
                state = wire.PodState(status, p.node, node.address if node else "")
                record = records.get((POD, name)) if not p.controller else records.get((REPLICATION_CONTROLLER, p.controller))
                if record is not None and record.name not in decoded:
                    decoded[record.name] = from_json(record.body)
                model = _pod_model(p, decoded.get(record.name) if record is not None else None)
                out.append((model, record.resource_version if record else 1, record.updated_at if record else time.time(),
                            state, p.controller))
                shown.add(name)
        for (kind, name), r in records.items():
            if kind == POD and name not in shown:
                out.append((from_json(r.body), r.resource_version, r.updated_at, wire.PodState("Waiting"), None))
        return out

    pods_cache: dict[str, Any] = {"key": None, "items": []}

    def pod_items() -> list[dict[str, Any]]:
        """Encoded once per observation and store version: listing pods is the hot read (kubecfg polls it)."""
        with reconciler._lock:
            leaving = frozenset(reconciler.evicting)
        key = (id(reconciler.last), _version(store), leaving)
        if pods_cache["key"] != key:
            pods_cache["items"] = [encode_pod(i) for i in pods_view()]
            pods_cache["key"] = key
        return pods_cache["items"]

    def encode_pod(item) -> dict[str, Any]:
        model, rv, created, state, _ = item
        return wire.pod(model, rv, created, state)

    def encode_records(records: list[Record]) -> list[dict[str, Any]]:
        """Controllers count their running pods: one walk over the pods for the whole list, not one each."""
        pods = pods_view() if any(r.kind == REPLICATION_CONTROLLER for r in records) else []
        return [encode_record(r, pods) for r in records]

    def encode_record(r: Record, pods: list | None = None) -> dict[str, Any]:
        obj = from_json(r.body)
        if r.kind == REPLICATION_CONTROLLER:
            pods = pods_view() if pods is None else pods
            running = sum(1 for m, *_rest, owner in pods if owner == r.name or
                          (owner is None and selector_matches(obj.selector, m.meta.labels)))
            return wire.controller(obj, r.resource_version, r.updated_at, running)
        if r.kind == SERVICE:
            return wire.service(obj, r.resource_version, r.updated_at)
        return wire.pod(obj, r.resource_version, r.updated_at)

    def minions() -> list[dict[str, Any]]:
        seen = reconciler.last
        out = []
        for n in reconciler.nodes():
            view = seen.hosts.get(n.name) if seen else None
            ready = bool(view and (view.reachable or view.stale))
            out.append(wire.minion(n.name, n.address, n.capacity.cpu_millis, n.capacity.memory_bytes, ready,
                                   n.labels, reconciler.generation + 1))
        return out

    def parse_body(raw: bytes, kind: str, name: str | None = None) -> Object:
        try:
            data = json.loads(raw or b"null")
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise ApiError(400, f"request body: not JSON: {exc}", "Invalid") from None
        if not isinstance(data, dict):
            raise ApiError(400, "request body: expected a JSON object", "Invalid")
        if name is not None and not data.get("id") and not (data.get("metadata") or {}).get("name"):
            data = {**data, "id": name}
        try:
            obj = normalise_object(data, "request body", kind_hint=kind, lenient=True)
        except ValidationFailed as exc:
            errors = [p for p in exc.problems if getattr(p, "severity", "error") == "error"] or exc.problems
            raise ApiError(400, "; ".join(_short(p) for p in errors[:5]), "Invalid") from None
        if obj.kind != kind:
            raise ApiError(400, f"request body: a {obj.kind} cannot be written to {kind} resources", "Invalid")
        if name is not None and obj.meta.name != name:
            raise ApiError(400, f"request body: id {obj.meta.name!r} does not match {name!r} in the path", "Invalid")
        others = [from_json(r.body) for r in store.list() if (r.kind, r.name) != (obj.kind, obj.meta.name)]
        errors, _ = check_set([*others, obj])
        mine = [p for p in errors if f"{obj.kind} {obj.meta.name}" in str(p) or "request body" in str(p)]
        if mine:
            raise ApiError(400, "; ".join(_short(p) for p in mine[:5]), "Invalid")
        return obj

    # --- routes --------------------------------------------------------------------------------------------
    @app.get("/healthz", response_class=PlainTextResponse)
    def healthz() -> str:
        return "ok"

    @app.get("/version")
    def version() -> dict[str, str]:
        return {"major": "0", "minor": "4", "gitVersion": f"v0.4-cluster-pilot-{__version__}",
                "gitCommit": "cluster-pilot", "gitTreeState": "clean"}

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> str:
        ms = minions()
        ready = sum(1 for m in ms if m["status"]["conditions"][0]["status"] == "Full")
        return reconciler.metrics.prometheus(ready, len(ms))

    @app.get("/api/v1beta1/{resource}")
    def list_objects(resource: str, labels: str | None = None) -> Response:
        kind = kind_of(resource)
        try:
            selector = parse_selector(labels)
        except ValueError as exc:
            raise ApiError(400, str(exc), "Invalid") from None
        if kind == POD and not selector:
            pod_items()
            if pods_cache.get("body_key") != pods_cache["key"]:
                body = wire.listing(kind, pods_cache["items"], pods_cache["key"][1])
                pods_cache["body"] = json.dumps(body, separators=(",", ":")).encode()
                pods_cache["body_key"] = pods_cache["key"]
            return Response(pods_cache["body"], media_type="application/json")
        if kind == MINION:
            items = minions()
        elif kind == POD:
            items = pod_items()
        else:
            items = encode_records(store.list(kind))
        items = [i for i in items if selector_admits(selector, i.get("labels") or {})]
        return JSONResponse(wire.listing(kind, items, _version(store)))

    @app.get("/api/v1beta1/{resource}/{name}")
    def get_object(resource: str, name: str) -> JSONResponse:
        kind = kind_of(resource)
        if kind == MINION:
            found = [m for m in minions() if m["id"] == name]
        elif kind == POD:
            found = [encode_pod(i) for i in pods_view() if i[0].meta.name == name]
        else:
            try:
                found = [encode_record(store.get(kind, name))]
            except NotFound:
                found = []
        if not found:
            raise ApiError(404, f"{resource} {name!r} not found", "NotFound")
        return JSONResponse(found[0])

    @app.post("/api/v1beta1/{resource}", openapi_extra=_BODY)
    async def create_object(resource: str, request: Request) -> JSONResponse:
        kind = _writable(kind_of(resource))
        obj = parse_body(await request.body(), kind)
        try:
            record = store.put(kind, obj.meta.name, to_json(obj), create_only=True, applyset="master", actor="api")
        except Conflict:
            raise ApiError(409, f"{resource} {obj.meta.name!r} already exists", "AlreadyExists") from None
        reconciler.trigger()
        return JSONResponse(encode_record(record))

    @app.put("/api/v1beta1/{resource}/{name}", openapi_extra=_BODY)
    async def update_object(resource: str, name: str, request: Request) -> JSONResponse:
        kind = _writable(kind_of(resource))
        raw = await request.body()
        obj = parse_body(raw, kind, name)
        expect = _resource_version(raw)
        try:
            obj = wire.carry_over(from_json(store.get(kind, name).body), obj)
        except NotFound:
            raise ApiError(404, f"{resource} {name!r} not found", "NotFound") from None
        try:
            record = store.put(kind, name, to_json(obj), expect_version=expect, applyset="master", actor="api")
        except Conflict as exc:
            raise ApiError(409, f"{resource} {name!r}: {exc}", "Conflict") from None
        reconciler.trigger()
        return JSONResponse(encode_record(record))

    @app.delete("/api/v1beta1/{resource}/{name}")
    def delete_object(resource: str, name: str) -> JSONResponse:
        kind = _writable(kind_of(resource))
        try:
            store.delete(kind, name, actor="api")
        except NotFound:
            running = kind == POD and reconciler.last is not None and any(p.name == name for p in reconciler.last.pods)
            if not running:
                raise ApiError(404, f"{resource} {name!r} not found", "NotFound") from None
            reconciler.evict(name)  # a controller's pod: removed, and replaced by its controller
        reconciler.trigger()
        return JSONResponse(wire.status(200, f"{resource} {name!r} deleted"))

    return app


_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}}


def _writable(kind: str) -> str:
    if kind == MINION:
        raise ApiError(405, "minions come from the inventory and are read-only here", "MethodNotAllowed")
    return kind


def _resource_version(raw: bytes) -> int | None:
    """The version a PUT was based on; 0 or absent (the 2014 client's zero value) means "any". A value that
    is not a whole number is a 400: read as "any", it would turn a guarded update into a blind one."""
    data = json.loads(raw)  # parse_body has read it already: a JSON object
    metadata = data.get("metadata")
    value = data.get("resourceVersion") or (metadata.get("resourceVersion") if isinstance(metadata, dict) else None)
    if value in (None, "", 0):
        return None
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        number = int(value)
    except (ValueError, TypeError):
        raise ApiError(400, f"resourceVersion {value!r}: expected a whole number", "Invalid") from None
    return number or None


def _version(store: Store) -> int:
    history = store.history(limit=1)
    return history[0]["resource_version"] if history else 1


def _short(problem) -> str:
    """A problem without its file position (the file is the request body)."""
    text = str(problem)
    return text.split(": ", 1)[1] if text.startswith("request body") and ": " in text else text


def _pod_model(p: ObservedPod, owner: Object | None) -> Pod:
    """The pod as its owner describes it, with the images it runs: an older version of a controller's pod
    (before ``rollingupdate`` reaches it) is listed with its own image, not the template's new one. A pod
    nobody stored is described from what runs."""
    running = {c.container: c.image for c in p.containers if c.container != INFRA and c.image}
    if isinstance(owner, (Pod, ReplicationController)):
        model = owner if isinstance(owner, Pod) else replica(owner, p.name)
        containers = tuple(replace(c, image=running.get(c.name, c.image)) for c in model.spec.containers)
        return model if containers == model.spec.containers else replace(
            model, spec=replace(model.spec, containers=containers))
    containers = tuple(Container(name, image) for name, image in running.items())
    return Pod(Meta(p.name, dict(p.labels)), PodSpec(containers or (Container("unknown", "unknown"),)))
