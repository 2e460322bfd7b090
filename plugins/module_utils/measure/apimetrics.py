# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""API server request latency from ``/metrics``, and Kubernetes' API call SLOs (pure).

An experiment scrapes the API server before and after it runs. The
difference of the cumulative histograms is the histogram of the requests
made in between; percentiles come from it the way Prometheus'
``histogram_quantile`` computes them (linear interpolation inside the bucket
that holds the rank), so they are only as fine as the buckets.

The SLOs are those Kubernetes publishes (sig-scalability, "API call
latency"), judged per experiment window instead of over 5 minutes:

- mutating calls for single objects (POST, PUT, PATCH, DELETE), per
  (resource, verb): p99 <= 1 s;
- non-streaming read-only calls (GET, LIST), per (resource, scope): p99 <=
  1 s for a single object (scope ``resource``), <= 5 s in a namespace,
  <= 30 s across the cluster.

WATCH, CONNECT and WATCHLIST are streaming and outside the SLO. They are
judged on ``apiserver_request_sli_duration_seconds`` (which excludes webhook
and priority-and-fairness queueing time, as the SLI does) when the server
exports it, else on ``apiserver_request_duration_seconds``; the metric used is
named in the results.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable, Mapping

SLI_METRIC = "apiserver_request_sli_duration_seconds"
DURATION_METRIC = "apiserver_request_duration_seconds"
MUTATING = ("POST", "PUT", "PATCH", "DELETE")
READ_ONLY = ("GET", "LIST")
# p99 thresholds, seconds.
SLO_MUTATING = 1.0
SLO_READ = {"resource": 1.0, "namespace": 5.0, "cluster": 30.0}
GROUP_LABELS = ("verb", "group", "resource", "subresource", "scope")

_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


class MetricsError(ValueError):
    pass


def parse_histograms(text: str, names: Iterable[str]) -> dict[str, dict[tuple, dict[str, Any]]]:
    """Histograms of the named metrics: ``{name: {label tuple: {buckets, sum, count}}}``.

    The label tuple holds (label, value) pairs sorted, without ``le``;
    ``buckets`` maps each upper bound (``math.inf`` for ``+Inf``) to its
    cumulative count.
    """
    wanted = set(names)
    prefixes = tuple(wanted)
    out: dict[str, dict[tuple, dict[str, Any]]] = {n: {} for n in wanted}
    for line in text.splitlines():
        # Most of an API server's /metrics is other families: skip them before any regex.
        if not line.startswith(prefixes):
            continue
        match = _LINE.match(line)
        if not match:
            continue
        metric, _, labels_text, value = match.groups()
        for suffix in ("_bucket", "_sum", "_count"):
            if metric.endswith(suffix) and metric[: -len(suffix)] in wanted:
                base = metric[: -len(suffix)]
                break
        else:
            continue
        labels = dict(_LABEL.findall(labels_text or ""))
        le = labels.pop("le", None)
        key = tuple(sorted(labels.items()))
        entry = out[base].setdefault(key, {"buckets": {}, "sum": 0.0, "count": 0.0})
        number = float(value)
        if suffix == "_bucket":
            if le is None:
                raise MetricsError(f"{metric}: bucket without le in {line[:200]!r}")
            entry["buckets"][math.inf if le == "+Inf" else float(le)] = number
        elif suffix == "_sum":
            entry["sum"] = number
        else:
            entry["count"] = number
    return out


def delta(before: Mapping[tuple, Mapping[str, Any]], after: Mapping[tuple, Mapping[str, Any]]) -> dict[tuple, dict[str, Any]]:
    """after - before per series; series with no new observations are dropped.

    A series whose count went down means the server restarted between the
    scrapes: the difference would be meaningless, so it is an error.
    """
    out = {}
    for key, later in after.items():
        earlier = before.get(key, {"buckets": {}, "sum": 0.0, "count": 0.0})
        count = later["count"] - earlier["count"]
        if count < 0:
            raise MetricsError(f"series {dict(key)}: count went down between scrapes (API server restarted?)")
        if count == 0:
            continue
        buckets = {le: n - earlier["buckets"].get(le, 0.0) for le, n in later["buckets"].items()}
        out[key] = {"buckets": buckets, "sum": later["sum"] - earlier["sum"], "count": count}
    return out


def merge(series: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Sum several histograms with the same buckets."""
    total: dict[str, Any] = {"buckets": {}, "sum": 0.0, "count": 0.0}
    for item in series:
        total["sum"] += item["sum"]
        total["count"] += item["count"]
        for le, n in item["buckets"].items():
            total["buckets"][le] = total["buckets"].get(le, 0.0) + n
    return total


def quantile(q: float, histogram: Mapping[str, Any]) -> float | None:
    """Prometheus' histogram_quantile: interpolate linearly inside the bucket.

    In the ``+Inf`` bucket it returns the highest finite bound (the true value
    is above it; :func:`summarize` marks that with ``above_last_bucket``).
    """
    buckets = sorted(histogram["buckets"].items())
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound


def bucket_bound(q: float, histogram: Mapping[str, Any]) -> float | None:
    """Upper bound of the bucket that holds the q-quantile (what is known for sure: it is at most this)."""
    buckets = sorted(histogram["buckets"].items())
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    for bound, count in buckets:
        if count >= rank:
            return None if math.isinf(bound) else bound
    return None


def summarize(histogram: Mapping[str, Any]) -> dict[str, Any]:
    finite = sorted(b for b in histogram["buckets"] if not math.isinf(b))
    p99 = quantile(0.99, histogram)
    last = finite[-1] if finite else None
    rounded = lambda x: None if x is None else round(x, 4)  # noqa: E731
    return {
        "count": int(histogram["count"]),
        "mean": rounded(histogram["sum"] / histogram["count"]) if histogram["count"] else None,
        "p50": rounded(quantile(0.50, histogram)),
        "p90": rounded(quantile(0.90, histogram)),
        "p99": rounded(p99),
        "above_last_bucket": bool(last is not None and histogram["buckets"].get(math.inf, 0) > histogram["buckets"].get(last, 0)),
    }


def group(series: Mapping[tuple, Mapping[str, Any]], labels: Iterable[str] = GROUP_LABELS) -> dict[tuple, dict[str, Any]]:
    """Merge series that agree on ``labels`` (dropping e.g. component, version, dry_run)."""
    labels = tuple(labels)
    grouped: dict[tuple, list] = {}
    for key, hist in series.items():
        d = dict(key)
        grouped.setdefault(tuple(d.get(k, "") for k in labels), []).append(hist)
    return {k: merge(v) for k, v in grouped.items()}


def latency_table(series: Mapping[tuple, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per (verb, group, resource, subresource, scope) with percentiles, busiest first."""
    rows = []
    for key, hist in group(series).items():
        row = dict(zip(GROUP_LABELS, key))
        row.update(summarize(hist))
        rows.append(row)
    rows.sort(key=lambda r: (-r["count"], r["verb"], r["resource"]))
    return rows


def slo_table(series: Mapping[tuple, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Judge each SLO group: mutating per (resource, verb), reads per (resource, scope)."""
    mutating: dict[tuple, list] = {}
    reads: dict[tuple, list] = {}
    for key, hist in series.items():
        d = dict(key)
        verb = d.get("verb", "")
        resource = "/".join(x for x in (d.get("group", ""), d.get("resource", ""), d.get("subresource", "")) if x) or d.get("resource", "")
        if verb in MUTATING:
            mutating.setdefault((resource, verb), []).append(hist)
        elif verb in READ_ONLY:
            reads.setdefault((resource, d.get("scope", "")), []).append(hist)
    rows = []
    for (resource, verb), hists in sorted(mutating.items()):
        rows.append(_judge("mutating", resource, verb, "", SLO_MUTATING, merge(hists)))
    for (resource, scope), hists in sorted(reads.items()):
        threshold = SLO_READ.get(scope)
        if threshold is None:
            continue
        rows.append(_judge("read-only", resource, "GET/LIST", scope, threshold, merge(hists)))
    return rows


def _judge(kind: str, resource: str, verb: str, scope: str, threshold: float, hist: Mapping[str, Any]) -> dict[str, Any]:
    s = summarize(hist)
    p99 = s["p99"]
    # The SLO thresholds (1, 5, 30 s) are bucket bounds of both histograms, so
    # an interpolated p99 is above a threshold exactly when the true one is.
    passed = p99 is not None and p99 <= threshold
    return {
        "kind": kind, "resource": resource, "verb": verb, "scope": scope,
        "count": s["count"], "p99": p99, "p99_at_most": bucket_bound(0.99, hist), "threshold": threshold, "pass": bool(passed),
    }


def report(before_text: str, after_text: str) -> dict[str, Any]:
    """Latency table and SLO judgement of what happened between two scrapes."""
    before = parse_histograms(before_text, (SLI_METRIC, DURATION_METRIC))
    after = parse_histograms(after_text, (SLI_METRIC, DURATION_METRIC))
    duration = delta(before[DURATION_METRIC], after[DURATION_METRIC])
    sli_metric = SLI_METRIC if after[SLI_METRIC] else DURATION_METRIC
    sli = delta(before[sli_metric], after[sli_metric])
    slos = slo_table(sli)
    return {
        "latency_metric": DURATION_METRIC,
        "slo_metric": sli_metric,
        "latency": latency_table(duration),
        "slo": slos,
        "slo_pass": all(r["pass"] for r in slos),
        "requests": int(sum(h["count"] for h in duration.values())),
    }
