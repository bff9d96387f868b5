"""Every error the API answers is a Status, never FastAPI's ``{"detail"}``: a v1beta1 one the 2014 client can
print, and a ``metav1.Status`` (apiVersion v1) on today's paths (``/api``, ``/api/v1``, ``/apis``, ``/openapi``),
which kubectl and the client libraries decode."""

from __future__ import annotations

import json

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cluster_pilot.api import names, v1
from cluster_pilot.api import v1beta1 as wire


class ApiError(Exception):
    def __init__(self, code: int, message: str, reason: str | None = None, details: dict | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.reason, self.details = code, message, reason, details


def speaks_v1(path: str) -> bool:
    """Today's API's paths, answered in today's Status."""
    return path in ("/api", "/apis", "/api/v1") or path.startswith(("/api/v1/", "/apis/", "/openapi"))


V1_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
              406: "NotAcceptable", 409: "Conflict", 410: "Gone", 413: "RequestEntityTooLarge",
              415: "UnsupportedMediaType", 422: "Invalid", 500: "InternalError", 503: "ServiceUnavailable"}


def body(path: str, code: int, message: str, reason: str | None = None, details: dict | None = None) -> dict:
    """The Status for ``path``'s API version."""
    if speaks_v1(path):
        return v1.status(code, message, reason or V1_REASONS.get(code, "Unknown"), details)
    return wire.status(code, message, reason, details)


def status(code: int, message: str, reason: str | None = None, path: str = "", details: dict | None = None
           ) -> JSONResponse:
    return JSONResponse(body(path, code, message, reason, details), status_code=code)


def named(kind: str, name: str, field: str = "id") -> str:
    """``name`` from a request's path or query, held to the one rule for names (``api.names``): a 400 Status
    naming the field (``details.causes``, as the 2014 API server told a field it refused) when it breaks it."""
    why = names.refusal(kind, name)
    if why is None:
        return name
    message = f"{field} {json.dumps(name)}: {why}"
    raise ApiError(400, message, "Invalid", {"kind": kind, "id": name, "causes": [
        {"reason": "FieldValueInvalid", "field": field, "message": message}]})


def not_found(resource: str, name: str) -> ApiError:
    return ApiError(404, f"{resource} {name!r} not found", "NotFound")


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return status(exc.code, exc.message, exc.reason, request.url.path, exc.details)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # unknown paths and methods too answer a Status, not FastAPI's {"detail": ...}
        message = f"{request.method} {request.url.path}: {exc.detail}"
        return JSONResponse(body(request.url.path, exc.status_code, message), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _request_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = "/".join(str(p) for p in first.get("loc", ()))
        return status(400, f"{where}: {first.get('msg', 'invalid request')}", "Invalid", request.url.path)
