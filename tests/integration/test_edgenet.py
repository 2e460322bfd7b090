"""EdgeNet's SelectiveDeployment on the embedded testbed: its patched
controller against real control planes, node locations from the inventory,
placement that obeys the selector, a quantity beyond the matching nodes
reported as the controller reports it, a selector no node matches failing on
its timeout with the partial sample, and teardown leaving no process."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from ansible_collections.fedbench.testbed.plugins.module_utils import kube, results
from ansible_collections.fedbench.testbed.plugins.module_utils.common import process
from ansible_collections.fedbench.testbed.plugins.module_utils.experiments import lifecycle_params as experiment
from ansible_collections.fedbench.testbed.plugins.module_utils.frameworks import edgenet
from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import embedded

from .conftest import ROOT, client_for

SCHEMA = ROOT / "docs" / "results.schema.json"


def _client(cluster: dict):
    return client_for(cluster)


@pytest.fixture(scope="module")
def sites(module_playbooks):
    """Two sites, provisioned once for the module (the last test tears them down)."""
    playbooks = module_playbooks
    ports = embedded.free_ports(2)
    playbooks.inventory_with({
        "fedbench_testbed": "embedded", "fedbench_frameworks": ["edgenet"], "fedbench_dataplanes": [], "fedbench_apimachinery": False,
        "fedbench_clusters": [{"name": "eh", "role": "host", "nodes": 6, "apiserver_port": ports[0]},
                              {"name": "em", "role": "member", "nodes": 2, "apiserver_port": ports[1]}],
    })
    up = playbooks.run("playbooks/toolchain.yml", "playbooks/provision.yml", "playbooks/frameworks.yml")
    assert up.returncode == 0, up.stdout[-5000:]
    playbooks.clusters = [{"name": n, "role": r, "kubeconfig": str(playbooks.work_dir / "kubeconfigs" / n), "context": f"kwok-{n}",
                           "capabilities": {"simulated_nodes": True}} for n, r in (("eh", "host"), ("em", "member"))]
    return playbooks


def _params(sites, tmp_path, **over):
    base = dict(replicas=4, layout="replicas", image="busybox:1.36", command=["sleep", "3600"], namespace="en-itest", node_selector={},
                ready_timeout=60, delete_timeout=60, framework="edgenet", repetition=1, clusters=sites.clusters, testbed=sites.clusters,
                run_id="en", results_dir=str(tmp_path / "results"), cleanup=True)
    base.update(over)
    return base


def test_placement_obeys_the_selector_and_a_second_install_changes_nothing(sites, tmp_path):
    again = sites.run("playbooks/toolchain.yml", "playbooks/provision.yml", "playbooks/frameworks.yml")
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout[-3000:]
    host = sites.clusters[0]
    nodes = kube.request(_client(host), "GET", "/api/v1/nodes")["items"]
    cities = {n["metadata"]["name"]: n["metadata"]["labels"].get("edge-net.io/city") for n in nodes}
    assert sorted(cities.values()) == ["Lyon", "Lyon", "Marseille", "Marseille", "Paris", "Paris"], cities  # 6 nodes over 3 cities
    out = experiment.lifecycle_from_params(_params(sites, tmp_path, node_selector={"edge-net.io/city": "Lyon"}))
    assert not out.failed, out.message
    envelope = json.loads(Path(out.result["path"]).read_text())
    results.validate(envelope, SCHEMA, "envelope")
    sample = envelope["samples"][0]
    assert sample["status"] == "ok" and sample["order_violations"] == []
    # every pod on a node of Lyon, as the API says of those nodes; more pods
    # than replicas when EdgeNet's reordered node list rolled the Deployment
    placed = sample["placement"]
    assert placed["all_match"] and list(placed["pods_per_city"]) == ["Lyon"]
    assert placed["pods_per_city"]["Lyon"] == placed["pods_seen"] == len(sample["pods"]) >= 4
    assert {cities[p["node"]] for p in sample["pods"]} == {"Lyon"}
    # the SelectiveDeployment made the Deployment, then the pods (a phase of its own)
    assert 0 < sample["phases"]["deployment_observed"] <= sample["phases"]["pod_created_first"]
    # the default selector: the host site's country, every node of it
    out = experiment.lifecycle_from_params(_params(sites, tmp_path, replicas=8, repetition=2))
    sample = json.loads(Path(out.result["path"]).read_text())["samples"][0]
    assert sample["status"] == "ok" and sample["placement"]["selector"][0] == {"name": "Country", "value": ["FR"], "operator": "In"}
    assert sample["placement"]["all_match"] and sum(sample["placement"]["pods_per_city"].values()) == sample["placement"]["pods_seen"] >= 8


def test_a_quantity_beyond_the_matching_nodes_is_reported_as_the_controller_reports_it(sites):
    host = sites.clusters[0]
    api = _client(host)
    kube.request(api, "POST", "/api/v1/namespaces", body={"metadata": {"name": "en-quantity"}})
    workload = edgenet.Workload(replicas=2, namespace="en-quantity")
    body = edgenet.selective_deployment(workload, "q1", [{"name": "City", "value": ["Paris"], "operator": "In", "quantity": 5}])
    kube.request(api, "POST", edgenet.SELECTIVE.format(namespace="en-quantity"), body=body)
    deadline = time.monotonic() + 60
    status, last, seen, since = {}, {}, [], time.monotonic()
    short = "The number of nodes found is lower than desired"
    raced = "A workload defined in the spec could not be created"
    # Done at the shortage; the raced message only once it has held for 15 s.
    while time.monotonic() < deadline and status.get("message") != short:
        status = kube.request(api, "GET", edgenet.SELECTIVE.format(namespace="en-quantity") + "/sd-q1").get("status") or {}
        if status and status not in seen:
            seen.append(status)
        if status != last:
            last, since = status, time.monotonic()
        if status.get("message") == raced and time.monotonic() - since >= 15:
            break
        time.sleep(0.5)
    # The status EdgeNet sends is stored (with upstream's CRD it was refused), and says what it did: a
    # failure, no workload ready. Its message names the shortage, or, when its update of the Deployment
    # raced its own create, that the workload "could not be created"; the controller does not come back
    # to correct it (seen to stay for 60 s in 2 of 4 runs; 15 s unchanged is taken as final), so either is what it reports.
    assert status.get("state") == "Failure" and status.get("ready") == "0/1", seen
    assert status.get("message") in (short, raced), seen
    # ... the workload is made anyway, on the two Paris nodes there are.
    deployment = kube.request(api, "GET", "/apis/apps/v1/namespaces/en-quantity/deployments/lc-q1")
    (term,) = deployment["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert len(term["matchExpressions"][0]["values"]) == 2
    kube.request(api, "DELETE", "/api/v1/namespaces/en-quantity")


def test_a_selector_no_node_matches_fails_on_its_timeout_with_the_partial_sample(sites, tmp_path):
    out = experiment.lifecycle_from_params(_params(sites, tmp_path, replicas=2, ready_timeout=15, node_selector={"edge-net.io/city": "Atlantis"}))
    assert out.failed and "timed out after 15s waiting for 2 ready replicas" in out.message, out.message
    sample = json.loads(Path(out.result["path"]).read_text())["samples"][0]
    assert sample["status"] == "timeout" and sample["phases"]["create_acked"] is not None and sample["phases"]["ready"] is None
    assert sample["placement"]["pods_per_city"] == {}


def test_teardown_stops_every_controller(sites):
    controllers = [pid for pid, cmd in process.processes_under(sites.work_dir).items() if "edgenet-selectivedeployment" in cmd]
    assert len(controllers) == 2, "one controller per cluster"
    down = sites.teardown()
    assert down.returncode == 0, down.stdout[-3000:]
    assert not process.processes_under(sites.work_dir)
