"""KubeFed on the embedded testbed: one host, two members, real controllers."""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from ansible_collections.fedbench.testbed.plugins.module_utils.common import process
from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import embedded
from ansible_collections.fedbench.testbed.plugins.module_utils.experiments import lifecycle_params as experiment
from ansible_collections.fedbench.testbed.plugins.module_utils import kube, results

from .conftest import ROOT, stop_supervisor
from tests.conftest import pinned

SCHEMA = ROOT / "docs" / "results.schema.json"


def _inventory(playbooks, extra: dict | None = None):
    ports = embedded.free_ports(5)
    playbooks.inventory_with({
        "fedbench_testbed": "embedded",
        "fedbench_clusters": [
            {"name": "fhost", "role": "host", "nodes": 1, "apiserver_port": ports[0]},
            {"name": "fm1", "role": "member", "nodes": 2, "apiserver_port": ports[1]},
            {"name": "fm2", "role": "member", "nodes": 2, "apiserver_port": ports[2]},
        ],
        "fedbench_frameworks": ["kubefed"],
        "fedbench_dataplanes": [],
        "kubefed_healthz_port": ports[3],
        "kubefed_metrics_port": ports[4],
        **(extra or {}),
    })
    return ports


def _facts(playbooks) -> list[dict]:
    out = []
    for name, role in (("fhost", "host"), ("fm1", "member"), ("fm2", "member")):
        out.append({"name": name, "role": role, "kubeconfig": str(playbooks.work_dir / "kubeconfigs" / name), "context": f"kwok-{name}"})
    return out


@pytest.fixture
def federation(playbooks):
    _inventory(playbooks)
    proc = playbooks.run("playbooks/toolchain.yml", "playbooks/provision.yml", "playbooks/frameworks.yml")
    assert proc.returncode == 0, proc.stdout[-5000:]
    return playbooks, proc


def test_join_deploy_spread_and_delete_then_teardown(federation, tmp_path):
    playbooks, first = federation
    # Join succeeded: both members Ready (the role waits for it); a second run changes nothing.
    again = playbooks.run("playbooks/toolchain.yml", "playbooks/provision.yml", "playbooks/frameworks.yml")
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout[-3000:]
    # The controller-manager that runs the experiments started with its types
    # observed, so it never "refreshed" one (the race that later kills it: see
    # the role's process.yml). Its log holds every start; the last is the one running.
    log = "".join(p.read_text() for p in sorted((playbooks.work_dir / "runs").glob("*/kubefed-controller-manager.log")))
    starts = log.split("KubeFed controller-manager version")
    assert len(starts) == 3, "one start for the install, one afresh once the types were settled"
    assert "Started sync controller" in starts[-1] and "refreshing sync controller" not in starts[-1], starts[-1][-3000:]

    clusters = _facts(playbooks)
    params = dict(
        replicas=4, layout="replicas", image="busybox:1.36", command=["sleep", "3600"], namespace="kf-itest",
        node_selector={}, ready_timeout=120, delete_timeout=120, framework="kubefed", repetition=1,
        clusters=clusters, testbed=clusters, run_id="kf", results_dir=str(tmp_path / "results"), cleanup=True,
    )
    out = experiment.lifecycle_from_params(params)
    assert not out.failed, out.message
    envelope = json.loads(Path(out.result["path"]).read_text())
    results.validate(envelope, SCHEMA, "envelope")
    sample = envelope["samples"][0]
    assert sample["status"] == "ok" and sample["order_violations"] == []
    # Ready replicas on both members add up to 4: two each.
    assert {c: v["replicas"] for c, v in sample["per_cluster"].items()} == {"fm1": 2, "fm2": 2}
    assert all(v["ready"] is not None and v["deployment_observed"] <= v["ready"] for v in sample["per_cluster"].values())
    pods = {(p["cluster"]) for p in sample["pods"]}
    assert pods == {"fm1", "fm2"} and len(sample["pods"]) == 4
    # Deletion cleared both members.
    assert all(v["deployment_gone"] is not None and v["pods_gone"] is not None for v in sample["per_cluster"].values())
    from kubernetes import config

    for c in clusters[1:]:
        api = config.new_client_from_config(config_file=c["kubeconfig"], context=c["context"])
        assert kube.request(api, "GET", "/apis/apps/v1/deployments", query=[("labelSelector", "fedbench.io/experiment=lifecycle")])["items"] == []

    down = playbooks.teardown()
    assert down.returncode == 0, down.stdout[-3000:]
    left = process.processes_under(playbooks.work_dir)
    assert not left, left
    assert not [p for p in Path("/proc").iterdir() if p.name.isdigit() and b"kubefed-controller-manager" in _cmd(p) and str(playbooks.work_dir).encode() in _cmd(p)]


def _cmd(p: Path) -> bytes:
    try:
        return (p / "cmdline").read_bytes()
    except OSError:
        return b""


def test_a_member_whose_api_server_is_down_fails_the_join_with_its_name(playbooks):
    _inventory(playbooks)
    up = playbooks.run("playbooks/toolchain.yml", "playbooks/provision.yml")
    assert up.returncode == 0, up.stdout[-3000:]
    victim = [pid for pid, cmd in process.processes_under(playbooks.work_dir).items()
              if "/clusters/fm2/" in cmd and "/kube-apiserver " in cmd]
    assert len(victim) == 1
    stop_supervisor(playbooks.work_dir)  # or it would start the API server again at once
    os.kill(victim[0], signal.SIGKILL)
    time.sleep(0.5)
    proc = playbooks.run("playbooks/frameworks.yml", extra=("-e", json.dumps({"testbed_clusters": [
        {**c, "server": "", "kubernetes_version": pinned()["kubernetes"], "nodes": 2, "testbed": "embedded",
         "capabilities": {"simulated_nodes": True}} for c in _facts(playbooks)
    ], "fedbench_run_id": "kfdown"}),))
    assert proc.returncode != 0
    flat = " ".join(proc.stdout.split())
    assert "KubeFed: member fm2 cannot be joined:" in flat, proc.stdout[-4000:]
