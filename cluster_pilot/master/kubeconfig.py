"""The kubeconfig that points today's clients (kubectl, the client libraries, Ansible's ``kubernetes.core``) at
this master with its token, as they read it unchanged. Pure: the document from the URL, token and CA.

client-go puts a user's credentials only on TLS connections: over plain ``http://`` kubectl sends no token at
all, so an http kubeconfig reaches a master only when it listens on loopback with ``--insecure-loopback``.
``plain_http_note`` says so where it applies.
"""

from __future__ import annotations

import base64

import yaml

NAME = "cluster-pilot"
FILE = "kubeconfig"  # in the state dir, beside the token


def document(url: str, token: str, ca_pem: bytes | None = None, insecure: bool = False) -> dict:
    cluster: dict = {"server": url}
    if ca_pem:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    if insecure:
        cluster["insecure-skip-tls-verify"] = True
    return {"apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": NAME, "cluster": cluster}],
            "users": [{"name": NAME, "user": {"token": token}}],
            "contexts": [{"name": NAME, "context": {"cluster": NAME, "user": NAME, "namespace": "default"}}],
            "current-context": NAME}


def text(url: str, token: str, ca_pem: bytes | None = None, insecure: bool = False) -> str:
    return yaml.safe_dump(document(url, token, ca_pem, insecure), sort_keys=False)


def plain_http_note(url: str) -> str | None:
    if not url.startswith("http://"):
        return None
    return (f"{url} is plain HTTP: kubectl sends its token only over TLS, so it reaches the master only if "
            "the master listens on loopback with --insecure-loopback (or serve TLS: --tls-cert/--tls-key)")
