# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The density experiment: pods at a given rate onto hollow nodes, until P per node.

Pods (bare ``v1.Pod``, one container, image ``fedbench.io/pause`` that no one
pulls: KWOK runs them) are created at ``rate`` per second, ``pods_per_node *
nodes`` in all, with a node selector and a toleration that put them on the
hollow nodes only. A watch on the namespace, opened before the first create,
records for every pod when it was:

- ``sent``: the create request left this process;
- ``created``: the watch reported it (ADDED), as clusterloader2 does;
- ``scheduled``: the watch first showed it bound to a node;
- ``running``: the watch first showed it Running.

Pod startup latency is ``created -> running`` (Kubernetes' pod startup SLO:
p99 <= 5 s for stateless pods, image pulls excluded - there are none here).
Scheduling throughput is pods bound per second: the mean over the binding
window, and the percentiles of the per-second counts. API latencies and
their SLOs come from ``/metrics`` before and after.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Any, Callable

from ansible_collections.fedbench.testbed.plugins.module_utils.kube import akube, listwatch
from ansible_collections.fedbench.testbed.plugins.module_utils.measure import apimetrics, stats
from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import hollow

POD_STARTUP_SLO = 5.0
IMAGE = "fedbench.io/pause:never-pulled"


class DensityError(ValueError):
    pass


@dataclass
class DensitySpec:
    nodes: int
    pods_per_node: int
    rate: float
    namespace: str = "fedbench-density"
    connections: int = 16
    timeout: float = 300.0

    def __post_init__(self) -> None:
        if self.nodes < 1:
            raise DensityError(f"nodes must be >= 1 (got {self.nodes})")
        if not 1 <= self.pods_per_node <= 110:
            raise DensityError(f"pods_per_node must be between 1 and 110, a node's pod capacity (got {self.pods_per_node})")
        if self.rate is None or self.rate <= 0:
            raise DensityError(f"rate must be > 0 pods per second (got {self.rate})")
        if self.timeout <= 0:
            raise DensityError(f"timeout must be > 0 seconds (got {self.timeout})")

    @property
    def pods(self) -> int:
        return self.nodes * self.pods_per_node


def pod_manifest(namespace: str, index: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"density-{index:06d}", "namespace": namespace, "labels": {"fedbench.io/experiment": "density"}},
        "spec": {
            "nodeSelector": {hollow.LABEL: "true"},
            "tolerations": [{"key": hollow.TAINT["key"], "operator": "Exists", "effect": "NoSchedule"}],
            "containers": [{"name": "pause", "image": IMAGE}],
            "terminationGracePeriodSeconds": 0,
        },
    }


def per_second(times: list[float]) -> list[int]:
    """Counts per 1-second window from the first time to the last."""
    if not times:
        return []
    first = min(times)
    counts = [0] * (int(math.floor(max(times) - first)) + 1)
    for t in times:
        counts[int(t - first)] += 1
    return counts


def summarize(pods: dict[str, dict[str, float]], spec: DensitySpec, elapsed_sends: float) -> dict[str, Any]:
    def delta(a: str, b: str) -> list[float]:
        return [p[b] - p[a] for p in pods.values() if a in p and b in p]

    startup = stats.summarize(delta("created", "running"), 4)
    scheduled = sorted(p["scheduled"] for p in pods.values() if "scheduled" in p)
    window = (scheduled[-1] - scheduled[0]) if len(scheduled) > 1 else 0.0
    counts = per_second(scheduled)
    # The last window is partial; leave it out of the percentiles when there are others.
    full = counts[:-1] if len(counts) > 1 else counts
    return {
        "pods": spec.pods,
        "created": sum(1 for p in pods.values() if "created" in p),
        "scheduled": len(scheduled),
        "running": sum(1 for p in pods.values() if "running" in p),
        "requested_rate": spec.rate,
        "achieved_create_rate": round(spec.pods / elapsed_sends, 3) if elapsed_sends > 0 else None,
        "pod_startup": startup,
        "created_to_scheduled": stats.summarize(delta("created", "scheduled"), 4),
        "scheduled_to_running": stats.summarize(delta("scheduled", "running"), 4),
        "sent_to_running": stats.summarize(delta("sent", "running"), 4),
        "pod_startup_slo": POD_STARTUP_SLO,
        "pod_startup_pass": startup["p99"] is not None and startup["p99"] <= POD_STARTUP_SLO,
        "scheduling_throughput": {
            "mean": round((len(scheduled) - 1) / window, 3) if window > 0 else None,
            **{k: v for k, v in stats.summarize(full, 1).items() if k in ("p50", "p90", "p99", "max")},
        },
    }


class Watcher:
    """Per pod of one namespace: when it was first seen created, bound, Running (loop time)."""

    def __init__(self, kube: akube.AsyncKube, namespace: str):
        self.kube = kube
        self.namespace = namespace
        self.pods: dict[str, dict[str, float]] = {}
        self.nodes: dict[str, str] = {}
        self.ready = asyncio.Event()

    def observe(self, obj: dict[str, Any], now: float) -> None:
        name = obj["metadata"]["name"]
        record = self.pods.setdefault(name, {})
        record.setdefault("created", now)
        node = obj.get("spec", {}).get("nodeName")
        if node:
            record.setdefault("scheduled", now)
            self.nodes[name] = node
        if (obj.get("status") or {}).get("phase") == "Running":
            record.setdefault("running", now)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()

        def listed(items: list[dict], _relisted: bool) -> None:
            for item in items:
                self.observe(item, loop.time())

        def event(etype: str, obj: dict) -> None:
            if etype in ("ADDED", "MODIFIED"):
                self.observe(obj, loop.time())

        await listwatch.list_then_watch(self.kube, f"/api/v1/namespaces/{self.namespace}/pods",
                                        on_list=listed, on_event=event, on_open=self.ready.set)


async def create_paced(kube: akube.AsyncKube, namespace: str, indexes: range, rate: float, watcher: Watcher, *,
                       in_flight: int, retries: int = 0, report: Callable[[int, int], None] | None = None,
                       reports: int = 10) -> dict[str, int]:
    """Create the pods ``indexes`` at ``rate`` per second, at most ``in_flight`` at once.

    Records each pod's send time in ``watcher``; a refused create is retried
    ``retries`` times (backing off). Calls ``report(sent, running)``
    ``reports`` times along the way. Returns the refusals by HTTP status.
    """
    loop = asyncio.get_running_loop()
    errors: dict[str, int] = {}
    sem = asyncio.Semaphore(in_flight)
    t0 = loop.time()

    async def create(index: int) -> None:
        async with sem:
            body = pod_manifest(namespace, index)
            watcher.pods.setdefault(body["metadata"]["name"], {})["sent"] = loop.time()
            for attempt in range(retries + 1):
                status, _ = await kube.call("POST", f"/api/v1/namespaces/{namespace}/pods", body)
                if 200 <= status <= 299 or (attempt and status == 409):  # 409 after a retry: the first one landed
                    return
                errors[str(status)] = errors.get(str(status), 0) + 1
                if attempt < retries:
                    await asyncio.sleep(0.2 * (attempt + 1))

    tasks, step = [], max(1, len(indexes) // reports)
    for k, index in enumerate(indexes):
        at = t0 + k / rate
        if at > loop.time():
            await asyncio.sleep(at - loop.time())
        tasks.append(asyncio.create_task(create(index)))
        if report and (k + 1) % step == 0:
            report(k + 1, sum(1 for p in watcher.pods.values() if "running" in p))
    await asyncio.gather(*tasks)
    return errors


async def run(kube: akube.AsyncKube, spec: DensitySpec, *, report: Callable[[str], None] = lambda _l: None) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    nodes = [n for n in await hollow.hollow_nodes(kube) if hollow.ready(n)]
    if len(nodes) < spec.nodes:
        raise DensityError(f"density needs {spec.nodes} Ready hollow nodes; the cluster has {len(nodes)} (run the hollow_nodes role first)")
    await akube.ensure_namespace(kube, spec.namespace, {"fedbench.io/experiment": "density"})
    # The service account admission waits for the namespace's default account.
    deadline = loop.time() + 30
    while (await kube.call("GET", f"/api/v1/namespaces/{spec.namespace}/serviceaccounts/default"))[0] != 200:
        if loop.time() > deadline:
            raise DensityError(f"namespace {spec.namespace}: no default service account after 30 s")
        await asyncio.sleep(0.1)
    watcher = Watcher(kube, spec.namespace)
    watch_task = asyncio.create_task(watcher.run())
    await asyncio.wait_for(watcher.ready.wait(), 30)
    before = await kube.request("GET", "/metrics")
    started = time.time()
    t0 = loop.time()
    errors = await create_paced(kube, spec.namespace, range(spec.pods), spec.rate, watcher, in_flight=spec.connections,
                                report=lambda sent, running: report(f"density: {sent}/{spec.pods} pods sent, {running} Running"))
    sends = loop.time() - t0
    status = "ok"
    deadline = t0 + spec.timeout
    last = loop.time()
    while sum(1 for p in watcher.pods.values() if "running" in p) < spec.pods:
        if watch_task.done():
            watch_task.result()
        if loop.time() > deadline:
            status = "timeout"
            break
        if loop.time() - last > 5:
            report(f"density: {sum(1 for p in watcher.pods.values() if 'running' in p)}/{spec.pods} pods Running")
            last = loop.time()
        await asyncio.sleep(0.1)
    elapsed = loop.time() - t0
    after = await kube.request("GET", "/metrics")
    watch_task.cancel()
    await asyncio.gather(watch_task, return_exceptions=True)
    summary = summarize(watcher.pods, spec, sends)
    per_node: dict[str, int] = {}
    for node in watcher.nodes.values():
        per_node[node] = per_node.get(node, 0) + 1
    summary["placement"] = {
        "nodes_used": len(per_node),
        "pods_per_node_min": min(per_node.values()) if per_node else 0,
        "pods_per_node_max": max(per_node.values()) if per_node else 0,
        "off_hollow_nodes": sum(n for node, n in per_node.items() if not node.startswith(hollow.PREFIX)),
    }
    summary["elapsed"] = round(elapsed, 3)
    summary["create_errors"] = errors
    summary["pods_per_second_to_running"] = round(summary["running"] / elapsed, 3) if elapsed > 0 else None
    return {"started_unix": started, "status": status, "summary": summary, "apiserver": apimetrics.report(before, after)}

