# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hollow nodes: Node objects that KWOK's controller keeps alive, many per machine.

Kubemark ran a hollow kubelet per node; KWOK (and TurboKube before it)
present many nodes from one process. A hollow node here is a Node object
with KWOK's annotation ``kwok.x-k8s.io/node: fake`` and the label
``fedbench.io/hollow: "true"``, tainted ``kwok.x-k8s.io/node=fake:NoSchedule``
so that only workloads that tolerate it (the density experiment's pods) land
on it. KWOK's controller - the embedded testbed's own, or one deployed into
a cluster for kind and existing clusters - sets it Ready, renews its lease
and runs the pods bound to it.

:func:`scale` creates or deletes hollow nodes until exactly ``count`` exist,
in parallel, and waits until all of them are Ready, reporting progress.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

from ansible_collections.fedbench.testbed.plugins.module_utils.kube import akube

LABEL = "fedbench.io/hollow"
KWOK_ANNOTATION = "kwok.x-k8s.io/node"
TAINT = {"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}
PREFIX = "hollow-"


class HollowError(ValueError):
    pass


def node_name(index: int) -> str:
    return f"{PREFIX}{index:05d}"


def node_manifest(index: int, cpu: str = "32", memory: str = "256Gi", pods: int = 110) -> dict[str, Any]:
    name = node_name(index)
    resources = {"cpu": cpu, "memory": memory, "pods": str(pods)}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                LABEL: "true",
                "type": "kwok",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/role": "agent",
                "node-role.kubernetes.io/agent": "",
            },
        },
        "spec": {"taints": [dict(TAINT)]},
        "status": {
            "allocatable": resources,
            "capacity": resources,
            "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux", "kubeletVersion": "fake", "kubeProxyVersion": "fake",
                         "bootID": "", "containerRuntimeVersion": "", "kernelVersion": "", "machineID": "", "osImage": "", "systemUUID": ""},
            "phase": "Running",
        },
    }


def ready(node: dict[str, Any]) -> bool:
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


async def hollow_nodes(kube: akube.AsyncKube) -> list[dict[str, Any]]:
    items, _ = await kube.list("/api/v1/nodes", {"labelSelector": f"{LABEL}=true"})
    return items


def check(count: int, pods_per_node: int = 110) -> None:
    """The wanted node count and capacity, or a HollowError that names the bad one."""
    if not 0 <= count <= 5000:
        raise HollowError(f"count must be between 0 and 5000 hollow nodes, the published limit of one cluster (got {count})")
    if not 1 <= pods_per_node <= 250:
        raise HollowError(f"pods_per_node must be between 1 and 250 (got {pods_per_node})")


async def scale(kube: akube.AsyncKube, count: int, *, pods_per_node: int = 110, parallel: int = 32, ready_timeout: float = 600.0,
                report: Callable[[str], None] = lambda _line: None) -> dict[str, Any]:
    check(count, pods_per_node)
    start = time.monotonic()
    existing = {n["metadata"]["name"] for n in await hollow_nodes(kube)}
    wanted = {node_name(i) for i in range(count)}
    to_create = sorted(wanted - existing)
    to_delete = sorted(existing - wanted)
    sem = asyncio.Semaphore(parallel)
    done = [0]
    total = len(to_create) + len(to_delete)
    step = max(1, total // 10)
    failures: list[str] = []

    async def act(method: str, name: str) -> None:
        async with sem:
            index = int(name[len(PREFIX):])
            for attempt in range(5):
                if method == "POST":
                    status, data = await kube.call("POST", "/api/v1/nodes", node_manifest(index, pods=pods_per_node))
                    ok = 200 <= status <= 299 or status == 409
                else:
                    status, data = await kube.call("DELETE", f"/api/v1/nodes/{name}")
                    ok = 200 <= status <= 299 or status == 404
                if ok:
                    break
                if status != 429 and status < 500:
                    failures.append(f"{method} node {name}: HTTP {status} {data.get('message', '') if isinstance(data, dict) else ''}")
                    return
                await asyncio.sleep(0.2 * (attempt + 1))
            else:
                failures.append(f"{method} node {name}: HTTP {status} after 5 attempts")
                return
            done[0] += 1
            if done[0] % step == 0 or done[0] == total:
                report(f"hollow nodes: {done[0]}/{total} {'created' if method == 'POST' else 'deleted'}")

    if total:
        report(f"hollow nodes: {len(existing)} -> {count} ({len(to_create)} to create, {len(to_delete)} to delete)")
    await asyncio.gather(*(act("POST", n) for n in to_create), *(act("DELETE", n) for n in to_delete))
    if failures:
        raise HollowError(f"{len(failures)} hollow node requests failed, first: {failures[0]}")
    applied = time.monotonic() - start
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ready_timeout
    last_report = 0.0
    while True:
        nodes = await hollow_nodes(kube)
        n_ready = sum(1 for n in nodes if ready(n))
        if len(nodes) == count and n_ready == count:
            break
        if loop.time() > deadline:
            raise HollowError(f"{n_ready}/{count} hollow nodes Ready after {ready_timeout:.0f}s (is KWOK's controller running for this cluster?)")
        if loop.time() - last_report > 5:
            report(f"hollow nodes: {n_ready}/{count} Ready, {len(nodes)} exist")
            last_report = loop.time()
        # Listing thousands of nodes is itself load on the server under test.
        await asyncio.sleep(0.5 if count < 1000 else 2.0)
    return {
        "nodes": count,
        "created": len(to_create),
        "deleted": len(to_delete),
        "changed": bool(total),
        "seconds": round(time.monotonic() - start, 3),
        "apply_seconds": round(applied, 3),
    }
