# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run's report (one self-contained HTML page with PNG plots beside it)
and the comparison of two runs.

:func:`render` reads ``results.json`` (validated against the schema first: a
file that does not fit gets a message, not a traceback), draws the plots with
matplotlib's Agg backend into ``report/`` and writes ``report.html`` from a
Jinja2 template. Every number in the page is taken from ``results.json`` as
it is (the headline table prints the stored summaries, rounded as stored).

:func:`compare` puts every headline figure of run A beside run B's. A change
counts as a regression or an improvement only when it exceeds the noise the
repetitions measured: twice the standard error of the difference of the two
means, ``2·sqrt(sA²/nA + sB²/nB)``; otherwise it reads "within noise".
"""

from __future__ import annotations

import html
import json
import math
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from ansible_collections.fedbench.testbed.plugins.module_utils import results

HEADLINE_METRICS = {
    "lifecycle": ("create_to_ready", "delete_to_gone", "pod.created_to_running"),
    "burst": ("latency", "local_share", "success_ratio"),
    "churn": ("achieved_rate", "rate_accuracy", "error_ratio", "create.p50", "create.p99", "update.p99", "delete.p99"),
    "informer": ("notify.added.p50", "notify.added.p99", "notify.modified.p99", "queue_wait.p99"),
    "density": ("pod_startup.p50", "pod_startup.p90", "pod_startup.p99", "scheduling_throughput", "pods_per_second_to_running"),
}
# Which direction is worse: for times and error ratios, up; for rates, shares and throughput, down.
LOWER_IS_BETTER = {
    "create_to_ready", "delete_to_gone", "pod.created_to_running", "latency",
    "error_ratio", "create.p50", "create.p99", "update.p99", "delete.p99",
    "notify.added.p50", "notify.added.p99", "notify.modified.p99", "queue_wait.p99",
    "pod_startup.p50", "pod_startup.p90", "pod_startup.p99",
}
STACK = ("pod_created_last", "pod_scheduled_last", "pod_running_last", "pod_ready_last", "ready")


def load(results_json: str | Path, schema: str | Path) -> dict[str, Any]:
    path = Path(results_json)
    try:
        document = json.loads(path.read_text())
    except OSError as exc:
        raise results.ResultsError(f"cannot read {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise results.ResultsError(f"{path} is not valid JSON: {exc}") from exc
    try:
        results.validate(document, schema)
    except results.ResultsError as exc:
        raise results.ResultsError(f"{path}: {exc}") from exc
    return document


# --------------------------------------------------------------------------
# Plots.
# --------------------------------------------------------------------------


def _save(plt: Any, fig: Any, out: Path, name: str, title: str) -> dict[str, str]:
    """Write one figure into the report's folder and close it; returns its entry for the page."""
    fig.tight_layout()
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    return {"file": name, "title": title}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _lifecycle_series(points: list[Mapping[str, Any]], metric: str) -> dict[tuple[str, str], list[tuple[int, dict]]]:
    series: dict[tuple[str, str], list[tuple[int, dict]]] = {}
    for p in points:
        summary = p["summaries"].get(metric)
        if summary and summary.get("count"):
            series.setdefault((p["framework"], p["parameters"].get("layout", "")), []).append((p["parameters"]["replicas"], summary))
    return {k: sorted(v, key=lambda x: x[0]) for k, v in series.items()}


def plot_lifecycle(points: list[Mapping[str, Any]], out: Path) -> list[dict[str, str]]:
    plt = _plt()
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
        images.append(_save(plt, fig, out, f"lifecycle-{metric}.png", f"Lifecycle: {title} against replicas"))

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
        images.append(_save(plt, fig, out, f"lifecycle-phases-{framework}-{layout}.png", f"Lifecycle phases, stacked: {framework}, {layout}"))

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
        images.append(_save(plt, fig, out, "lifecycle-pod-startup-cdf.png", "Per-pod startup latency (created → running), CDF"))
    else:
        plt.close(fig)
    return images


def plot_burst(points: list[Mapping[str, Any]], out: Path) -> list[dict[str, str]]:
    plt = _plt()
    images = []
    for i, p in enumerate(points):
        sample = p["samples"][0]
        slots = sample.get("slots", [])
        if not slots:
            continue
        xs = [s["slot"] for s in slots]
        clusters = sorted({c for s in slots for c in s["served_by"]})
        fig, ax = plt.subplots(figsize=(7, 4.2))
        bottom = [0] * len(slots)
        for c in clusters:
            ys = [s["served_by"].get(c, 0) for s in slots]
            ax.bar(xs, ys, bottom=bottom, label=f"served by {c}")
            bottom = [b + y for b, y in zip(bottom, ys)]
        errors = [s["requests"] - s["successes"] for s in slots]
        ax.bar(xs, errors, bottom=bottom, label="errors", color="lightgrey", hatch="//")
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("slot")
        ax.set_ylabel("requests")
        ax.set_title(f"Burst ({p['framework']}): who served each slot; local is {p['parameters'].get('local_cluster')}")
        ax.legend(fontsize=8)
        images.append(_save(plt, fig, out, f"burst-share-{i}.png", f"Burst, {p['framework']}: requests per slot by the cluster that served them"))

        fig, ax = plt.subplots(figsize=(7, 4.2))
        for q in ("p50", "p90", "p99", "max"):
            ax.plot(xs, [(s["latency"].get(q) if s["latency"].get("count") else math.nan) for s in slots], marker=".", label=q)
        ax.set_xlabel("slot")
        ax.set_ylabel("latency, seconds (successful requests)")
        ax.set_title(f"Burst ({p['framework']}): latency percentiles per slot")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        images.append(_save(plt, fig, out, f"burst-latency-{i}.png", f"Burst, {p['framework']}: latency percentiles per slot"))
    return images


def _point_label(p: Mapping[str, Any]) -> str:
    return str(p["parameters"].get("point") or p["parameters"].get("layout"))


def plot_apimachinery(points: list[Mapping[str, Any]], out: Path) -> list[dict[str, str]]:
    """Churn: achieved against requested rate, latency per verb (with the informer's); density: pod startup."""
    plt = _plt()
    images = []
    churn = [p for p in points if p["experiment"] == "churn"]
    informer = {_point_label(p): p for p in points if p["experiment"] == "informer"}
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
        images.append(_save(plt, fig, out, "churn-rate.png", "Churn: achieved against requested rate (open loop)"))
    if churn:
        groups = []
        for p in churn:
            sample = next((s for s in p["samples"] if s.get("status") == "ok"), None)
            if not sample:
                continue
            for verb, v in sample["summary"]["verbs"].items():
                groups.append((f"{_point_label(p)}\n{verb}", v["latency"]))
            inf = informer.get(_point_label(p))
            if inf and inf["samples"][0].get("summary"):
                groups.append((f"{_point_label(p)}\nnotify", inf["samples"][0]["summary"]["notify_latency"]["ADDED"]))
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
            images.append(_save(plt, fig, out, "churn-latency.png", "Churn: latency percentiles per verb (client) and informer notification"))
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
        images.append(_save(plt, fig, out, "density-startup.png", "Density: pod startup latency against the 5 s SLO"))
    return images


def slo_rows(points: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for p in points:
        if p["experiment"] not in ("churn", "density"):
            continue
        for sample in p["samples"]:
            api = sample.get("apiserver") or {}
            for r in api.get("slo", []):
                rows.append({"experiment": p["experiment"], "point": _point_label(p), "repetition": sample.get("repetition"), **r})
    return rows


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
                "point": _point_label(p), "repetition": sample.get("repetition"), "nodes": p["parameters"].get("nodes"),
                "pods": s.get("pods"), "running": s.get("running"), "startup": s.get("pod_startup") or {},
                "startup_pass": s.get("pod_startup_pass"), "throughput": (s.get("scheduling_throughput") or {}),
                "to_running": s.get("pods_per_second_to_running"), "api_pass": (sample.get("apiserver") or {}).get("slo_pass"),
                "busiest": f"{busiest} ({proc['components'][busiest]['cpu_cores']} cores)" if busiest else "–",
                "host_busy": proc.get("host_busy"),
            })
    return rows


# --------------------------------------------------------------------------
# HTML.
# --------------------------------------------------------------------------

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>fedbench run {{ run_id }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { display: inline-block; margin: 0.5em; } figcaption { font-size: 0.85em; color: #555; }
.note { background: #fff6d6; padding: 0.5em 1em; border-left: 4px solid #e0b000; }
</style></head><body>
<h1>fedbench run {{ run_id }}</h1>
<h2>Environment</h2>
<table>
<tr><th>testbed</th><td>{{ env.kind }}</td></tr>
<tr><th>Kubernetes</th><td>{{ env.kubernetes_version }}</td></tr>
<tr><th>clusters</th><td>{% for c in env.clusters %}{{ c.name }} ({{ c.role }}, {{ c.nodes }} nodes){% if not loop.last %}, {% endif %}{% endfor %}</td></tr>
<tr><th>host</th><td>{{ env.host.cores }} cores, {{ env.memory }} GiB, {{ env.host.platform }}</td></tr>
<tr><th>frameworks</th><td>{{ frameworks | join(', ') }}</td></tr>
<tr><th>generated</th><td>{{ generated }}</td></tr>
</table>

<h2>Lifecycle</h2>
{% if lifecycle_images %}{% for img in lifecycle_images %}<figure><img src="{{ img.file }}" alt="{{ img.title }}" width="640"><figcaption>{{ img.title }}</figcaption></figure>{% endfor %}
{% else %}<p>No lifecycle results in this run.</p>{% endif %}

<h2>HTTP burst</h2>
{% if burst_images %}{% if emulated %}<p class="note">On the embedded testbed the mesh is stock Envoy <b>emulating</b> Istio's east-west data path (docs/mesh.md).</p>{% endif %}
{% for img in burst_images %}<figure><img src="{{ img.file }}" alt="{{ img.title }}" width="640"><figcaption>{{ img.title }}</figcaption></figure>{% endfor %}
{% else %}<p>No burst results in this run.</p>{% endif %}

<h2>API machinery</h2>
{% if api_images or slo %}
{% for img in api_images %}<figure><img src="{{ img.file }}" alt="{{ img.title }}" width="640"><figcaption>{{ img.title }}</figcaption></figure>{% endfor %}
{% if density %}<h3>Density on hollow nodes</h3>
<table id="density">
<tr><th>point</th><th>rep</th><th>pods Running</th><th>startup p50</th><th>p90</th><th>p99</th><th>SLO 5 s</th><th>scheduling pods/s (mean / max)</th><th>pods/s to Running</th><th>API SLOs</th><th>busiest process</th><th>machine busy</th></tr>
{% for r in density %}<tr><td>{{ r.point }}</td><td class="num">{{ r.repetition }}</td><td class="num">{{ r.running }} / {{ r.pods }}</td>
<td class="num">{{ r.startup.p50 }}</td><td class="num">{{ r.startup.p90 }}</td><td class="num">{{ r.startup.p99 }}</td>
<td>{{ 'pass' if r.startup_pass else 'FAIL' }}</td><td class="num">{{ r.throughput.mean }} / {{ r.throughput.max }}</td><td class="num">{{ r.to_running }}</td>
<td>{{ 'pass' if r.api_pass else 'FAIL' }}</td><td>{{ r.busiest }}</td><td class="num">{{ (r.host_busy * 100) | round(0) if r.host_busy is not none else '–' }} %</td></tr>
{% endfor %}</table>{% endif %}
<h3>API call latency SLOs</h3>
<p>From the API server's <code>/metrics</code>, the difference of the histograms scraped before and after each sample (<code>{{ slo_metric }}</code>): mutating calls p99 ≤ 1 s per (resource, verb); reads p99 ≤ 1 s for one object, 5 s in a namespace, 30 s across the cluster. Percentiles are interpolated inside the histogram's buckets, and "(≤ b)" gives the bound of the bucket that holds the p99, all that is known for sure; the thresholds are bucket bounds, so pass or fail is exact.</p>
<table id="slo">
<tr><th>experiment</th><th>point</th><th>rep</th><th>kind</th><th>resource</th><th>verb</th><th>scope</th><th>requests</th><th>p99 s</th><th>threshold s</th><th>verdict</th></tr>
{% for r in slo %}<tr><td>{{ r.experiment }}</td><td>{{ r.point }}</td><td class="num">{{ r.repetition }}</td><td>{{ r.kind }}</td><td>{{ r.resource }}</td><td>{{ r.verb }}</td><td>{{ r.scope or '–' }}</td>
<td class="num">{{ r.count }}</td><td class="num">{{ r.p99 }}{% if r.p99_at_most is defined and r.p99_at_most is not none %} (≤ {{ r.p99_at_most }}){% endif %}</td><td class="num">{{ r.threshold }}</td><td>{{ 'pass' if r['pass'] else 'FAIL' }}</td></tr>
{% endfor %}</table>
{% else %}<p>No API machinery results in this run.</p>{% endif %}

<h2>Every headline number</h2>
<p>As results.json holds them: seconds for times, fractions for shares; summaries over the repetitions whose status is ok.</p>
<table id="headline">
<tr><th>experiment</th><th>framework</th><th>layout / profile</th><th>replicas</th><th>metric</th><th>n</th><th>mean</th><th>stdev</th><th>min</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr>
{% for r in rows %}<tr><td>{{ r.experiment }}</td><td>{{ r.framework }}</td><td>{{ r.layout }}</td><td class="num">{{ r.replicas }}</td><td>{{ r.metric }}</td>
<td class="num">{{ r.count }}</td>{% for k in ('mean', 'stdev', 'min', 'p50', 'p90', 'p99', 'max') %}<td class="num" data-metric="{{ r.metric }}" data-key="{{ k }}">{{ r[k] if r[k] is not none else '–' }}</td>{% endfor %}</tr>
{% endfor %}</table>
<p>Files: results.json, summary.csv, summary.md beside this page.</p>
</body></html>
"""


def headline_rows(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for row in results.csv_rows(document["results"]):
        if row["metric"] in HEADLINE_METRICS.get(row["experiment"], ()):
            rows.append(row)
    return rows


def render(results_dir: str | Path, schema: str | Path) -> dict[str, Any]:
    from jinja2 import Environment

    results_dir = Path(results_dir)
    document = load(results_dir / "results.json", schema)
    points = document["results"]
    out = results_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    lifecycle = [p for p in points if p["experiment"] == "lifecycle"]
    bursts = [p for p in points if p["experiment"] == "burst"]
    lifecycle_images = [dict(i, file=f"report/{i['file']}") for i in plot_lifecycle(lifecycle, out)] if lifecycle else []
    burst_images = [dict(i, file=f"report/{i['file']}") for i in plot_burst(bursts, out)] if bursts else []
    api_points = [p for p in points if p["experiment"] in ("churn", "informer", "density")]
    api_images = [dict(i, file=f"report/{i['file']}") for i in plot_apimachinery(api_points, out)] if api_points else []
    slo_metrics = sorted({(s.get("apiserver") or {}).get("slo_metric") for p in api_points for s in p["samples"]} - {None})
    env = dict(points[0]["testbed"]) if points else {"kind": "-", "kubernetes_version": "-", "clusters": [], "host": {"cores": None, "memory_bytes": None, "platform": platform.platform()}}
    mem = env["host"].get("memory_bytes")
    env["memory"] = f"{mem / 2**30:.1f}" if mem else "?"
    page = Environment(autoescape=True).from_string(TEMPLATE).render(
        run_id=document["run_id"],
        env=env,
        frameworks=sorted({p["framework"] for p in points}),
        generated=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        lifecycle_images=lifecycle_images,
        burst_images=burst_images,
        emulated=any(p["framework"] == "istio-emulated" for p in bursts),
        rows=headline_rows(document),
        api_images=api_images,
        slo=slo_rows(api_points),
        slo_metric=", ".join(slo_metrics) or "–",
        density=density_rows(api_points),
    )
    report = results_dir / "report.html"
    report.write_text(page)
    images = [i["file"] for i in lifecycle_images + burst_images + api_images]
    return {"report": str(report), "images": images, "rows": len(headline_rows(document))}


# --------------------------------------------------------------------------
# Comparison.
# --------------------------------------------------------------------------


def _key(row: Mapping[str, Any]) -> tuple:
    return (row["experiment"], row["framework"], str(row["layout"]), str(row["replicas"]), row["metric"])


def compare(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows_a = {_key(r): r for r in headline_rows(a)}
    rows_b = {_key(r): r for r in headline_rows(b)}
    out = []
    for key in sorted(set(rows_a) | set(rows_b), key=str):
        ra, rb = rows_a.get(key), rows_b.get(key)
        entry = dict(zip(("experiment", "framework", "layout", "replicas", "metric"), key))
        if ra and rb and ra.get("mean") is None and rb.get("mean") is None:
            entry.update(a=None, b=None, change=None, noise=None, verdict="not measured")
            out.append(entry)
            continue
        if not ra or not rb or ra.get("mean") is None or rb.get("mean") is None:
            entry.update(a=ra and ra.get("mean"), b=rb and rb.get("mean"), change=None, noise=None, verdict="only in one run")
            out.append(entry)
            continue
        ma, mb = ra["mean"], rb["mean"]
        na, nb = max(int(ra["count"] or 1), 1), max(int(rb["count"] or 1), 1)
        delta = mb - ma
        if (na < 2 or nb < 2) and delta != 0:
            # One sample measures no noise: nothing can be called a change.
            entry.update(a=ma, b=mb, change=(delta / ma if ma else None), noise=None, verdict="no noise estimate (one sample)")
            out.append(entry)
            continue
        noise = 2 * math.sqrt((ra["stdev"] or 0) ** 2 / na + (rb["stdev"] or 0) ** 2 / nb)
        if abs(delta) <= noise or delta == 0:
            verdict = "within noise"
        else:
            worse = delta > 0 if key[4] in LOWER_IS_BETTER else delta < 0
            verdict = "regression" if worse else "improvement"
        entry.update(a=ma, b=mb, change=(delta / ma if ma else None), noise=round(noise, 6), verdict=verdict)
        out.append(entry)
    return out


def compare_markdown(a_id: str, b_id: str, rows: list[Mapping[str, Any]]) -> str:
    lines = [
        f"# fedbench: run {a_id} (A) against {b_id} (B)",
        "",
        "A change counts only beyond the noise: 2·sqrt(sA²/nA + sB²/nB), twice the standard error of the difference.",
        "",
        "| experiment | framework | layout | replicas | metric | A mean | B mean | change | noise | verdict |",
        "| --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        change = f"{r['change'] * 100:+.1f} %" if r.get("change") is not None else "–"
        fmt = lambda v: "–" if v is None else f"{v:.4g}"  # noqa: E731
        lines.append(
            f"| {r['experiment']} | {r['framework']} | {r['layout']} | {r['replicas']} | {r['metric']} | {fmt(r['a'])} | {fmt(r['b'])} "
            f"| {change} | {fmt(r.get('noise'))} | {html.escape(r['verdict'])} |"
        )
    return "\n".join(lines) + "\n"
