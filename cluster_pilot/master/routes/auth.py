"""Who may write: the master's token, as Bearer or as the password of HTTP Basic (the 2014 client's way), or
anyone on loopback over plain HTTP when ``--insecure-loopback`` allows it, as the 2014 API server's local
port did. Reads need it too (a pod's environment is a secret); only ``/healthz`` is open, and the dashboard
(``/ui/``) checks its own session."""

from __future__ import annotations

import base64
import hmac

from fastapi import Request

from cluster_pilot.master.client import is_loopback

DENIED = ("requests need the master's token (Authorization: Bearer TOKEN, or HTTP Basic with the token as "
          "password)")


def needs_token(request: Request) -> bool:
    path = request.url.path
    return path != "/healthz" and path != "/ui" and not path.startswith("/ui/")


def authorized(request: Request, token: str, insecure_loopback: bool = False) -> bool:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode()):
        return True
    if scheme.lower() == "basic":
        try:
            _, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(password.encode(), token.encode())
    if insecure_loopback and request.url.scheme == "http" and request.client is not None:
        return is_loopback(request.client.host)
    return False
