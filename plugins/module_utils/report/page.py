# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A run's report: one self-contained HTML page with PNG plots beside it.

:func:`render` reads ``results.json`` (validated against the schema first: a
file that does not fit gets a message, not a traceback), draws the plots with
matplotlib's Agg backend into ``report/`` and writes ``report.html`` from a
Jinja2 template. Every number in the page is taken from ``results.json`` as
it is (the headline table prints the stored summaries, rounded as stored).
It iterates the experiment registry (:mod:`report.registry`): each experiment
brings its section, plots, tables and headline metrics.
"""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from ansible_collections.fedbench.testbed.plugins.module_utils import results
from ansible_collections.fedbench.testbed.plugins.module_utils.report import merge, registry


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
    """Tables with the same id in one section become one table (one table can hold the rows of several experiments, as the SLO table does)."""
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
