"""API machinery on a real cluster: churn drivers, the informer, /metrics, hollow nodes, density."""
from __future__ import annotations

import asyncio
import csv
import json
import threading
import time
from pathlib import Path

import pytest

from ansible_collections.fedbench.testbed.plugins.module_utils.common import process
from ansible_collections.fedbench.testbed.plugins.module_utils.kube import akube
from ansible_collections.fedbench.testbed.plugins.module_utils.experiments import apimachinery, churn
from ansible_collections.fedbench.testbed.plugins.module_utils.measure import apimetrics
from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import hollow
from ansible_collections.fedbench.testbed.plugins.module_utils import results

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "docs" / "results.schema.json"


@pytest.fixture
def cluster(testbeds):
    _, facts = testbeds.up(0)
    return facts[0]


def _params(facts, tmp_path, **extra):
    return {"kubeconfig": facts.kubeconfig, "context": facts.context, "run_id": "it", "results_dir": str(tmp_path / "results"), **extra}


def _with_informer(facts, tmp_path, token: str, run_churn):
    """Start the informer in a thread, wait until its watch is open, run the churn, collect both."""
    ready = tmp_path / f"{token}.ready"
    box = {}
    thread = threading.Thread(
        target=lambda: box.update(informer=apimachinery.informer_from_params(
            _params(facts, tmp_path, token=token, max_duration=120, ready_file=str(ready)))),
    )
    thread.start()
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert thread.is_alive() and time.monotonic() < deadline, box
        time.sleep(0.05)
    churned = run_churn()
    thread.join(timeout=150)
    assert not thread.is_alive(), "the informer did not stop on the churn's sentinel"
    return churned, box["informer"]


def _labelled(facts, token: str) -> list:
    async def go():
        async with akube.AsyncKube.from_kubeconfig(facts.kubeconfig, facts.context) as kube:
            items, _ = await kube.list("/api/v1/configmaps", {"labelSelector": f"{churn.LABEL}={token}"})
            return items
    return akube.run(go())


def test_open_loop_rate_creates_equal_deletes_nothing_left_and_the_informer_sees_all(cluster, tmp_path):
    rate, duration = 20.0, 4.0
    out, inf = _with_informer(cluster, tmp_path, "open1", lambda: apimachinery.churn_from_params(_params(
        cluster, tmp_path, mode="open", rate=rate, lifetime=0.5, duration=duration, seed=11, token="open1",
        namespaces=["churn-x", "churn-y"])))
    assert not out.failed, out.message
    s = out.result["summary"]
    drawn = len(churn.arrivals(rate, duration, 11))
    assert s["created"] == drawn and s["deleted"] == drawn and s["errors"] == {}
    assert s["delivery"] == 1.0
    # Every drawn arrival was sent and created, so the achieved rate is the drawn one (how
    # closely the driver keeps to its schedule under load is benchmarks/churn_capacity's).
    assert s["achieved_rate"] == s["scheduled_rate"] == round(drawn / duration, 3), s
    assert s["left"] == 0 and _labelled(cluster, "open1") == []
    assert s["verbs"]["create"]["latency"]["count"] == drawn

    # The sample, and every operation beside it, are on disk and valid.
    sample = json.loads(Path(out.result["path"]).read_text())
    results.validate(sample, SCHEMA, "envelope")
    with open(Path(out.result["path"]).with_suffix(".ops.csv")) as handle:
        ops = list(csv.DictReader(handle))
    assert len(ops) == 2 * drawn and {o["verb"] for o in ops} == {"create", "delete"}
    assert all(float(o["sent"]) >= float(o["scheduled"]) for o in ops)
    assert out.result["apiserver"]["slo"], "no API SLO was judged"

    assert not inf.failed, inf.message
    i = inf.result["summary"]
    assert i["stopped_by"] == "sentinel"
    assert i["objects_added"] == drawn and i["objects_deleted"] == drawn and i["objects_seen"] == drawn
    assert i["notify_latency"]["ADDED"]["count"] == drawn and i["notify_latency"]["ADDED"]["min"] > 0


def test_closed_loop_cycles_nothing_left_and_the_informer_sees_every_update(cluster, tmp_path):
    rate, duration = 15.0, 4.0
    out, inf = _with_informer(cluster, tmp_path, "closed1", lambda: apimachinery.churn_from_params(_params(
        cluster, tmp_path, mode="closed", workers=3, rate=rate, duration=duration, token="closed1")))
    assert not out.failed, out.message
    s = out.result["summary"]
    cycles = s["cycles"]
    # Paced to 15 cycles/s: the pacer never starts more than 60 in the window (how close it
    # comes is a figure of benchmarks/churn_capacity, not an assertion).
    assert 1 <= cycles <= rate * duration, s
    assert s["created"] == cycles and s["deleted"] == cycles and s["verbs"]["update"]["ok"] == cycles
    assert s["errors"] == {} and s["left"] == 0 and _labelled(cluster, "closed1") == []
    i = inf.result["summary"]
    assert i["events"] == {"ADDED": cycles, "MODIFIED": cycles, "DELETED": cycles}, i
    assert i["notify_latency"]["MODIFIED"]["count"] == cycles


def test_the_metrics_parser_agrees_with_the_requests_it_made(cluster):
    """Server-side latency never exceeds client-side, so each server quantile lies at or below
    the bucket that holds the client's; and the count is what was sent."""
    n = 60

    async def go():
        async with akube.AsyncKube.from_kubeconfig(cluster.kubeconfig, cluster.context, connections=1) as kube:
            await kube.request("POST", "/api/v1/namespaces/default/configmaps",
                               {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "probe"}, "data": {"a": "b"}})
            before = await kube.request("GET", "/metrics")
            client = []
            loop = asyncio.get_running_loop()
            for _ in range(n):
                t = loop.time()
                await kube.request("GET", "/api/v1/namespaces/default/configmaps/probe")
                client.append(loop.time() - t)
            after = await kube.request("GET", "/metrics")
            return before, after, sorted(client)

    before, after, client = akube.run(go())
    series = apimetrics.delta(*(apimetrics.parse_histograms(t, [apimetrics.DURATION_METRIC])[apimetrics.DURATION_METRIC] for t in (before, after)))
    gets = [h for k, h in series.items() if dict(k).get("verb") == "GET" and dict(k).get("resource") == "configmaps"]
    assert gets, "no GET configmaps in the /metrics difference"
    hist = apimetrics.merge(gets)
    assert n <= hist["count"] <= n + 3, hist["count"]
    bounds = sorted(b for b in hist["buckets"])
    for q in (0.5, 0.9, 0.99):
        client_q = client[min(n - 1, int(q * n))]
        upper = next(b for b in bounds if b >= client_q)
        assert apimetrics.quantile(q, hist) <= upper, (q, apimetrics.quantile(q, hist), client_q)
    assert 0 < hist["sum"] <= sum(client)
    table = apimetrics.report(before, after)
    assert any(r["verb"] == "GET" and r["resource"] == "configmaps" and r["count"] >= n for r in table["latency"])


def test_density_every_pod_running_on_hollow_nodes_then_nodes_removed(testbeds, tmp_path):
    bed, facts = testbeds.up(2)
    c = facts[0]
    grown = apimachinery.hollow_from_params(_params(c, tmp_path, count=4))
    assert not grown.failed, grown.message
    assert grown.result["nodes"] == 4 and grown.result["created"] == 4
    again = apimachinery.hollow_from_params(_params(c, tmp_path, count=4))
    assert again.result["changed"] is False

    out = apimachinery.density_from_params(_params(
        c, tmp_path, nodes=4, pods_per_node=3, rate=20, cluster_dir=str(bed.kwokctl.cluster_dir(c.name))))
    assert not out.failed, out.message
    s = out.result["summary"]
    assert s["running"] == 12 and s["scheduled"] == 12 and s["pod_startup"]["count"] == 12
    assert s["create_errors"] == {}
    assert set(out.result["processes"]["components"]) == {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok-controller"}
    sample = json.loads(Path(out.result["path"]).read_text())
    results.validate(sample, SCHEMA, "envelope")
    slo = sample["samples"][0]["apiserver"]["slo"]
    assert any(r["resource"] == "pods" and r["verb"] == "POST" and r["count"] >= 12 for r in slo)

    # Every pod was bound to a hollow node, never to the testbed's own two.
    assert s["placement"]["off_hollow_nodes"] == 0 and s["placement"]["nodes_used"] == 4, s["placement"]

    async def pods_and_nodes():
        async with akube.AsyncKube.from_kubeconfig(c.kubeconfig, c.context) as kube:
            ns = await kube.call("GET", "/api/v1/namespaces/fedbench-density")
            return ns[0], await hollow.hollow_nodes(kube)
    status, _ = akube.run(pods_and_nodes())
    assert status == 404, "the density namespace is left"

    shrunk = apimachinery.hollow_from_params(_params(c, tmp_path, count=0))
    assert not shrunk.failed and shrunk.result["deleted"] == 4
    _, nodes = akube.run(pods_and_nodes())
    assert nodes == []


def test_density_without_enough_hollow_nodes_is_refused(cluster, tmp_path):
    out = apimachinery.density_from_params(_params(cluster, tmp_path, nodes=3, pods_per_node=1, rate=5))
    assert out.failed and "density needs 3 Ready hollow nodes; the cluster has 0" in out.message


@pytest.mark.parametrize(
    "args, message",
    [
        ("mode=open rate=0 lifetime=1", "rate must be > 0 objects per second for the open loop (got 0.0)"),
        ("mode=open rate=5 lifetime=-1", "lifetime must be >= 0 seconds (got -1.0)"),
        ("mode=closed workers=0", "workers must be >= 1 for the closed loop (got 0)"),
    ],
)
def test_bad_churn_parameters_fail_the_module_with_a_clear_message(cluster, tmp_path, args, message):
    """Through Ansible, as a playbook calls it, against a real cluster: nothing is created."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run(
        ["ansible", "localhost", "-m", "fedbench.testbed.configmap_churn", "-a",
         f"{args} kubeconfig={cluster.kubeconfig} context={cluster.context} run_id=it results_dir={tmp_path}"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=120, check=False,
    )
    assert proc.returncode != 0 and message in proc.stdout, proc.stdout + proc.stderr
    assert not (tmp_path / "samples").exists()
    assert _labelled(cluster, "churn") == []


def test_turbokube_a_local_kwok_presents_hollow_nodes_to_an_existing_cluster(testbeds, playbooks, tmp_path):
    """The kind/existing path of hollow nodes, on a real bare control plane: an embedded cluster
    started without its KWOK controller is given to the playbooks as an *existing* cluster; the
    hollow_nodes role starts KWOK's controller on this machine against it, density runs, and
    teardown stops the controller."""
    from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import embedded

    bed = testbeds.bed("under")
    spec = testbeds.specs(0)[0] | {"name": "under", "simulator": False}
    (facts,), _ = bed.up(embedded.parse_specs([spec]))
    assert not any("kwok-controller" in c for c in process.processes_under(bed.work_dir).values()), "the bare cluster runs a simulator"
    playbooks.inventory_with({
        "fedbench_testbed": "existing",
        "fedbench_clusters": [{"name": "under", "role": "host", "kubeconfig": facts.kubeconfig, "context": facts.context}],
        "fedbench_frameworks": [],
        "fedbench_dataplanes": [],
        "fedbench_apimachinery": True,
        "experiment_apimachinery_churn": [],
        "experiment_apimachinery_hollow_nodes": 6,
        "experiment_apimachinery_density": [{"nodes": 6, "pods_per_node": 2, "rate": 20}],
        "hollow_nodes_kwok_port": embedded.free_ports(1)[0],
    })
    proc = playbooks.run("playbooks/toolchain.yml", "playbooks/provision.yml", "playbooks/experiments.yml", "playbooks/report.yml")
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert "kept alive by KWOK's controller (local)" in proc.stdout
    sample = json.loads(next((playbooks.root / "results").glob("*/samples/density-*.json")).read_text())
    s = sample["samples"][0]["summary"]
    assert s["running"] == 12 and s["placement"]["off_hollow_nodes"] == 0, s
    # The role shrank the hollow nodes to none and stopped its controller.
    left = process.processes_under(playbooks.work_dir)
    assert not left, left


def test_an_etcd_stall_during_churn_is_never_ok_and_the_cluster_comes_back(testbeds, tmp_path):
    """etcd stopped (SIGSTOP) for 20 s in the middle of an open-loop churn: the
    sample ends on its own (no hang), is kept on disk and is not called ok (its
    failed operations are counted and its objects add up), the components that
    exited are restarted, the cluster works again, and the sample merges."""
    import os
    import signal

    from ansible_collections.fedbench.testbed.plugins.module_utils.report import merge
    from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import supervise

    bed, (facts,) = testbeds.up(0)
    cdir = bed.kwokctl.cluster_dir(facts.name)
    etcd = supervise.component_states(cdir)["etcd"]["pid"]
    box = {}
    thread = threading.Thread(target=lambda: box.update(out=apimachinery.churn_from_params(_params(
        facts, tmp_path, mode="open", rate=20, lifetime=1, duration=30, seed=5, token="stall", timeout=5))))
    thread.start()
    time.sleep(5)
    os.kill(etcd, signal.SIGSTOP)
    try:
        time.sleep(20)
    finally:
        os.kill(etcd, signal.SIGCONT)
    thread.join(timeout=240)
    assert not thread.is_alive(), "the churn hung after etcd came back"
    out = box["out"]
    s = out.result["summary"]
    status = json.loads(Path(out.result["path"]).read_text())["samples"][0]["status"]
    assert status in ("degraded", "failed") and s["error_ratio"] > 0.01, (status, s["error_ratio"], s["errors"])
    # every operation was either ok or counted as failed, and the objects add up:
    # what the server made was deleted by the run or swept afterwards, none left
    assert sum(v["ok"] for v in s["verbs"].values()) + sum(s["errors"].values()) == s["operations"]
    o = s["objects"]
    assert o["left"] == 0 and o["created_ok"] + o["created_unconfirmed"] == o["deleted_ok"] + o["swept"], o
    if status == "failed":
        assert out.failed and "failed" in out.message
    # The supervisor restarts what exited, and the cluster is whole again.
    deadline = time.monotonic() + 180
    while bed.unhealthy() and time.monotonic() < deadline:
        time.sleep(1)
    assert bed.unhealthy() == []
    # The sample merges into the run's results, marked as it was stored.
    merged = merge.aggregate(tmp_path / "results", SCHEMA, "it")
    document = json.loads(Path(merged["results_json"]).read_text())
    (point,) = [p for p in document["results"] if p["experiment"] == "churn"]
    assert point["counts"]["samples"] == 1 and point["counts"]["ok"] == 0
