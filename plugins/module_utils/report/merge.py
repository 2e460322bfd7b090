# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Results as a stage: a run's samples folder merged into results.json, summary.csv
and summary.md. Each finished sample was written the moment it ended
(:func:`results.keep_sample`); this merge runs once per report, from whatever
is on disk, and asks the experiment registry how to name, order and
summarize each experiment's points.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Iterable, Mapping

from ansible_collections.fedbench.testbed.plugins.module_utils import results
from ansible_collections.fedbench.testbed.plugins.module_utils.measure import stats
from ansible_collections.fedbench.testbed.plugins.module_utils.report import registry

CSV_FIELDS = ("experiment", "framework", "testbed", "point", "metric", *stats.SUMMARY_FIELDS)


def _point_key(envelope: Mapping[str, Any]) -> str:
    return json.dumps(
        [envelope["experiment"], envelope["framework"], envelope["testbed"].get("kind"), envelope["parameters"]],
        sort_keys=True,
    )


def merge(envelopes: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    points: dict[str, dict[str, Any]] = {}
    for env in envelopes:
        key = _point_key(env)
        point = points.setdefault(key, {k: env[k] for k in ("schema", "run_id", "experiment", "framework", "testbed", "parameters")} | {"samples": []})
        point["samples"].extend(env["samples"])
    merged = []
    for point in points.values():
        point["samples"].sort(key=lambda s: s.get("repetition", 0))
        spec = registry.get(point["experiment"])
        point["point"] = spec.point(point["parameters"])
        point["summaries"] = spec.summarize(point["samples"])
        point["counts"] = {
            "samples": len(point["samples"]),
            "ok": sum(1 for s in point["samples"] if s.get("status") == "ok"),
        }
        merged.append(point)
    names = list(registry.EXPERIMENTS)
    merged.sort(key=lambda p: (names.index(p["experiment"]), p["framework"], registry.get(p["experiment"]).order(p["parameters"])))
    return merged


def csv_rows(points: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for point in points:
        for metric, summary in point["summaries"].items():
            rows.append(
                {
                    "experiment": point["experiment"],
                    "framework": point["framework"],
                    "testbed": point["testbed"].get("kind"),
                    "point": registry.point_of(point),
                    "metric": metric,
                    **{k: summary.get(k) for k in stats.SUMMARY_FIELDS},
                }
            )
    return rows


def to_csv(rows: list[Mapping[str, Any]]) -> str:
    buf = io.StringIO()
    fields = list(CSV_FIELDS)
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in fields})
    return buf.getvalue()


def restart_lines(restarts: list[Mapping[str, Any]]) -> list[str]:
    """What the supervisor had to restart while the run went on (nothing: no section)."""
    if not restarts:
        return []
    lines = ["", "## The testbed restarted components during this run", "",
             "A figure measured across a restart measured a repaired cluster; the times say which samples overlap.", "",
             "| time | cluster | component | running again | log |", "| --- | --- | --- | --- | --- |"]
    for r in restarts:
        lines.append(f"| {r['time']} | {r['cluster']} | {r['component']} | {'yes' if r.get('running') else '**no**'} | {r.get('log', '')} |")
    return lines


def run_restarts(restarts: list[Mapping[str, Any]], envelopes: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The restarts from the run's first sample on (the supervisor's record spans every run of the work dir)."""
    starts = [e["sample"].get("started_at") for e in envelopes if isinstance(e.get("sample"), Mapping) and e["sample"].get("started_at")]
    if not starts:
        return [dict(r) for r in restarts]
    first = min(starts)  # ISO 8601 UTC strings order as times
    return [dict(r) for r in restarts if str(r.get("time", "")) >= first]


def read_skipped(results_dir: Path) -> list[dict[str, str]]:
    """Frameworks that could not run on this testbed, and why (skipped/<name>.json)."""
    out = []
    for path in sorted((Path(results_dir) / "skipped").glob("*.json")):
        try:
            entry = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise results.ResultsError(f"{path}: not a record of a skipped framework ({exc})") from exc
        out.append({"framework": str(entry.get("framework") or path.stem), "reason": str(entry.get("reason") or "")})
    return out


def to_markdown(document: Mapping[str, Any]) -> str:
    """Each experiment's own section, in the registry's order."""
    lines = [f"# fedbench run {document['run_id']}"]
    if document.get("partial"):
        lines += ["", f"**Partial: {document['partial']}** Only the samples that finished are here."]
    for entry in document.get("skipped") or []:
        lines += ["", f"**Skipped: {entry['framework']}.** {entry['reason']}"]
    lines += restart_lines(document.get("restarts") or [])
    for name, spec in registry.EXPERIMENTS.items():
        lines += spec.markdown([p for p in document["results"] if p["experiment"] == name])
    return "\n".join(lines) + "\n"


def aggregate(results_dir: str | Path, schema_path: str | Path, run_id: str, restarts: list[Mapping[str, Any]] = (),
              partial: str = "") -> dict[str, Any]:
    """Sample files → results.json, summary.csv, summary.md. Returns the paths and counts.

    ``restarts``: what the testbed's supervisor recorded; those from the run's first
    sample on go into results.json and the summary. ``partial``: why the run did
    not finish, when it did not (the results, summary and report say so)."""
    results_dir = Path(results_dir)
    envelopes = results.load_samples(results_dir)
    for env in envelopes:
        results.validate(env, schema_path, "envelope")
    document = {"schema": results.SCHEMA, "run_id": run_id, "results": merge(envelopes),
                "restarts": run_restarts(list(restarts), envelopes)}
    if partial:
        document["partial"] = partial
    skipped = read_skipped(results_dir)
    if skipped:
        document["skipped"] = skipped
    results.validate(document, schema_path)
    results.write_atomic(results_dir / "results.json", document)
    rows = csv_rows(document["results"])
    results.write_text_atomic(results_dir / "summary.csv", to_csv(rows))
    markdown = to_markdown(document)
    results.write_text_atomic(results_dir / "summary.md", markdown)
    return {
        "results_json": str(results_dir / "results.json"),
        "summary_csv": str(results_dir / "summary.csv"),
        "summary_md": str(results_dir / "summary.md"),
        "points": len(document["results"]),
        "samples": sum(len(p["samples"]) for p in document["results"]),
        "restarts": document["restarts"],
        "partial": partial,
        "markdown": markdown,
    }
