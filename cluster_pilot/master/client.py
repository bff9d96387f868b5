"""A small client of the master's ``/api/v1beta1/`` API: the one place that speaks HTTP to a master.

``kubecfg`` and ``cluster-pilot apply --server`` both go through ``MasterClient``. Answers are the API's
v1beta1 JSON; an error answer (a ``Status`` with ``Failure``, or any non-2xx) becomes an ``ApiError`` whose
text is the Status message, ready to be printed as one line. The token is sent as ``Authorization: Bearer``
over https, or over http to a loopback master only (never in clear text across a network), and never printed.
Redirects are not followed, so the token never goes anywhere but the URL given.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
import socket
import ssl
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cluster_pilot.api import VERSIONS, kinds, to_manifest, v1beta1
from cluster_pilot.errors import UserError
from cluster_pilot.model import Object

DEFAULT_URL = "http://127.0.0.1:8080"
API_PREFIX = v1beta1.PREFIX
TOKEN_FILE = "master-token"  # in the state dir; written by ``cluster-pilot master``
TOKEN_URLS_FILE = "master-token.urls"  # beside it: the URLs of the master it belongs to, one a line


class ApiError(UserError):
    """The master refused or failed a request; ``message`` is its Status message."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


def resource_name(word: str) -> str:
    """``/pods``, ``pods``, ``pod``, ``rc``, ``replicationcontrollers``...: the API's resource name."""
    found = kinds.find(word)
    if found is None:
        raise UserError(f"unknown resource {word!r}: expected {kinds.spelled(k.v1beta1 for k in kinds.TABLE)}")
    return found.v1beta1


def resource_of(kind: str) -> str:
    return kinds.of(kind).v1beta1


def master_url(given: str | None = None) -> str:
    """``given``, else ``$KUBERNETES_MASTER``, else ``http://127.0.0.1:8080``; a bare HOST:PORT means http."""
    url = (given or os.environ.get("KUBERNETES_MASTER") or DEFAULT_URL).strip()
    if "://" not in url:
        url = "http://" + url
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"master URL {url!r}: expected http://HOST:PORT or https://HOST:PORT")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise UserError(f"master URL {url!r}: bad port") from None
    return url.rstrip("/")


def token_from_state(url: str) -> str | None:
    """The master token of this machine's state dir (``$CLUSTER_PILOT_HOME``), when there is one and
    ``url`` is the master it came from (a URL recorded beside it): never handed to another server."""
    from cluster_pilot.home import state_dir

    home = state_dir()
    try:
        token = (home / TOKEN_FILE).read_text().strip()
        recorded = (home / TOKEN_URLS_FILE).read_text().split()
    except (OSError, UnicodeDecodeError):
        return None
    if not token or same_server(url) not in {same_server(u) for u in recorded}:
        return None
    return token


def same_server(url: str) -> tuple[str, str, int]:
    """What makes two URLs the same server for a secret: scheme, host (lower-case) and port."""
    parts = urllib.parse.urlsplit(url if "://" in url else "http://" + url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return parts.scheme, (parts.hostname or "").lower(), port or (443 if parts.scheme == "https" else 80)


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (where plain HTTP may carry a token, and the 2014 client none)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class TLS:
    """How https masters are checked: system CAs unless ``ca_file``; ``insecure`` skips the check."""

    ca_file: str | None = None
    insecure: bool = False
    cert_file: str | None = None  # client certificate, for a proxy in front of the master
    key_file: str | None = None

    def context(self) -> ssl.SSLContext:
        try:
            ctx = ssl.create_default_context(cafile=self.ca_file)
            if self.cert_file:
                ctx.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise UserError(f"TLS settings: {exc}") from None
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx


class MasterClient:
    """Typed access to one master: ``list``/``get``/``create``/``update``/``delete`` of a resource."""

    def __init__(self, url: str | None = None, token: str | None = None, *, tls: TLS = TLS(),
                 basic: tuple[str, str] | None = None, timeout: float = 30.0) -> None:
        self.url = master_url(url)
        parts = urllib.parse.urlsplit(self.url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._https else 80)
        self._base = parts.path.rstrip("/")
        self._tls = tls
        self._context: ssl.SSLContext | None = None
        self.timeout = timeout
        # a secret goes in clear text only to this machine
        self._may_send_secret = self._https or is_loopback(self._host)
        self._token = token
        self._basic = basic
        self._withheld = bool(token or basic) and not self._may_send_secret

    @classmethod
    def from_environment(cls, url: str | None = None, *, tls: TLS = TLS(), auth_file: str | None = None,
                         timeout: float = 30.0, token: str | None = None) -> MasterClient:
        """URL from ``url``/``$KUBERNETES_MASTER``; ``token`` if given, else the state dir's token when it
        belongs to that URL, else (https) the 2014 client's ``~/.kubernetes_auth`` (``{"User": .., "Password":
        ..}``) for HTTP Basic."""
        token = token or token_from_state(master_url(url))
        basic = None
        if token is None:
            basic = _basic_from(auth_file or str(Path.home() / ".kubernetes_auth"))
        return cls(url, token, tls=tls, basic=basic, timeout=timeout)

    # --- the resources --------------------------------------------------------------------------------------
    def list(self, resource: str, selector: str | None = None) -> dict[str, Any]:
        """The list object (``PodList``...); its objects are in ``items``."""
        query = {"labels": selector} if selector else None
        return self.request("GET", f"{API_PREFIX}/{resource_name(resource)}", query=query)

    def get(self, resource: str, name: str) -> dict[str, Any]:
        return self.request("GET", self._path(resource, name))

    def create(self, resource: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", f"{API_PREFIX}/{resource_name(resource)}", body)

    def update(self, resource: str, name: str, body: dict[str, Any], resource_version: int | None) -> dict[str, Any]:
        """PUT ``body`` as of ``resource_version`` (the master answers Conflict if it changed since)."""
        return self.request("PUT", self._path(resource, name), with_resource_version(body, resource_version))

    def delete(self, resource: str, name: str) -> dict[str, Any]:
        return self.request("DELETE", self._path(resource, name))

    def version(self) -> dict[str, Any]:
        return self.request("GET", "/version")

    def put_object(self, obj: Object) -> str:
        """Create ``obj``, or update it at its current resourceVersion: ``created``, ``updated`` or
        ``unchanged`` (the master keeps the version of an object written again as it was)."""
        resource, body = resource_of(obj.kind), manifest_body(obj)
        try:
            current = self.get(resource, obj.meta.name)
        except ApiError as exc:
            if exc.code != 404:
                raise
            current = None
        if current is not None:
            version = current.get("resourceVersion")
            try:
                written = self.update(resource, obj.meta.name, body, version)
            except ApiError as exc:
                if exc.code != 404:  # a controller's pod of that name, not a pod of its own: create it
                    raise
            else:
                return "unchanged" if written.get("resourceVersion") == version else "updated"
        self.create(resource, body)
        return "created"

    # --- HTTP ------------------------------------------------------------------------------------------------
    def _path(self, resource: str, name: str) -> str:
        if not name or "/" in name or name in (".", ".."):  # a path step would name another resource
            raise UserError(f"bad id {name!r}")
        return f"{API_PREFIX}/{resource_name(resource)}/{urllib.parse.quote(name, safe='')}"

    def _connection(self) -> http.client.HTTPConnection:
        if self._https:
            if self._context is None:
                self._context = self._tls.context()
            return http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout, context=self._context)
        return http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)

    def _headers(self, body: bytes | None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "cluster-pilot-kubecfg"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if self._may_send_secret:
            if self._token:
                headers["Authorization"] = f"Bearer {self._token}"
            elif self._basic:
                import base64

                pair = f"{self._basic[0]}:{self._basic[1]}".encode()
                headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        return headers

    def request(self, method: str, path: str, body: dict[str, Any] | None = None,
                query: dict[str, str] | None = None) -> dict[str, Any]:
        """One request; the answer's JSON object, or ``ApiError`` (``UserError`` when the master is not reached)."""
        target = self._base + path + ("?" + urllib.parse.urlencode(query) if query else "")
        payload = None if body is None else json.dumps(body).encode()
        conn = self._connection()
        try:
            conn.request(method, target, body=payload, headers=self._headers(payload))
            response = conn.getresponse()
            status, raw = response.status, response.read()
        except ssl.SSLError as exc:
            raise UserError(f"cannot reach the master at {self.url}: TLS: {exc.reason or exc} (use "
                            "-certificate_authority FILE, or -insecure_skip_tls_verify to skip the check)") from None
        except (OSError, http.client.HTTPException) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else (str(exc) or type(exc).__name__)
            if isinstance(exc, socket.timeout):
                reason = f"no answer within {self.timeout:g} s"
            raise UserError(f"cannot reach the master at {self.url}: {reason}") from None
        finally:
            conn.close()
        return self._answer(method, status, raw)

    def stream(self, path: str, query: dict[str, str] | None = None):
        """GET a streamed answer (a pod's log): its chunks as they come; an error answer is an ``ApiError``."""
        target = self._base + path + ("?" + urllib.parse.urlencode(query) if query else "")
        conn = self._connection()
        try:
            conn.request("GET", target, headers=self._headers(None))
            response = conn.getresponse()
            if not 200 <= response.status < 300:
                self._answer("GET", response.status, response.read())
            while chunk := response.read1(65536):
                yield chunk
        except (OSError, http.client.HTTPException) as exc:
            raise UserError(f"cannot reach the master at {self.url}: {exc}") from None
        finally:
            conn.close()

    def _answer(self, method: str, status: int, raw: bytes) -> dict[str, Any]:
        try:
            data = json.loads(raw) if raw.strip() else None
        except (ValueError, UnicodeDecodeError):
            data = None
        if isinstance(data, dict) and data.get("kind") == "Status":
            # the Status decides over the HTTP code, as for the 2014 client
            if data.get("status") == "Success" and 200 <= status < 300:
                return data
            code = data.get("code") or status
            message = str(data.get("message") or data.get("reason") or f"HTTP {status}")
            raise ApiError(int(code) if str(code).isdigit() else status, str(data.get("reason") or ""),
                           self._hint(int(status), _one_line(message)))
        if not 200 <= status < 300:
            detail = data.get("detail") if isinstance(data, dict) else None
            text = detail if isinstance(detail, str) else raw.decode("utf-8", "replace").strip()[:200]
            raise ApiError(status, "", self._hint(status, _one_line(f"HTTP {status} from the master"
                                                                     + (f": {text}" if text else ""))))
        if not isinstance(data, dict):
            raise ApiError(status, "", f"{method} {self.url}: the master's answer is not a JSON object")
        return data

    def _hint(self, status: int, message: str) -> str:
        if status == 401 and self._withheld:
            return (message + f" (the token is not sent over plain http to {self._host}, which is not this "
                    "machine: use an https:// URL)")
        if status == 401 and not (self._token or self._basic):
            return message + (" (no token: none in $CLUSTER_PILOT_HOME/" + TOKEN_FILE + " for " + self.url
                              + ", as recorded in " + TOKEN_URLS_FILE + "; or give one with --token)")
        return message


def _basic_from(path: str) -> tuple[str, str] | None:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and isinstance(data.get("Password"), str) and data["Password"]:
        return str(data.get("User") or ""), data["Password"]
    return None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def with_resource_version(body: dict[str, Any], resource_version: int | str | None) -> dict[str, Any]:
    """``body`` as of ``resource_version``: top-level in v1beta1, ``metadata.resourceVersion`` in v1."""
    if resource_version in (None, "", 0):
        return body
    if body.get("apiVersion") == "v1":
        return {**body, "metadata": {**(body.get("metadata") or {}), "resourceVersion": str(resource_version)}}
    return {**body, "resourceVersion": int(resource_version)}


def manifest_body(obj: Object) -> dict[str, Any]:
    """The request body for a model object: its manifest in its own API version (nothing lost)."""
    return to_manifest(obj, obj.meta.api_version if obj.meta.api_version in VERSIONS else v1beta1.VERSION)
