# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Thin raw-JSON requests over the `kubernetes` client's connection handling.

The measuring code sends plain JSON and reads plain JSON: no model
(de)serialization on the timed path, and one place that knows the client's
low-level call (``param_serialize`` + ``call_api``, kubernetes >= 31).
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


def request(api_client: Any, method: str, path: str, *, body: Any = None, query: Iterable[tuple[str, str]] = (), timeout: Any = 30) -> dict:
    resp = raw(api_client, method, path, body=body, query=query, timeout=timeout)
    data = resp.data
    return json.loads(data) if data else {}


def deployments_path(namespace: str, name: str = "") -> str:
    return f"/apis/apps/v1/namespaces/{namespace}/deployments" + (f"/{name}" if name else "")
