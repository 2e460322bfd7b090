"""The deployment lifecycle experiment on a real embedded cluster."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ansible_collections.fedbench.testbed.plugins.module_utils.common import process
from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import embedded
from ansible_collections.fedbench.testbed.plugins.module_utils.experiments import lifecycle_params as experiment
from ansible_collections.fedbench.testbed.plugins.module_utils import frameworks, kube, results
from ansible_collections.fedbench.testbed.plugins.module_utils.report import merge
from ansible_collections.fedbench.testbed.plugins.module_utils.measure import phases

from .conftest import ROOT, VENV_BIN, Testbeds, stop_supervisor

SCHEMA = ROOT / "docs" / "results.schema.json"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, binaries):
    beds = Testbeds(tmp_path_factory.mktemp("lifecycle"), binaries)
    try:
        _, (facts,) = beds.up(4)
        yield facts
    finally:
        leaks = beds.close()
    assert not leaks, leaks


def params(cluster, tmp_path, **over):
    base = dict(
        replicas=1, layout="replicas", image="busybox:1.36", command=["sleep", "3600"], namespace=f"lc-{tmp_path.name[-20:].lower().replace('_', '-')}".rstrip("-"),
        node_selector={}, ready_timeout=60, delete_timeout=60, framework="native", repetition=1,
        clusters=[{"name": cluster.name, "kubeconfig": cluster.kubeconfig, "context": cluster.context, "role": "host"}],
        testbed=[cluster.as_dict()], run_id="itest", results_dir=str(tmp_path / "results"), cleanup=False,
    )
    base.update(over)
    return base


def namespace_exists(cluster, name: str) -> bool:
    from kubernetes import config

    api = config.new_client_from_config(config_file=cluster.kubeconfig, context=cluster.context)
    try:
        kube.request(api, "GET", f"/api/v1/namespaces/{name}")
        return True
    except kube.KubeError as exc:
        assert exc.status == 404, exc
        return False


def _check_sample(sample: dict, replicas: int) -> None:
    assert sample["status"] == "ok", sample.get("error")
    p = sample["phases"]
    assert all(p[name] is not None for name in phases.PHASES), p
    assert sample["order_violations"] == []
    for pod in sample["pods"]:
        assert 0 <= pod["created_to_scheduled"] <= pod["created_to_running"] <= pod["created_to_ready"], pod
    assert len(sample["pods"]) == replicas
    assert p["pod_created_first"] <= p["pod_scheduled_first"] <= p["pod_running_first"] <= p["pod_ready_first"]
    # delete sent <= gone: every delete-side phase is measured from delete_sent
    assert 0 <= p["delete_acked"] and 0 <= p["deployment_gone"] <= p["gone"] and 0 <= p["pods_gone"] <= p["gone"]
    assert sample["headline"] == {"create_to_ready": p["ready"], "delete_to_gone": p["gone"]}


def test_sizes_1_2_4_twice_each_are_ordered_and_fit_the_schema(cluster, tmp_path):
    for replicas in (1, 2, 4):
        for rep in (1, 2):
            out = experiment.lifecycle_from_params(params(cluster, tmp_path, replicas=replicas, repetition=rep, cleanup=(replicas, rep) == (4, 2)))
            assert not out.failed, out.message
            sample = json.loads(Path(out.result["path"]).read_text())["samples"][0]
            _check_sample(sample, replicas)
            pod_names = {e["name"] for e in sample["events"] if e["kind"] == "Pod"}
            assert len(pod_names) == replicas
    agg = merge.aggregate(tmp_path / "results", SCHEMA, "itest")
    assert agg["points"] == 3 and agg["samples"] == 6
    doc = json.loads(Path(agg["results_json"]).read_text())
    results.validate(doc, SCHEMA)
    assert [p["summaries"]["create_to_ready"]["count"] for p in doc["results"]] == [2, 2, 2]
    assert not namespace_exists(cluster, params(cluster, tmp_path)["namespace"])


def test_deployments_layout(cluster, tmp_path):
    for replicas in (1, 3):
        out = experiment.lifecycle_from_params(params(cluster, tmp_path, replicas=replicas, layout="deployments", cleanup=replicas == 3))
        assert not out.failed, out.message
        sample = json.loads(Path(out.result["path"]).read_text())["samples"][0]
        _check_sample(sample, replicas)
        assert len({e["name"] for e in sample["events"] if e["kind"] == "Deployment"}) == replicas
    merge.aggregate(tmp_path / "results", SCHEMA, "itest")


def test_never_ready_fails_on_its_timeout_with_the_partial_sample(cluster, tmp_path):
    p = params(cluster, tmp_path, replicas=2, node_selector={"fedbench.io/no-such": "node"}, ready_timeout=4)
    out = experiment.lifecycle_from_params(p)
    assert out.failed
    assert "lifecycle sample failed (timeout): timed out after 4s waiting for 2 ready replicas" in out.message
    kept = json.loads(Path(out.result["path"]).read_text())
    results.validate(kept, SCHEMA, "envelope")
    sample = kept["samples"][0]
    assert sample["status"] == "timeout"
    assert sample["phases"]["pod_created_last"] is not None  # the pods exist, pending
    assert sample["phases"]["pod_scheduled_first"] is None and sample["phases"]["ready"] is None
    assert not namespace_exists(cluster, p["namespace"])


def test_a_warm_up_whose_pods_can_never_be_ready_is_kept_as_failed(cluster, tmp_path):
    """The role's unrecorded warm-up times out first on such pods: kept, marked, so the run says why."""
    p = params(cluster, tmp_path, node_selector={"fedbench.io/no-such": "node"}, ready_timeout=3, record=False)
    out = experiment.lifecycle_from_params(p)
    assert out.failed and "timed out after 3s" in out.message
    kept = json.loads(Path(out.result["path"]).read_text())
    results.validate(kept, SCHEMA, "envelope")
    assert kept["samples"][0]["warmup"] is True and kept["samples"][0]["status"] == "timeout"
    fine = experiment.lifecycle_from_params(params(cluster, tmp_path, record=False, namespace=p["namespace"] + "-ok"))
    assert not fine.failed and fine.result["path"] is None  # a warm-up that succeeds is not kept


def _adhoc(args: dict, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", ANSIBLE_NOCOLOR="1")
    return subprocess.run(
        [str(VENV_BIN / "ansible"), "localhost", "-i", str(ROOT / "inventories/testbed"), "-m", "fedbench.testbed.deployment_lifecycle",
         "-a", json.dumps(args), *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


def test_check_mode_creates_nothing(cluster, tmp_path):
    p = params(cluster, tmp_path, replicas=2, namespace="lc-check-mode")
    proc = _adhoc({k: p[k] for k in ("replicas", "namespace", "clusters", "run_id", "results_dir")}, "--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not namespace_exists(cluster, "lc-check-mode")
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    "over, message",
    [
        ({"replicas": 0}, "replicas must be a whole number of at least 1, got 0"),
        ({"replicas": -2}, "replicas must be a whole number of at least 1, got -2"),
        ({"layout": "zigzag"}, "value of layout must be one of: replicas, deployments, got: zigzag"),
        ({"framework": "karmada"}, f"value of framework must be one of: {', '.join(sorted(frameworks.PLACEMENT))}, got: karmada"),
    ],
)
def test_bad_parameters_are_named(cluster, tmp_path, over, message):
    p = params(cluster, tmp_path)
    args = {k: p[k] for k in ("replicas", "namespace", "clusters", "run_id", "results_dir")}
    args.update(over)
    proc = _adhoc(args)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr, proc.stdout


def _make(playbooks, run_id: str, extra: dict) -> subprocess.Popen:
    """`make bench` as a user runs it, on the test's inventory, work dir and results folder."""
    return subprocess.Popen(
        ["make", "bench", f"INVENTORY={playbooks.inventory}", f"ARGS=-e '{json.dumps(extra)}'"],
        cwd=ROOT, env=playbooks.env(FEDBENCH_RUN_ID=run_id), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )


def _wait_samples(proc, results_dir: Path, count: int) -> None:
    deadline = time.monotonic() + 240
    while len(list((results_dir / "samples").glob("*.json"))) < count:
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        assert time.monotonic() < deadline, "no samples appeared"
        time.sleep(0.05)


def test_make_bench_that_finishes_exits_0_prints_its_summary_and_tears_down(playbooks):
    """make bench as the README gives it, on a one-cluster testbed: exit 0, the
    summary and the report's path printed, nothing of the work dir left running
    (teardown never takes make's own shell, which names the work dir, for a stray)."""
    ports = embedded.free_ports(1)
    playbooks.inventory_with({"fedbench_testbed": "embedded", "fedbench_frameworks": ["native"], "fedbench_dataplanes": [],
                              "fedbench_apimachinery": False,
                              "fedbench_clusters": [{"name": "whole", "role": "host", "nodes": 1, "apiserver_port": ports[0]}]})
    proc = _make(playbooks, "whole", {"experiment_lifecycle_max_replicas": 1, "experiment_lifecycle_repetitions": 1,
                                      "experiment_lifecycle_layouts": ["replicas"], "experiment_lifecycle_warmup": False})
    try:
        out, _ = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    results_dir = playbooks.root / "results" / "whole"
    assert proc.returncode == 0, out[-4000:]
    assert f"results: {results_dir}/" in out and f"report: {results_dir}/report.html" in out, out[-2000:]
    assert (results_dir / "summary.md").read_text() in out
    assert not process.processes_under(playbooks.work_dir), "make bench tore the testbed down"
    assert not process.port_in_use(ports[0])


def test_apiserver_killed_midway_fails_clearly_and_keeps_finished_samples(playbooks):
    """make bench, and the API server killed for good after two samples: the
    message names the cluster, the finished samples stay, the report is drawn
    from them and says it is partial, teardown leaves nothing."""
    ports = embedded.free_ports(1)
    playbooks.inventory_with({"fedbench_testbed": "embedded", "fedbench_frameworks": ["native"], "fedbench_dataplanes": [],
                              "fedbench_apimachinery": False,
                              "fedbench_clusters": [{"name": "victim", "role": "host", "nodes": 2, "apiserver_port": ports[0]}]})
    results_dir = playbooks.root / "results" / "killrun"
    proc = _make(playbooks, "killrun", {"experiment_lifecycle_max_replicas": 2, "experiment_lifecycle_repetitions": 4,
                                        "experiment_lifecycle_layouts": ["replicas"], "experiment_lifecycle_repair_timeout": 10})
    try:
        _wait_samples(proc, results_dir, 2)
        apiservers = [pid for pid, cmd in process.processes_under(playbooks.work_dir).items() if "/kube-apiserver " in cmd]
        assert len(apiservers) == 1
        stop_supervisor(playbooks.work_dir)  # the API server stays dead: what a user sees then
        os.kill(apiservers[0], signal.SIGKILL)
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode != 0
    flat = " ".join(out.split())
    assert "lifecycle sample failed (error)" in flat, out[-4000:]
    # The message names the cluster whose API server went, not only its URL.
    failed_line = flat[flat.index("lifecycle sample failed (error)"):][:2000]
    assert "cluster victim" in failed_line or "victim:" in failed_line, failed_line
    kept = [json.loads(p.read_text()) for p in sorted((results_dir / "samples").glob("*.json"))]
    statuses = [k["samples"][0]["status"] for k in kept]
    assert statuses.count("ok") >= 2 and statuses.count("error") == 1, statuses
    for k in kept:
        results.validate(k, SCHEMA, "envelope")
    # The report of what finished, marked partial; then teardown.
    document = json.loads((results_dir / "results.json").read_text())
    assert document["partial"].startswith("the run failed (exit"), document.get("partial")
    assert "Partial: the run failed" in (results_dir / "report.html").read_text()
    assert (results_dir / "summary.md").read_text().splitlines()[2].startswith("**Partial: the run failed")
    assert not process.processes_under(playbooks.work_dir), "make bench tore the testbed down"


def test_make_bench_interrupted_reports_what_finished_and_tears_down(playbooks):
    """Ctrl-C (SIGINT to make's process group) during the lifecycle: the
    samples that finished are merged and reported, marked partial, and the
    testbed is torn down; nothing is left."""
    ports = embedded.free_ports(1)
    playbooks.inventory_with({"fedbench_testbed": "embedded", "fedbench_frameworks": ["native"], "fedbench_dataplanes": [],
                              "fedbench_apimachinery": False,
                              "fedbench_clusters": [{"name": "ctrlc", "role": "host", "nodes": 2, "apiserver_port": ports[0]}]})
    results_dir = playbooks.root / "results" / "ctrlc"
    proc = _make(playbooks, "ctrlc", {"experiment_lifecycle_max_replicas": 2, "experiment_lifecycle_repetitions": 6,
                                      "experiment_lifecycle_layouts": ["replicas"]})
    try:
        _wait_samples(proc, results_dir, 2)
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode != 0
    assert "== the run interrupted (exit 130): merging the samples that finished" in out, out[-3000:]
    document = json.loads((results_dir / "results.json").read_text())
    assert document["partial"] == "the run interrupted (exit 130) before it finished."
    assert sum(len(p["samples"]) for p in document["results"]) >= 2
    assert (results_dir / "report.html").is_file()
    assert not process.processes_under(playbooks.work_dir), "the interrupted run was torn down"
    assert not process.port_in_use(ports[0])


def test_a_full_results_folder_is_named_and_nothing_is_corrupt(cluster, tmp_path):
    """The results folder on a file system that fills up: the first sample is
    kept whole; the one that no longer fits fails naming the folder and leaves
    no half-written file; the folder still merges."""
    if os.geteuid() != 0:
        pytest.fail("this fault test mounts a small tmpfs and needs root (CI runs as root)")
    folder = tmp_path / "small"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(folder)], check=True)
    try:
        first = experiment.lifecycle_from_params(params(cluster, tmp_path, results_dir=str(folder), repetition=1))
        assert not first.failed, first.message
        kept = Path(first.result["path"])
        whole = kept.read_text()
        filler = folder / "filler"
        try:  # fill what is left, to the last block
            with open(filler, "wb") as out:
                while True:
                    out.write(b"\0" * 4096)
                    out.flush()
        except OSError:
            pass
        second = experiment.lifecycle_from_params(params(cluster, tmp_path, results_dir=str(folder), repetition=2))
        assert second.failed
        assert f"cannot keep the sample in the results folder {folder}: No space left on device" in second.message, second.message
        assert kept.read_text() == whole
        assert sorted(p.name for p in (folder / "samples").iterdir()) == [kept.name], "no half-written file is left"
        filler.unlink()
        merged = merge.aggregate(folder, SCHEMA, "full")
        assert merged["samples"] == 1
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_framework_teardown_releases_only_what_the_framework_s_own_finalizers_hold(cluster):
    """The uninstall leftovers step (Liqo's teardown uses it) on a real API
    server: in a framework namespace being deleted, an object only the
    framework's finalizer holds is released and the namespace goes; one that
    also carries someone else's finalizer is left, and what holds the
    namespace is named."""
    from kubernetes import config

    from ansible_collections.fedbench.testbed.plugins.modules import uninstalled_leftovers

    api = config.new_client_from_config(config_file=cluster.kubeconfig, context=cluster.context)
    for ns, finalizers in (("fbx-tenant-a", ["hold.fbx.io/teardown"]), ("fbx-tenant-b", ["hold.fbx.io/teardown", "example.com/keep"])):
        kube.request(api, "POST", "/api/v1/namespaces", body={"metadata": {"name": ns}})
        kube.request(api, "POST", f"/api/v1/namespaces/{ns}/configmaps", body={"metadata": {"name": "held", "finalizers": finalizers}})
        kube.request(api, "DELETE", f"/api/v1/namespaces/{ns}")
    try:
        released, remaining, holding = uninstalled_leftovers.settle(api, ".fbx.io", ["fbx-tenant-*"], wait=10)
        assert released == ["ConfigMap/fbx-tenant-a/held (hold.fbx.io/teardown)"]
        assert remaining == ["namespace fbx-tenant-b"]
        assert any(h.startswith("fbx-tenant-b: ") and "example.com/keep" in h for h in holding), holding
        assert not namespace_exists(cluster, "fbx-tenant-a")
    finally:
        for ns in ("fbx-tenant-a", "fbx-tenant-b"):
            try:
                held = kube.request(api, "GET", f"/api/v1/namespaces/{ns}/configmaps/held")
            except kube.KubeError:
                continue
            held["metadata"]["finalizers"] = []
            kube.request(api, "PUT", f"/api/v1/namespaces/{ns}/configmaps/held", body=held)
