"""Liqo on real kind clusters (images built here, networking off): installed in
a host and a member, peered, a Deployment's pods offloaded to the member and
run there on its real kubelet, deleted from both; a member whose API server is
down fails the peering naming it; teardown leaves no Liqo anywhere. On the
session's kind pair (conftest.kind_pair). On the embedded testbed Liqo is
skipped, said, and recorded in the results."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from ansible_collections.fedbench.testbed.plugins.module_utils import kube, results
from ansible_collections.fedbench.testbed.plugins.module_utils.experiments import lifecycle_params as experiment
from ansible_collections.fedbench.testbed.plugins.module_utils.build import engine
from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import embedded

from .conftest import KIND_HOST as HOST, KIND_MEMBER as MEMBER, ROOT, client_for

SCHEMA = ROOT / "docs" / "results.schema.json"


def _client(cluster: dict):
    return client_for(cluster)


def _docker(*args: str, check: bool = True):
    eng = engine.running_project_engine() or engine.user_engine()[0]
    assert eng is not None, "no Docker engine answers"
    return engine.docker(eng, *args, check=check)


@pytest.fixture(scope="module")
def peered(kind_pair):
    """Liqo on the session's kind pair, the member peered with the host; its own teardown at the
    end (test_kind's last test tears the pair down)."""
    pair = kind_pair.use(fedbench_frameworks=["liqo"])
    try:
        up = pair.run("playbooks/toolchain.yml", "playbooks/provision.yml", "playbooks/frameworks.yml", timeout=3600)
        assert up.returncode == 0, up.stdout[-6000:]
        pair.clusters = [{**c, "capabilities": {"simulated_nodes": False}} for c in pair.facts()]
        yield pair
    finally:
        pair.framework_teardown("liqo")


def test_installed_and_peered_and_a_second_run_changes_nothing(peered):
    again = peered.run("playbooks/toolchain.yml", "playbooks/provision.yml", "playbooks/frameworks.yml", timeout=1800)
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout[-3000:]
    host, member = peered.clusters
    nodes = kube.request(_client(host), "GET", "/api/v1/nodes", query=[("labelSelector", "liqo.io/type=virtual-node")])["items"]
    assert [n["metadata"]["labels"]["liqo.io/remote-cluster-id"] for n in nodes] == [MEMBER]
    assert any(c["type"] == "Ready" and c["status"] == "True" for c in nodes[0]["status"]["conditions"])
    for cluster in peered.clusters:
        pods = kube.request(_client(cluster), "GET", "/api/v1/namespaces/liqo/pods")["items"]
        images = {c["image"] for p in pods for c in p["spec"]["containers"]}
        assert images <= {f"fedbench.local/{i}:v1.2.0" for i in ("liqo-controller-manager", "webhook", "crd-replicator", "virtual-kubelet")}, images
        assert all(p["status"]["phase"] == "Running" for p in pods), [(p["metadata"]["name"], p["status"]["phase"]) for p in pods]


def test_pods_are_offloaded_to_the_member_run_there_and_go(peered, tmp_path):
    params = dict(
        replicas=4, layout="replicas", image="fedbench.local/busybox:1.35.0", command=["sleep", "3600"], namespace="liqo-itest",
        node_selector={}, ready_timeout=300, delete_timeout=300, framework="liqo", repetition=1,
        clusters=peered.clusters, testbed=peered.clusters, run_id="liqo", results_dir=str(tmp_path / "results"), cleanup=True,
    )
    out = experiment.lifecycle_from_params(params)
    assert not out.failed, out.message
    envelope = json.loads(Path(out.result["path"]).read_text())
    results.validate(envelope, SCHEMA, "envelope")
    sample = envelope["samples"][0]
    assert sample["status"] == "ok" and sample["order_violations"] == []
    # The host's view: four pods, each on the member's virtual node.
    assert len(sample["pods"]) == 4 and {p["cluster"] for p in sample["pods"]} == {HOST}
    assert {p["node"] for p in sample["pods"]} == {MEMBER}
    # The member ran them for real, after the host asked, and they went when the host's went.
    m = sample["per_cluster"][MEMBER]
    assert m["replicas"] == 4
    assert 0 < m["pod_created_first"] <= m["pod_created_last"] <= m["pod_running_last"] and m["ready"] is not None
    assert m["pods_gone"] is not None and sample["phases"]["gone"] >= m["pods_gone"]
    remote = [e for e in sample["events"] if e["cluster"] == MEMBER and e["kind"] == "Pod"]
    assert {e["fields"].get("node") for e in remote if e["fields"].get("node")} == {f"{MEMBER}-control-plane"}
    # Nothing of the sample is left in either cluster.
    for cluster in peered.clusters:
        assert kube.request(_client(cluster), "GET", "/api/v1/pods", query=[("labelSelector", f"fedbench.io/sample={sample['sample_id']}")])["items"] == []


def test_teardown_removes_liqo_from_every_cluster(peered):
    """Liqo's own teardown (what playbooks/teardown.yml calls before the
    clusters go): unpeered and uninstalled, CRDs too, in both clusters."""
    out = peered.framework_teardown("liqo")
    assert out.returncode == 0, out.stdout[-4000:]
    for cluster in peered.clusters:
        api = _client(cluster)
        deadline = time.monotonic() + 180  # --purge deletes CRDs and namespaces; their finalizers take a while
        while True:
            crds = kube.request(api, "GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")["items"]
            namespaces = [n["metadata"]["name"] for n in kube.request(api, "GET", "/api/v1/namespaces")["items"]]
            left = [c["metadata"]["name"] for c in crds if c["metadata"]["name"].endswith(".liqo.io")]
            left += [n for n in namespaces if n == "liqo" or n.startswith(("liqo-tenant", "liqo-storage"))]
            if not left or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert not left, f"{cluster['name']}: Liqo's CRDs and namespaces are gone, but not {left}; teardown said: " + " ".join(
            line for line in out.stdout.splitlines() if "liqo:" in line)
    nodes = kube.request(_client(peered.clusters[0]), "GET", "/api/v1/nodes", query=[("labelSelector", "liqo.io/type=virtual-node")])["items"]
    assert nodes == []


def test_a_member_whose_api_server_is_down_fails_the_peering_with_its_name(peered):
    """On the same two clusters, Liqo uninstalled by the test before: the
    member's API server goes away, and installing and peering again fails
    naming the member. Then the API server comes back, and Liqo's teardown
    leaves the clusters as they were for the tests after."""
    # The member's API server goes away (its static pod's manifest moved out of the kubelet's folder).
    node = f"{MEMBER}-control-plane"
    _docker("exec", node, "mv", "/etc/kubernetes/manifests/kube-apiserver.yaml", "/root/")
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and _docker("exec", node, "crictl", "ps", "-q", "--name", "kube-apiserver").stdout.strip():
            time.sleep(1)
        proc = peered.run("playbooks/frameworks.yml", extra=("-e", json.dumps({"testbed_clusters": [
            {**c, "server": "", "capabilities": {"simulated_nodes": False, "image_loader": "kind-load"}} for c in peered.clusters
        ], "fedbench_run_id": "liqodown"}),), timeout=1800)
        assert proc.returncode != 0
        flat = " ".join(proc.stdout.split())
        assert f"Liqo: cluster {MEMBER} does not answer" in flat or f"Liqo: member {MEMBER} cannot be peered" in flat, proc.stdout[-4000:]
    finally:
        _docker("exec", node, "mv", "/root/kube-apiserver.yaml", "/etc/kubernetes/manifests/")
        member = next(c for c in peered.clusters if c["name"] == MEMBER)
        deadline = time.monotonic() + 180
        while kube.probe(_client(member), "/readyz")[0] != 200:
            assert time.monotonic() < deadline, f"{MEMBER}'s API server did not come back"
            time.sleep(2)
        down = peered.framework_teardown("liqo")
    assert down.returncode == 0, down.stdout[-3000:]


def test_on_simulated_nodes_liqo_is_skipped_and_the_results_say_why(playbooks):
    ports = embedded.free_ports(2)
    playbooks.inventory_with({"fedbench_testbed": "embedded", "fedbench_frameworks": ["native", "liqo"], "fedbench_dataplanes": [],
                              "fedbench_apimachinery": False,
                              "fedbench_clusters": [{"name": "h", "role": "host", "nodes": 1, "apiserver_port": ports[0]},
                                                    {"name": "m", "role": "member", "nodes": 1, "apiserver_port": ports[1]}]})
    proc = playbooks.run("site.yml", extra=("-e", json.dumps({"experiment_lifecycle_max_replicas": 1, "experiment_lifecycle_repetitions": 1,
                                                              "experiment_lifecycle_layouts": ["replicas"], "fedbench_run_id": "skip"}),))
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "liqo: skipped: Liqo needs real nodes" in " ".join(proc.stdout.split())
    document = json.loads((playbooks.root / "results" / "skip" / "results.json").read_text())
    assert [s["framework"] for s in document["skipped"]] == ["liqo"]
    assert {p["framework"] for p in document["results"]} == {"native"}
    assert "skipped: liqo" in (playbooks.root / "results" / "skip" / "report.html").read_text()
    # The README's --tags <framework>: that framework alone, with the testbed checked first.
    tagged = playbooks.run("site.yml", extra=("--tags", "native", "-e", json.dumps({
        "experiment_lifecycle_max_replicas": 1, "experiment_lifecycle_repetitions": 1, "experiment_lifecycle_layouts": ["replicas"],
        "fedbench_run_id": "tagged"})))
    assert tagged.returncode == 0, tagged.stdout[-4000:]
    assert "Check that every component of every embedded cluster runs" in tagged.stdout, tagged.stdout[-4000:]
    document = json.loads((playbooks.root / "results" / "tagged" / "results.json").read_text())
    assert {(p["experiment"], p["framework"]) for p in document["results"]} == {("lifecycle", "native")}
