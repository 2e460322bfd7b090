# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Summaries of samples: count, mean, stdev, min, p50, p90, p99, max (pure)."""

from __future__ import annotations

import math
import statistics
from typing import Iterable

SUMMARY_FIELDS = ("count", "mean", "stdev", "min", "p50", "p90", "p99", "max")


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default, 'linear')."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if len(sorted_values) == 1:
        return sorted_values[0]
    pos = (len(sorted_values) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarize(values: Iterable[float | None], digits: int = 3) -> dict[str, float | int | None]:
    """Summary of the values that exist; ``count`` says how many did."""
    vals = sorted(v for v in values if v is not None)
    if not vals:
        return {name: (0 if name == "count" else None) for name in SUMMARY_FIELDS}
    r = lambda x: round(x, digits)  # noqa: E731
    return {
        "count": len(vals),
        "mean": r(statistics.fmean(vals)),
        "stdev": r(statistics.stdev(vals)) if len(vals) > 1 else 0.0,
        "min": r(vals[0]),
        "p50": r(percentile(vals, 50)),
        "p90": r(percentile(vals, 90)),
        "p99": r(percentile(vals, 99)),
        "max": r(vals[-1]),
    }
