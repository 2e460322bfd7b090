"""The sizing sweep on real control planes: a tiny sweep (kine over
PostgreSQL, the API server capped) keeps its variant's sample with what was
read back, every step's figures and the capacities;
the calculator answers from it naming the run; a sweep cut short by the
testbed's teardown is stopped first and leaves nothing."""
from __future__ import annotations

import json
import subprocess
import sys
import time

from ansible_collections.fedbench.testbed.plugins.module_utils.experiments import sizing
from ansible_collections.fedbench.testbed.plugins.module_utils.build import toolchain
from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import embedded

from .conftest import ROOT, wait_until

TINY = {"churn_start": 20, "churn_max_rate": 80, "churn_step_seconds": 2, "density_steps": [{"nodes": 2, "pods_per_node": 5}],
        "lifecycle_replicas": 2, "nodes": 1}


def _params(tmp_path, binaries, variants, sweep=TINY):
    return {"variants": variants, "sweep": sweep, "work_dir": str(tmp_path / "work"), "binaries": binaries,
            "kubernetes_version": "v" + toolchain.Versions().kubernetes.lstrip("v"), "run_id": "sz", "results_dir": str(tmp_path / "results")}


def test_a_tiny_sweep_keeps_a_sample_per_variant_and_the_calculator_answers_from_it(tmp_path, binaries):
    lines: list[str] = []
    out = sizing.sweep_from_params(_params(tmp_path, binaries, [
        {"name": "pg", "datastore": "kine-postgres", "control_plane": {"kube-apiserver": {"cpus": 0.5}}},
    ]), report=lines.append)
    assert not out.failed, out.message
    assert [r["variant"] for r in out.result["variants"]] == ["pg"]
    (pg,) = (json.loads(open(p).read()) for p in out.result["paths"])
    cluster = pg["testbed"]["clusters"][0]
    assert cluster["control_plane"]["kube-apiserver"]["cpus"] == 0.5 and cluster["datastore"]["kind"] == "kine-postgres"
    s = pg["samples"][0]
    assert s["status"] == "ok", s.get("error")
    assert s["variant"]["in_force"]["kube-apiserver"]["cpus"] == 0.5
    assert s["churn"]["steps"] and all(st["components"]["kube-apiserver"]["cpu_cores"] is not None for st in s["churn"]["steps"])
    assert s["churn"]["capacity"] is None or s["churn"]["capacity"] >= TINY["churn_start"]
    assert s["density"]["steps"][0]["running"] == 10 and s["lifecycle"]["create_to_ready"] > 0
    # PostgreSQL is measured as a component of its own, kine as the cluster's etcd.
    assert {"postgresql", "etcd"} <= set(s["churn"]["steps"][0]["components"])
    assert any(line.startswith("variant 1/1 pg: starting its cluster") for line in lines)
    # The variants' clusters are gone; nothing of them is left.
    bed = embedded.EmbeddedTestbed(work_dir=tmp_path / "work", binaries=None)
    left = bed.leftovers()
    assert left["clusters"] == [] and left["processes"] == {} and left["postgresql"] == [], left
    # The calculator, from the merged run.
    from ansible_collections.fedbench.testbed.plugins.module_utils.report import merge

    merge.aggregate(tmp_path / "results", ROOT / "docs/results.schema.json", "sz")
    answer = subprocess.run([sys.executable, str(ROOT / "bin/fedbench-size"), str(tmp_path / "results"), "--nodes", "1000", "--pods", "30000",
                             "--churn-rate", "20", "--datastore", "kine-postgres", "--json"], capture_output=True, text=True, timeout=60)
    assert answer.returncode == 0, answer.stderr
    data = json.loads(answer.stdout)
    assert data["runs"] == ["sz"] and {"kube-apiserver", "postgresql"} <= set(data["components"])
    none = subprocess.run([sys.executable, str(ROOT / "bin/fedbench-size"), str(tmp_path / "results"), "--nodes", "10", "--pods", "10",
                           "--datastore", "etcd"], capture_output=True, text=True, timeout=60)
    assert none.returncode == 2 and "no sizing step on datastore etcd" in none.stderr


def test_the_teardown_stops_a_sweep_first_and_leaves_nothing(tmp_path, binaries):
    params = _params(tmp_path, binaries, [{"name": "one"}, {"name": "two"}], {**TINY, "churn_step_seconds": 30})
    script = ("import json, sys\nsys.path.insert(0, %r)\nfrom ansible_collections.fedbench.testbed.plugins.module_utils.experiments import sizing\n"
              "sizing.sweep_from_params(json.loads(sys.argv[1]), report=print)\n") % str(ROOT / "collections")
    proc = subprocess.Popen([sys.executable, "-c", script, json.dumps(params)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    bed = embedded.EmbeddedTestbed(work_dir=tmp_path / "work", binaries=embedded.Binaries.from_mapping(binaries))
    try:
        wait_until(lambda: bed.running("sz-one"), 120, "the sweep's first cluster")
        time.sleep(2)
        bed.down()
        assert proc.wait(timeout=30) != 0  # stopped, not finished
        time.sleep(3)  # had it survived, it would start the next variant's cluster now
        left = bed.leftovers()
        assert left["clusters"] == [] and left["processes"] == {} and left["cgroups"] == [], left
        assert not (tmp_path / "work" / "drivers" / "sizing.pid").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
