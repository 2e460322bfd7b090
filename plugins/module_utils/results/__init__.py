# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Results: one versioned envelope for every experiment (``fedbench.result/v1``).

An *envelope* is one experiment point: experiment, framework, testbed,
parameters, its samples (one per repetition) and their summaries. Each
finished repetition is written at once, atomically, as an envelope of one
sample under ``<results>/<run-id>/samples/``, so a crash keeps everything
finished before it. :func:`aggregate` merges the sample files of a run into
``results.json`` (every envelope, summaries computed), ``summary.csv`` and
``summary.md``. docs/results.md and docs/results.schema.json define it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import re
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping

from ansible_collections.fedbench.testbed.plugins.module_utils.measure import stats

SCHEMA = "fedbench.result/v1"


def host_info() -> dict[str, Any]:
    memory = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) * 1024
                break
    except OSError:
        pass
    return {"cores": os.cpu_count(), "memory_bytes": memory, "platform": platform.platform(), "python": platform.python_version()}


def testbed_info(clusters: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    clusters = [dict(c) for c in clusters]
    kinds = sorted({c.get("testbed", "embedded") for c in clusters})
    versions = sorted({c.get("kubernetes_version", "") for c in clusters})
    return {
        "kind": kinds[0] if len(kinds) == 1 else ",".join(kinds),
        "kubernetes_version": versions[0] if len(versions) == 1 else ",".join(versions),
        "clusters": [
            {k: c.get(k) for k in ("name", "role", "server", "kubernetes_version", "nodes")} for c in clusters
        ],
        "host": host_info(),
    }


def write_atomic(path: Path, data: Any, mode: int = 0o644) -> None:
    """Write JSON so that readers see the old file or the new one, never half."""
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=False) + "\n", mode)


def write_text_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Write text so that readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _slug(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(value))


def sample_path(results_dir: Path, envelope: Mapping[str, Any]) -> Path:
    p = envelope["parameters"]
    rep = envelope["samples"][0].get("repetition", 0)
    point = (p["point"],) if p.get("point") else (p.get("layout", ""), p.get("replicas", ""))
    name = "-".join(_slug(x) for x in (envelope["experiment"], envelope["framework"], *point, f"r{rep}"))
    return results_dir / "samples" / f"{name}.json"


def keep_sample(results_dir: str | Path, envelope: Mapping[str, Any]) -> Path:
    path = sample_path(Path(results_dir), envelope)
    write_atomic(path, envelope)
    return path


# --------------------------------------------------------------------------
# Aggregation.
# --------------------------------------------------------------------------


def _point_key(envelope: Mapping[str, Any]) -> str:
    return json.dumps(
        [envelope["experiment"], envelope["framework"], envelope["testbed"].get("kind"), envelope["parameters"]],
        sort_keys=True,
    )


def lifecycle_summaries(samples: list[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Summaries over the finished (status ok) samples of one point."""
    ok = [s for s in samples if s.get("status") == "ok"]
    out: dict[str, dict[str, Any]] = {}
    for name in ("create_to_ready", "delete_to_gone"):
        out[name] = stats.summarize(s["headline"].get(name) for s in ok)
    phase_names = list(ok[0]["phases"]) if ok else []
    for name in phase_names:
        out[f"phase.{name}"] = stats.summarize(s["phases"].get(name) for s in ok)
    for metric in ("created_to_scheduled", "created_to_running", "created_to_ready"):
        out[f"pod.{metric}"] = stats.summarize(p.get(metric) for s in ok for p in s.get("pods", []))
    return out


def burst_summaries(samples: list[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    ok = [s for s in samples if s.get("status") == "ok"]
    out: dict[str, dict[str, Any]] = {
        "latency": stats.summarize(r.get("latency") for s in ok for r in s.get("requests", []) if r.get("error") == "ok"),
        "local_share": stats.summarize(s.get("totals", {}).get("local_share") for s in ok),
        "success_ratio": stats.summarize(
            (s["totals"]["successes"] / s["totals"]["requests"]) if s.get("totals", {}).get("requests") else None for s in ok
        ),
    }
    return out


def _dig(sample: Mapping[str, Any], path: str) -> Any:
    value: Any = sample
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _over_samples(samples: list[Mapping[str, Any]], metrics: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """One summary across the finished samples per headline metric (name -> path in a sample)."""
    ok = [s for s in samples if s.get("status") == "ok"]
    return {name: stats.summarize((_dig(s, path) for s in ok), 4) for name, path in metrics.items()}


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


def churn_summaries(samples: list[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    return _over_samples(samples, CHURN_METRICS)


def informer_summaries(samples: list[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    return _over_samples(samples, INFORMER_METRICS)


def density_summaries(samples: list[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    return _over_samples(samples, DENSITY_METRICS)


SUMMARIZERS = {
    "lifecycle": lifecycle_summaries,
    "burst": burst_summaries,
    "churn": churn_summaries,
    "informer": informer_summaries,
    "density": density_summaries,
}


def merge(envelopes: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    points: dict[str, dict[str, Any]] = {}
    for env in envelopes:
        key = _point_key(env)
        point = points.setdefault(key, {k: env[k] for k in ("schema", "run_id", "experiment", "framework", "testbed", "parameters")} | {"samples": []})
        point["samples"].extend(env["samples"])
    merged = []
    for point in points.values():
        point["samples"].sort(key=lambda s: s.get("repetition", 0))
        summarize = SUMMARIZERS.get(point["experiment"])
        point["summaries"] = summarize(point["samples"]) if summarize else {}
        point["counts"] = {
            "samples": len(point["samples"]),
            "ok": sum(1 for s in point["samples"] if s.get("status") == "ok"),
        }
        merged.append(point)
    merged.sort(key=lambda p: (p["experiment"], p["framework"], str(p["parameters"].get("layout")), p["parameters"].get("replicas", 0)))
    return merged


def load_samples(results_dir: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted((results_dir / "samples").glob("*.json")):
        try:
            out.append(json.loads(path.read_text()))
        except json.JSONDecodeError as exc:
            raise ResultsError(f"{path}: not valid JSON ({exc})") from exc
    return out


class ResultsError(Exception):
    """A results file that cannot be read or does not fit the schema."""


def validate(document: Mapping[str, Any], schema_path: str | Path, definition: str | None = None) -> None:
    """Raise ResultsError with the first problem's path and message."""
    import jsonschema

    schema = json.loads(Path(schema_path).read_text())
    if definition:
        schema = {"$schema": schema.get("$schema"), "$defs": schema["$defs"], "$ref": f"#/$defs/{definition}"}
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top)"
        raise ResultsError(f"results do not fit {SCHEMA} at {where}: {first.message} ({len(errors)} problem(s) in all)")


def csv_rows(points: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for point in points:
        p = point["parameters"]
        for metric, summary in point["summaries"].items():
            rows.append(
                {
                    "experiment": point["experiment"],
                    "framework": point["framework"],
                    "testbed": point["testbed"].get("kind"),
                    "layout": p.get("layout", ""),
                    "replicas": p.get("replicas", ""),
                    "metric": metric,
                    **{k: summary.get(k) for k in stats.SUMMARY_FIELDS},
                }
            )
    return rows


def to_csv(rows: list[Mapping[str, Any]]) -> str:
    buf = io.StringIO()
    fields = ["experiment", "framework", "testbed", "layout", "replicas", "metric", *stats.SUMMARY_FIELDS]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in fields})
    return buf.getvalue()


def _fmt(summary: Mapping[str, Any]) -> str:
    if not summary or not summary.get("count"):
        return "–"
    return f"{summary['mean']:.3f} ± {summary['stdev']:.3f} (p50 {summary['p50']:.3f}, p90 {summary['p90']:.3f}, n={summary['count']})"


def to_markdown(document: Mapping[str, Any]) -> str:
    lines = [
        f"# fedbench run {document['run_id']}",
        "",
        "Headline figures in seconds: mean ± stdev over the repetitions that finished (p50, p90, n).",
        "",
        "| experiment | framework | testbed | layout | replicas | create → ready | delete → gone | ok / samples |",
        "| --- | --- | --- | --- | ---: | --- | --- | --- |",
    ]
    for point in document["results"]:
        if point["experiment"] != "lifecycle":
            continue
        p, s = point["parameters"], point["summaries"]
        lines.append(
            f"| lifecycle | {point['framework']} | {point['testbed'].get('kind')} | {p.get('layout')} | {p.get('replicas')} "
            f"| {_fmt(s.get('create_to_ready', {}))} | {_fmt(s.get('delete_to_gone', {}))} "
            f"| {point['counts']['ok']} / {point['counts']['samples']} |"
        )
    for point in document["results"]:
        if point["experiment"] != "burst":
            continue
        lines += [
            "",
            f"## HTTP burst, {point['framework']} (client at {point['parameters'].get('local_cluster')}'s gateway)",
            "",
            "| slot | requests | ok | served by | latency p50 / p99 / max (s) | errors |",
            "| ---: | ---: | ---: | --- | --- | --- |",
        ]
        for slot in point["samples"][0].get("slots", []):
            lat = slot["latency"]
            served = ", ".join(f"{c} {n}" for c, n in sorted(slot["served_by"].items())) or "–"
            errors = ", ".join(f"{c} {n}" for c, n in sorted(slot["errors"].items())) or "–"
            latency = f"{lat['p50']:.3f} / {lat['p99']:.3f} / {lat['max']:.3f}" if lat.get("count") else "–"
            lines.append(f"| {slot['slot']} | {slot['requests']} | {slot['successes']} | {served} | {latency} | {errors} |")
    lines += apimachinery_markdown(document)
    return "\n".join(lines) + "\n"


def _num(value: Any, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def apimachinery_markdown(document: Mapping[str, Any]) -> list[str]:
    points = {e: [p for p in document["results"] if p["experiment"] == e] for e in ("churn", "informer", "density")}
    lines: list[str] = []
    if points["churn"]:
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
        for point in points["churn"]:
            for sample in point["samples"]:
                s = sample.get("summary") or {}
                verbs = s.get("verbs") or {}
                lat = lambda v, q: (verbs.get(v) or {}).get("latency", {}).get(q)  # noqa: E731
                errors = ", ".join(f"{k} {n}" for k, n in sorted((s.get("errors") or {}).items())) or "–"
                slo = sample.get("apiserver") or {}
                lines.append(
                    f"| {point['parameters'].get('point')} r{sample.get('repetition')} | {_num(s.get('requested_rate'), 1)} "
                    f"| {_num(s.get('scheduled_rate'), 1)} | {_num(s.get('achieved_rate'), 1)} | {_num(s.get('rate_accuracy'), 3)} "
                    f"| {_num(lat('create', 'p50'), 4)} / {_num(lat('create', 'p99'), 4)} | {_num(lat('update', 'p99'), 4)} "
                    f"| {_num(lat('delete', 'p99'), 4)} | {errors} | {'pass' if slo.get('slo_pass') else 'FAIL' if slo else '–'} |"
                )
    if points["informer"]:
        lines += [
            "",
            "## API machinery: informer beside the churn",
            "",
            "| point | objects seen | events added / modified / deleted | notify p50 / p99 (s) | queue wait p99 (s) | coalesced |",
            "| --- | ---: | --- | --- | --- | ---: |",
        ]
        for point in points["informer"]:
            for sample in point["samples"]:
                s = sample.get("summary") or {}
                ev = s.get("events") or {}
                added = (s.get("notify_latency") or {}).get("ADDED") or {}
                lines.append(
                    f"| {point['parameters'].get('point')} r{sample.get('repetition')} | {s.get('objects_seen')} "
                    f"| {ev.get('ADDED')} / {ev.get('MODIFIED')} / {ev.get('DELETED')} | {_num(added.get('p50'), 4)} / {_num(added.get('p99'), 4)} "
                    f"| {_num((s.get('queue_wait') or {}).get('p99'), 5)} | {s.get('coalesced')} |"
                )
    if points["density"]:
        lines += [
            "",
            "## API machinery: density on hollow nodes",
            "",
            "| nodes × pods/node | pods Running | pod startup p50 / p90 / p99 (s) | SLO 5 s | scheduling pods/s | API SLOs | busiest process |",
            "| --- | ---: | --- | --- | ---: | --- | --- |",
        ]
        for point in points["density"]:
            p = point["parameters"]
            for sample in point["samples"]:
                s = sample.get("summary") or {}
                ps = s.get("pod_startup") or {}
                proc = sample.get("processes") or {}
                busiest = proc.get("busiest")
                busy = f"{busiest} ({proc['components'][busiest]['cpu_cores']:.2f} cores)" if busiest else "–"
                lines.append(
                    f"| {p.get('nodes')} × {p.get('pods_per_node')} | {s.get('running')} / {s.get('pods')} "
                    f"| {_num(ps.get('p50'), 3)} / {_num(ps.get('p90'), 3)} / {_num(ps.get('p99'), 3)} "
                    f"| {'pass' if s.get('pod_startup_pass') else 'FAIL'} | {_num((s.get('scheduling_throughput') or {}).get('mean'), 1)} "
                    f"| {'pass' if (sample.get('apiserver') or {}).get('slo_pass') else 'FAIL'} | {busy} |"
                )
    return lines


def aggregate(results_dir: str | Path, schema_path: str | Path, run_id: str) -> dict[str, Any]:
    """Sample files → results.json, summary.csv, summary.md. Returns the paths and counts."""
    results_dir = Path(results_dir)
    envelopes = load_samples(results_dir)
    for env in envelopes:
        validate(env, schema_path, "envelope")
    document = {"schema": SCHEMA, "run_id": run_id, "results": merge(envelopes)}
    validate(document, schema_path)
    write_atomic(results_dir / "results.json", document)
    rows = csv_rows(document["results"])
    (results_dir / "summary.csv").write_text(to_csv(rows))
    (results_dir / "summary.md").write_text(to_markdown(document))
    return {
        "results_json": str(results_dir / "results.json"),
        "summary_csv": str(results_dir / "summary.csv"),
        "summary_md": str(results_dir / "summary.md"),
        "points": len(document["results"]),
        "samples": sum(len(p["samples"]) for p in document["results"]),
        "markdown": to_markdown(document),
    }
