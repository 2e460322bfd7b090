"""The report and the comparison, from a results fixture made here."""
import copy
import json
import random
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ansible_collections.fedbench.testbed.plugins.module_utils import burst, report, results

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "results.schema.json"
TESTBED = {"kind": "embedded", "kubernetes_version": "v1.36.1", "clusters": [{"name": "host", "role": "host", "nodes": 4}],
           "host": {"cores": 2, "memory_bytes": 25_000_000_000, "platform": "test"}}


def lifecycle_envelope(framework, layout, replicas, rep, scale=1.0, rng=None):
    rng = rng or random.Random(replicas * 100 + rep)
    ready = scale * (0.05 + 0.01 * replicas + rng.uniform(0, 0.004))
    gone = scale * (0.02 + 0.005 * replicas + rng.uniform(0, 0.002))
    phases = {"create_acked": 0.01, "pod_created_last": ready * 0.4, "pod_scheduled_last": ready * 0.5,
              "pod_running_last": ready * 0.8, "pod_ready_last": ready * 0.8, "ready": ready, "gone": gone}
    return {
        "schema": results.SCHEMA, "run_id": "fixture", "experiment": "lifecycle", "framework": framework, "testbed": TESTBED,
        "parameters": {"replicas": replicas, "layout": layout},
        "samples": [{"repetition": rep, "status": "ok", "error": None, "started_at": "2026-01-01T00:00:00.000Z",
                     "phases": phases, "headline": {"create_to_ready": round(ready, 3), "delete_to_gone": round(gone, 3)},
                     "pods": [{"cluster": "host", "name": f"p{i}", "created_to_running": round(ready * 0.3, 3), "created_to_ready": round(ready * 0.3, 3)} for i in range(replicas)],
                     "events": []}],
    }


def burst_envelope():
    reqs = [burst.Request(s, "t", s * 1.0, 0.02 + 0.001 * i, 200, "host" if s < 5 else "member1", "x", "ok") for s in range(8) for i in range(3)]
    slots = burst.summarize_slots(reqs, 8, 1.0)
    return {
        "schema": results.SCHEMA, "run_id": "fixture", "experiment": "burst", "framework": "istio-emulated", "testbed": TESTBED,
        "parameters": {"profile": "default", "layout": "default", "replicas": 0, "local_cluster": "host"},
        "samples": [{"repetition": 1, "status": "ok", "error": None, "started_at": "2026-01-01T00:00:00.000Z",
                     "requests": [r.__dict__ for r in reqs], "slots": slots,
                     "totals": {"requests": 24, "successes": 24, "served_by": {"host": 15, "member1": 9}, "local_share": 0.625}}],
    }


def make_run(tmp_path: Path, name: str, scale: float = 1.0) -> Path:
    run = tmp_path / name
    for framework in ("native", "kubefed"):
        for replicas in (1, 2, 4):
            for rep in (1, 2, 3):
                results.keep_sample(run, lifecycle_envelope(framework, "replicas", replicas, rep, scale))
    results.keep_sample(run, burst_envelope())
    results.aggregate(run, SCHEMA, name)
    return run


class _Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.cells, self.images, self._cell = [], [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "td" and "data-key" in attrs:
            self._cell = (attrs["data-metric"], attrs["data-key"])

    def handle_data(self, data):
        if self._cell:
            self.cells.append((*self._cell, data.strip()))
            self._cell = None


def test_report_renders_with_its_images_and_the_numbers_of_results_json(tmp_path):
    run = make_run(tmp_path, "a")
    out = report.render(run, SCHEMA)
    page = Path(out["report"]).read_text()
    parser = _Cells()
    parser.feed(page)
    assert parser.images and set(parser.images) == set(out["images"])
    for src in parser.images:
        assert (run / src).is_file() and (run / src).stat().st_size > 1000, src
    assert any("phases" in s for s in parser.images) and any("cdf" in s for s in parser.images) and any("burst-share" in s for s in parser.images)
    # Every number in the headline table is the stored one, in results.json's order.
    doc = json.loads((run / "results.json").read_text())
    expected = [(r["metric"], k, "–" if r[k] is None else str(r[k])) for r in report.headline_rows(doc)
                for k in ("mean", "stdev", "min", "p50", "p90", "p99", "max")]
    assert parser.cells == expected
    assert "http://" not in page and "https://" not in page  # opens with no network


def test_comparison_flags_a_planted_slowdown_and_not_a_copy(tmp_path):
    a = json.loads((make_run(tmp_path, "a") / "results.json").read_text())
    b = json.loads((make_run(tmp_path, "b", scale=2.0) / "results.json").read_text())
    same = report.compare(a, copy.deepcopy(a))
    assert {r["verdict"] for r in same} == {"within noise"}
    slow = {(r["framework"], r["replicas"], r["metric"]): r for r in report.compare(a, b)}
    for framework in ("native", "kubefed"):
        for replicas in ("1", "2", "4"):
            row = slow[(framework, replicas, "create_to_ready")]
            assert row["verdict"] == "regression" and row["change"] == pytest.approx(1.0, abs=0.05), row
    improved = {(r["framework"], r["replicas"], r["metric"]): r for r in report.compare(b, a)}
    assert improved[("native", "4", "create_to_ready")]["verdict"] == "improvement"
    text = report.compare_markdown("a", "b", report.compare(a, b))
    assert re.search(r"\| create_to_ready \| [\d.]+ \| [\d.]+ \| \+\d+\.\d % \|", text)


def test_a_results_file_off_the_schema_gets_a_message_not_a_traceback(tmp_path):
    run = make_run(tmp_path, "a")
    doc = json.loads((run / "results.json").read_text())
    doc["results"][0]["samples"][0]["status"] = "sideways"
    (run / "results.json").write_text(json.dumps(doc))
    with pytest.raises(results.ResultsError, match=r"results\.json: results do not fit fedbench\.result/v1 at results/0/samples/0/status"):
        report.render(run, SCHEMA)
    (run / "results.json").write_text("{not json")
    with pytest.raises(results.ResultsError, match="is not valid JSON"):
        report.render(run, SCHEMA)
