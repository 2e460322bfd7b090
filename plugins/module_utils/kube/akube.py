# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An asyncio Kubernetes API client for load drivers (aiohttp, raw JSON).

The API-machinery experiments send hundreds of requests a second from one
process on a 2-core machine; the synchronous `kubernetes` client spends a
thread per request in flight. This client keeps one aiohttp session with a
bounded connection pool and speaks plain JSON: requests, paginated lists and
watches (one JSON event per line).

Credentials come from a kubeconfig (client certificate or token; files or
inline data). Inline key data is written to a private temporary file only
for as long as the TLS context takes to load it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Mapping
from urllib.parse import urlparse

import yaml

from ansible_collections.fedbench.testbed.plugins.module_utils.kube import listwatch

try:
    import aiohttp

    HAS_AIOHTTP = True
except ImportError:  # pragma: no cover - the module reports it
    HAS_AIOHTTP = False


class KubeconfigError(ValueError):
    """The kubeconfig or context cannot be used; the message names which."""


class ApiError(Exception):
    def __init__(self, status: int, message: str, reason: str = ""):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Endpoint:
    server: str
    ssl: ssl.SSLContext | bool
    headers: Mapping[str, str]


def _material(base: Path, entry: Mapping[str, Any], key: str) -> tuple[str | None, bytes | None]:
    """(file path, inline bytes) for a kubeconfig field such as client-certificate."""
    if entry.get(f"{key}-data"):
        return None, base64.b64decode(entry[f"{key}-data"])
    if entry.get(key):
        path = Path(entry[key])
        return str(path if path.is_absolute() else base / path), None
    return None, None


def endpoint_from_kubeconfig(kubeconfig: str | Path, context: str | None = None) -> Endpoint:
    path = Path(kubeconfig)
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise KubeconfigError(f"kubeconfig {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise KubeconfigError(f"kubeconfig {path}: not YAML ({exc})") from exc
    name = context or config.get("current-context")
    by_name = lambda kind: {i.get("name"): i.get(kind[:-1], {}) for i in config.get(kind) or []}  # noqa: E731
    ctx = by_name("contexts").get(name)
    if ctx is None:
        raise KubeconfigError(f"kubeconfig {path}: no context {name!r}")
    cluster = by_name("clusters").get(ctx.get("cluster"))
    user = by_name("users").get(ctx.get("user"), {})
    if not cluster or not cluster.get("server"):
        raise KubeconfigError(f"kubeconfig {path}: context {name!r} names no cluster with a server")
    server = cluster["server"].rstrip("/")
    if urlparse(server).scheme == "http":
        return Endpoint(server, False, {})
    base = path.parent
    ctx_ssl = ssl.create_default_context()
    ca_file, ca_data = _material(base, cluster, "certificate-authority")
    if cluster.get("insecure-skip-tls-verify"):
        ctx_ssl.check_hostname = False
        ctx_ssl.verify_mode = ssl.CERT_NONE
    elif ca_file or ca_data:
        ctx_ssl.load_verify_locations(cafile=ca_file, cadata=ca_data.decode() if ca_data else None)
    cert_file, cert_data = _material(base, user, "client-certificate")
    key_file, key_data = _material(base, user, "client-key")
    if cert_data or key_data:
        with tempfile.TemporaryDirectory(prefix="fedbench-cred-") as tmp:
            os.chmod(tmp, 0o700)
            if cert_data:
                cert_file = os.path.join(tmp, "cert.pem")
                Path(cert_file).write_bytes(cert_data)
            if key_data:
                key_file = os.path.join(tmp, "key.pem")
                fd = os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(key_data)
            ctx_ssl.load_cert_chain(cert_file, key_file)
    elif cert_file:
        ctx_ssl.load_cert_chain(cert_file, key_file)
    headers = {"Authorization": f"Bearer {user['token']}"} if user.get("token") else {}
    return Endpoint(server, ctx_ssl, headers)


class AsyncKube:
    """One aiohttp session to one API server. Use as ``async with``."""

    def __init__(self, endpoint: Endpoint, connections: int = 32, timeout: float = 30.0):
        if not HAS_AIOHTTP:
            raise RuntimeError("the aiohttp Python library is required")
        self.endpoint = endpoint
        self.connections = connections
        self.timeout = timeout
        self.session: aiohttp.ClientSession | None = None

    @classmethod
    def from_kubeconfig(cls, kubeconfig: str | Path, context: str | None = None, **kwargs: Any) -> "AsyncKube":
        return cls(endpoint_from_kubeconfig(kubeconfig, context), **kwargs)

    async def __aenter__(self) -> "AsyncKube":
        connector = aiohttp.TCPConnector(ssl=self.endpoint.ssl, limit=self.connections, limit_per_host=self.connections)
        self.session = aiohttp.ClientSession(
            self.endpoint.server,
            connector=connector,
            headers={"Accept": "application/json", **self.endpoint.headers},
            timeout=aiohttp.ClientTimeout(total=self.timeout),
        )
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self.session is not None:
            await self.session.close()

    async def call(self, method: str, path: str, body: Any = None, params: Mapping[str, str] | None = None) -> tuple[int, Any]:
        """One request: (status, parsed JSON body or text). Never raises on a status."""
        assert self.session is not None
        data = json.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else None
        async with self.session.request(method, path, data=data, params=params, headers=headers) as resp:
            text = await resp.text()
            try:
                return resp.status, json.loads(text) if text else {}
            except ValueError:
                return resp.status, text

    async def request(self, method: str, path: str, body: Any = None, params: Mapping[str, str] | None = None) -> Any:
        """One request that must succeed (2xx), else :class:`ApiError`."""
        status, data = await self.call(method, path, body, params)
        if not 200 <= status <= 299:
            message = data.get("message") if isinstance(data, dict) else str(data)[:300]
            raise ApiError(status, message or "", data.get("reason", "") if isinstance(data, dict) else "")
        return data

    async def list(self, path: str, params: Mapping[str, str] | None = None, page: int = 500) -> tuple[list[dict], str]:
        """Every item of a collection (paginated) and the list's resourceVersion."""
        items: list[dict] = []
        query = dict(params or {}, limit=str(page))
        while True:
            data = await self.request("GET", path, params=query)
            items.extend(data.get("items") or [])
            cont = (data.get("metadata") or {}).get("continue")
            if not cont:
                return items, (data.get("metadata") or {}).get("resourceVersion", "")
            query["continue"] = cont

    async def watch(self, path: str, resource_version: str, params: Mapping[str, str] | None = None,
                    timeout_seconds: int = 300, on_open: Any = None) -> AsyncIterator[dict]:
        """Messages of one watch request, one dict per line, until the server ends it.

        ERROR messages are yielded like the others: what they mean (410: list
        again; anything else: fail) is :class:`listwatch.Cursor`'s to say. A
        request answered 410 raises :class:`listwatch.Gone`, any other non-200
        :class:`ApiError`. ``on_open`` is called once the server has answered.
        """
        assert self.session is not None
        query = dict(params or {}, watch="1", resourceVersion=resource_version, allowWatchBookmarks="true",
                     timeoutSeconds=str(timeout_seconds))
        timeout = aiohttp.ClientTimeout(total=None, sock_read=timeout_seconds + 30)
        async with self.session.get(path, params=query, timeout=timeout) as resp:
            if resp.status != 200:
                text = await resp.text()
                if resp.status == 410:
                    raise listwatch.Gone(text[:300])
                raise ApiError(resp.status, text[:300])
            if on_open is not None:
                on_open()
            buffer = b""
            async for chunk in resp.content.iter_any():
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if not line.strip():
                        continue
                    yield json.loads(line)


async def ensure_namespace(kube: AsyncKube, name: str, labels: Mapping[str, str] | None = None) -> bool:
    """Create the namespace unless it exists; True when created."""
    status, data = await kube.call("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": dict(labels or {})}})
    if status == 409:
        return False
    if not 200 <= status <= 299:
        raise ApiError(status, data.get("message", "") if isinstance(data, dict) else str(data))
    return True


async def delete_namespace(kube: AsyncKube, name: str, wait: float = 120.0) -> bool:
    """Delete a namespace and wait until it is gone; False when it outlived ``wait``."""
    status, _ = await kube.call("DELETE", f"/api/v1/namespaces/{name}")
    if status == 404:
        return True
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while loop.time() < deadline:
        status, _ = await kube.call("GET", f"/api/v1/namespaces/{name}")
        if status == 404:
            return True
        await asyncio.sleep(0.2)
    return False


def run(coro: Any) -> Any:
    """Run a coroutine on a fresh event loop (each module call, each test thread)."""
    return asyncio.run(coro)
