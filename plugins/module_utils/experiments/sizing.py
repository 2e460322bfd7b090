# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Control-plane sizing: the capacity of one control-plane variant.

A *variant* is one embedded cluster's control plane: CPU and memory limits
per component (``control_plane``), a ``topology`` (CPU sets) and a
``datastore`` (etcd, kine over SQLite or PostgreSQL). For each, the sweep
starts a cluster of its own, measures three capacities the project already
knows how to measure, and tears it down:

- **churn**: an open-loop ConfigMap churn whose rate is multiplied by
  ``churn_factor`` from ``churn_start`` until a step breaks a limit: failed
  operations above ``error_ratio`` (1 %), or a mutating call's p99 above
  ``mutating_p99`` (1 s, the API call SLO) in the API server's SLI or in its
  request duration (which adds priority-and-fairness queueing). The capacity
  is the highest rate that passed. A step whose client saw a p99 above the
  limit while the server's figures held (its requests queued for a
  connection), or whose sends fell behind their schedule (lag p99 > 1 s),
  ends the ramp too, but then the client, not the control plane, was the
  limit: the capacity is marked ``client_bound`` (a lower bound).
- **density**: hollow nodes and pods in steps (``density_steps``, each
  ``{nodes, pods_per_node}``) until a step breaks the pod-startup SLO (p99
  ≤ 5 s) or an API call SLO; the capacity is the largest step that passed.
- **create→ready** of one Deployment of ``lifecycle_replicas`` at a fixed
  size, on the cluster's own (untainted) nodes.

Every step records the CPU (cores) and peak resident memory of every
component, the machine's busy share and the driver's own CPU, so the
calculator (:mod:`sizing_fit`) can fit the curves and the reader can see
who was the bottleneck. Nothing here is an estimate: every figure is a
measurement of this machine.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ansible_collections.fedbench.testbed.plugins.module_utils.kube import akube
from ansible_collections.fedbench.testbed.plugins.module_utils.experiments import churn, density
from ansible_collections.fedbench.testbed.plugins.module_utils.measure import procstat

VARIANT_KEYS = ("name", "control_plane", "topology", "datastore")
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,18}[a-z0-9])?$")
POD_STARTUP_SLO = density.POD_STARTUP_SLO
LAG_LIMIT = 1.0
# The machine's busy share above which a slow client is named as starved of CPU.
BUSY = 0.9
# Made once for the whole ramp (churn.run then neither creates nor deletes them per step).
CHURN_NAMESPACES = ("fedbench-sizing-a", "fedbench-sizing-b")


class SizingError(ValueError):
    """A bad sweep or variant; the message names the input."""


def parse_variants(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise SizingError(f"experiment_sizing_variants must be a non-empty list of variants, got {raw!r}")
    out, seen = [], set()
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise SizingError(f"variant #{index + 1} must be a mapping with name and any of control_plane, topology, datastore; got {item!r}")
        unknown = sorted(set(item) - set(VARIANT_KEYS))
        if unknown:
            raise SizingError(f"variant #{index + 1}: unknown key(s) {', '.join(unknown)} (known: {', '.join(VARIANT_KEYS)})")
        name = item.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise SizingError(f"variant #{index + 1}: name must be a lowercase DNS label of at most 20 characters, got {name!r}")
        if name in seen:
            raise SizingError(f"variant name {name!r} appears twice")
        seen.add(name)
        out.append({"name": name, "control_plane": dict(item.get("control_plane") or {}), "topology": item.get("topology"),
                    "datastore": item.get("datastore") or "etcd"})
    return out


def _positive(value: Any, what: str, whole: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 or (whole and int(value) != value):
        raise SizingError(f"{what} must be a {'whole ' if whole else ''}number above 0, got {value!r}")
    return value


@dataclass
class SweepSpec:
    churn_start: float = 50.0
    churn_factor: float = 2.0
    churn_max_rate: float = 3200.0
    churn_step_seconds: float = 5.0
    churn_lifetime: float = 1.0
    churn_connections: int = 256
    density_steps: list[dict[str, int]] = field(default_factory=lambda: [{"nodes": 10, "pods_per_node": 10}, {"nodes": 20, "pods_per_node": 20}])
    density_rate: float = 50.0
    density_timeout: float = 120.0
    lifecycle_replicas: int = 10
    nodes: int = 2
    error_ratio: float = 0.01
    mutating_p99: float = 1.0

    def __post_init__(self) -> None:
        for name in ("churn_start", "churn_max_rate", "churn_step_seconds", "density_rate", "density_timeout", "error_ratio", "mutating_p99"):
            _positive(getattr(self, name), f"experiment_sizing {name}")
        if isinstance(self.churn_factor, bool) or not isinstance(self.churn_factor, (int, float)) or self.churn_factor <= 1:
            raise SizingError(f"experiment_sizing churn_factor must be above 1 (the ramp must grow), got {self.churn_factor!r}")
        if isinstance(self.churn_lifetime, bool) or not isinstance(self.churn_lifetime, (int, float)) or self.churn_lifetime < 0:
            raise SizingError(f"experiment_sizing churn_lifetime must be 0 or more seconds, got {self.churn_lifetime!r}")
        for name in ("churn_connections", "lifecycle_replicas", "nodes"):
            _positive(getattr(self, name), f"experiment_sizing {name}", whole=True)
        if not isinstance(self.density_steps, list):
            raise SizingError(f"experiment_sizing density_steps must be a list of {{nodes, pods_per_node}}, got {self.density_steps!r}")
        last = 0
        for i, step in enumerate(self.density_steps):
            if not isinstance(step, Mapping) or set(step) != {"nodes", "pods_per_node"}:
                raise SizingError(f"experiment_sizing density_steps[{i}] must be {{nodes, pods_per_node}}, got {step!r}")
            _positive(step["nodes"], f"experiment_sizing density_steps[{i}].nodes", whole=True)
            if not isinstance(step["pods_per_node"], int) or not 1 <= step["pods_per_node"] <= 110:
                raise SizingError(f"experiment_sizing density_steps[{i}].pods_per_node must be from 1 to 110, got {step['pods_per_node']!r}")
            pods = step["nodes"] * step["pods_per_node"]
            if pods <= last:
                raise SizingError(f"experiment_sizing density_steps[{i}]: {pods} pods, not more than the step before ({last}): steps must grow")
            last = pods


# --------------------------------------------------------------------------
# Judging one step (pure).
# --------------------------------------------------------------------------


CLIENT_BOUND = "(the client, not the control plane, was the limit)"


def churn_limits(row: Mapping[str, Any], spec: SweepSpec) -> list[str]:
    """What a churn step broke; empty: it passed. The API call SLO is the API
    server's SLI (it leaves out what the client adds); a client whose own p99
    passes the threshold while the server's holds, or whose sends fell behind
    their schedule, was the limit itself: that ends the ramp as client-bound."""
    out = []
    if row["error_ratio"] > spec.error_ratio:
        out.append(f"errors {100 * row['error_ratio']:.1f}% > {100 * spec.error_ratio:g}%")
    server = row["server_p99"]
    duration = row.get("server_duration_p99")
    if server is None or server > spec.mutating_p99:
        out.append(f"API server's mutating SLI p99 {server} s > {spec.mutating_p99:g} s")
    elif duration is not None and duration > spec.mutating_p99:
        # The SLI leaves out priority-and-fairness queueing; the request duration does not.
        out.append(f"API server's mutating request duration p99 {duration:.2f} s > {spec.mutating_p99:g} s while its SLI p99 was "
                   f"{server:.2f} s: requests queued in its priority and fairness (in-flight limits)")
    elif (row["client_p99"] or 0.0) > spec.mutating_p99:
        busy = row.get("host_busy")
        seen = f"the client saw create p99 {row['client_p99']:.2f} s while the server's SLI p99 was {server:.2f} s"
        if busy is not None and busy >= BUSY:
            out.append(f"{seen}: the machine was {100 * busy:.0f} % busy, the driver waited for the cores it shares with the control plane {CLIENT_BOUND}")
        else:
            # Not starved of CPU: the time went where the server's metrics do not look (accepting
            # and TLS, slow on a CPU-capped server) or into the client's connection pool; not told apart.
            out.append(f"{seen} and the machine was {100 * (busy or 0):.0f} % busy: the time went outside the server's handlers "
                       f"(its accept and TLS path, or the client's {spec.churn_connections} connections)")
    if (row["lag_p99"] or 0.0) > LAG_LIMIT:
        out.append(f"driver lag p99 {row['lag_p99']:.2f} s > {LAG_LIMIT:g} s {CLIENT_BOUND}")
    return out


def density_limits(step: Mapping[str, Any]) -> list[str]:
    out = []
    if step["status"] != "ok":
        out.append(f"{step['running']}/{step['pods']} pods Running in time")
    p99 = step["pod_startup_p99"]
    if p99 is None or p99 > POD_STARTUP_SLO:
        out.append(f"pod startup p99 {p99} s > {POD_STARTUP_SLO:g} s")
    if not step["api_slo_pass"]:
        out.append("an API call SLO failed: " + ", ".join(step["api_slo_failed"]))
    return out


def _usage(sampled: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: {"cpu_cores": c["cpu_cores"], "rss_peak_mib": c["rss_peak_mib"]} for name, c in sampled["components"].items()}


# --------------------------------------------------------------------------
# The measurements (real cluster).
# --------------------------------------------------------------------------


async def churn_step(kube: akube.AsyncKube, rate: float, spec: SweepSpec, index: int, cluster_dir: str,
                     groups: Mapping[str, str]) -> dict[str, Any]:
    cspec = churn.ChurnSpec(mode="open", rate=rate, lifetime=spec.churn_lifetime, duration=spec.churn_step_seconds,
                            namespaces=CHURN_NAMESPACES, connections=spec.churn_connections, timeout=30,
                            seed=7000 + index, token=f"size{index}")
    cpu0 = time.process_time()
    with procstat.Sampler(cluster_dir, groups=groups) as sampler:
        out = await churn.run(kube, cspec, sentinel=False)
    sampled = sampler.result()
    client_cpu = time.process_time() - cpu0
    s = out["summary"]
    create = s["verbs"].get("create", {})
    api = out["apiserver"] or {}
    sli = [r["p99"] or 0.0 for r in api.get("slo", []) if r["kind"] == "mutating" and r["resource"] == "configmaps"]
    duration = [r["p99"] or 0.0 for r in api.get("latency", []) if r["verb"] in ("POST", "DELETE") and r["resource"] == "configmaps"]
    return {
        "rate": rate, "achieved_rate": s["achieved_rate"], "error_ratio": s["error_ratio"], "errors": s["errors"],
        "client_p99": create.get("latency", {}).get("p99"), "lag_p99": create.get("lag", {}).get("p99"),
        "server_p99": max(sli, default=None), "server_duration_p99": max(duration, default=None), "components": _usage(sampled), "host_busy": sampled["host_busy"],
        "client_cores": round(client_cpu / sampled["window_seconds"], 3) if sampled["window_seconds"] else None,
        "error": out["error"],
    }


async def churn_ramp(kube: akube.AsyncKube, spec: SweepSpec, cluster_dir: str, groups: Mapping[str, str],
                     report: Callable[[str], None]) -> dict[str, Any]:
    steps: list[dict[str, Any]] = []
    rate, best, stopped, client_bound = spec.churn_start, None, f"reached churn_max_rate {spec.churn_max_rate:g}/s", False
    index = 0
    for ns in CHURN_NAMESPACES:
        await akube.ensure_namespace(kube, ns, {"fedbench.io/experiment": "sizing"})
    while rate <= spec.churn_max_rate:
        index += 1
        row = await churn_step(kube, rate, spec, index, cluster_dir, groups)
        row["limits"] = churn_limits(row, spec)
        row["pass"] = not row["limits"]
        steps.append(row)
        report(f"churn {rate:g}/s: achieved {row['achieved_rate']}/s, create p99 {row['client_p99']} s, server SLI p99 {row['server_p99']} s, "
               f"errors {100 * row['error_ratio']:.2f}% -> {'pass' if row['pass'] else 'limit: ' + '; '.join(row['limits'])}")
        if not row["pass"]:
            stopped = "; ".join(row["limits"])
            client_bound = all(CLIENT_BOUND in lim for lim in row["limits"])
            break
        best = row
        rate = round(rate * spec.churn_factor, 3)
    # Emptied by every step's sweep already; the cluster goes after the variant, so no wait.
    for ns in CHURN_NAMESPACES:
        await akube.delete_namespace(kube, ns, wait=0)
    return {"steps": steps, "capacity": best["rate"] if best else None, "capacity_achieved": best["achieved_rate"] if best else None,
            "stopped": stopped, "client_bound": client_bound}


async def density_ramp(kube: akube.AsyncKube, spec: SweepSpec, cluster_dir: str, groups: Mapping[str, str],
                       report: Callable[[str], None]) -> dict[str, Any]:
    from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import hollow

    steps: list[dict[str, Any]] = []
    best, stopped = None, "every step passed"
    try:
        for i, wanted in enumerate(spec.density_steps):
            report(f"density step {i + 1}/{len(spec.density_steps)}: {wanted['nodes']} hollow nodes, {wanted['pods_per_node']} pods each")
            await hollow.scale(kube, wanted["nodes"], report=report)
            dspec = density.DensitySpec(nodes=wanted["nodes"], pods_per_node=wanted["pods_per_node"], rate=spec.density_rate,
                                        namespace=f"fedbench-sizing-density-{i}", timeout=spec.density_timeout)
            with procstat.Sampler(cluster_dir, groups=groups) as sampler:
                try:
                    out = await density.run(kube, dspec, report=report)
                finally:
                    gone = await akube.delete_namespace(kube, dspec.namespace, wait=300.0)
            sampled = sampler.result()
            s = out["summary"]
            api = out["apiserver"]
            step = {
                "nodes": wanted["nodes"], "pods_per_node": wanted["pods_per_node"], "pods": dspec.pods, "running": s["running"],
                "status": out["status"], "pod_startup_p50": s["pod_startup"]["p50"], "pod_startup_p99": s["pod_startup"]["p99"],
                "pods_per_second_to_running": s["pods_per_second_to_running"], "api_slo_pass": api["slo_pass"],
                "api_slo_failed": [f"{r['verb']} {r['resource']} p99 {r['p99']} s" for r in api["slo"] if not r["pass"]],
                "components": _usage(sampled), "host_busy": sampled["host_busy"],
            }
            step["limits"] = density_limits(step) + ([] if gone else [f"namespace {dspec.namespace} still terminating after 300 s"])
            step["pass"] = not step["limits"]
            steps.append(step)
            report(f"density {dspec.pods} pods on {dspec.nodes} nodes: startup p99 {step['pod_startup_p99']} s -> "
                   + ("pass" if step["pass"] else "limit: " + "; ".join(step["limits"])))
            if not step["pass"]:
                stopped = "; ".join(step["limits"])
                break
            best = step
    finally:
        await hollow.scale(kube, 0)
    return {"steps": steps, "capacity": {"nodes": best["nodes"], "pods": best["pods"]} if best else None, "stopped": stopped}


def lifecycle_at(cluster: Mapping[str, Any], replicas: int) -> dict[str, Any]:
    """One create->ready / delete->gone of a Deployment of ``replicas`` (native)."""
    from ansible_collections.fedbench.testbed.plugins.module_utils.experiments import lifecycle

    workload = lifecycle.Workload(replicas=replicas, layout="replicas", namespace="fedbench-sizing-lifecycle", ready_timeout=120, delete_timeout=120)
    adapter = lifecycle.adapter_for("native", [lifecycle.Cluster(cluster["name"], cluster["kubeconfig"], cluster["context"], "host")])
    try:
        sample = lifecycle.run_sample(adapter, workload)
        status, error = "ok", None
    except lifecycle.LifecycleError as exc:
        sample, status, error = exc.partial or {}, "failed", str(exc)
    problem = lifecycle.cleanup_safely(adapter, workload, 120)
    headline = sample.get("headline") or {}
    return {"replicas": replicas, "status": status if not problem else "failed", "error": error or problem,
            "create_to_ready": headline.get("create_to_ready"), "delete_to_gone": headline.get("delete_to_gone")}


def run_variant(cluster: Mapping[str, Any], cluster_dir: str, spec: SweepSpec, groups: Mapping[str, str],
                report: Callable[[str], None]) -> dict[str, Any]:
    """Every capacity of one variant's (running) cluster."""

    async def go() -> tuple[dict[str, Any], dict[str, Any]]:
        async with akube.AsyncKube.from_kubeconfig(cluster["kubeconfig"], cluster["context"], connections=spec.churn_connections,
                                                   timeout=30) as kube:
            churned = await churn_ramp(kube, spec, cluster_dir, groups, report)
            dense = await density_ramp(kube, spec, cluster_dir, groups, report)
            return churned, dense

    churned, dense = asyncio.run(go())
    report(f"create->ready of {spec.lifecycle_replicas} replicas")
    return {"churn": churned, "density": dense, "lifecycle": lifecycle_at(cluster, spec.lifecycle_replicas)}


# --------------------------------------------------------------------------
# The sweep: one cluster per variant, one sample each.
# --------------------------------------------------------------------------

CLUSTER_PREFIX = "sz-"


def variant_specs(variants: list[dict[str, Any]], nodes: int) -> list[Any]:
    """Every variant's cluster spec, validated before anything starts (ports come later)."""
    from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import embedded

    out = []
    for v in variants:
        item = {"name": CLUSTER_PREFIX + v["name"], "role": "host", "nodes": nodes, "apiserver_port": 1024,
                "control_plane": v["control_plane"], "datastore": v["datastore"]}
        if v["topology"]:
            item["topology"] = v["topology"]
        try:
            out.append(embedded.parse_specs([item])[0])
        except embedded.TestbedError as exc:
            raise SizingError(f"variant {v['name']!r}: {exc}".replace(f"cluster {item['name']!r}: ", "")) from exc
    return out


def sweep_from_params(params: Mapping[str, Any], *, check_mode: bool = False, report: Callable[[str], None] = lambda _l: None) -> Any:
    from ansible_collections.fedbench.testbed.plugins.module_utils.common.runner import Outcome
    from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import embedded

    try:
        spec = SweepSpec(**(params.get("sweep") or {}))
        variants = parse_variants(params["variants"])
        specs = variant_specs(variants, spec.nodes)
        binaries = embedded.Binaries.from_mapping(params["binaries"] or {})
    except TypeError as exc:
        return Outcome(True, f"experiment_sizing: {exc}".replace("SweepSpec.__init__() got an ", ""))
    except (SizingError, embedded.TestbedError) as exc:
        return Outcome(True, str(exc))
    if check_mode:
        return Outcome(False, result={"variants": [v["name"] for v in variants]})
    bed = embedded.EmbeddedTestbed(work_dir=params["work_dir"], binaries=binaries, kube_version=params["kubernetes_version"], report=report)
    with bed.driver("sizing"):
        return _sweep(bed, spec, variants, specs, params, report)


def _sweep(bed: Any, spec: SweepSpec, variants: list[dict[str, Any]], specs: list[Any], params: Mapping[str, Any],
           report: Callable[[str], None]) -> Any:
    from dataclasses import replace

    from ansible_collections.fedbench.testbed.plugins.module_utils import results
    from ansible_collections.fedbench.testbed.plugins.module_utils.common import clock
    from ansible_collections.fedbench.testbed.plugins.module_utils.common.runner import Outcome
    from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import datastore, embedded

    kept, failed, table = [], [], []
    for index, (variant, cspec) in enumerate(zip(variants, specs)):
        report(f"variant {index + 1}/{len(variants)} {variant['name']}: starting its cluster ({variant['datastore']}, "
               f"limits {variant['control_plane'] or 'none'}, topology {variant['topology'] or 'colocated'})")
        started = clock.wall_now()
        facts = None
        sample: dict[str, Any] = {"repetition": 1, "started_at": started}
        try:
            cspec = replace(cspec, apiserver_port=embedded.free_ports(1)[0])
            (facts,), _ = bed.up([cspec])
            groups = {"postgresql": datastore.pg_name(bed.cgroup_key, cspec.name)} if cspec.datastore.kind == "kine-postgres" else {}
            measured = run_variant(facts.as_dict(), facts.capabilities["local_dir"], spec, groups, report)
            problems = [f"create->ready of {spec.lifecycle_replicas}: {measured['lifecycle']['error']}"] if measured["lifecycle"]["status"] != "ok" else []
            sample.update(status="failed" if problems else "ok", error="; ".join(problems) or None, **measured)
        except (embedded.TestbedError, Exception) as exc:  # noqa: BLE001 - a variant that breaks is kept as failed; the sweep goes on
            sample.update(status="failed", error=f"{type(exc).__name__}: {exc}" if not isinstance(exc, embedded.TestbedError) else str(exc))
        finally:
            try:
                bed.down([cspec.name])
            except Exception as exc:  # noqa: BLE001
                sample["cleanup_error"] = str(exc)
        sample["variant"] = {**variant, "in_force": facts.control_plane if facts else None, "datastore_facts": facts.datastore if facts else None}
        envelope = results.envelope(run_id=params["run_id"], experiment="sizing", framework="native",
                                    testbed=[facts.as_dict()] if facts else [], point=variant["name"],
                                    parameters={"variant": variant["name"], "sweep": {k: getattr(spec, k) for k in spec.__dataclass_fields__}},
                                    sample=sample)
        try:
            kept.append(str(results.keep(params["results_dir"], envelope)))
        except results.ResultsError as exc:
            return Outcome(True, f"sizing variant {variant['name']}: {exc}", {"paths": kept})
        if sample["status"] != "ok":
            failed.append(f"{variant['name']}: {sample['error']}")
        churned = sample.get("churn") or {}
        dense = (sample.get("density") or {}).get("capacity") or {}
        row = {"variant": variant["name"], "status": sample["status"], "churn_capacity": churned.get("capacity"),
               "client_bound": churned.get("client_bound"), "density_pods": dense.get("pods"), "density_nodes": dense.get("nodes"),
               "create_to_ready": (sample.get("lifecycle") or {}).get("create_to_ready")}
        table.append(row)
        report(f"variant {variant['name']}: churn capacity {row['churn_capacity']}/s, density {row['density_pods']} pods on "
               f"{row['density_nodes']} nodes, create->ready {row['create_to_ready']} s ({sample['status']})")
    result = {"variants": table, "paths": kept}
    if failed:
        return Outcome(True, "sizing: variant(s) failed (their samples are kept): " + "; ".join(failed), result)
    return Outcome(False, result=result)
