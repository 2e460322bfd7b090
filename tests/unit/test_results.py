"""Results envelopes: merging, summaries, schema, CSV and Markdown."""
import copy
import json
from pathlib import Path

import pytest

from ansible_collections.fedbench.testbed.plugins.module_utils import results
from ansible_collections.fedbench.testbed.plugins.module_utils.report import merge

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "results.schema.json"


def envelope(rep, ready, gone, replicas=2, status="ok", framework="native"):
    return results.envelope(
        run_id="r1", experiment="lifecycle", framework=framework,
        testbed=[{"name": "host", "testbed": "embedded", "kubernetes_version": "v1.36.1"}],
        point=f"replicas={replicas}", parameters={"replicas": replicas, "layout": "replicas"},
        sample={
            "repetition": rep, "status": status, "error": None, "started_at": "2026-01-01T00:00:00.000Z",
            "phases": {"ready": ready, "gone": gone},
            "headline": {"create_to_ready": ready, "delete_to_gone": gone},
            "pods": [{"cluster": "host", "name": f"p{rep}", "created_to_running": 0.1, "created_to_ready": 0.1 * rep}],
            "events": [],
        },
    )


def test_samples_of_one_point_merge_and_summarize(tmp_path):
    for rep, (ready, gone) in enumerate([(0.1, 0.05), (0.3, 0.07), (None, None)], start=1):
        env = envelope(rep, ready, gone, status="ok" if ready else "timeout")
        results.keep_sample(tmp_path, env)
    out = merge.aggregate(tmp_path, SCHEMA, "r1")
    doc = json.loads(Path(out["results_json"]).read_text())
    (point,) = doc["results"]
    assert [s["repetition"] for s in point["samples"]] == [1, 2, 3]
    assert point["counts"] == {"samples": 3, "ok": 2}
    assert point["summaries"]["create_to_ready"]["count"] == 2
    assert point["summaries"]["create_to_ready"]["mean"] == 0.2
    assert point["summaries"]["pod.created_to_ready"]["max"] == 0.2
    csv_text = Path(out["summary_csv"]).read_text()
    assert "lifecycle,native,embedded,replicas=2,create_to_ready,2,0.2," in csv_text
    assert "| lifecycle | native | embedded | replicas | 2 | 0.200 ± 0.141" in Path(out["summary_md"]).read_text()


def test_points_are_kept_apart(tmp_path):
    results.keep_sample(tmp_path, envelope(1, 0.1, 0.1, replicas=1))
    results.keep_sample(tmp_path, envelope(1, 0.2, 0.1, replicas=2))
    results.keep_sample(tmp_path, envelope(1, 0.2, 0.1, replicas=2, framework="kubefed"))
    assert merge.aggregate(tmp_path, SCHEMA, "r1")["points"] == 3


def test_a_file_off_the_schema_gets_a_message_not_a_traceback(tmp_path):
    bad = envelope(1, 0.1, 0.1)
    bad["samples"][0]["status"] = "fine"
    results.keep_sample(tmp_path, bad)
    with pytest.raises(results.ResultsError, match=r"at samples/0/status: 'fine' is not one of"):
        merge.aggregate(tmp_path, SCHEMA, "r1")


def test_broken_json_is_named(tmp_path):
    (tmp_path / "samples").mkdir()
    (tmp_path / "samples" / "x.json").write_text("{")
    with pytest.raises(results.ResultsError, match="x.json: not valid JSON"):
        merge.aggregate(tmp_path, SCHEMA, "r1")


def test_atomic_write_leaves_no_temporary_file(tmp_path):
    results.write_atomic(tmp_path / "a.json", {"x": 1})
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_sample_file_names_carry_the_point():
    env = envelope(3, 0.1, 0.1)
    assert results.sample_path(Path("/r"), env).name == "lifecycle-native-replicas_2-r3.json"


def test_schema_rejects_an_unknown_phase(tmp_path):
    env = copy.deepcopy(envelope(1, 0.1, 0.1))
    env["samples"][0]["phases"]["teleported"] = 0.1
    with pytest.raises(results.ResultsError, match="samples/0/phases"):
        results.validate(env, SCHEMA, "envelope")


def test_a_results_folder_that_cannot_take_a_sample_is_named(tmp_path):
    not_a_folder = tmp_path / "results"
    not_a_folder.write_text("a file where the results folder should be")
    with pytest.raises(results.ResultsError, match=f"cannot keep the sample in the results folder {not_a_folder}: "):
        results.keep_sample(not_a_folder, envelope(1, 0.1, 0.1))
    assert not_a_folder.read_text() == "a file where the results folder should be"
