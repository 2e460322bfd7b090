# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""From the API-machinery modules' parameters to kept results (tested without Ansible).

Each function validates its parameters (a bad one yields an :class:`Outcome`
whose message names it), runs the experiment on one cluster, writes the
sample at once under ``results_dir`` and returns what the module reports.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Callable, Mapping

from ansible_collections.fedbench.testbed.plugins.module_utils import results
from ansible_collections.fedbench.testbed.plugins.module_utils.common import clock
from ansible_collections.fedbench.testbed.plugins.module_utils.common.runner import Outcome, clusters_from
from ansible_collections.fedbench.testbed.plugins.module_utils.experiments import churn, density, informer
from ansible_collections.fedbench.testbed.plugins.module_utils.kube import akube
from ansible_collections.fedbench.testbed.plugins.module_utils.measure import procstat
from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import hollow


def _cluster(params: Mapping[str, Any]) -> dict[str, Any]:
    clusters = clusters_from(params)
    wanted = params.get("cluster")
    if wanted:
        for c in clusters:
            if c["name"] == wanted:
                return c
        raise ValueError(f"cluster {wanted!r} is not among the clusters given ({', '.join(c['name'] for c in clusters)})")
    return clusters[0]


def _kube(cluster: Mapping[str, Any], **kwargs: Any) -> akube.AsyncKube:
    return akube.AsyncKube.from_kubeconfig(cluster["kubeconfig"], cluster["context"], **kwargs)


def _envelope(params: Mapping[str, Any], experiment: str, cluster: Mapping[str, Any], parameters: dict[str, Any], sample: dict[str, Any]) -> dict[str, Any]:
    return results.envelope(
        run_id=params["run_id"], experiment=experiment, framework=params.get("framework") or "native",
        testbed=params.get("testbed") or [cluster], point=parameters["point"],
        parameters={"cluster": cluster["name"], **parameters}, sample=sample,
    )


def _keep(params: Mapping[str, Any], envelope: dict[str, Any], extra: Mapping[str, str] | None = None) -> str | None:
    return results.keep(params["results_dir"], envelope, record=params.get("record", True), extra=extra)


def _drive(cluster: Mapping[str, Any], coro: Any, named: tuple[type[BaseException], ...] = ()) -> tuple[Any, Outcome | None]:
    """Run the experiment's coroutine: (its result, None), or (None, a failed Outcome naming the cluster).

    ``named`` errors (and a bad kubeconfig) are the experiment's own messages;
    anything else means the API server could not be reached.
    """
    try:
        return akube.run(coro), None
    except (akube.KubeconfigError, *named) as exc:
        return None, Outcome(True, f"cluster {cluster['name']!r}: {exc}")
    except Exception as exc:  # aiohttp's connection errors, OSError, ApiError
        where = cluster.get("server") or cluster["kubeconfig"]
        return None, Outcome(True, f"cluster {cluster['name']!r} ({where}): cannot reach its API server: {type(exc).__name__}: {exc}")


# -- churn ---------------------------------------------------------------------


def churn_spec(params: Mapping[str, Any]) -> churn.ChurnSpec:
    return churn.ChurnSpec(
        mode=params["mode"],
        duration=params["duration"],
        rate=(params.get("rate") or 0.0) if params["mode"] == "closed" else params.get("rate"),
        lifetime=params.get("lifetime") if params.get("lifetime") is not None else 0.0,
        workers=params.get("workers") or 0,
        payload_bytes=params.get("payload_bytes", 128),
        namespaces=tuple(params.get("namespaces") or ("fedbench-churn",)),
        connections=params.get("connections", 32),
        timeout=params.get("timeout", 10.0),
        seed=params.get("seed"),
        token=params.get("token") or "churn",
    )


def ops_csv(ops: list[tuple]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(churn.OPS_COLUMNS)
    writer.writerows(ops)
    return out.getvalue()


def churn_from_params(params: Mapping[str, Any], *, check_mode: bool = False) -> Outcome:
    try:
        spec = churn_spec(params)
        cluster = _cluster(params)
    except (churn.ChurnError, ValueError, TypeError) as exc:
        return Outcome(True, str(exc))
    point = churn.point_name(spec.mode, spec.rate, spec.lifetime, spec.workers)
    if check_mode:
        return Outcome(False, result={"point": point, "summary": {}})
    started = clock.wall_now()

    async def go() -> dict[str, Any]:
        async with _kube(cluster, connections=spec.connections, timeout=spec.timeout) as kube:
            return await churn.run(kube, spec, scrape=params.get("scrape_metrics", True), sentinel=True)

    out, failed = _drive(cluster, go())
    if failed:
        return failed
    summary = out["summary"]
    status, judged = ("error", out["error"]) if out["error"] else churn.judge(
        summary, params.get("error_ratio_degraded", churn.DEGRADED_ERROR_RATIO), params.get("error_ratio_failed", churn.FAILED_ERROR_RATIO))
    parameters = {
        "point": point, "mode": spec.mode, "rate": spec.rate, "lifetime": spec.lifetime,
        "workers": spec.workers, "duration": spec.duration, "payload_bytes": spec.payload_bytes,
        "namespaces": list(spec.namespaces), "connections": spec.connections, "timeout": spec.timeout, "token": spec.token,
    }
    sample = {
        "repetition": params.get("repetition", 1), "status": status, "error": judged, "started_at": started,
        "seed": spec.seed, "summary": summary, "apiserver": out["apiserver"],
    }
    envelope = _envelope(params, "churn", cluster, parameters, sample)
    if params.get("record", True):
        sample["ops_file"] = results.sample_path(Path(params["results_dir"]), envelope).with_suffix(".ops.csv").name
    try:
        path = _keep(params, envelope, {".ops.csv": ops_csv(out["ops"])})
    except results.ResultsError as exc:
        return Outcome(True, f"churn {point} {status} but not kept: {exc}", {"point": point, "status": status, "summary": summary})
    result = {"point": point, "summary": summary, "apiserver": out["apiserver"], "path": path, "status": status, "seed": spec.seed}
    result["error"] = judged
    if status in ("error", "failed"):
        return Outcome(True, f"churn {point} {status}: {judged} (the sample is kept: {path})", result)
    if summary["left"]:
        return Outcome(True, f"churn {point}: {summary['left']} ConfigMaps are left after the sweep", result)
    return Outcome(False, result=result)


# -- informer ------------------------------------------------------------------


def informer_from_params(params: Mapping[str, Any], *, check_mode: bool = False) -> Outcome:
    try:
        cluster = _cluster(params)
        if params["max_duration"] <= 0:
            raise ValueError(f"max_duration must be > 0 seconds (got {params['max_duration']})")
        if params.get("work_seconds", 0) < 0:
            raise ValueError(f"work_seconds must be >= 0 (got {params['work_seconds']})")
    except ValueError as exc:
        return Outcome(True, str(exc))
    if check_mode:
        return Outcome(False, result={"summary": {}})
    started = clock.wall_now()

    async def go() -> dict[str, Any]:
        async with _kube(cluster, connections=4) as kube:
            return await informer.run(kube, params["token"], work_seconds=params.get("work_seconds", 0.0),
                                      max_duration=params["max_duration"], ready_file=params.get("ready_file"))

    out, failed = _drive(cluster, go())
    if failed:
        return failed
    summary = out["summary"]
    status = "ok" if not out["error"] and summary["stopped_by"] == "sentinel" else ("error" if out["error"] else "timeout")
    point = params.get("point") or params["token"]
    parameters = {"point": point, "token": params["token"], "work_seconds": params.get("work_seconds", 0.0),
                  "max_duration": params["max_duration"]}
    sample = {"repetition": params.get("repetition", 1), "status": status, "error": out["error"], "started_at": started, "summary": summary}
    envelope = _envelope(params, "informer", cluster, parameters, sample)
    try:
        path = _keep(params, envelope)
    except results.ResultsError as exc:
        return Outcome(True, f"{envelope['experiment']} sample {sample['status']} but not kept: {exc}", {"status": sample["status"]})
    result = {"summary": summary, "status": status, "path": path}
    if status != "ok":
        return Outcome(True, f"informer {point}: {out['error'] or 'no sentinel within max_duration ' + str(params['max_duration']) + ' s'}", result)
    return Outcome(False, result=result)


# -- hollow nodes ----------------------------------------------------------------


def hollow_from_params(params: Mapping[str, Any], *, check_mode: bool = False, report: Callable[[str], None] = lambda _l: None) -> Outcome:
    try:
        cluster = _cluster(params)
        hollow.check(params["count"], params.get("pods_per_node", 110))
    except (ValueError, hollow.HollowError) as exc:
        return Outcome(True, str(exc))

    async def go() -> dict[str, Any]:
        async with _kube(cluster, connections=params.get("parallel", 32)) as kube:
            if check_mode:
                existing = len(await hollow.hollow_nodes(kube))
                return {"nodes": existing, "changed": existing != params["count"]}
            return await hollow.scale(kube, params["count"], pods_per_node=params.get("pods_per_node", 110),
                                      parallel=params.get("parallel", 32), ready_timeout=params.get("ready_timeout", 600.0), report=report)

    out, failed = _drive(cluster, go(), (hollow.HollowError,))
    return failed or Outcome(False, result={"cluster": cluster["name"], **out})


# -- density -------------------------------------------------------------------


def density_from_params(params: Mapping[str, Any], *, check_mode: bool = False, report: Callable[[str], None] = lambda _l: None) -> Outcome:
    try:
        spec = density.DensitySpec(nodes=params["nodes"], pods_per_node=params["pods_per_node"], rate=params["rate"],
                                   namespace=params.get("namespace") or "fedbench-density", connections=params.get("connections", 16),
                                   timeout=params.get("timeout", 300.0))
        cluster = _cluster(params)
    except (density.DensityError, ValueError) as exc:
        return Outcome(True, str(exc))
    point = f"nodes{spec.nodes}-ppn{spec.pods_per_node}-rate{spec.rate:g}"
    if check_mode:
        return Outcome(False, result={"point": point, "summary": {}})
    started = clock.wall_now()
    cluster_dir = params.get("cluster_dir")

    async def go() -> dict[str, Any]:
        async with _kube(cluster, connections=spec.connections) as kube:
            try:
                with procstat.Sampler(cluster_dir) as sampler:
                    out = await density.run(kube, spec, report=report)
                out["processes"] = sampler.result()
            finally:
                gone = await akube.delete_namespace(kube, spec.namespace, wait=300.0)
            out["cleanup_error"] = None if gone else f"namespace {spec.namespace} still terminating after 300 s"
            return out

    out, failed = _drive(cluster, go(), (density.DensityError,))
    if failed:
        return failed
    parameters = {"point": point, "pods": spec.pods, "nodes": spec.nodes, "pods_per_node": spec.pods_per_node,
                  "rate": spec.rate, "namespace": spec.namespace}
    sample = {"repetition": params.get("repetition", 1), "status": out["status"],
              "error": None if out["status"] == "ok" else f"{out['summary']['running']}/{spec.pods} pods Running after {spec.timeout:.0f} s",
              "cleanup_error": out["cleanup_error"], "started_at": started,
              "summary": out["summary"], "apiserver": out["apiserver"], "processes": out["processes"]}
    envelope = _envelope(params, "density", cluster, parameters, sample)
    try:
        path = _keep(params, envelope)
    except results.ResultsError as exc:
        return Outcome(True, f"{envelope['experiment']} sample {sample['status']} but not kept: {exc}", {"status": sample["status"]})
    result = {"point": point, "summary": out["summary"], "slo_pass": out["apiserver"]["slo_pass"], "processes": out["processes"],
              "status": out["status"], "path": path}
    if out["status"] != "ok" or out["cleanup_error"]:
        return Outcome(True, f"density {point}: {sample['error'] or out['cleanup_error']} (the sample is kept: {path})", result)
    return Outcome(False, result=result)

