# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An embedded cluster's health and readiness, read from its API server with
its admin credentials (kube.probe)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from ansible_collections.fedbench.testbed.plugins.module_utils import kube
from ansible_collections.fedbench.testbed.plugins.module_utils.common.process import LOOPBACK
from ansible_collections.fedbench.testbed.plugins.module_utils.testbed.specs import TestbedError


def _kubeconfig_client_files(cluster_dir: Path) -> tuple[Path, Path, Path]:
    pki = cluster_dir / "pki"
    return pki / "ca.crt", pki / "admin.crt", pki / "admin.key"


def api_get(cluster_dir: Path, port: int, path: str, timeout: float = 5) -> tuple[int, str]:
    """GET a path on a cluster's API server with its admin credentials: (status, body)."""
    return kube.probe(kube.client_from_files(f"https://{LOOPBACK}:{port}", *_kubeconfig_client_files(cluster_dir)), path, timeout)


def healthy(cluster_dir: Path, port: int) -> bool:
    status, body = api_get(cluster_dir, port, "/readyz", timeout=2)
    return status == 200 and body.strip() == "ok"


def node_ready(node: Mapping[str, Any]) -> bool:
    for cond in node.get("status", {}).get("conditions", []) or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def ready_nodes(cluster_dir: Path, port: int) -> tuple[int, int]:
    """(Ready nodes, all nodes)."""
    status, body = api_get(cluster_dir, port, "/api/v1/nodes")
    if status != 200:
        raise TestbedError(f"listing nodes answered HTTP {status}: {body[:200]}" if status else f"listing nodes: {body}")
    items = json.loads(body).get("items", [])
    return sum(1 for n in items if node_ready(n)), len(items)


def server_version(cluster_dir: Path, port: int) -> str:
    status, body = api_get(cluster_dir, port, "/version")
    if status != 200:
        raise TestbedError(f"/version answered HTTP {status}: {body[:200]}" if status else f"/version: {body}")
    return json.loads(body)["gitVersion"]


def wait_for(predicate: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.2) -> float:
    """Poll until ``predicate`` holds; one deadline around the whole wait."""
    start = time.monotonic()
    deadline = start + timeout
    while True:
        if predicate():
            return time.monotonic() - start
        if time.monotonic() >= deadline:
            raise TestbedError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
