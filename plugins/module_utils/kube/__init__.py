# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one synchronous way to talk to an API server: raw JSON requests over
the `kubernetes` client's connection handling (``kube/akube.py`` is the
asynchronous one, for load).

The measuring code sends plain JSON and reads plain JSON: no model
(de)serialization on the timed path, and one place that knows the client's
low-level call (``param_serialize`` + ``call_api``, kubernetes >= 31).
Clients come from a kubeconfig (``kubernetes.config``) or, before a cluster
has one, from its server and certificate files (:func:`client_from_files`).
"""

from __future__ import annotations

import json
from typing import Any, Iterable


class KubeError(Exception):
    def __init__(self, status: int, reason: str, body: str = ""):
        message = reason
        try:
            message = json.loads(body).get("message") or reason
        except (ValueError, AttributeError):
            pass
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.reason = reason


def raw(api_client: Any, method: str, path: str, *, body: Any = None, query: Iterable[tuple[str, str]] = (), timeout: Any = 30) -> Any:
    """Send one request; returns the urllib3 response, unread, after checking its status."""
    method, url, headers, payload, post = api_client.param_serialize(
        method,
        path,
        query_params=list(query),
        header_params={"Accept": "application/json", "Content-Type": "application/json"},
        body=body,
        auth_settings=["BearerToken"],
    )
    resp = api_client.call_api(method, url, headers, payload, post, _request_timeout=timeout)
    if not 200 <= resp.status <= 299:
        raise KubeError(resp.status, resp.reason, resp.read().decode(errors="replace") if resp.read() else "")
    return resp.response


def client_from_files(server: str, ca: Any, cert: Any, key: Any) -> Any:
    """An API client for a server, its CA and a client certificate and key (files)."""
    from kubernetes import client

    cfg = client.Configuration()
    cfg.host, cfg.ssl_ca_cert, cfg.cert_file, cfg.key_file = server, str(ca), str(cert), str(key)
    cfg.retries = False  # one try: a probe says what it saw now
    return client.ApiClient(cfg)


def probe(api_client: Any, path: str, timeout: float = 5) -> tuple[int, str]:
    """GET a path: its status and body whatever the status (a probe reads a refusal too), or
    status 0 and why when no answer came (refused, timed out, TLS failed)."""
    import urllib3

    try:
        resp = raw(api_client, "GET", path, timeout=timeout)
    except KubeError as exc:
        return exc.status, str(exc)
    except (OSError, ValueError, urllib3.exceptions.HTTPError) as exc:
        return 0, f"{type(exc).__name__}: {exc}"
    return resp.status, resp.data.decode(errors="replace")


def request(api_client: Any, method: str, path: str, *, body: Any = None, query: Iterable[tuple[str, str]] = (), timeout: Any = 30) -> dict:
    resp = raw(api_client, method, path, body=body, query=query, timeout=timeout)
    data = resp.data
    return json.loads(data) if data else {}


def deployments_path(namespace: str, name: str = "") -> str:
    return f"/apis/apps/v1/namespaces/{namespace}/deployments" + (f"/{name}" if name else "")
