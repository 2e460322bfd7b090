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

from ansible_collections.fedbench.testbed.plugins.module_utils import results
from ansible_collections.fedbench.testbed.plugins.module_utils.common import clock
from ansible_collections.fedbench.testbed.plugins.module_utils.common.runner import Outcome, clusters_from
from ansible_collections.fedbench.testbed.plugins.module_utils.experiments import lifecycle


def _envelope(params: Mapping[str, Any], workload: lifecycle.Workload, clusters: list[dict], sample: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema": results.SCHEMA,
        "run_id": params["run_id"],
        "experiment": "lifecycle",
        "framework": params["framework"],
        "testbed": results.testbed_info(params.get("testbed") or clusters),
        "parameters": {
            "replicas": workload.replicas,
            "layout": workload.layout,
            "deployments": workload.deployments,
            "image": workload.image,
            "namespace": workload.namespace,
            "clusters": [c["name"] for c in clusters],
            "ready_timeout": workload.ready_timeout,
            "delete_timeout": workload.delete_timeout,
        },
        "samples": [sample],
    }


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
    if params.get("state") == "absent":
        problem = lifecycle.cleanup_safely(adapter, workload)
        return Outcome(bool(problem), problem or "", {"namespace": workload.namespace, "removed": not problem})

    started = clock.wall_now()
    status, error = "ok", None
    try:
        sample = lifecycle.run_sample(adapter, workload)
    except lifecycle.LifecycleError as exc:
        sample = exc.partial or {}
        status = "timeout" if "timed out" in str(exc) else "error"
        error = str(exc)
    sample = {"repetition": params["repetition"], "status": status, "error": error, "started_at": started, **sample}
    envelope = _envelope(params, workload, clusters, sample)
    cleanup_error = None
    if params.get("cleanup") or status != "ok":
        cleanup_error = lifecycle.cleanup_safely(adapter, workload)
        if cleanup_error:
            sample["cleanup_error"] = cleanup_error
    path = results.keep_sample(params["results_dir"], envelope) if params.get("record", True) else None
    returned = dict(sample) if params.get("return_events") else {k: v for k, v in sample.items() if k != "events"}
    result = {"sample": returned, "headline": sample.get("headline", {}), "path": str(path) if path else None, "status": status}
    if status != "ok":
        return Outcome(True, f"lifecycle sample failed ({status}): {error}" + (f"; {cleanup_error}" if cleanup_error else ""), result)
    return Outcome(False, result=result)
