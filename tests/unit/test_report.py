"""The report and the comparison, from a results fixture made here."""
import copy
import json
import random
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ansible_collections.fedbench.testbed.plugins.module_utils.experiments import burst
from ansible_collections.fedbench.testbed.plugins.module_utils import report, results
from ansible_collections.fedbench.testbed.plugins.module_utils.report import merge, registry

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "results.schema.json"
TESTBED = [{"name": "host", "role": "host", "nodes": 4, "testbed": "embedded", "kubernetes_version": "v1.36.1"}]


def envelope(experiment, framework, point, parameters, sample):
    return results.envelope(run_id="fixture", experiment=experiment, framework=framework, testbed=TESTBED, point=point,
                            parameters=parameters, sample=sample)


def lifecycle_envelope(framework, layout, replicas, rep, scale=1.0, rng=None):
    rng = rng or random.Random(replicas * 100 + rep)
    ready = scale * (0.05 + 0.01 * replicas + rng.uniform(0, 0.004))
    gone = scale * (0.02 + 0.005 * replicas + rng.uniform(0, 0.002))
    phases = {"create_acked": 0.01, "pod_created_last": ready * 0.4, "pod_scheduled_last": ready * 0.5,
              "pod_running_last": ready * 0.8, "pod_ready_last": ready * 0.8, "ready": ready, "gone": gone}
    return envelope("lifecycle", framework, f"{layout}={replicas}", {"replicas": replicas, "layout": layout},
                    {"repetition": rep, "status": "ok", "error": None, "started_at": "2026-01-01T00:00:00.000Z",
                     "phases": phases, "headline": {"create_to_ready": round(ready, 3), "delete_to_gone": round(gone, 3)},
                     "pods": [{"cluster": "host", "name": f"p{i}", "created_to_running": round(ready * 0.3, 3), "created_to_ready": round(ready * 0.3, 3)} for i in range(replicas)],
                     "events": []})


def burst_envelope():
    reqs = [burst.Request(s, "t", s * 1.0, 0.02 + 0.001 * i, 200, "host" if s < 5 else "member1", "x", "ok") for s in range(8) for i in range(3)]
    slots = burst.summarize_slots(reqs, 8, 1.0)
    return envelope("burst", "istio-emulated", "default", {"profile": "default", "local_cluster": "host"},
                    {"repetition": 1, "status": "ok", "error": None, "started_at": "2026-01-01T00:00:00.000Z",
                     "requests": [r.__dict__ for r in reqs], "slots": slots,
                     "totals": {"requests": 24, "successes": 24, "served_by": {"host": 15, "member1": 9}, "local_share": 0.625}})


SLO = [{"kind": "mutating", "resource": "configmaps", "verb": "POST", "scope": "", "count": 100, "p99": 0.0495, "threshold": 1.0, "pass": True},
       {"kind": "read-only", "resource": "pods", "verb": "GET/LIST", "scope": "cluster", "count": 2, "p99": 31.0, "threshold": 30.0, "pass": False}]


def api_envelopes(scale: float = 1.0) -> list[dict]:
    lat = lambda p50: {"count": 10, "mean": p50, "stdev": 0.001, "min": p50 / 2, "p50": p50, "p90": p50 * 2, "p99": p50 * 3, "max": p50 * 4}  # noqa: E731
    out = []
    for rate in (10, 100):
        for rep in (1, 2):
            point = f"open-rate{rate}-life2"
            summary = {"requested_rate": rate, "scheduled_rate": rate * (1 + 0.01 * rep), "achieved_rate": rate * (1 + 0.01 * rep) / scale,
                       "rate_accuracy": (1 + 0.01 * rep) / scale, "error_ratio": 0.0, "errors": {},
                       "verbs": {"create": {"latency": lat(0.004 * scale)}, "delete": {"latency": lat(0.005 * scale)}}}
            out.append(envelope("churn", "native", point, {"mode": "open", "rate": rate},
                                {"repetition": rep, "status": "ok", "started_at": "2026-01-01T00:00:00.000Z", "summary": summary,
                                 "apiserver": {"slo": SLO, "slo_pass": False, "slo_metric": "apiserver_request_sli_duration_seconds", "latency": []}}))
            out.append(envelope("informer", "native", point, {},
                                {"repetition": rep, "status": "ok", "started_at": "2026-01-01T00:00:00.000Z",
                                 "summary": {"notify_latency": {"ADDED": lat(0.004 * scale), "MODIFIED": lat(0.0)}, "queue_wait": lat(0.0001)}}))
    for rep in (1, 2):
        summary = {"pods": 500, "running": 500, "pod_startup": lat(0.01 * scale * (1 + 0.05 * rep)), "pod_startup_pass": True,
                   "scheduling_throughput": {"mean": 50.0 / scale, "max": 52}, "pods_per_second_to_running": 48.0 / scale}
        out.append(envelope("density", "native", "nodes100-ppn5-rate50", {"pods": 500, "nodes": 100, "pods_per_node": 5},
                            {"repetition": rep, "status": "ok", "started_at": "2026-01-01T00:00:00.000Z", "summary": summary,
                             "apiserver": {"slo": SLO[:1], "slo_pass": True, "slo_metric": "apiserver_request_sli_duration_seconds", "latency": []},
                             "processes": {"busiest": "kube-apiserver", "host_busy": 0.5, "components": {"kube-apiserver": {"cpu_cores": 0.61}}}}))
    return out


def make_run(tmp_path: Path, name: str, scale: float = 1.0) -> Path:
    run = tmp_path / name
    for framework in ("native", "kubefed"):
        for replicas in (1, 2, 4):
            for rep in (1, 2, 3):
                results.keep_sample(run, lifecycle_envelope(framework, "replicas", replicas, rep, scale))
    results.keep_sample(run, burst_envelope())
    for envelope in api_envelopes(scale):
        results.keep_sample(run, envelope)
    merge.aggregate(run, SCHEMA, name)
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
    assert {"report/churn-rate.png", "report/churn-latency.png", "report/density-startup.png"} <= set(parser.images)
    # The SLO table: one row per judged SLO of every churn and density sample, with its verdict.
    slo_table = page[page.index('<table id="slo">'):page.index("</table>", page.index('<table id="slo">'))]
    assert slo_table.count("<tr>") - 1 == 4 * len(SLO) + 2 * 1
    assert slo_table.count(">FAIL<") == 4 and "31.0" in slo_table
    density_table = page[page.index('<table id="density">'):page.index("</table>", page.index('<table id="density">'))]
    assert "500 / 500" in density_table and "kube-apiserver (0.61 cores)" in density_table
    assert {r["metric"] for r in report.headline_rows(json.loads((run / "results.json").read_text())) if r["experiment"] == "density"} == set(
        registry.get("density").headline)
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
    assert {r["verdict"] for r in same} == {"within noise", "not measured"}
    assert [r["metric"] for r in same if r["verdict"] == "not measured"] == ["update.p99"] * 2  # the open loop never updates
    slow = {(r["framework"], r["point"], r["metric"]): r for r in report.compare(a, b)}
    for framework in ("native", "kubefed"):
        for replicas in ("1", "2", "4"):
            row = slow[(framework, f"replicas={replicas}", "create_to_ready")]
            assert row["verdict"] == "regression" and row["change"] == pytest.approx(1.0, abs=0.05), row
    assert slow[("native", "nodes100-ppn5-rate50", "pod_startup.p99")]["verdict"] == "regression"
    assert slow[("native", "nodes100-ppn5-rate50", "scheduling_throughput")]["verdict"] == "regression"  # halved: lower is worse
    # The burst ran once: one sample measures no noise, so its change is not called either way.
    assert {r["verdict"] for r in report.compare(a, b) if r["experiment"] == "burst" and r["a"] != r["b"]} <= {"no noise estimate (one sample)"}
    improved = {(r["framework"], r["point"], r["metric"]): r for r in report.compare(b, a)}
    assert improved[("native", "replicas=4", "create_to_ready")]["verdict"] == "improvement"
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


def test_compare_of_two_runs_with_nothing_in_common_says_so(tmp_path):
    import subprocess
    import sys

    a = make_run(tmp_path, "a")
    b = tmp_path / "b"
    results.keep_sample(b, burst_envelope())
    merge.aggregate(b, SCHEMA, "b")
    doc = json.loads((b / "results.json").read_text())
    for point in doc["results"]:
        point["framework"] = "something-else"
    (b / "results.json").write_text(json.dumps(doc))
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, str(root / "bin" / "fedbench-compare"), str(a), str(b)], capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and "have no measured point in common" in proc.stderr, proc.stderr
    same = subprocess.run([sys.executable, str(root / "bin" / "fedbench-compare"), str(a), str(a)], capture_output=True, text=True, check=False)
    assert same.returncode == 0 and "within noise" in same.stdout


def test_runs_on_two_testbeds_are_put_beside_each_other(tmp_path):
    """An embedded run and a kind run of the same matrix: the page draws both
    runs' lifecycles in the same plots, and a change is what the second testbed
    does (B worse / B better), never a regression."""
    import subprocess
    import sys

    a = make_run(tmp_path, "a")
    b = make_run(tmp_path, "b", scale=3.0)
    doc = json.loads((b / "results.json").read_text())
    for point in doc["results"]:
        point["testbed"] = dict(point["testbed"], kind="kind")
    (b / "results.json").write_text(json.dumps(doc))
    root = Path(__file__).resolve().parents[2]
    page = tmp_path / "compare-a-b.html"
    proc = subprocess.run([sys.executable, str(root / "bin" / "fedbench-compare"), str(a), str(b), "--html", str(page)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "A ran on the embedded testbed, B on the kind testbed" in proc.stdout
    assert "| create_to_ready |" in proc.stdout and "| regression |" not in proc.stdout and "| B worse |" in proc.stdout
    html_text = page.read_text()
    parser = _Cells()
    parser.feed(html_text)
    assert len(parser.images) == 3 and all((tmp_path / src).is_file() and (tmp_path / src).stat().st_size > 1000 for src in parser.images)
    assert "Run a (A, embedded) beside run b (B, kind)" in html_text and "http://" not in html_text


def test_the_emulated_and_the_real_mesh_are_set_side_by_side_slot_by_slot(tmp_path):
    """An embedded run's istio-emulated burst and a kind run's istio burst are one
    path measured two ways: one comparison row, both per-slot tables, and what
    differs between the paths said."""
    a, b = tmp_path / "a", tmp_path / "b"
    results.keep_sample(a, burst_envelope())
    merge.aggregate(a, SCHEMA, "a")
    real = burst_envelope()
    real["framework"] = "istio"
    real["testbed"] = dict(real["testbed"], kind="kind")
    results.keep_sample(b, real)
    merge.aggregate(b, SCHEMA, "b")
    da, db = (json.loads((x / "results.json").read_text()) for x in (a, b))
    rows = report.compare(da, db)
    assert any(r["framework"] == "istio" and r["a"] is not None and r["b"] is not None for r in rows), rows
    bursts = report.compare_sections(da, "A, embedded") + report.compare_sections(db, "B, kind")
    assert [s["title"].split(":")[0] for s in bursts] == ["A, embedded", "B, kind"] and len(bursts[0]["rows"]) == 8
    assert bursts[0]["rows"][0]["served_by"] == "host 3" and bursts[1]["rows"][7]["served_by"] == "member1 3"
    text = report.compare_markdown("a", "b", rows, ("embedded", "kind"), bursts)
    assert "## B, kind: burst, istio" in text and "one endpoint per network" in text
    page = report.compare_html(da, db, rows, tmp_path / "c.html")
    assert "one 503 from any peer pod ejects the whole peer" in Path(page["page"]).read_text()
