"""The master's defences against web pages and floods, in front of every route on every listener.

A browser lets any page send a "simple" request (a form, or ``fetch`` with ``no-cors``) to any address, the
loopback one included, and DNS rebinding lets a page's own name resolve to the master. So, before a route
runs: the ``Host`` must be the master's (421 otherwise), a browser ``Origin`` must be the master's own (403),
a write may not carry a body type a form or a no-cors fetch can send (415; none at all is fine, as the 2014
kubecfg sends none; the dashboard's own forms under ``/ui/`` may: a browser posting one from another site
sends that site's ``Origin``, refused above), and a body over the limit is refused (413) before it is read whole. The token itself is
checked by the API, which hands this layer its check so that a 401 comes before any body is read.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from starlette.requests import Request

from cluster_pilot.master.routes import errors

MAX_BODY = 4 << 20
READS = frozenset({"GET", "HEAD", "OPTIONS"})
# What a browser may send without asking first (CORS "simple" requests): never a write here.
FORM_TYPES = frozenset({"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"})
BODY_TYPES = frozenset({"application/json", "application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"})
WILDCARDS = frozenset({"0.0.0.0", "::", ""})

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Rules:
    """``listen`` is the address served; ``names`` the other names clients may call the master by."""

    listen: str = "127.0.0.1"
    port: int | None = None
    names: tuple[str, ...] = ()
    max_body: int = MAX_BODY

    def host_allowed(self, host: str) -> bool:
        if host in ("localhost", self.listen.lower(), *(n.lower() for n in self.names)):
            return True
        # On a wildcard, any address literal is the master's: rebinding needs a name, never an address.
        return self.listen in WILDCARDS and _is_address(host)

    def origin_allowed(self, origin: str) -> bool:
        parts = urllib.parse.urlsplit(origin)
        try:
            port = parts.port
        except ValueError:
            return False
        host = (parts.hostname or "").lower()
        default = 443 if parts.scheme == "https" else 80
        return self.host_allowed(host) and (self.port is None or (port or default) == self.port)


def refusal(rules: Rules, method: str, headers: dict[str, str], path: str = "/") -> tuple[int, str] | None:
    """Why a request is refused before any route sees it (code and message), or ``None``: pure."""
    host = _host_of(headers.get("host", ""))
    if host is None or not rules.host_allowed(host):
        return 421, (f"Host {headers.get('host', '')!r} is not this master's name (a rebinding page?); call it by "
                     "its listen address, localhost, or a name given with --host-name")
    origin = headers.get("origin")
    if origin is not None and origin != "null" and not rules.origin_allowed(origin):
        return 403, f"Origin {origin!r} is not this master: cross-site requests are refused"
    if origin == "null":
        return 403, "Origin 'null' (a sandboxed or file page): cross-site requests are refused"
    if method not in READS:
        media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        own_form = media in FORM_TYPES and path.startswith("/ui/")
        if media and not own_form and (media in FORM_TYPES or not (media in BODY_TYPES or media.endswith("+json"))):
            return 415, f"Content-Type {media!r} is refused for writes: send application/json (or none)"
    length = headers.get("content-length", "")
    if length.strip().isdigit() and int(length) > rules.max_body:
        return 413, f"request body of {int(length)} bytes is over the limit of {rules.max_body} bytes"
    return None


def _host_of(header: str) -> str | None:
    """The name in a ``Host`` header, lower-case, without its port; ``None`` when malformed."""
    parts = urllib.parse.urlsplit("//" + header.strip())
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return None
    return (parts.hostname or "").lower() or None


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class Guard:
    """ASGI middleware applying ``refusal``, and the body limit to bodies without a ``Content-Length``."""

    def __init__(self, app: Callable, rules: Rules,
                 denied: Callable[[Request], tuple[int, str] | None] = lambda request: None) -> None:
        self.app, self.rules, self.denied = app, rules, denied

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        refused = refusal(self.rules, scope["method"], headers, scope.get("path", "/")) or self.denied(Request(scope))
        if refused is None and scope["method"] not in READS:
            body = await _read_at_most(receive, self.rules.max_body)
            if body is None:
                refused = 413, f"request body is over the limit of {self.rules.max_body} bytes"
            else:
                receive = _replay(body)
        if refused is not None:
            return await _answer(send, *refused, scope.get("path", "/"))
        await self.app(scope, receive, send)


async def _read_at_most(receive: Receive, limit: int) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _answer(send: Send, code: int, message: str, path: str = "/") -> None:
    reason = {401: "Unauthorized", 413: "RequestEntityTooLarge", 415: "UnsupportedMediaType", 421: "MisdirectedRequest"}.get(code,
                                                                                                          "Forbidden")
    body = json.dumps(errors.body(path, code, message, reason)).encode()
    await send({"type": "http.response.start", "status": code,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


_WRITES = threading.Lock()


def one_writer(handler: Callable) -> Callable:
    """Run a write route (validation against the stored objects, then the store) one at a time, in a worker
    thread rather than on the event loop: ``/healthz`` and reads answer meanwhile, and two writes never
    validate against the same old state."""

    @functools.wraps(handler)
    def serialised(*args: Any, **kwargs: Any) -> Any:
        with _WRITES:
            return handler(*args, **kwargs)

    return serialised


async def raw_body(request: Request) -> bytes:
    """The request body, for sync routes (a FastAPI dependency: ``raw: bytes = Depends(raw_body)``)."""
    return await request.body()


def install(app: Any, rules: Rules, denied: Callable[[Request], tuple[int, str] | None] = lambda request: None) -> None:
    """Put the guard outermost, in front of every route and of FastAPI's own pages. ``denied`` (the API's
    token check) runs before a body is read: an unauthenticated client's body is never waited for."""
    app.add_middleware(Guard, rules=rules, denied=denied)
