# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deployment lifecycle in results and the report: summaries, table, plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ansible_collections.fedbench.testbed.plugins.module_utils.measure import stats
from ansible_collections.fedbench.testbed.plugins.module_utils.report.plots import pyplot, save
from ansible_collections.fedbench.testbed.plugins.module_utils.report.spec import LOWER, Experiment, Point, Table, ok_samples, slo_table

STACK = ("pod_created_last", "pod_scheduled_last", "pod_running_last", "pod_ready_last", "ready")


def point(parameters: Mapping[str, Any]) -> str:
    """``replicas=4`` (one Deployment of 4) or ``deployments=4`` (4 of one)."""
    return parameters.get("point") or f"{parameters.get('layout')}={parameters.get('replicas')}"


def order(parameters: Mapping[str, Any]) -> tuple:
    return (str(parameters.get("layout")), int(parameters.get("replicas") or 0))


def lifecycle_summaries(samples: list[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Summaries over the finished (status ok) samples of one point."""
    ok = ok_samples(samples)
    out: dict[str, dict[str, Any]] = {}
    for name in ("create_to_ready", "delete_to_gone"):
        out[name] = stats.summarize(s["headline"].get(name) for s in ok)
    phase_names = list(ok[0]["phases"]) if ok else []
    for name in phase_names:
        out[f"phase.{name}"] = stats.summarize(s["phases"].get(name) for s in ok)
    for metric in ("created_to_scheduled", "created_to_running", "created_to_ready"):
        out[f"pod.{metric}"] = stats.summarize(p.get(metric) for s in ok for p in s.get("pods", []))
    # What the instrument cost: the measuring process's CPU over each sample.
    out["instrument.cpu_seconds"] = stats.summarize((s.get("instrument") or {}).get("cpu_seconds") for s in ok)
    return out


def _fmt(summary: Mapping[str, Any]) -> str:
    if not summary or not summary.get("count"):
        return "–"
    return f"{summary['mean']:.3f} ± {summary['stdev']:.3f} (p50 {summary['p50']:.3f}, p90 {summary['p90']:.3f}, n={summary['count']})"


def _mean(summary: Mapping[str, Any]) -> str:
    return f"{summary['mean']:.3f}" if summary and summary.get("count") else "–"


def tables(points: list[Point]) -> list[Table]:
    """The API call SLOs of the cluster each sample was created on, where samples measured them."""
    table = slo_table(points, "lifecycle-slo")
    return [table] if table.rows else []


def markdown(points: list[Point]) -> list[str]:
    if not points:
        return []
    lines = [
        "",
        "## Deployment lifecycle",
        "",
        "Headline figures in seconds: mean ± stdev over the repetitions that finished (p50, p90, n).",
        "",
        "| experiment | framework | testbed | layout | replicas | create → ready | delete → gone | ok / samples | instrument CPU s |",
        "| --- | --- | --- | --- | ---: | --- | --- | --- | ---: |",
    ]
    for point in points:
        p, s = point["parameters"], point["summaries"]
        lines.append(
            f"| lifecycle | {point['framework']} | {point['testbed'].get('kind')} | {p.get('layout')} | {p.get('replicas')} "
            f"| {_fmt(s.get('create_to_ready', {}))} | {_fmt(s.get('delete_to_gone', {}))} "
            f"| {point['counts']['ok']} / {point['counts']['samples']} "
            f"| {_mean(s.get('instrument.cpu_seconds', {}))} |"
        )
    return lines


def _lifecycle_series(points: list[Mapping[str, Any]], metric: str) -> dict[tuple[str, str], list[tuple[int, dict]]]:
    series: dict[tuple[str, str], list[tuple[int, dict]]] = {}
    for p in points:
        summary = p["summaries"].get(metric)
        if summary and summary.get("count"):
            series.setdefault((p["framework"], p["parameters"].get("layout", "")), []).append((p["parameters"]["replicas"], summary))
    return {k: sorted(v, key=lambda x: x[0]) for k, v in series.items()}


def plot_lifecycle(points: list[Mapping[str, Any]], out: Path) -> list[dict[str, str]]:
    plt = pyplot()
    images = []
    for metric, title in (("create_to_ready", "create → ready"), ("delete_to_gone", "delete → gone")):
        series = _lifecycle_series(points, metric)
        if not series:
            continue
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for (framework, layout), values in series.items():
            xs = [x for x, _ in values]
            mean = [s["mean"] for _, s in values]
            std = [s["stdev"] or 0 for _, s in values]
            ax.errorbar(xs, mean, yerr=std, marker="o", capsize=3, label=f"{framework}, {layout} (mean ± stdev)")
            ax.fill_between(xs, [s["p50"] for _, s in values], [s["p90"] for _, s in values], alpha=0.2)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("replicas (log2)")
        ax.set_ylabel("seconds")
        ax.set_title(f"{title}; band: p50–p90")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        images.append(save(plt, fig, out, f"lifecycle-{metric}.png", f"Lifecycle: {title} against replicas"))

    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for p in points:
        groups.setdefault((p["framework"], p["parameters"].get("layout", "")), []).append(p)
    for (framework, layout), pts in sorted(groups.items()):
        pts = sorted(pts, key=lambda p: p["parameters"]["replicas"])
        fig, ax = plt.subplots(figsize=(7, 4.2))
        labels = [str(p["parameters"]["replicas"]) for p in pts]
        bottom = [0.0] * len(pts)
        previous = [0.0] * len(pts)
        for phase in STACK:
            means = [(p["summaries"].get(f"phase.{phase}") or {}).get("mean") or 0.0 for p in pts]
            step = [max(0.0, m - prev) for m, prev in zip(means, previous)]
            ax.bar(labels, step, bottom=bottom, label=phase.replace("_last", " (last pod)"))
            bottom = [b + s for b, s in zip(bottom, step)]
            previous = [max(m, prev) for m, prev in zip(means, previous)]
        ax.set_xlabel("replicas")
        ax.set_ylabel("seconds after create_sent (mean)")
        ax.set_title(f"Phase breakdown: {framework}, {layout}")
        ax.legend(fontsize=7)
        images.append(save(plt, fig, out, f"lifecycle-phases-{framework}-{layout}.png", f"Lifecycle phases, stacked: {framework}, {layout}"))

    fig, ax = plt.subplots(figsize=(7, 4.2))
    drawn = False
    for framework in sorted({p["framework"] for p in points}):
        values = sorted(
            pod["created_to_running"]
            for p in points if p["framework"] == framework
            for s in p["samples"] if s.get("status") == "ok"
            for pod in s.get("pods", []) if pod.get("created_to_running") is not None
        )
        if values:
            ax.step(values, [(i + 1) / len(values) for i in range(len(values))], where="post", label=f"{framework} (n={len(values)})")
            drawn = True
    if drawn:
        ax.axvline(5.0, color="grey", linestyle=":", label="SLO: 5 s")
        ax.set_xscale("log")
        ax.set_xlabel("pod created → running, seconds (log)")
        ax.set_ylabel("fraction of pods")
        ax.set_title("Per-pod startup latency, CDF")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        images.append(save(plt, fig, out, "lifecycle-pod-startup-cdf.png", "Per-pod startup latency (created → running), CDF"))
    else:
        plt.close(fig)
    return images


def plot_beside(runs: list[tuple[str, list[Mapping[str, Any]]]], out: Path, prefix: str) -> list[dict[str, str]]:
    """Two (or more) runs' lifecycles in the same plots, each series labelled by its run
    (e.g. the embedded testbed's simulated pods beside kind's real ones, for the same matrix)."""
    plt = pyplot()
    images = []
    for metric, title in (("create_to_ready", "create → ready"), ("pod.created_to_running", "pod created → running (mean over pods)")):
        fig, ax = plt.subplots(figsize=(7.5, 4.4))
        drawn = False
        for label, points in runs:
            for (framework, layout), values in _lifecycle_series(points, metric).items():
                ax.errorbar([x for x, _ in values], [v["mean"] for _, v in values], yerr=[v["stdev"] or 0 for _, v in values],
                            marker="o", capsize=3, label=f"{label}: {framework}, {layout}")
                drawn = True
        if not drawn:
            plt.close(fig)
            continue
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")  # two testbeds can differ by orders of magnitude
        ax.set_xlabel("replicas (log2)")
        ax.set_ylabel("seconds (mean ± stdev, log)")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
        images.append(save(plt, fig, out, f"{prefix}-{metric.replace('.', '-')}.png", f"Lifecycle {title}, runs beside each other"))
    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    drawn = False
    for label, points in runs:
        values = sorted(pod["created_to_running"] for p in points for s in p["samples"] if s.get("status") == "ok"
                        for pod in s.get("pods", []) if pod.get("created_to_running") is not None)
        if values:
            ax.step(values, [(i + 1) / len(values) for i in range(len(values))], where="post", label=f"{label} (n={len(values)})")
            drawn = True
    if drawn:
        ax.axvline(5.0, color="grey", linestyle=":", label="SLO: 5 s")
        ax.set_xscale("log")
        ax.set_xlabel("pod created → running, seconds (log)")
        ax.set_ylabel("fraction of pods")
        ax.set_title("Per-pod startup latency, CDF, every framework")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        images.append(save(plt, fig, out, f"{prefix}-pod-startup-cdf.png", "Per-pod startup (created → running), runs beside each other"))
    else:
        plt.close(fig)
    return images


EXPERIMENTS = [
    Experiment(
        name="lifecycle",
        section="Lifecycle",
        point=point,
        order=order,
        summarize=lifecycle_summaries,
        headline={"create_to_ready": LOWER, "delete_to_gone": LOWER, "pod.created_to_running": LOWER},
        markdown=markdown,
        plots=lambda points, everything, out: plot_lifecycle(points, out),
        tables=tables,
        beside=plot_beside,
    )
]
