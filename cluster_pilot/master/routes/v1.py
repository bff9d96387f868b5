"""Today's Kubernetes API (core ``v1``) beside the 2014 one, over the same store and registry: one set of
objects, two views. What kubectl needs to get, create and delete: discovery, list and get (``labelSelector``,
``fieldSelector``, the ``Table`` form ``kubectl get`` prints), create, delete, and errors as ``metav1.Status``.

The rules are the v1beta1 API's (``objects.create``/``objects.delete``): what a CLI apply set owns is listed,
marked read-only (``api.v1.MANAGED_BY``), and a write to it is a 409. Names are one space per kind across
namespaces (the store's key is kind and name): a name taken in one namespace is ``AlreadyExists`` in another.
Watch is ``routes.watch``'s (a list's resourceVersion names its reading there); PATCH applies ``api.patch`` to
the object's manifest (what was asked), so ``kubectl apply`` changes what it applied. PUT replaces an object
whole (``kubectl replace``). Not served yet: server-side apply. A list is paged by ``limit`` and ``continue``
when a client asks (``api.v1.page``). ``/openapi/v3`` is ``manifests.openapi``'s, from the project's schemas.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from typing import Any, Callable

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from cluster_pilot.api import discovery, kinds, tables
from cluster_pilot.api import patch as patches
from cluster_pilot.api import v1 as view
from cluster_pilot.host.podformat import INFRA
from cluster_pilot.manifests import openapi
from cluster_pilot.master import guard
from cluster_pilot.master.registry import MASTER_APPLYSET, PodEntry, allocated, managed_by
from cluster_pilot.master.routes import objects, watch
from cluster_pilot.master.routes.bodies import BODY, json_value, parse_body
from cluster_pilot.master.routes.context import Context
from cluster_pilot.master.routes.errors import ApiError, named
from cluster_pilot.master.routes.pods import Pods
from cluster_pilot.model import POD, REPLICATION_CONTROLLER, SERVICE, Object, from_json, parse_selector, selector_admits, to_json
from cluster_pilot.store import Record

PREFIX = "/api/v1"
BY_PLURAL = {k.v1: k for k in kinds.V1}
FIELDS = {  # the field selectors each kind takes besides metadata.name and metadata.namespace
    kinds.PODS: ("spec.nodeName", "spec.restartPolicy", "status.phase", "status.podIP"),
    kinds.EVENTS: ("involvedObject.kind", "involvedObject.name", "involvedObject.namespace", "involvedObject.uid",
               "reason", "type", "source"),
    kinds.MINIONS: ("spec.unschedulable",),
}


def resource(plural: str) -> kinds.Kind:
    found = BY_PLURAL.get(plural)
    if found is None:
        raise ApiError(404, f"the server could not find the requested resource ({plural})", "NotFound")
    return found


def _missing(k: kinds.Kind, name: str) -> ApiError:
    return ApiError(404, f'{k.v1} "{name}" not found', "NotFound", {"name": name, "kind": k.v1})


# --- reading: the v1 view of the registry --------------------------------------------------------------------

class View:
    """Every object of one kind, as v1 objects, from one reading of the store beside one observation."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def objects(self, k: kinds.Kind) -> list[dict[str, Any]]:
        return {kinds.PODS: self.pods, kinds.CONTROLLERS: self.controllers, kinds.SERVICES: self.services,
                kinds.MINIONS: self.nodes, kinds.NAMESPACES: self.namespaces, kinds.EVENTS: self.events}[k]()

    def pods(self) -> list[dict[str, Any]]:
        snapshot = self.ctx.reconciler.snapshot()
        return [pod(e) for e in self.ctx.registry(snapshot).pods]

    def controllers(self) -> list[dict[str, Any]]:
        registry = self.ctx.registry()
        out = []
        for c in registry.controllers():
            if c.record is None or c.controller is None:
                continue  # running pods name it, nobody stored it: no object to show
            ready = sum(1 for p in c.pods if p.status == "Running" and (p.observed is None or p.observed.ready))
            out.append(view.controller(c.controller, served(c.record), len(c.pods), ready))
        return out

    def services(self) -> list[dict[str, Any]]:
        return [view.service(s.service, served(s.record)) for s in self.ctx.registry().services()]

    def nodes(self) -> list[dict[str, Any]]:
        snapshot = self.ctx.reconciler.snapshot()
        return [view.node(m.node, m.ready, snapshot.generation + 1)
                for m in self.ctx.registry(snapshot, records=[]).minions()]

    def namespaces(self) -> list[dict[str, Any]]:
        names = {"default"} | {from_json(r.body).meta.namespace or "default" for r in self.ctx.store.list()}
        names |= {o["metadata"]["namespace"] for o in self.pods()}
        return [view.namespace(n) for n in sorted(names)]

    def events(self) -> list[dict[str, Any]]:
        log = self.ctx.reconciler.events
        if log is None:
            return []
        return [view.event(e.kind, e.name, e.reason, e.message, e.node, e.at, e.id) for e in log.list(limit=1000)]

    def written(self, record: Record) -> dict[str, Any]:
        """The answer to a create: the object as stored, before anything runs it."""
        obj = from_json(record.body)
        if obj.kind == POD:
            return view.pod(obj, served(record), view.PodState("Waiting"))
        if obj.kind == REPLICATION_CONTROLLER:
            return view.controller(obj, served(record), 0, 0)
        (svc,) = allocated([obj], self.ctx.reconciler.snapshot().seen)
        return view.service(svc, served(record))


def served(record: Record | None, deleting: float | None = None) -> view.Served:
    if record is None:
        return view.Served(1, None, deleting=deleting)
    return view.Served(record.resource_version, record.updated_at, managed_by(record), deleting)


def pod(e: PodEntry) -> dict[str, Any]:
    observed = e.observed
    containers = tuple(view.ContainerState(c.container, c.image, c.state, c.exit_code, c.ready)
                       for c in (observed.containers if observed else ()) if c.container != INFRA)
    state = view.PodState(e.status, e.host, e.host_ip, containers, e.controller)
    # running, and neither stored nor a controller's: a pod of the master's, deleted, that is being removed
    going = observed is not None and e.record is None and not e.controller and observed.applyset == MASTER_APPLYSET
    return view.pod(e.pod, served(e.record, time.time() if going else None), state)


# --- selecting -----------------------------------------------------------------------------------------------

def _field(obj: dict[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def field_selector(k: kinds.Kind, text: str | None) -> Callable[[dict[str, Any]], bool]:
    """``metadata.name=web,status.phase!=Running``: the terms Kubernetes takes for the kind (a 400 for others)."""
    terms = []
    for term in (text or "").split(","):
        if not term.strip():
            continue
        negated = "!=" in term
        key, _, value = term.partition("!=" if negated else "=")
        value = value[1:] if value.startswith("=") else value
        key = key.strip()
        allowed = ("metadata.name", "metadata.namespace", *FIELDS.get(k, ()))
        if key not in allowed:
            raise ApiError(400, f'"{key}" is not a known field selector: only "{", ".join(allowed)}"', "BadRequest")
        terms.append((key, value.strip(), negated))
    return lambda obj: all((_field(obj, key) == value) != negated for key, value, negated in terms)


def label_selector(text: str | None) -> Callable[[dict[str, Any]], bool]:
    try:
        selector = parse_selector(text)
    except ValueError as exc:
        raise ApiError(400, f"unable to parse requirement: {exc}", "BadRequest") from None
    return lambda obj: selector_admits(selector, obj["metadata"].get("labels") or {})


# --- answering -----------------------------------------------------------------------------------------------

def _table_wanted(request: Request) -> bool:
    return any("as=table" in part.replace(" ", "").lower() and "g=meta.k8s.io" in part.replace(" ", "")
               for part in request.headers.get("accept", "").split(","))


def _answer(request: Request, k: kinds.Kind, found: list[dict[str, Any]], version: str,
            single: bool) -> Response:
    more, remaining = "", 0
    if not single:
        found, more, remaining = _page(request, found)
    if _table_wanted(request):
        include = request.query_params.get("includeObject", "Metadata")
        table = tables.table(k.kind_v1, found, version, time.time(), include)
        table["metadata"] |= view.paged(more, remaining)
        return JSONResponse(table)
    if single:
        return JSONResponse(found[0])
    return JSONResponse(view.listing(k.kind_v1, found, version, more, remaining))


def _page(request: Request, found: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str, int]:
    """``limit`` and ``continue`` (kubectl asks for pages of 500); a list without them is whole, as before."""
    params = request.query_params
    limit, token = params.get("limit", ""), params.get("continue", "")
    if not limit and not token:
        return found, "", 0
    if limit and (not limit.isdigit() or len(limit) > 9):
        raise ApiError(400, f"limit: {limit!r} is not a count of items", "BadRequest")
    try:
        return view.page(found, int(limit or 0), token)
    except ValueError as exc:
        raise ApiError(400, str(exc), "BadRequest") from exc


@dataclass(frozen=True)
class _Query:
    namespace: str | None  # None: every namespace, or a cluster-scoped kind
    name: str | None


def router(ctx: Context) -> APIRouter:
    routes = APIRouter()
    pods = Pods(ctx)
    _discovery(routes)

    readings = watch.Readings()

    def read(request: Request, plural: str, q: _Query) -> Response:
        k = resource(plural)
        if q.namespace is not None:
            _namespace(q.namespace)
        params = request.query_params
        if (q.namespace is not None) != k.namespaced and (q.namespace is not None or q.name is not None):
            raise ApiError(404, f"the server could not find the requested resource ({plural})", "NotFound")
        if q.name is not None:
            named(k.name, q.name, "metadata.name")  # the one rule for names: a 400 naming the field
        labels, fields = label_selector(params.get("labelSelector")), field_selector(k, params.get("fieldSelector"))

        def admits(o: dict[str, Any]) -> bool:
            return ((q.namespace is None or o["metadata"].get("namespace") == q.namespace)
                    and (q.name is None or o["metadata"]["name"] == q.name) and labels(o) and fields(o))

        if params.get("watch") in ("true", "1"):
            return _watch(request, k, readings, admits)
        everything = View(ctx).objects(k)
        version = readings.version(k, everything)
        found = [o for o in everything if admits(o)]
        if q.name is not None and not found:
            raise _missing(k, q.name)
        return _answer(request, k, found, version, q.name is not None)

    def _watch(request: Request, k: kinds.Kind, readings: watch.Readings,
               admits: Callable[[dict[str, Any]], bool]) -> Response:
        def changed() -> object:
            snapshot = ctx.reconciler.snapshot()
            events = ctx.reconciler.events
            newest = events.list(limit=1) if k is kinds.EVENTS and events is not None else None
            return ctx.version(), id(snapshot.seen), snapshot.generation, snapshot.leaving, \
                newest[-1].id if newest else None

        if _table_wanted(request):
            include = request.query_params.get("includeObject", "Metadata")

            def encode(obj: dict[str, Any]) -> dict[str, Any]:
                return tables.table(k.kind_v1, [obj], obj["metadata"].get("resourceVersion", "1"), time.time(),
                                    include)
        else:
            def encode(obj: dict[str, Any]) -> dict[str, Any]:
                return obj

        events = watch.stream(k, readings, lambda: View(ctx).objects(k), changed, admits, encode,
                              dict(request.query_params))
        return StreamingResponse(events, media_type="application/json")

    @routes.get(PREFIX + "/{plural}")
    def list_all(request: Request, plural: str) -> Response:
        return read(request, plural, _Query(None, None))

    @routes.get(PREFIX + "/{plural}/{name}")
    def get_cluster_scoped(request: Request, plural: str, name: str) -> Response:
        named(resource(plural).name, name, "metadata.name")
        if resource(plural).namespaced:
            raise ApiError(404, f"the server could not find the requested resource ({plural})", "NotFound")
        return read(request, plural, _Query(None, name))

    @routes.get(PREFIX + "/namespaces/{namespace}/{plural}")
    def list_namespaced(request: Request, namespace: str, plural: str) -> Response:
        return read(request, plural, _Query(namespace, None))

    @routes.get(PREFIX + "/namespaces/{namespace}/{plural}/{name}")
    def get_namespaced(request: Request, namespace: str, plural: str, name: str) -> Response:
        return read(request, plural, _Query(namespace, name))

    _writes(routes, ctx, pods)
    return routes


# what a GET answers that the server sets: a PUT of that answer reads past them (resourceVersion is a precondition)
_SERVER_SET = frozenset({"uid", "creationTimestamp", "selfLink", "generation", "managedFields", "deletionTimestamp",
                         "deletionGracePeriodSeconds"})


def _namespace(name: str) -> str:
    """A namespace in a path is a DNS-1123 label, as a service's name (``api.names``): a 400 naming the field."""
    return named(SERVICE, name, "metadata.namespace")


def _writable(plural: str, verb: str) -> kinds.Kind:
    """The kind of a write's namespaced path (a cluster-scoped kind has no such path: 404)."""
    k = resource(plural)
    if not k.namespaced:
        raise ApiError(404, f"the server could not find the requested resource ({plural})", "NotFound")
    if verb not in k.verbs:
        why = {kinds.MINIONS: "nodes are the inventory's minions", kinds.NAMESPACES: "namespaces are the ones "
               "objects name", kinds.EVENTS: "events are the master's own log"}.get(k, "")
        raise ApiError(405, f"{plural} cannot be {verb}d through this API: {why}", "MethodNotAllowed")
    return k


def _object(raw: bytes, namespace: str, k: kinds.Kind) -> bytes:
    """The body with the path's namespace, which a manifest without one takes (a differing one is a 400), and
    the path's kind and ``apiVersion: v1`` where the body leaves them out, as Kubernetes defaults them (the
    generated clients send a typed object without either)."""
    try:
        data = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError):
        return raw  # parse_body says why
    if not isinstance(data, dict):
        return raw
    metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    given = metadata.get("namespace")
    if given not in (None, "", namespace):
        raise ApiError(400, "the namespace of the provided object does not match the namespace sent on the "
                            "request", "BadRequest")
    typed = {key: value for key, value in (("apiVersion", view.VERSION), ("kind", k.kind_v1)) if not data.get(key)}
    if (namespace == "default" or given == namespace) and not typed:
        return raw
    placed = {"metadata": metadata | {"namespace": namespace}} if namespace != "default" and given != namespace else {}
    return json.dumps(typed | {key: v for key, v in data.items() if key not in typed} | placed).encode()


def _invalid(exc: ApiError, kind: str, name: str) -> ApiError:
    """A body the manifests' checks refuse, as Kubernetes says it: 422 Invalid naming each field."""
    if exc.code != 400 or exc.reason != "Invalid" or exc.message.startswith("request body: not JSON") \
            or "expected a JSON object" in exc.message:
        return ApiError(exc.code, exc.message, "BadRequest" if exc.code == 400 else exc.reason)
    causes: list[dict[str, str]] = []
    for part in exc.message.split("; "):
        pointer, sep, message = part.partition(": ")
        if sep and pointer.startswith("/"):
            causes.append({"reason": "FieldValueInvalid", "message": message, "field": _dotted(pointer)})
        elif causes:  # the rest of one problem's message ("unknown field; expected one of: ...")
            causes[-1]["message"] += "; " + part
        else:
            causes.append({"reason": "FieldValueInvalid", "message": part})
    return ApiError(422, f'{kind} "{name}" is invalid: {exc.message}', "Invalid",
                    {"name": name, "kind": kind, "causes": causes})


def _dotted(pointer: str) -> str:
    """``/spec/containers/0/image`` -> ``spec.containers[0].image``."""
    out = ""
    for part in pointer.strip("/").split("/"):
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


def _strict(request: Request) -> bool:
    """``fieldValidation=Strict`` (kubectl's default, ``--validate=strict``): an unknown field is an error.
    ``Ignore``, ``Warn`` or none: unknown fields are dropped (no warning header yet)."""
    return request.query_params.get("fieldValidation") == "Strict"


def _name_in(raw: bytes) -> str:
    try:
        data = json.loads(raw)
        return str(data.get("metadata", {}).get("name") or data.get("id") or "")
    except (ValueError, AttributeError, TypeError, UnicodeDecodeError, RecursionError):
        return ""


def _writes(routes: APIRouter, ctx: Context, pods: Pods) -> None:
    @routes.post(PREFIX + "/namespaces/{namespace}/{plural}", openapi_extra=BODY)
    @guard.one_writer
    def create(request: Request, namespace: str, plural: str, raw: bytes = Depends(guard.raw_body)) -> JSONResponse:
        k = _writable(plural, "create")
        _namespace(namespace)
        body = _object(raw, namespace, k)
        try:
            obj: Object = parse_body(body, k.name, ctx.store.list(), policy=ctx.policy, strict=_strict(request))
        except ApiError as exc:
            raise _invalid(exc, k.kind_v1, _name_in(body)) from None
        if request.query_params.get("dryRun") == "All":
            record = Record(obj.kind, obj.meta.name, to_json(obj), ctx.version() + 1, MASTER_APPLYSET,
                            time.time())
            return JSONResponse(View(ctx).written(record), status_code=201)
        try:
            record = objects.create(ctx, obj, lambda name: f'{k.v1} "{name}"')
        except ApiError as exc:
            if exc.reason == "AlreadyExists":
                exc.details = {"name": obj.meta.name, "kind": k.v1}
            raise
        return JSONResponse(View(ctx).written(record), status_code=201)

    @routes.patch(PREFIX + "/namespaces/{namespace}/{plural}/{name}", openapi_extra=BODY)
    @guard.one_writer
    def patch(request: Request, namespace: str, plural: str, name: str,
              raw: bytes = Depends(guard.raw_body)) -> JSONResponse:
        """JSON, merge and strategic merge patches (``api.patch``), applied to the object as its manifest says
        it (what was asked, not what the fleet reports), then checked and stored as an update."""
        k = _writable(plural, "patch")
        _namespace(namespace)
        named(k.name, name, "metadata.name")
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media not in patches.TYPES:
            raise ApiError(415, f"PATCH takes {', '.join(patches.TYPES)}; not {media or 'no Content-Type'!r} "
                                "(server-side apply is not served yet)", "UnsupportedMediaType")
        try:
            body = json_value(raw)
        except ApiError as exc:
            raise ApiError(400, exc.message, "BadRequest") from None
        record = stored(k, namespace, name)
        before = view.manifest(from_json(record.body))
        before["metadata"]["namespace"] = namespace
        try:
            after = patches.apply(media, before, body, k.kind_v1)
        except patches.PatchError as exc:
            raise ApiError(409 if exc.failed_test else 422, str(exc),
                           "Conflict" if exc.failed_test else "Invalid") from None
        return update(request, k, namespace, name, record, after)

    @routes.put(PREFIX + "/namespaces/{namespace}/{plural}/{name}", openapi_extra=BODY)
    @guard.one_writer
    def replace_object(request: Request, namespace: str, plural: str, name: str,
                       raw: bytes = Depends(guard.raw_body)) -> JSONResponse:
        """``kubectl replace``, a client's ``replace_namespaced_*``: the whole object, as a GET answered it; what
        the server sets (status, uid, timestamps) is read past, ``metadata.resourceVersion`` is a precondition."""
        k = _writable(plural, "patch")
        _namespace(namespace)
        named(k.name, name, "metadata.name")
        try:
            body = json_value(raw)
        except ApiError as exc:
            raise ApiError(400, exc.message, "BadRequest") from None
        if not isinstance(body, dict):
            raise ApiError(400, "the body of a PUT is the whole object: expected a JSON object", "BadRequest")
        meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
        after = {key: v for key, v in body.items() if key != "status"} | {
            "metadata": {key: v for key, v in meta.items() if key not in _SERVER_SET}}
        return update(request, k, namespace, name, stored(k, namespace, name), after)

    def stored(k: kinds.Kind, namespace: str, name: str) -> Record:
        """The stored object a write changes: the master's own, in this namespace (else 404 or 409)."""
        record = ctx.stored(k.name, name)
        objects.owned(ctx, k.name, name)
        if record is None and k is kinds.PODS and pods.running(name):
            raise ApiError(409, f'pod "{name}" is its controller\'s: change the replicationcontroller', "Conflict")
        if record is None or (from_json(record.body).meta.namespace or "default") != namespace:
            raise _missing(k, name)
        return record

    def update(request: Request, k: kinds.Kind, namespace: str, name: str, record: Record,
               after: dict[str, Any]) -> JSONResponse:
        """The object as it is to be, checked as a create is and stored as an update."""
        meta = after.get("metadata") if isinstance(after.get("metadata"), dict) else {}
        if meta.get("name") != name or (meta.get("namespace") or "default") != namespace:
            raise ApiError(422, f'{k.kind_v1} "{name}" is invalid: metadata.name and metadata.namespace cannot '
                                "be changed", "Invalid")
        expect = meta.get("resourceVersion")
        after = after | {"metadata": {key: v for key, v in meta.items() if key != "resourceVersion"}}
        raw_after = _object(json.dumps(after).encode(), namespace, k)
        try:
            obj: Object = parse_body(raw_after, k.name, ctx.store.list(), name, ctx.policy, _strict(request))
        except ApiError as exc:
            raise _invalid(exc, k.kind_v1, name) from None
        if request.query_params.get("dryRun") == "All":
            return JSONResponse(View(ctx).written(Record(obj.kind, name, to_json(obj), record.resource_version,
                                                         record.applyset, time.time())))
        try:
            kept = objects.update(ctx, obj, int(expect) if str(expect or "").isdigit() else None,
                                  lambda n: f'{k.v1} "{n}"')
        except ApiError as exc:
            if exc.reason == "Conflict" and expect:
                exc.message = (f'Operation cannot be fulfilled on {k.v1} "{name}": the object has been modified; '
                               "please apply your changes to the latest version and try again")
            raise
        return JSONResponse(View(ctx).written(kept))

    def scaled(namespace: str, name: str) -> dict[str, Any]:
        _namespace(namespace)
        named(kinds.CONTROLLERS.name, name, "metadata.name")
        found = next((o for o in View(ctx).controllers() if o["metadata"]["name"] == name
                      and o["metadata"]["namespace"] == namespace), None)
        if found is None:
            raise _missing(kinds.CONTROLLERS, name)
        return found

    @routes.get(PREFIX + "/namespaces/{namespace}/replicationcontrollers/{name}/scale")
    def get_scale(namespace: str, name: str) -> JSONResponse:
        return JSONResponse(view.scale(scaled(namespace, name)))

    @routes.patch(PREFIX + "/namespaces/{namespace}/replicationcontrollers/{name}/scale", openapi_extra=BODY)
    @routes.put(PREFIX + "/namespaces/{namespace}/replicationcontrollers/{name}/scale", openapi_extra=BODY)
    @guard.one_writer
    def set_scale(request: Request, namespace: str, name: str, raw: bytes = Depends(guard.raw_body)) -> JSONResponse:
        """``kubectl scale rc``: a Scale (PUT) or a patch of one (PATCH); only ``spec.replicas`` is read."""
        _namespace(namespace)
        named(kinds.CONTROLLERS.name, name, "metadata.name")
        try:
            body = json_value(raw)
        except ApiError as exc:
            raise ApiError(400, exc.message, "BadRequest") from None
        before = view.scale(scaled(namespace, name))
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if request.method == "PUT":
            after = body
        elif media in patches.TYPES:
            try:
                after = patches.apply(media, before, body, "Scale")
            except patches.PatchError as exc:
                raise ApiError(422, str(exc), "Invalid") from None
        else:
            raise ApiError(415, f"PATCH takes {', '.join(patches.TYPES)}", "UnsupportedMediaType")
        replicas = (after.get("spec") or {}).get("replicas") if isinstance(after, dict) else None
        if not isinstance(replicas, int) or isinstance(replicas, bool) or not 0 <= replicas <= 10_000:
            raise ApiError(422, f'Scale "{name}" is invalid: spec.replicas: expected a whole number from 0',
                           "Invalid", {"name": name, "kind": "Scale", "causes": [
                               {"reason": "FieldValueInvalid", "field": "spec.replicas"}]})
        record = ctx.stored(kinds.CONTROLLERS.name, name)
        if record is None:
            raise _missing(kinds.CONTROLLERS, name)
        stored = from_json(record.body)
        expect = (after.get("metadata") or {}).get("resourceVersion") if request.method == "PUT" else None
        objects.update(ctx, replace(stored, replicas=replicas), int(expect) if str(expect or "").isdigit() else None,
                       lambda n: f'replicationcontrollers "{n}"')
        return JSONResponse(view.scale(scaled(namespace, name)))

    @routes.delete(PREFIX + "/namespaces/{namespace}/{plural}/{name}")
    @guard.one_writer
    def delete(request: Request, namespace: str, plural: str, name: str,
               raw: bytes = Depends(guard.raw_body)) -> JSONResponse:
        """A pod is answered as Kubernetes answers a graceful delete, with the pod marked deleting (the typed
        clients read a Pod back); anything else with a Status. DeleteOptions: ``dryRun`` deletes nothing, and a
        controller's ``Orphan`` is refused rather than taking its pods along."""
        k = _writable(plural, "delete")
        _namespace(namespace)
        named(k.name, name, "metadata.name")
        dry, policy = _delete_options(request, raw)
        found = next((o for o in View(ctx).objects(k) if o["metadata"]["name"] == name), None)
        if found is None or found["metadata"].get("namespace") != namespace:
            raise _missing(k, name)
        if policy == "Orphan" and k is kinds.CONTROLLERS:
            raise ApiError(422, f'replicationcontrollers "{name}": propagationPolicy Orphan is not served: its pods '
                                "would be left with no owner; delete with Background or Foreground", "Invalid")
        if not dry:
            objects.delete(ctx, pods, k.name, name, _missing(k, name))
        if k is kinds.PODS:
            found["metadata"].setdefault("deletionTimestamp", view.timestamp(time.time()))
            return JSONResponse(found)
        return JSONResponse(view.status(200, f'{k.v1} "{name}" deleted', "",
                                        {"name": name, "kind": k.v1, "uid": found["metadata"]["uid"]}))


_POLICIES = ("Background", "Foreground", "Orphan")


def _delete_options(request: Request, raw: bytes) -> tuple[bool, str | None]:
    """(dry run, propagation policy) from the query and a DeleteOptions body, as Kubernetes reads either."""
    try:
        options = json_value(raw) if raw.strip() else {}
    except ApiError as exc:
        raise ApiError(400, exc.message, "BadRequest") from None
    options = options if isinstance(options, dict) else {}
    params = request.query_params
    dry = params.get("dryRun") == "All" or "All" in (options.get("dryRun") or [])
    policy = params.get("propagationPolicy") or options.get("propagationPolicy")
    if options.get("orphanDependents") is True:
        policy = policy or "Orphan"
    if policy is not None and policy not in _POLICIES:
        raise ApiError(400, f"propagationPolicy: {policy!r} is not one of {', '.join(_POLICIES)}", "BadRequest")
    return dry, policy


def _discovery(routes: APIRouter) -> None:
    @routes.get("/api")
    def api(request: Request) -> Response:
        if discovery.wants_aggregated(request.headers.get("accept", "")):
            return _aggregated(discovery.aggregated(core=True))
        return JSONResponse(discovery.api_versions(request.url.netloc))

    @routes.get("/apis")
    def apis(request: Request) -> Response:
        if discovery.wants_aggregated(request.headers.get("accept", "")):
            return _aggregated(discovery.aggregated(core=False))
        return JSONResponse(discovery.group_list())

    @routes.get(PREFIX)
    def resources() -> JSONResponse:
        return JSONResponse(discovery.resource_list())

    document = json.dumps(openapi.core_v1(), separators=(",", ":"))  # once: the schemas ship with the package
    core_digest = openapi.digest(json.loads(document))

    @routes.get("/openapi/v3")
    def openapi_root() -> JSONResponse:
        return JSONResponse(openapi.root(core_digest))

    @routes.get("/openapi/v3/api/v1")
    def openapi_core() -> Response:
        return Response(document, media_type="application/json")


def _aggregated(doc: dict[str, Any]) -> Response:
    return Response(json.dumps(doc, separators=(",", ":")), media_type=discovery.AGGREGATED)

