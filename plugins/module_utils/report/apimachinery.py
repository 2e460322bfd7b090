# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""API machinery in results and the report: ConfigMap churn, the informer
beside it, density on hollow nodes; their summaries, tables and plots, and the
API call latency SLO table they share."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

from ansible_collections.fedbench.testbed.plugins.module_utils.report.plots import pyplot, save
from ansible_collections.fedbench.testbed.plugins.module_utils.report.spec import HIGHER, LOWER, Experiment, Point, Table, label, num, over_samples, slo_table

CHURN_METRICS = {
    "achieved_rate": "summary.achieved_rate",
    "rate_accuracy": "summary.rate_accuracy",
    "error_ratio": "summary.error_ratio",
    "create.p50": "summary.verbs.create.latency.p50",
    "create.p99": "summary.verbs.create.latency.p99",
    "update.p99": "summary.verbs.update.latency.p99",
    "delete.p99": "summary.verbs.delete.latency.p99",
}

INFORMER_METRICS = {
    "notify.added.p50": "summary.notify_latency.ADDED.p50",
    "notify.added.p99": "summary.notify_latency.ADDED.p99",
    "notify.modified.p99": "summary.notify_latency.MODIFIED.p99",
    "queue_wait.p99": "summary.queue_wait.p99",
}

DENSITY_METRICS = {
    "pod_startup.p50": "summary.pod_startup.p50",
    "pod_startup.p90": "summary.pod_startup.p90",
    "pod_startup.p99": "summary.pod_startup.p99",
    "scheduling_throughput": "summary.scheduling_throughput.mean",
    "pods_per_second_to_running": "summary.pods_per_second_to_running",
}


def point(parameters: Mapping[str, Any]) -> str:
    return str(parameters.get("point"))


def order(parameters: Mapping[str, Any]) -> tuple:
    return (str(parameters.get("mode") or ""), float(parameters.get("rate") or 0), int(parameters.get("workers") or 0),
            int(parameters.get("nodes") or 0), str(parameters.get("point")))


def churn_markdown(points: list[Point]) -> list[str]:
    lines: list[str] = []
    if not points:
        return lines
    lines += [
        "",
        "## API machinery: ConfigMap churn",
        "",
        "Open loop: *drawn* is the rate of the Poisson arrivals actually drawn for the window "
        "(they scatter around the requested rate by 1/sqrt(rate × duration)); accuracy is achieved / requested.",
        "",
        "| point | requested / s | drawn / s | achieved / s | accuracy | create p50 / p99 (s) | update p99 | delete p99 | errors | API SLOs |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- | --- | --- | --- |",
    ]
    for point in points:
        for sample in point["samples"]:
            s = sample.get("summary") or {}
            verbs = s.get("verbs") or {}
            lat = lambda v, q: (verbs.get(v) or {}).get("latency", {}).get(q)  # noqa: E731
            errors = ", ".join(f"{k} {n}" for k, n in sorted((s.get("errors") or {}).items())) or "–"
            slo = sample.get("apiserver") or {}
            lines.append(
                f"| {point['parameters'].get('point')} r{sample.get('repetition')}"
                f"{'' if sample.get('status') == 'ok' else ' ' + str(sample.get('status')).upper()} | {num(s.get('requested_rate'), 1)} "
                f"| {num(s.get('scheduled_rate'), 1)} | {num(s.get('achieved_rate'), 1)} | {num(s.get('rate_accuracy'), 3)} "
                f"| {num(lat('create', 'p50'), 4)} / {num(lat('create', 'p99'), 4)} | {num(lat('update', 'p99'), 4)} "
                f"| {num(lat('delete', 'p99'), 4)} | {errors} | {'pass' if slo.get('slo_pass') else 'FAIL' if slo else '–'} |"
            )
    return lines


def informer_markdown(points: list[Point]) -> list[str]:
    lines: list[str] = []
    if not points:
        return lines
    lines += [
        "",
        "## API machinery: informer beside the churn",
        "",
        "| point | objects seen | events added / modified / deleted | notify p50 / p99 (s) | queue wait p99 (s) | coalesced |",
        "| --- | ---: | --- | --- | --- | ---: |",
    ]
    for point in points:
        for sample in point["samples"]:
            s = sample.get("summary") or {}
            ev = s.get("events") or {}
            added = (s.get("notify_latency") or {}).get("ADDED") or {}
            lines.append(
                f"| {point['parameters'].get('point')} r{sample.get('repetition')} | {s.get('objects_seen')} "
                f"| {ev.get('ADDED')} / {ev.get('MODIFIED')} / {ev.get('DELETED')} | {num(added.get('p50'), 4)} / {num(added.get('p99'), 4)} "
                f"| {num((s.get('queue_wait') or {}).get('p99'), 5)} | {s.get('coalesced')} |"
            )
    return lines


def density_markdown(points: list[Point]) -> list[str]:
    lines: list[str] = []
    if not points:
        return lines
    lines += [
        "",
        "## API machinery: density on hollow nodes",
        "",
        "| nodes × pods/node | pods Running | pod startup p50 / p90 / p99 (s) | SLO 5 s | scheduling pods/s | API SLOs | busiest process |",
        "| --- | ---: | --- | --- | ---: | --- | --- |",
    ]
    for point in points:
        p = point["parameters"]
        for sample in point["samples"]:
            s = sample.get("summary") or {}
            ps = s.get("pod_startup") or {}
            proc = sample.get("processes") or {}
            busiest = proc.get("busiest")
            busy = f"{busiest} ({proc['components'][busiest]['cpu_cores']:.2f} cores)" if busiest else "–"
            lines.append(
                f"| {p.get('nodes')} × {p.get('pods_per_node')} | {s.get('running')} / {s.get('pods')} "
                f"| {num(ps.get('p50'), 3)} / {num(ps.get('p90'), 3)} / {num(ps.get('p99'), 3)} "
                f"| {'pass' if s.get('pod_startup_pass') else 'FAIL'} | {num((s.get('scheduling_throughput') or {}).get('mean'), 1)} "
                f"| {'pass' if (sample.get('apiserver') or {}).get('slo_pass') else 'FAIL'} | {busy} |"
            )
    return lines


def plot_apimachinery(points: list[Mapping[str, Any]], out: Path) -> list[dict[str, str]]:
    """Churn: achieved against requested rate, latency per verb (with the informer's); density: pod startup."""
    plt = pyplot()
    images = []
    churn = [p for p in points if p["experiment"] == "churn"]
    informer = {label(p): p for p in points if p["experiment"] == "informer"}
    density = [p for p in points if p["experiment"] == "density"]
    opened = sorted((p for p in churn if p["parameters"].get("mode") == "open"), key=lambda p: p["parameters"]["rate"])
    if opened:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        req = [p["parameters"]["rate"] for p in opened]
        ach = [[s["summary"]["achieved_rate"] for s in p["samples"] if s.get("status") == "ok"] for p in opened]
        drawn = [[s["summary"].get("scheduled_rate") for s in p["samples"] if s.get("status") == "ok"] for p in opened]
        mean = lambda v: sum(v) / len(v) if v else math.nan  # noqa: E731
        ax.plot(req, req, color="grey", linestyle="--", label="achieved = requested")
        ax.plot(req, [mean(d) for d in drawn], marker="x", linestyle="none", label="drawn (Poisson arrivals in the window)")
        ax.plot(req, [mean(a) for a in ach], marker="o", label="achieved (ConfigMaps created per second)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("requested rate, ConfigMaps per second")
        ax.set_ylabel("rate, per second")
        ax.set_title("Open-loop churn: achieved against requested rate")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        images.append(save(plt, fig, out, "churn-rate.png", "Churn: achieved against requested rate (open loop)"))
    if churn:
        groups = []
        for p in churn:
            sample = next((s for s in p["samples"] if s.get("status") == "ok"), None)
            if not sample:
                continue
            for verb, v in sample["summary"]["verbs"].items():
                groups.append((f"{label(p)}\n{verb}", v["latency"]))
            inf = informer.get(label(p))
            if inf and inf["samples"][0].get("summary"):
                groups.append((f"{label(p)}\nnotify", inf["samples"][0]["summary"]["notify_latency"]["ADDED"]))
        if groups:
            fig, ax = plt.subplots(figsize=(max(7, 0.55 * len(groups)), 4.6))
            width = 0.27
            for k, q in enumerate(("p50", "p90", "p99")):
                ax.bar([i + (k - 1) * width for i in range(len(groups))], [(g[1].get(q) or math.nan) * 1000 for g in groups], width, label=q)
            ax.set_xticks(range(len(groups)))
            ax.set_xticklabels([g[0] for g in groups], fontsize=6.5, rotation=60, ha="right")
            ax.set_ylabel("milliseconds")
            ax.set_title("Churn: client latency per verb, and the informer's notification latency")
            ax.legend(fontsize=8)
            ax.grid(True, axis="y", alpha=0.3)
            images.append(save(plt, fig, out, "churn-latency.png", "Churn: latency percentiles per verb (client) and informer notification"))
    if density:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        labels, width = [], 0.27
        for i, p in enumerate(density):
            sample = p["samples"][0]
            st = sample.get("summary", {}).get("pod_startup", {})
            labels.append(f"{p['parameters'].get('nodes')} nodes × {p['parameters'].get('pods_per_node')}")
            for k, q in enumerate(("p50", "p90", "p99")):
                ax.bar(i + (k - 1) * width, st.get(q) or math.nan, width, color=f"C{k}", label=q if i == 0 else None)
        ax.axhline(5.0, color="red", linestyle="--", label="SLO p99 ≤ 5 s")
        ax.set_yscale("log")
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, fontsize=8)
        ax.set_ylabel("pod startup (created → Running), seconds")
        ax.set_title("Density on hollow nodes: pod startup latency")
        ax.legend(fontsize=8)
        images.append(save(plt, fig, out, "density-startup.png", "Density: pod startup latency against the 5 s SLO"))
    return images


def density_rows(points: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for p in points:
        if p["experiment"] != "density":
            continue
        for sample in p["samples"]:
            s = sample.get("summary") or {}
            proc = sample.get("processes") or {}
            busiest = proc.get("busiest")
            rows.append({
                "point": label(p), "repetition": sample.get("repetition"), "nodes": p["parameters"].get("nodes"),
                "pods": s.get("pods"), "running": s.get("running"), "startup": s.get("pod_startup") or {},
                "startup_pass": s.get("pod_startup_pass"), "throughput": (s.get("scheduling_throughput") or {}),
                "to_running": s.get("pods_per_second_to_running"), "api_pass": (sample.get("apiserver") or {}).get("slo_pass"),
                "busiest": f"{busiest} ({proc['components'][busiest]['cpu_cores']} cores)" if busiest else "–",
                "host_busy": proc.get("host_busy"),
            })
    return rows


DENSITY_COLUMNS = ("point", "rep", "pods Running", "startup p50", "p90", "p99", "SLO 5 s", "scheduling pods/s (mean / max)",
                   "pods/s to Running", "API SLOs", "busiest process", "machine busy")


def density_table(points: list[Point]) -> Table:
    rows = tuple(
        (r["point"], str(r["repetition"]), f"{r['running']} / {r['pods']}", str(r["startup"].get("p50")), str(r["startup"].get("p90")),
         str(r["startup"].get("p99")), "pass" if r["startup_pass"] else "FAIL",
         f"{r['throughput'].get('mean')} / {r['throughput'].get('max')}", str(r["to_running"]), "pass" if r["api_pass"] else "FAIL",
         r["busiest"], f"{round(r['host_busy'] * 100)} %" if r["host_busy"] is not None else "–")
        for r in density_rows(points)
    )
    return Table("density", "Density on hollow nodes", DENSITY_COLUMNS, rows)


SECTION = "API machinery"
EXPERIMENTS = [
    Experiment(
        name="churn",
        section=SECTION,
        point=point,
        order=order,
        summarize=over_samples(CHURN_METRICS),
        headline={"achieved_rate": HIGHER, "rate_accuracy": HIGHER, "error_ratio": LOWER, "create.p50": LOWER, "create.p99": LOWER,
                  "update.p99": LOWER, "delete.p99": LOWER},
        markdown=churn_markdown,
        # The latency plot puts the informer's notification latency beside the churn's verbs.
        plots=lambda points, everything, out: plot_apimachinery(points + [p for p in everything if p["experiment"] == "informer"], out),
        tables=lambda points: [slo_table(points)],
    ),
    Experiment(
        name="informer",
        section=SECTION,
        point=point,
        order=order,
        summarize=over_samples(INFORMER_METRICS),
        headline={"notify.added.p50": LOWER, "notify.added.p99": LOWER, "notify.modified.p99": LOWER, "queue_wait.p99": LOWER},
        markdown=informer_markdown,
    ),
    Experiment(
        name="density",
        section=SECTION,
        point=point,
        order=order,
        summarize=over_samples(DENSITY_METRICS),
        headline={"pod_startup.p50": LOWER, "pod_startup.p90": LOWER, "pod_startup.p99": LOWER, "scheduling_throughput": HIGHER,
                  "pods_per_second_to_running": HIGHER},
        markdown=density_markdown,
        plots=lambda points, everything, out: plot_apimachinery(points, out),
        tables=lambda points: [density_table(points), slo_table(points)],
    ),
]
