"""The dashboard at ``/ui/``: server-rendered Jinja2 pages and a few lines of our own JavaScript.

Nothing is fetched from the internet: templates and static files ship inside the wheel. The page asks for its
board again every second (a short poll of ``/ui/board``, an HTML fragment) and swaps it in, without a reload.
The same token as the API, kept by the browser in a session cookie (``HttpOnly``, ``SameSite=Strict``, and
``Secure`` over https) set by the login form.
"""

from __future__ import annotations

import hmac
import threading
import urllib.parse
from pathlib import Path

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from cluster_pilot.api import names
from cluster_pilot.host.inspect import container_ids, format_age, inspect
from cluster_pilot.host.logs import LogOptions
from cluster_pilot.master.reconcile import Reconciler
from cluster_pilot.master.routes.logs import LogError, log_stream
from cluster_pilot.master.ui.board import board
from cluster_pilot.master.registry import Registry, whole_fleet
from cluster_pilot.model import POD
from cluster_pilot.store import Store

COOKIE = "cp_session"
_HERE = Path(__file__).parent
_STATIC = {"app.js": "text/javascript", "style.css": "text/css"}
_env = jinja2.Environment(loader=jinja2.FileSystemLoader(_HERE / "templates"), autoescape=True,
                          undefined=jinja2.StrictUndefined)
_env.filters["age"] = format_age


def signed_in(request: Request, token: str) -> bool:
    given = request.cookies.get(COOKIE, "")
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        given = given or header[7:].strip()
    return bool(given) and hmac.compare_digest(given.encode(), token.encode())


def _page(name: str, status: int = 200, **values) -> HTMLResponse:
    return HTMLResponse(_env.get_template(name).render(**values), status_code=status,
                        headers={"Cache-Control": "no-store"})


def _login(error: str = "") -> HTMLResponse:
    return _page("login.html", 401 if error else 200, error=error)


def router(store: Store, reconciler: Reconciler, token: str) -> APIRouter:
    r = APIRouter()
    _board_routes(r, store, reconciler, token)
    _session_routes(r, token)
    _pod_routes(r, reconciler, token)
    return r


class _Restarts:
    """Restart counts for the board: one batched inspect per host, at most once per reconcile pass and only
    while someone looks, in the background, so a slow minion never slows the page (counts lag a pass)."""

    def __init__(self, reconciler: Reconciler) -> None:
        self.reconciler = reconciler
        self.key: int | None = None
        self.values: dict = {}
        self._busy = threading.Lock()

    def get(self) -> dict:
        seen = self.reconciler.last
        if seen is not None and self.key != id(seen) and self._busy.acquire(blocking=False):
            threading.Thread(target=self._refresh, args=(seen,), name="ui-inspect", daemon=True).start()
        return self.values

    def _refresh(self, seen) -> None:
        try:
            self.values = inspect(self.reconciler.nodes(), container_ids(seen.pods), self.reconciler.state_dir, 5.0)
            self.key = id(seen)
        finally:
            self._busy.release()


def _board_routes(r: APIRouter, store: Store, reconciler: Reconciler, token: str) -> None:
    statuses = _Restarts(reconciler).get

    def current_board():
        snap = reconciler.snapshot()
        events = reconciler.events.list(limit=15) if reconciler.events else []
        registry = Registry(whole_fleet(store.list(), snap.seen), reconciler.nodes(), snap.seen, snap.leaving,
                            snap.backoff)
        return board(registry, statuses(), events)

    @r.get("/ui", include_in_schema=False)
    def ui_root() -> Response:
        return RedirectResponse("/ui/", status_code=307)

    @r.get("/ui/", include_in_schema=False)
    def ui_index(request: Request) -> Response:
        if not signed_in(request, token):
            return _login()
        return _page("index.html", board=current_board())

    @r.get("/ui/board", include_in_schema=False)
    def ui_board(request: Request) -> Response:
        if not signed_in(request, token):
            return Response(status_code=401)
        return _page("board.html", board=current_board())



def _session_routes(r: APIRouter, token: str) -> None:
    @r.post("/ui/login", include_in_schema=False)
    async def ui_login(request: Request) -> Response:
        form = urllib.parse.parse_qs((await request.body()).decode("utf-8", "replace"))
        given = (form.get("token") or [""])[0].strip()
        if not given or not hmac.compare_digest(given.encode(), token.encode()):
            return _login("That is not the master's token.")
        answer = RedirectResponse("/ui/", status_code=303)
        answer.set_cookie(COOKIE, given, httponly=True, samesite="strict", secure=request.url.scheme == "https",
                          path="/ui")
        return answer

    @r.post("/ui/logout", include_in_schema=False)
    def ui_logout() -> Response:
        answer = RedirectResponse("/ui/", status_code=303)
        answer.delete_cookie(COOKIE, path="/ui")
        return answer



def _pod_routes(r: APIRouter, reconciler: Reconciler, token: str) -> None:
    @r.get("/ui/pods/{pod}", include_in_schema=False)
    def ui_pod(request: Request, pod: str) -> Response:
        if not signed_in(request, token):
            return _login()
        if names.refusal(POD, pod) is not None:
            return _page("missing.html", 400, pod=pod)
        seen = reconciler.last
        found = seen.current().get(pod) if seen else None
        if found is None:
            return _page("missing.html", 404, pod=pod)
        states = inspect(reconciler.nodes(), container_ids([found]), reconciler.state_dir, 5.0)
        events = reconciler.events.list("Pod", pod, limit=30) if reconciler.events else []
        return _page("pod.html", pod=found, states=states, events=events)

    @r.get("/ui/pods/{pod}/logs", include_in_schema=False)
    def ui_logs(request: Request, pod: str, container: str | None = None) -> Response:
        if not signed_in(request, token):
            return _login()
        if names.refusal(POD, pod) is not None:
            return _page("missing.html", 400, pod=pod)
        query = urllib.parse.urlencode({"container": container} if container else {})
        return _page("logs.html", pod=pod, query=query)

    @r.get("/ui/pods/{pod}/log", include_in_schema=False)
    def ui_log(request: Request, pod: str, container: str | None = None) -> Response:
        if not signed_in(request, token):
            return Response(status_code=401)
        try:
            stream = log_stream(reconciler, pod, container, LogOptions(follow=True, tail=200))
        except LogError as exc:
            return Response(str(exc) + "\n", status_code=exc.code, media_type="text/plain")
        return StreamingResponse(stream, media_type="text/plain; charset=utf-8",
                                 headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})

    @r.get("/ui/static/{name}", include_in_schema=False)
    def ui_static(name: str) -> Response:
        if name not in _STATIC:
            return Response(status_code=404)
        return Response((_HERE / "static" / name).read_bytes(), media_type=_STATIC[name])
