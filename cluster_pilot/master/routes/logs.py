"""``GET /api/v1beta1/pods/ID/log`` (and today's ``/api/v1/namespaces/NS/pods/ID/log``): a container's logs from its minion, streamed as they come.

The pod is found in the reconcile loop's last observation (no extra look at the hosts); the same remote
command as ``cluster-pilot logs`` runs over the inventory's SSH. stdout and stderr arrive as one stream. The
SSH client is killed when the HTTP client goes away, which closes the session's stdin on the minion and ends
a ``--follow`` there too.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from typing import AsyncIterator

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from cluster_pilot.errors import UserError
from cluster_pilot.host.logs import LogOptions, check_log_options, locate, logs_remote, ssh_to
from cluster_pilot.host.observed import Observation
from cluster_pilot.host.ssh import control_dir
from cluster_pilot.api import names
from cluster_pilot.master.reconcile import Reconciler
from cluster_pilot.master.routes.errors import body, named, speaks_v1
from cluster_pilot.model import POD, SERVICE


class LogError(Exception):
    """A pod, container or option the log route cannot serve: answered 404/400 as a Status by ``api``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def log_stream(reconciler: Reconciler, pod: str, container: str | None, options: LogOptions) -> AsyncIterator[bytes]:
    """Checks everything before the first byte (errors are answers, not half streams), then streams."""
    seen = reconciler.last or Observation({})
    if (why := names.refusal(POD, pod)) is not None:
        raise LogError(400, f"pod {json.dumps(pod)}: {why}")
    try:
        check_log_options(options)
        target = locate(seen, pod, container)
    except UserError as exc:
        raise LogError(400 if str(exc).startswith("--") else 404, str(exc)) from None
    node = next(n for n in reconciler.nodes() if n.name == target.node)
    argv = ssh_to(node, control_dir(reconciler.state_dir), logs_remote(target.id, options))
    return _run(argv)


async def _run(argv: list[str]) -> AsyncIterator[bytes]:
    proc = await asyncio.create_subprocess_exec(*argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                                stderr=subprocess.STDOUT)
    try:
        while chunk := await proc.stdout.read(65536):
            yield chunk
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


def router(reconciler: Reconciler) -> APIRouter:
    r = APIRouter()

    def answer(pod: str, container: str | None, options: LogOptions, path: str) -> Response:
        try:
            stream = log_stream(reconciler, pod, container, options)
        except LogError as exc:
            reason = "NotFound" if exc.code == 404 else ("BadRequest" if speaks_v1(path) else "Invalid")
            return JSONResponse(body(path, exc.code, str(exc), reason), status_code=exc.code)
        return StreamingResponse(stream, media_type="text/plain; charset=utf-8")

    @r.get("/api/v1beta1/pods/{pod}/log")
    def pod_log(request: Request, pod: str, container: str | None = None, follow: bool = False,
                tailLines: int | None = Query(None, ge=0, le=10**9), previous: bool = False,  # noqa: N803 - the API's names
                sinceSeconds: int | None = Query(None, ge=1, le=10**10), timestamps: bool = False) -> Response:
        named(POD, pod)  # a 400 naming the field, as on every route with an id in its path
        options = LogOptions(follow=follow, tail=tailLines, previous=previous, timestamps=timestamps,
                             since=f"{sinceSeconds}s" if sinceSeconds else None)
        return answer(pod, container, options, request.url.path)

    @r.get("/api/v1/namespaces/{namespace}/pods/{pod}/log")
    def pod_log_v1(request: Request, namespace: str, pod: str, container: str | None = None, follow: bool = False,
                   tailLines: int | None = Query(None, ge=0, le=10**9), previous: bool = False,  # noqa: N803
                   sinceSeconds: int | None = Query(None, ge=1, le=10**10), timestamps: bool = False) -> Response:
        """Today's path, the same parameters. Pod names are one space across namespaces (see ``routes.v1``)."""
        named(POD, pod, "metadata.name")
        named(SERVICE, namespace, "metadata.namespace")  # a DNS-1123 label, as in routes.v1
        return pod_log(request, pod, container, follow, tailLines, previous, sinceSeconds, timestamps)

    return r
