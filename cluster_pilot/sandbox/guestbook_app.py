"""The guestbook frontend of the sandbox's ``guestbook`` image: a page and a tiny JSON API in front of Redis.

It runs inside a pod, on the Python cut from the node image (standard library only, nothing of cluster-pilot):
an entry is appended through ``redis-master`` and the list is read through ``redis-replica``, both found by
their service names (DNS), as the Kubernetes guestbook does. ``REDIS_MASTER_ADDRESS`` and
``REDIS_REPLICA_ADDRESS`` (``HOST:PORT``), ``PORT`` and ``GUESTBOOK_TITLE`` override the defaults.

- ``GET /``: the page (entries, a form); ``POST /`` (form) appends and redirects back;
- ``GET /api/entries``: ``{"entries": [...], "pod": HOSTNAME}``; ``POST /api/entries`` with
  ``{"entry": TEXT}`` appends (201); Redis unreachable is a 503 naming the address.

Redis is spoken with a few lines of socket code (RESP), one connection per request: the app stays small, and a
service address that moves is followed at once.
"""

from __future__ import annotations

import html
import json
import os
import signal
import socket
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY = "guestbook"
MAX_ENTRY = 500  # characters
MAX_BODY = 4096  # bytes
SHOWN = 100  # the newest entries listed


class RedisError(Exception):
    """An error reply from Redis, or no usable answer at all."""


def encode(*args: str | bytes | int) -> bytes:
    """A command as RESP: an array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def read_reply(stream) -> object:
    """One RESP reply from a binary file object: str, int, bytes, None or a list; an error reply raises."""
    line = stream.readline()
    if not line.endswith(b"\r\n"):
        raise RedisError("connection closed in the middle of a reply")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RedisError(rest.decode(errors="replace"))
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        if size < 0:
            return None
        data = stream.read(size + 2)
        if len(data) != size + 2:
            raise RedisError("connection closed in the middle of a reply")
        return data[:-2]
    if kind == b"*":
        count = int(rest)
        return None if count < 0 else [read_reply(stream) for _ in range(count)]
    raise RedisError(f"unexpected reply {line[:40]!r}")


def command(address: tuple[str, int], *args: str | bytes | int, timeout: float = 3.0) -> object:
    """Send one command on a fresh connection and return its reply."""
    try:
        with socket.create_connection(address, timeout=timeout) as sock:
            sock.sendall(encode(*args))
            with sock.makefile("rb") as stream:
                return read_reply(stream)
    except OSError as exc:
        raise RedisError(f"redis at {address[0]}:{address[1]}: {exc}") from exc


def _address(role: str) -> tuple[str, int]:
    """``REDIS_MASTER_ADDRESS``/``REDIS_REPLICA_ADDRESS`` (``HOST:PORT``), else the service's name on 6379.
    Not ``REDIS_MASTER_PORT``: that is a discovery variable (``tcp://ADDRESS:6379``) every container gets."""
    host, _, port = os.environ.get(f"REDIS_{role.upper()}_ADDRESS", f"redis-{role}:6379").rpartition(":")
    return host, int(port)


def add_entry(text: str) -> int:
    return int(command(_address("master"), "RPUSH", KEY, text))  # type: ignore[arg-type]


def entries() -> list[str]:
    items = command(_address("replica"), "LRANGE", KEY, -SHOWN, -1) or []
    return [item.decode(errors="replace") for item in items]  # type: ignore[union-attr]


def page(title: str, items: list[str], problem: str = "") -> str:
    rows = "".join(f"<li>{html.escape(item)}</li>" for item in items)
    warn = f"<p><strong>{html.escape(problem)}</strong></p>" if problem else ""
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head><body>"
            f"<h1>{html.escape(title)}</h1>{warn}<form method='post' action='/'>"
            f"<input name='entry' maxlength='{MAX_ENTRY}' autofocus> <button>Sign</button></form>"
            f"<ul>{rows}</ul><p><small>served by {html.escape(socket.gethostname())}</small></p></body></html>")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server_version = "guestbook"

    def do_GET(self) -> None:
        if self.path == "/healthz":
            return self._send(200, "text/plain", "ok\n")
        if self.path not in ("/", "/api/entries"):
            return self._send(404, "text/plain", "not found\n")
        try:
            items, problem = entries(), ""
        except RedisError as exc:
            items, problem = [], str(exc)
        if self.path == "/":
            return self._send(200, "text/html; charset=utf-8", page(os.environ.get("GUESTBOOK_TITLE", "Guestbook"),
                                                                    items, problem))
        if problem:
            return self._json(503, {"error": problem})
        return self._json(200, {"entries": items, "pod": socket.gethostname()})

    def do_POST(self) -> None:
        if self.path not in ("/", "/api/entries"):
            return self._send(404, "text/plain", "not found\n")
        size = int(self.headers.get("Content-Length") or 0)
        if size > MAX_BODY:
            self.close_connection = True
            return self._json(413, {"error": f"body over {MAX_BODY} bytes"})
        body = self.rfile.read(size).decode(errors="replace")
        try:
            text = _entry(body, self.path == "/api/entries")
        except ValueError as exc:
            return self._json(400, {"error": str(exc)})
        try:
            count = add_entry(text)
        except RedisError as exc:
            return self._json(503, {"error": str(exc)})
        if self.path == "/":
            self.send_response(303)
            self.send_header("Location", "/")
            self.send_header("Content-Length", "0")
            return self.end_headers()
        return self._json(201, {"entries": count, "pod": socket.gethostname()})

    def _json(self, status: int, doc: dict) -> None:
        self._send(status, "application/json", json.dumps(doc) + "\n")

    def _send(self, status: int, kind: str, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _entry(body: str, is_json: bool) -> str:
    """The entry of a request body (JSON ``{"entry": ...}`` or a form), checked."""
    if is_json:
        try:
            doc = json.loads(body)
        except ValueError:
            raise ValueError("the body is not JSON") from None
        text = doc.get("entry") if isinstance(doc, dict) else None
    else:
        text = (urllib.parse.parse_qs(body).get("entry") or [None])[0]
    if not isinstance(text, str) or not text.strip():
        raise ValueError("an entry needs some text: {\"entry\": \"...\"}")
    if len(text) > MAX_ENTRY:
        raise ValueError(f"an entry has at most {MAX_ENTRY} characters")
    return text.strip()


def main() -> None:
    server = ThreadingHTTPServer(("", int(os.environ.get("PORT", "80"))), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # PID 1 has no default action for SIGTERM
    print(f"guestbook on port {server.server_port}: master {_address('master')}, replica {_address('replica')}",
          file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
