import pytest

from ansible_collections.fedbench.testbed.plugins.module_utils.measure import stats


def test_summary_of_known_values():
    s = stats.summarize([1, 2, 3, 4, None, 5])
    assert s == {"count": 5, "mean": 3.0, "stdev": 1.581, "min": 1, "p50": 3, "p90": 4.6, "p99": 4.96, "max": 5}


def test_summary_of_nothing_counts_zero():
    s = stats.summarize([None, None])
    assert s["count"] == 0 and s["mean"] is None and s["p99"] is None


def test_single_value_has_zero_stdev():
    assert stats.summarize([0.25])["stdev"] == 0.0


@pytest.mark.parametrize("q, expected", [(0, 10), (50, 25), (100, 40), (90, 37)])
def test_percentile_interpolates(q, expected):
    assert stats.percentile([10, 20, 30, 40], q) == pytest.approx(expected)
