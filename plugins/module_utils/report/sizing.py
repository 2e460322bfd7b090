# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The control-plane sizing sweep in results, the summary and the report:
capacity per variant, drawn against the cores and memory each component had,
per datastore, and the calculator's answer for a reference target from this
run's own measurements."""

from __future__ import annotations

from typing import Any, Mapping

from ansible_collections.fedbench.testbed.plugins.module_utils.experiments import sizing_fit
from ansible_collections.fedbench.testbed.plugins.module_utils.report import plots
from ansible_collections.fedbench.testbed.plugins.module_utils.report.spec import HIGHER, LOWER, Experiment, Point, Table, over_samples

SECTION = "Control-plane sizing"
# The calculator's reference target in the report (the issue's: a large cluster).
REFERENCE = {"nodes": 1000, "pods": 30000, "churn_rate": 100.0}
METRICS = {"churn_capacity": "churn.capacity", "density_pods": "density.capacity.pods", "create_to_ready": "lifecycle.create_to_ready"}


def _limits(variant: Mapping[str, Any]) -> str:
    in_force = variant.get("in_force") or {}
    parts = []
    for comp, lim in in_force.items():
        bits = [f"{lim['cpus']:g} cpu" if lim.get("cpus") else "", f"{lim['memory_bytes'] / 2**20:.0f} MiB" if lim.get("memory_bytes") else "",
                f"cpus {lim['cpuset']}" if lim.get("cpuset") else ""]
        parts.append(f"{comp} " + ", ".join(b for b in bits if b))
    return "; ".join(parts) or "none"


def _at_limit(sample: Mapping[str, Any]) -> str:
    """Who was busiest in the churn step that broke a limit (or the last step)."""
    steps = (sample.get("churn") or {}).get("steps") or []
    if not steps:
        return "–"
    comps = steps[-1].get("components") or {}
    if not comps:
        return "–"
    name = max(comps, key=lambda c: comps[c].get("cpu_cores") or 0)
    return f"{name} {comps[name]['cpu_cores']:.2f} cores, client {steps[-1].get('client_cores')}, machine {round(100 * (steps[-1].get('host_busy') or 0))} %"


def rows(points: list[Point]) -> list[tuple[str, ...]]:
    out = []
    for p in points:
        for s in p["samples"]:
            v = s.get("variant") or {}
            churned = s.get("churn") or {}
            cap = churned.get("capacity")
            dense = (s.get("density") or {}).get("capacity") or {}
            life = s.get("lifecycle") or {}
            out.append((
                str(v.get("name")), str(v.get("datastore")), str(v.get("topology") or "colocated"), _limits(v),
                "FAIL: " + str(s.get("error")) if s.get("status") != "ok" else "ok",
                ("–" if cap is None else f"{cap:g}" + (" (client-bound: at least)" if churned.get("client_bound") else "")),
                str(churned.get("stopped") or "–"),
                f"{dense['pods']} pods / {dense['nodes']} nodes" if dense else "–",
                "–" if life.get("create_to_ready") is None else f"{life['create_to_ready']:.3f}",
                _at_limit(s),
            ))
    return out


COLUMNS = ("variant", "datastore", "topology", "limits (read back)", "status", "churn capacity /s", "ramp stopped by",
           "density capacity", f"create→ready s", "at the limit: busiest, client cores, machine busy")


def markdown(points: list[Point]) -> list[str]:
    if not points:
        return []
    lines = ["", "## Control-plane sizing", "", "| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += ["| " + " | ".join(r) + " |" for r in rows(points)]
    lines += ["", "```", *answer_lines(points), "```"]
    return lines


def _samples(points: list[Point]) -> list[dict[str, Any]]:
    return sizing_fit.sizing_samples([{"results": points}])


def answer_lines(points: list[Point]) -> list[str]:
    samples = _samples(points)
    stores = sorted({(s.get("variant") or {}).get("datastore") or "etcd" for s in samples})
    lines = []
    for store in stores or ["etcd"]:
        target = sizing_fit.Target(datastore=store, **REFERENCE)
        try:
            lines += ["fedbench-size " + f"--nodes {target.nodes} --pods {target.pods} --churn-rate {target.churn_rate:g} --datastore {store}",
                      *sizing_fit.render(sizing_fit.recommend(samples, target)), ""]
        except sizing_fit.FitError as exc:
            lines += [f"fedbench-size on {store}: {exc}", ""]
    return lines


def tables(points: list[Point]) -> list[Table]:
    if not points:
        return []
    return [
        Table("sizing", "Capacity per control-plane variant", COLUMNS, tuple(rows(points)),
              "Churn: the highest open-loop ConfigMap rate whose steps kept failed operations ≤ 1 % and the API server's mutating SLI "
              "p99 ≤ 1 s; client-bound means the driver, not the control plane, stopped the ramp. Density: the largest hollow-node step "
              "inside the pod-startup (p99 ≤ 5 s) and API SLOs. Limits are read back from the cgroup files."),
        Table("sizing-answer", f"Calculator: {REFERENCE['nodes']} nodes, {REFERENCE['pods']} pods, {REFERENCE['churn_rate']:g} ConfigMaps/s",
              ("answer",), tuple((line,) for line in answer_lines(points)),
              "Fitted from this run's measured steps only (bin/fedbench-size gives the same for any target and any runs); * marks an "
              "extrapolation beyond the measured range."),
    ]


def plot(points: list[Point], everything: list[Point], out: Any) -> list[dict[str, str]]:
    samples = _samples(points)
    if not samples:
        return []
    plt = plots.pyplot()
    images = []
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for store in sorted({(s.get("variant") or {}).get("datastore") or "etcd" for s in samples}):
        pts = sorted(sizing_fit.capacity_points(samples, sizing_fit.Target(nodes=0, pods=0, churn_rate=0, datastore=store)),
                     key=lambda p: p["apiserver_cores"] or 0)
        if pts:
            ax.plot([p["apiserver_cores"] for p in pts], [p["capacity"] for p in pts], marker="o", label=store)
            for p in pts:
                ax.annotate(p["variant"], (p["apiserver_cores"], p["capacity"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("kube-apiserver CPU (cores: quota, CPU set or the machine)")
    ax.set_ylabel("churn capacity (ConfigMaps/s inside the SLOs)")
    ax.set_ylim(bottom=0)
    ax.legend(title="datastore")
    images.append(plots.save(plt, fig, out, "sizing-capacity.png", "Churn capacity against kube-apiserver CPU, per datastore"))
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for s in samples:
        steps = [st for st in (s.get("density") or {}).get("steps", []) if st.get("components")]
        for comp in ("kube-apiserver", "etcd"):
            xs = [st["pods"] for st in steps if comp in st["components"]]
            if xs:
                ax.plot(xs, [st["components"][comp]["rss_peak_mib"] for st in steps if comp in st["components"]], marker=".",
                        label=f"{comp} ({s['variant']['name']})")
    ax.set_xlabel("pods on hollow nodes")
    ax.set_ylabel("peak resident memory (MiB)")
    ax.legend(fontsize=7)
    images.append(plots.save(plt, fig, out, "sizing-memory.png", "Peak memory of kube-apiserver and the datastore against pods, per variant"))
    return images


EXPERIMENTS = [
    Experiment(
        name="sizing",
        section=SECTION,
        point=lambda parameters: str(parameters.get("point")),
        order=lambda parameters: (str(parameters.get("point")),),
        summarize=over_samples(METRICS),
        headline={"churn_capacity": HIGHER, "density_pods": HIGHER, "create_to_ready": LOWER},
        markdown=markdown,
        plots=plot,
        tables=tables,
    ),
]
