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

Both iterate the experiment registry (:mod:`report.registry`): each
experiment brings its plots, tables and headline metrics with their better
direction; a row is keyed by experiment, framework, point and metric.
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
from ansible_collections.fedbench.testbed.plugins.module_utils.report import merge, registry
from ansible_collections.fedbench.testbed.plugins.module_utils.report.spec import LOWER

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
# HTML.
# --------------------------------------------------------------------------

# The look of every page: a run's report and a comparison.
PAGE_STYLE = """<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { display: inline-block; margin: 0.5em; } figcaption { font-size: 0.85em; color: #555; }
.note { background: #fff6d6; padding: 0.5em 1em; border-left: 4px solid #e0b000; }
</style>"""

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>fedbench run {{ run_id }}</title>
""" + PAGE_STYLE + """</head><body>
<h1>fedbench run {{ run_id }}{% if partial %} (partial){% endif %}</h1>
{% if partial %}<p class="note" id="partial"><strong>Partial: {{ partial }}</strong> Only the samples that finished are shown.</p>{% endif %}
<h2>Environment</h2>
<table>
<tr><th>testbed</th><td>{{ env.kind }}</td></tr>
<tr><th>Kubernetes</th><td>{{ env.kubernetes_version }}</td></tr>
<tr><th>clusters</th><td>{% for c in env.clusters %}{{ c.name }} ({{ c.role }}, {{ c.nodes }} nodes){% if not loop.last %}, {% endif %}{% endfor %}</td></tr>
<tr><th>host</th><td>{{ env.host.cores }} cores, {{ env.memory }} GiB, {{ env.host.platform }}</td></tr>
<tr><th>frameworks</th><td>{{ frameworks | join(', ') }}</td></tr>
{% for s in skipped %}<tr><th>skipped: {{ s.framework }}</th><td id="skipped-{{ s.framework }}">{{ s.reason }}</td></tr>{% endfor %}
<tr><th>generated</th><td>{{ generated }}</td></tr>
</table>

{% if restarts %}
<h2>The testbed restarted components during this run</h2>
<p class="note">A figure measured across a restart measured a repaired cluster; the times say which samples overlap.</p>
<table id="restarts"><tr><th>time</th><th>cluster</th><th>component</th><th>running again</th><th>log</th></tr>
{% for r in restarts %}<tr><td>{{ r.time }}</td><td>{{ r.cluster }}</td><td>{{ r.component }}</td><td>{{ 'yes' if r.running else 'NO' }}</td><td>{{ r.log }}</td></tr>
{% endfor %}</table>
{% endif %}
{% for s in sections %}
<h2>{{ s.title }}</h2>
{% if s.empty %}<p>No {{ s.title }} results in this run.</p>{% else %}
{% if s.note %}<p class="note">{{ s.note }}</p>{% endif %}
{% for img in s.images %}<figure><img src="{{ img.file }}" alt="{{ img.title }}" width="640"><figcaption>{{ img.title }}</figcaption></figure>{% endfor %}
{% for t in s.tables %}<h3>{{ t.title }}</h3>{% if t.note %}<p>{{ t.note }}</p>{% endif %}
<table id="{{ t.id }}">
<tr>{% for c in t.columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in t.rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</table>
{% endfor %}{% endif %}
{% endfor %}

<h2>Every headline number</h2>
<p>As results.json holds them: seconds for times, fractions for shares; summaries over the repetitions whose status is ok.</p>
<table id="headline">
<tr><th>experiment</th><th>framework</th><th>point</th><th>metric</th><th>n</th><th>mean</th><th>stdev</th><th>min</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr>
{% for r in rows %}<tr><td>{{ r.experiment }}</td><td>{{ r.framework }}</td><td>{{ r.point }}</td><td>{{ r.metric }}</td>
<td class="num">{{ r.count }}</td>{% for k in ('mean', 'stdev', 'min', 'p50', 'p90', 'p99', 'max') %}<td class="num" data-metric="{{ r.metric }}" data-key="{{ k }}">{{ r[k] if r[k] is not none else '–' }}</td>{% endfor %}</tr>
{% endfor %}</table>
<p>Files: results.json, summary.csv, summary.md beside this page.</p>
</body></html>
"""


def headline_rows(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The CSV rows of every experiment's headline metrics."""
    return [row for row in merge.csv_rows(document["results"]) if row["metric"] in registry.get(row["experiment"]).headline]


def _merged_tables(tables: list[Any]) -> list[dict[str, Any]]:
    """Tables with the same id in one section become one table (the SLO table holds churn's and density's rows)."""
    out: dict[str, dict[str, Any]] = {}
    for t in tables:
        entry = out.setdefault(t.id, {"id": t.id, "title": t.title, "note": t.note, "columns": t.columns, "rows": []})
        entry["rows"] += list(t.rows)
    return list(out.values())


def render(results_dir: str | Path, schema: str | Path) -> dict[str, Any]:
    from jinja2 import Environment

    results_dir = Path(results_dir)
    document = load(results_dir / "results.json", schema)
    points = document["results"]
    out = results_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    sections = []
    for title in registry.sections():
        section = {"title": title, "images": [], "tables": [], "note": "", "empty": True}
        for name, spec in registry.EXPERIMENTS.items():
            mine = [p for p in points if p["experiment"] == name]
            if spec.section != title or not mine:
                continue
            section["empty"] = False
            section["note"] = section["note"] or spec.note(mine)
            section["images"] += [dict(i, file=f"report/{i['file']}") for i in spec.plots(mine, points, out)]
            section["tables"] += spec.tables(mine)
        section["tables"] = _merged_tables(section["tables"])
        sections.append(section)
    env = dict(points[0]["testbed"]) if points else {"kind": "-", "kubernetes_version": "-", "clusters": [], "host": {"cores": None, "memory_bytes": None, "platform": platform.platform()}}
    mem = env["host"].get("memory_bytes")
    env["memory"] = f"{mem / 2**30:.1f}" if mem else "?"
    rows = headline_rows(document)
    page = Environment(autoescape=True).from_string(TEMPLATE).render(
        run_id=document["run_id"],
        env=env,
        frameworks=sorted({p["framework"] for p in points}),
        generated=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        sections=sections,
        rows=rows,
        restarts=document.get("restarts") or [],
        partial=document.get("partial") or "",
        skipped=document.get("skipped") or [],
    )
    report = results_dir / "report.html"
    results.write_text_atomic(report, page)
    images = [i["file"] for s in sections for i in s["images"]]
    return {"report": str(report), "images": images, "rows": len(rows)}


# --------------------------------------------------------------------------
# Comparison.
# --------------------------------------------------------------------------


# Frameworks that are one path measured two ways: on simulated nodes the mesh
# is an Envoy emulation of Istio's east-west path, on real nodes Istio itself;
# a comparison of the two testbeds sets them side by side under one name.
SAME_PATH = {"istio-emulated": "istio"}
MESH_PATHS = (
    "istio on the embedded testbed is the emulation (framework istio-emulated): one stock Envoy per cluster as the "
    "gateway, echo servers as local processes, each local echo instance an endpoint of the gateway with the study's "
    "outlier detection, the peer gateway over mTLS from the shared root as the failover. On kind it is Istio 1.29.1 "
    "(stock Envoy in its proxies): the client enters at the ingress gateway on the node's address, the echo pods have "
    "sidecars, and the peer cluster's pods are one endpoint per network (the peer's east-west gateway, mTLS "
    "passthrough), so one 503 from any peer pod ejects the whole peer; Istio's own request metrics are off."
)


def _key(row: Mapping[str, Any]) -> tuple:
    return (row["experiment"], SAME_PATH.get(row["framework"], row["framework"]), str(row["point"]), row["metric"])


def burst_sections(doc: Mapping[str, Any], label: str) -> list[dict[str, Any]]:
    """Each burst point of a run, slot by slot (served by, latency, errors), for a comparison page."""
    out = []
    for point in doc.get("results", []):
        if point.get("experiment") != "burst" or not point.get("samples"):
            continue
        rows = []
        for slot in point["samples"][0].get("slots", []):
            lat = slot.get("latency") or {}
            rows.append({
                "slot": slot["slot"], "requests": slot["requests"], "ok": slot["successes"],
                "served_by": ", ".join(f"{c} {n}" for c, n in sorted(slot["served_by"].items())) or "–",
                "latency": f"{lat['p50']:.3f} / {lat['p99']:.3f}" if lat.get("count") else "–",
                "errors": ", ".join(f"{c} {n}" for c, n in sorted(slot["errors"].items())) or "–",
            })
        out.append({"title": f"{label}: burst, {point['framework']}, client at {point['parameters'].get('local_cluster')}'s gateway",
                    "status": point["samples"][0].get("status"), "rows": rows})
    return out


def compare(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows_a = {_key(r): r for r in headline_rows(a)}
    rows_b = {_key(r): r for r in headline_rows(b)}
    out = []
    for key in sorted(set(rows_a) | set(rows_b), key=str):
        ra, rb = rows_a.get(key), rows_b.get(key)
        entry = dict(zip(("experiment", "framework", "point", "metric"), key))
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
            worse = delta > 0 if registry.get(key[0]).headline.get(key[3]) == LOWER else delta < 0
            verdict = "regression" if worse else "improvement"
        entry.update(a=ma, b=mb, change=(delta / ma if ma else None), noise=round(noise, 6), verdict=verdict)
        out.append(entry)
    return out


def testbed_of(document: Mapping[str, Any]) -> str:
    """The testbed a run's results were measured on (kinds joined if several)."""
    kinds = sorted({(p.get("testbed") or {}).get("kind") or "?" for p in document.get("results", [])})
    return "+".join(kinds) or "?"


def across_testbeds(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Between two testbeds a change is what the other testbed does, not a
    regression: beyond the noise it reads "B slower" or "B faster"."""
    words = {"regression": "B worse", "improvement": "B better"}
    return [dict(r, verdict=words.get(r["verdict"], r["verdict"])) for r in rows]


def compare_markdown(a_id: str, b_id: str, rows: list[Mapping[str, Any]], testbeds: tuple[str, str] | None = None,
                     bursts: list[Mapping[str, Any]] | None = None) -> str:
    lines = [
        f"# fedbench: run {a_id} (A) against {b_id} (B)",
        "",
        "A change counts only beyond the noise: 2·sqrt(sA²/nA + sB²/nB), twice the standard error of the difference.",
        "",
    ]
    if testbeds and testbeds[0] != testbeds[1]:
        lines += [f"A ran on the {testbeds[0]} testbed, B on the {testbeds[1]} testbed: a change beyond the noise is what "
                  f"{testbeds[1]} does differently (B worse / B better), not a regression.", ""]
    lines += [
        "| experiment | framework | point | metric | A mean | B mean | change | noise | verdict |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        change = f"{r['change'] * 100:+.1f} %" if r.get("change") is not None else "–"
        fmt = lambda v: "–" if v is None else f"{v:.4g}"  # noqa: E731
        lines.append(
            f"| {r['experiment']} | {r['framework']} | {r['point']} | {r['metric']} | {fmt(r['a'])} | {fmt(r['b'])} "
            f"| {change} | {fmt(r.get('noise'))} | {html.escape(r['verdict'])} |"
        )
    for section in bursts or []:
        lines += ["", f"## {section['title']} ({section['status']})", "",
                  "| slot | requests | ok | served by | latency p50 / p99 (s) | errors |", "| ---: | ---: | ---: | --- | --- | --- |"]
        lines += [f"| {r['slot']} | {r['requests']} | {r['ok']} | {r['served_by']} | {r['latency']} | {r['errors']} |" for r in section["rows"]]
    if any(r["framework"] == "istio" and r["experiment"] == "burst" for r in rows) and testbeds and testbeds[0] != testbeds[1]:
        lines += ["", MESH_PATHS]
    return "\n".join(lines) + "\n"


COMPARE_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>fedbench: {{ a }} beside {{ b }}</title>
""" + PAGE_STYLE + """</head><body>
<h1>Run {{ a }} (A, {{ testbed_a }}) beside run {{ b }} (B, {{ testbed_b }})</h1>
{% if testbed_a != testbed_b %}<p class="note">Two testbeds: the same experiments on {{ testbed_a }} and on {{ testbed_b }}.
A change beyond the noise is what {{ testbed_b }} does differently (B worse / B better), not a regression.</p>{% endif %}
<p>A change counts only beyond the noise: 2·sqrt(sA²/nA + sB²/nB), twice the standard error of the difference.</p>
{% for img in images %}<figure><img src="{{ img.file }}" alt="{{ img.title }}" width="640"><figcaption>{{ img.title }}</figcaption></figure>{% endfor %}
<table id="compare">
<tr><th>experiment</th><th>framework</th><th>point</th><th>metric</th><th>A mean</th><th>B mean</th><th>change</th><th>noise</th><th>verdict</th></tr>
{% for r in rows %}<tr><td>{{ r.experiment }}</td><td>{{ r.framework }}</td><td>{{ r.point }}</td><td>{{ r.metric }}</td>
<td class="num">{{ fmt(r.a) }}</td><td class="num">{{ fmt(r.b) }}</td><td class="num">{{ pct(r.change) }}</td><td class="num">{{ fmt(r.noise) }}</td><td>{{ r.verdict }}</td></tr>
{% endfor %}</table>
{% for section in bursts %}<h2>{{ section.title }} ({{ section.status }})</h2>
<table><tr><th>slot</th><th>requests</th><th>ok</th><th>served by</th><th>latency p50 / p99 (s)</th><th>errors</th></tr>
{% for r in section.rows %}<tr><td class="num">{{ r.slot }}</td><td class="num">{{ r.requests }}</td><td class="num">{{ r.ok }}</td><td>{{ r.served_by }}</td><td>{{ r.latency }}</td><td>{{ r.errors }}</td></tr>
{% endfor %}</table>{% endfor %}
{% if mesh_paths %}<p class="note">{{ mesh_paths }}</p>{% endif %}
</body></html>
"""


def compare_html(a: Mapping[str, Any], b: Mapping[str, Any], rows: list[Mapping[str, Any]], dest: Path) -> dict[str, Any]:
    """One page: run A beside run B, the lifecycle plots with both runs' series
    in them (labelled by run and testbed), and the comparison table."""
    from jinja2 import Environment

    from ansible_collections.fedbench.testbed.plugins.module_utils.report import lifecycle

    dest = Path(dest)
    images_dir = dest.with_suffix("")
    images_dir.mkdir(parents=True, exist_ok=True)
    testbed_a, testbed_b = testbed_of(a), testbed_of(b)
    label = (lambda run, tb: f"{tb} ({run})") if testbed_a != testbed_b else (lambda run, tb: run)
    runs = [(label(doc["run_id"], tb), [p for p in doc["results"] if p["experiment"] == "lifecycle"])
            for doc, tb in ((a, testbed_a), (b, testbed_b))]
    drawn = lifecycle.plot_beside(runs, images_dir, "beside")
    images = [dict(i, file=f"{images_dir.name}/{i['file']}") for i in drawn]
    page = Environment(autoescape=True).from_string(COMPARE_TEMPLATE).render(
        a=a["run_id"], b=b["run_id"], testbed_a=testbed_a, testbed_b=testbed_b, images=images, rows=rows,
        bursts=burst_sections(a, f"A, {testbed_a}") + burst_sections(b, f"B, {testbed_b}"),
        mesh_paths=MESH_PATHS if testbed_a != testbed_b and any(r["framework"] == "istio" and r["experiment"] == "burst" for r in rows) else "",
        fmt=lambda v: "–" if v is None else f"{v:.4g}", pct=lambda v: "–" if v is None else f"{v * 100:+.1f} %",
    )
    results.write_text_atomic(dest, page)
    return {"page": str(dest), "images": [i["file"] for i in images]}
