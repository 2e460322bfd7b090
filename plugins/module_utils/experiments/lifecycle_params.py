# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""From a module's parameters to a kept result: validation, the run, the file.

Kept apart from the module so that it is tested without Ansible. Every
failure becomes an :class:`Outcome` with a message that names the input at
fault (or the phase that timed out) and, where a sample was under way, the
partial sample, which is also written to disk with its status.
"""

from __future__ import annotations

from typing import Any, Mapping

from ansible_collections.fedbench.testbed.plugins.module_utils import kube, results
from ansible_collections.fedbench.testbed.plugins.module_utils.common import clock
from ansible_collections.fedbench.testbed.plugins.module_utils.common.runner import Outcome, clusters_from
from ansible_collections.fedbench.testbed.plugins.module_utils.experiments import lifecycle
from ansible_collections.fedbench.testbed.plugins.module_utils.measure import window


def _envelope(params: Mapping[str, Any], workload: lifecycle.Workload, adapter: lifecycle.Adapter, clusters: list[dict], sample: dict[str, Any]) -> dict[str, Any]:
    return results.envelope(
        run_id=params["run_id"], experiment="lifecycle", framework=params["framework"], testbed=params.get("testbed") or clusters,
        point=f"{workload.layout}={workload.replicas}",
        parameters={
            "replicas": workload.replicas,
            "layout": workload.layout,
            "deployments": workload.deployments,
            "image": workload.image,
            "namespace": workload.namespace,
            "clusters": adapter.placed_on(),
            "ready_timeout": workload.ready_timeout,
            "delete_timeout": workload.delete_timeout,
        },
        sample=sample,
    )


def _measurements(adapter: lifecycle.Adapter, workload: lifecycle.Workload, clusters: list[dict]) -> list[window.Measurement]:
    """Around every sample: the API server's SLO window and control-plane processes of the
    cluster the workload is created on (where the testbed keeps its files), and the
    measuring process's own CPU."""
    target, _ = adapter.create_target(workload)
    facts = next((c for c in clusters if c["name"] == target.name), {})
    api = target.client()
    out: list[window.Measurement] = [
        window.Instrument(),
        window.ApiSlo(lambda: kube.raw(api, "GET", "/metrics").data.decode(errors="replace")),
    ]
    local_dir = (facts.get("capabilities") or {}).get("local_dir")
    if local_dir:
        out.append(window.Processes(local_dir))
    return out


def name_clusters(message: str, clusters: list[dict]) -> str:
    """A client error names a server (host and port); say which of the testbed's clusters that is."""
    from urllib.parse import urlsplit

    named = []
    for c in clusters:
        server = urlsplit(c.get("server") or "")
        if server.hostname and server.port and (f"port={server.port}" in message or f"{server.hostname}:{server.port}" in message):
            named.append(f"cluster {c['name']} ({c['server']})")
    already = any(f"cluster {c['name']}" in message or message.startswith(f"{c['name']}:") for c in clusters)
    return f"{message} [{'; '.join(named)}]" if named and not already else message


def wait_answering(adapter: lifecycle.Adapter, timeout: float) -> str | None:
    """Wait (up to ``timeout`` seconds in all) until every cluster's API server answers
    /readyz and a read that reaches its datastore (/readyz alone stays ok while a
    kine datastore's database is down): a component the testbed's supervisor is
    repairing is waited for before a sample starts or a namespace is removed.
    Returns why not, or None."""
    import time

    deadline = time.monotonic() + timeout
    for cluster in adapter.clusters:
        api, last = cluster.client(), ""
        while True:
            try:
                kube.raw(api, "GET", "/readyz", timeout=5)
                kube.raw(api, "GET", "/api/v1/namespaces/default", timeout=5)  # no resourceVersion: read from storage
                break
            except Exception as exc:  # noqa: BLE001 - any failure to answer is the same answer: not yet
                last = f"{type(exc).__name__}: {str(exc)[:200]}"
            if time.monotonic() >= deadline:
                return f"cluster {cluster.name}: its API server did not answer /readyz within {timeout:.0f}s ({last})"
            time.sleep(0.5)
    return None


def datastore_down(testbed: list[dict]) -> str:
    """What a failed request may come from and the API server does not say: a kine-postgres
    cluster's PostgreSQL that does not answer on its port."""
    from ansible_collections.fedbench.testbed.plugins.module_utils.common.process import port_in_use

    down = [f"cluster {c.get('name')}: its PostgreSQL (datastore kine-postgres, port {store['port']}) does not answer"
            for c in testbed for store in [c.get("datastore") or {}] if store.get("kind") == "kine-postgres" and store.get("port")
            and not port_in_use(int(store["port"]))]
    return f" [{'; '.join(down)}]" if down else ""


def lifecycle_from_params(params: Mapping[str, Any], *, check_mode: bool = False) -> Outcome:
    try:
        workload = lifecycle.Workload(
            replicas=params["replicas"],
            layout=params["layout"],
            image=params["image"],
            command=tuple(params["command"]),
            namespace=params["namespace"],
            node_selector=params.get("node_selector") or {},
            ready_timeout=float(params["ready_timeout"]),
            delete_timeout=float(params["delete_timeout"]),
        )
        clusters = clusters_from(params)
        adapter = lifecycle.adapter_for(params["framework"], [lifecycle.Cluster(c["name"], c["kubeconfig"], c["context"], c.get("role", "member")) for c in clusters])
    except (lifecycle.ParameterError, ValueError) as exc:
        return Outcome(True, str(exc))
    if check_mode:
        return Outcome(False, result={"sample": {}, "headline": {}, "parameters": {"replicas": workload.replicas, "layout": workload.layout}})
    down = wait_answering(adapter, float(params.get("repair_timeout") or 0))
    if down and params.get("state") == "absent":
        return Outcome(True, f"before the cleanup: {down}" + datastore_down(params.get("testbed") or []))
    if params.get("state") == "absent":
        problem = lifecycle.cleanup_safely(adapter, workload, float(params.get("cleanup_timeout") or 120))
        return Outcome(bool(problem), problem or "", {"namespace": workload.namespace, "removed": not problem})

    started = clock.wall_now()
    status, error = "ok", None
    measured = window.Window(_measurements(adapter, workload, clusters) if params.get("measure", True) and not down else [])
    try:
        if down:  # kept as a failed sample, like any other that could not finish
            raise lifecycle.LifecycleError(f"before the sample: {down}", {})
        with measured:
            sample = lifecycle.run_sample(adapter, workload)
    except lifecycle.LifecycleError as exc:
        sample = exc.partial or {}
        status = "timeout" if "timed out" in str(exc) else "error"
        error = name_clusters(str(exc), clusters) + datastore_down(params.get("testbed") or [])
    sample = {"repetition": params["repetition"], "status": status, "error": error, "started_at": started, **sample, **measured.collect()}
    cleanup_error = None
    if params.get("cleanup") or status != "ok":
        cleanup_error = lifecycle.cleanup_safely(adapter, workload, float(params.get("cleanup_timeout") or 120))
        if cleanup_error:
            sample["cleanup_error"] = cleanup_error
    # A warm-up (record: false) is kept only when it fails: pods that can never be
    # ready time it out first, and the run would otherwise keep no sample saying why.
    keep = params.get("record", True) or status != "ok"
    if not params.get("record", True):
        sample["warmup"] = True
    envelope = _envelope(params, workload, adapter, clusters, sample)
    try:
        path = results.keep(params["results_dir"], envelope, record=keep)
    except results.ResultsError as exc:
        return Outcome(True, f"lifecycle sample {status} but not kept: {exc}", {"status": status, "headline": sample.get("headline", {})})
    returned = dict(sample) if params.get("return_events") else {k: v for k, v in sample.items() if k != "events"}
    result = {"sample": returned, "headline": sample.get("headline", {}), "path": str(path) if path else None, "status": status}
    if status != "ok":
        return Outcome(True, f"lifecycle sample failed ({status}): {error}" + (f"; {cleanup_error}" if cleanup_error else ""), result)
    return Outcome(False, result=result)
