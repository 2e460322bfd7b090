# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Two runs side by side.

:func:`compare` puts every headline figure of run A beside run B's. A change
counts as a regression or an improvement only when it exceeds the noise the
repetitions measured: twice the standard error of the difference of the two
means, ``2·sqrt(sA²/nA + sB²/nB)``; otherwise it reads "within noise". A row
is keyed by experiment, framework, point and metric; what each experiment adds
(framework names that are one path, sections and plots of both runs, a note
for two testbeds) comes from its registry entry (:mod:`report.registry`).
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any, Mapping

from ansible_collections.fedbench.testbed.plugins.module_utils import results
from ansible_collections.fedbench.testbed.plugins.module_utils.report import registry
from ansible_collections.fedbench.testbed.plugins.module_utils.report.page import PAGE_STYLE, headline_rows
from ansible_collections.fedbench.testbed.plugins.module_utils.report.spec import LOWER



def _key(row: Mapping[str, Any]) -> tuple:
    same = registry.get(row["experiment"]).same_path
    return (row["experiment"], same.get(row["framework"], row["framework"]), str(row["point"]), row["metric"])


def compare_sections(doc: Mapping[str, Any], label: str) -> list[dict[str, Any]]:
    """What each experiment shows of one run beside the comparison table (its compare_sections)."""
    points = doc.get("results", [])
    return [section for name, spec in registry.EXPERIMENTS.items()
            for section in spec.compare_sections([p for p in points if p.get("experiment") == name], label)]


def testbeds_notes(rows: list[Mapping[str, Any]]) -> list[str]:
    """What each experiment says under a comparison of two testbeds (how its paths differ)."""
    notes = [spec.testbeds_note([r for r in rows if r["experiment"] == name]) for name, spec in registry.EXPERIMENTS.items()]
    return [n for n in notes if n]


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
    if testbeds and testbeds[0] != testbeds[1]:
        lines += [line for note in testbeds_notes(rows) for line in ("", note)]
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
{% for note in notes %}<p class="note">{{ note }}</p>{% endfor %}
</body></html>
"""


def compare_html(a: Mapping[str, Any], b: Mapping[str, Any], rows: list[Mapping[str, Any]], dest: Path) -> dict[str, Any]:
    """One page: run A beside run B, each experiment's plots with both runs' series
    in them (labelled by run and testbed), and the comparison table."""
    from jinja2 import Environment

    dest = Path(dest)
    images_dir = dest.with_suffix("")
    images_dir.mkdir(parents=True, exist_ok=True)
    testbed_a, testbed_b = testbed_of(a), testbed_of(b)
    label = (lambda run, tb: f"{tb} ({run})") if testbed_a != testbed_b else (lambda run, tb: run)
    drawn = []
    for name, spec in registry.EXPERIMENTS.items():
        runs = [(label(doc["run_id"], tb), [p for p in doc["results"] if p["experiment"] == name])
                for doc, tb in ((a, testbed_a), (b, testbed_b))]
        drawn += spec.beside(runs, images_dir, "beside")
    images = [dict(i, file=f"{images_dir.name}/{i['file']}") for i in drawn]
    page = Environment(autoescape=True).from_string(COMPARE_TEMPLATE).render(
        a=a["run_id"], b=b["run_id"], testbed_a=testbed_a, testbed_b=testbed_b, images=images, rows=rows,
        bursts=compare_sections(a, f"A, {testbed_a}") + compare_sections(b, f"B, {testbed_b}"),
        notes=testbeds_notes(rows) if testbed_a != testbed_b else [],
        fmt=lambda v: "–" if v is None else f"{v:.4g}", pct=lambda v: "–" if v is None else f"{v * 100:+.1f} %",
    )
    results.write_text_atomic(dest, page)
    return {"page": str(dest), "images": [i["file"] for i in images]}
