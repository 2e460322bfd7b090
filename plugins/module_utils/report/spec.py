# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The contract every experiment fulfils for results, the report, the CSV and compare.

An :class:`Experiment` says how its points are named and ordered, how its
samples are summarized, which summaries are headline metrics (and which
direction is better), and how it is shown: Markdown lines, plots, tables.
The registry (:mod:`report.registry`) holds one per experiment; everything
downstream iterates it instead of naming experiments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from ansible_collections.fedbench.testbed.plugins.module_utils.measure import stats

LOWER = "lower"  # a smaller value is better (times, error ratios)
HIGHER = "higher"  # a larger value is better (rates, shares, throughput)

Point = Mapping[str, Any]  # one merged experiment point of results.json


@dataclass(frozen=True)
class Table:
    """A table of the report page; tables with the same id in one section are one table."""

    id: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""


def _no_lines(points: list[Point]) -> list[str]:
    return []


def _no_images(points: list[Point], everything: list[Point], out: Any) -> list[dict[str, str]]:
    return []


def _no_tables(points: list[Point]) -> list[Table]:
    return []


def _no_sections(points: list[Point], label: str) -> list[dict[str, Any]]:
    return []


def _no_beside(runs: list[tuple[str, list[Point]]], out: Any, prefix: str) -> list[dict[str, str]]:
    return []


@dataclass(frozen=True)
class Experiment:
    name: str
    # The report section its plots and tables go under.
    section: str
    # A point's label from its parameters, and its sort key.
    point: Callable[[Mapping[str, Any]], str]
    order: Callable[[Mapping[str, Any]], tuple]
    # Summaries (metric -> stats.summarize) over a point's samples.
    summarize: Callable[[list[Mapping[str, Any]]], dict[str, dict[str, Any]]]
    # Headline metrics and which direction is better (LOWER or HIGHER).
    headline: Mapping[str, str]
    markdown: Callable[[list[Point]], list[str]] = _no_lines
    # plots(its points, every point of the run, the report folder) -> [{file, title}]
    plots: Callable[[list[Point], list[Point], Any], list[dict[str, str]]] = _no_images
    tables: Callable[[list[Point]], list[Table]] = _no_tables
    # A note shown above the section when one of its points asks for it.
    note: Callable[[list[Point]], str] = field(default=lambda points: "")
    # Comparing two runs. Framework names that are one path measured two ways: one row in a comparison.
    same_path: Mapping[str, str] = field(default_factory=dict)
    # Sections beside the comparison table, per run: (its points, the run's label) -> [{title, status, rows}].
    compare_sections: Callable[[list[Point], str], list[dict[str, Any]]] = _no_sections
    # Plots with both runs' series in them: ([(run label, its points)], folder, file prefix) -> [{file, title}].
    beside: Callable[[list[tuple[str, list[Point]]], Any, str], list[dict[str, str]]] = _no_beside
    # A note under a comparison of two testbeds, from the comparison's rows of this experiment.
    testbeds_note: Callable[[list[Mapping[str, Any]]], str] = field(default=lambda rows: "")


def ok_samples(samples: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The samples whose status is ok: summaries are over these only."""
    return [s for s in samples if s.get("status") == "ok"]


def dig(sample: Mapping[str, Any], path: str) -> Any:
    value: Any = sample
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def over_samples(metrics: Mapping[str, str], digits: int = 4) -> Callable[[list[Mapping[str, Any]]], dict[str, dict[str, Any]]]:
    """A summarizer: one summary across the finished samples per metric (name -> path in a sample)."""

    def summarize(samples: list[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
        ok = ok_samples(samples)
        return {name: stats.summarize((dig(s, path) for s in ok), digits) for name, path in metrics.items()}

    return summarize


def num(value: Any, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def label(p: Mapping[str, Any]) -> str:
    return str(p.get("point") or p["parameters"].get("point") or p["parameters"].get("layout"))


def slo_rows(points: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for p in points:
        for sample in p["samples"]:
            api = sample.get("apiserver") or {}
            for r in api.get("slo", []):
                rows.append({"experiment": p["experiment"], "point": label(p), "repetition": sample.get("repetition"), **r})
    return rows


SLO_COLUMNS = ("experiment", "point", "rep", "kind", "resource", "verb", "scope", "requests", "p99 s", "threshold s", "verdict")
SLO_NOTE = (
    "From the API server's /metrics, the difference of the histograms scraped before and after each sample: mutating calls "
    "p99 ≤ 1 s per (resource, verb); reads p99 ≤ 1 s for one object, 5 s in a namespace, 30 s across the cluster. Percentiles "
    "are interpolated inside the histogram's buckets, and \"(≤ b)\" gives the bound of the bucket that holds the p99, all that "
    "is known for sure; the thresholds are bucket bounds, so pass or fail is exact."
)


def slo_table(points: list[Point], table_id: str = "slo") -> Table:
    metrics = sorted({(s.get("apiserver") or {}).get("slo_metric") for p in points for s in p["samples"]} - {None})
    rows = tuple(
        (r["experiment"], r["point"], str(r["repetition"]), r["kind"], r["resource"], r["verb"], r["scope"] or "–", str(r["count"]),
         f"{r['p99']}" + (f" (≤ {r['p99_at_most']})" if r.get("p99_at_most") is not None else ""), str(r["threshold"]),
         "pass" if r["pass"] else "FAIL")
        for r in slo_rows(points)
    )
    return Table(table_id, "API call latency SLOs", SLO_COLUMNS, rows, SLO_NOTE + f" Histogram: {', '.join(metrics) or '–'}.")
