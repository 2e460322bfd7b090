"""The kind testbed on real nodes: kind clusters from images built on this
machine, run through the playbooks as a user would (playbooks/provision.yml
with a kind inventory). Real kubelets, real containerd, real containers.

The session's pair of kind clusters (conftest.kind_pair: a host with a worker
node, a member), which the Istio and Liqo modules use too; it is torn down
after every test that uses it, by the last test here, which checks that
nothing is left: no container, network, daemon, process or port, and the
machine's settings as they were.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from ansible_collections.fedbench.testbed.plugins.module_utils import kube, results
from ansible_collections.fedbench.testbed.plugins.module_utils.common import process
from ansible_collections.fedbench.testbed.plugins.module_utils.experiments import lifecycle_params as experiment
from ansible_collections.fedbench.testbed.plugins.module_utils.build import engine
from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import kind

from .conftest import KIND_HOST as HOST, KIND_MEMBER as MEMBER, Playbooks, ROOT, client_for

SCHEMA = ROOT / "docs" / "results.schema.json"


def _client(cluster: dict):
    return client_for(cluster)


def _docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    eng = engine.running_project_engine() or engine.user_engine()[0]
    assert eng is not None, "no Docker engine answers"
    return engine.docker(eng, *args, check=check)


@pytest.fixture(scope="module")
def bed(kind_pair):
    return kind_pair.use()


def test_provision_is_real_and_a_second_one_changes_nothing(bed):
    out = bed.run("playbooks/toolchain.yml", "playbooks/provision.yml")
    assert out.returncode == 0 and "changed=0" in out.stdout, out.stdout[-3000:]
    for cluster in bed.clusters:
        assert oct(Path(cluster["kubeconfig"]).stat().st_mode & 0o777) == "0o600"
        nodes = kube.request(_client(cluster), "GET", "/api/v1/nodes")["items"]
        assert nodes and all(n["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://") for n in nodes)
        # real kubelets, not KWOK's simulated nodes
        assert not [n for n in nodes if "kwok.x-k8s.io/node" in (n["metadata"].get("annotations") or {})]
        running = _docker("ps", "--format", "{{.Names}}", "--filter", f"label=io.x-k8s.kind.cluster={cluster['name']}").stdout.split()
        assert sorted(running) == sorted(n["metadata"]["name"] for n in nodes)


def _lifecycle(bed, tmp_path, *, framework: str, replicas: int, namespace: str) -> dict:
    """One lifecycle sample through the module's library, checked against the schema; returns the sample."""
    params = dict(
        replicas=replicas, layout="replicas", image="fedbench.local/busybox:1.35.0", command=["sleep", "3600"], namespace=namespace,
        node_selector={}, ready_timeout=180, delete_timeout=180, framework=framework, repetition=1,
        clusters=bed.clusters, testbed=bed.clusters, run_id=namespace, results_dir=str(tmp_path / "results"), cleanup=True,
    )
    out = experiment.lifecycle_from_params(params)
    assert not out.failed, out.message
    envelope = json.loads(Path(out.result["path"]).read_text())
    results.validate(envelope, SCHEMA, "envelope")
    sample = envelope["samples"][0]
    assert sample["status"] == "ok" and sample["order_violations"] == []
    return sample


def test_pods_run_on_real_kubelets_and_go(bed, tmp_path):
    host = bed.clusters[0]
    sample = _lifecycle(bed, tmp_path, framework="native", replicas=4, namespace="kind-itest")
    assert len(sample["pods"]) == 4 and all(p["node"] == f"{HOST}-worker" for p in sample["pods"])  # the control plane is tainted
    # ready came after running for every pod, as a real kubelet reports it
    assert all(p["created_to_ready"] >= p["created_to_running"] > 0 for p in sample["pods"])
    # and the containers are gone from the node's containerd too
    deadline = time.monotonic() + 60
    while True:
        left = _docker("exec", f"{HOST}-worker", "crictl", "ps", "-q", "--label", "io.kubernetes.pod.namespace=kind-itest").stdout.split()
        if not left or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert left == []
    assert kube.request(_client(host), "GET", "/apis/apps/v1/deployments", query=[("labelSelector", "fedbench.io/experiment=lifecycle")])["items"] == []


def test_pods_reach_across_nodes(bed):
    """The node image's CNI: a pod on one node answers from the other node (a route between their pod ranges)."""
    host = bed.clusters[0]
    pods = kube.request(_client(host), "GET", "/api/v1/namespaces/kube-system/pods", query=[("labelSelector", "k8s-app=kube-dns")])["items"]
    pod = next(p for p in pods if p["status"].get("podIP") and p["spec"].get("nodeName"))
    nodes = {f"{HOST}-control-plane", f"{HOST}-worker"}
    assert pod["spec"]["nodeName"] in nodes
    (other,) = nodes - {pod["spec"]["nodeName"]}
    ip = pod["status"]["podIP"]
    out = _docker("exec", other, "bash", "-c", f"exec 3<>/dev/tcp/{ip}/8080 && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3")
    assert "200 OK" in out.stdout and "OK" in out.stdout.splitlines()[-1], out.stdout


def test_nothing_is_pulled_and_nothing_leaves(bed):
    host = bed.clusters[0]
    api = _client(host)
    ns = "kind-nopull"
    kube.request(api, "POST", "/api/v1/namespaces", body={"metadata": {"name": ns}})
    try:
        kube.request(api, "POST", f"/api/v1/namespaces/{ns}/pods", body={
            "metadata": {"name": "absent"},
            "spec": {"containers": [{"name": "main", "image": "fedbench.local/not-built:0.0.1", "command": ["sleep", "60"]}],
                     "terminationGracePeriodSeconds": 0}})
        deadline = time.monotonic() + 120
        failed = []
        while time.monotonic() < deadline and not failed:
            events = kube.request(api, "GET", f"/api/v1/namespaces/{ns}/events")["items"]
            failed = [e["message"] for e in events if e.get("reason") == "Failed" and "Failed to pull image" in e.get("message", "")]
            time.sleep(1)
        assert failed, "a pod whose image is not on the node fails its pull with an event"
        # the pull went to the node's own loopback, where nothing answers: no registry was asked
        assert "127.0.0.1:9" in failed[0] and "connection refused" in failed[0], failed[0]
    finally:
        kube.request(api, "DELETE", f"/api/v1/namespaces/{ns}")
    corefile = kube.request(api, "GET", "/api/v1/namespaces/kube-system/configmaps/coredns")["data"]["Corefile"]
    assert "forward" not in corefile, "CoreDNS has no upstream"
    info = json.loads(_docker("network", "inspect", kind.NETWORK).stdout)[0]
    assert info["Options"]["com.docker.network.bridge.enable_ip_masquerade"] == "false"
    guard = subprocess.run(["iptables", "-C", *kind._guard_rule()], capture_output=True, check=False)
    assert guard.returncode == 0, "traffic from the project's network to anything off it is dropped"


def test_a_port_in_use_is_named_before_anything_starts(tmp_path, binaries):
    pb = Playbooks(tmp_path)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        pb.inventory_with({"fedbench_testbed": "kind", "fedbench_clusters": [{"name": "fbt-busy", "role": "host", "apiserver_port": port}]})
        proc = pb.run("playbooks/toolchain.yml", "playbooks/provision.yml")
        assert proc.returncode != 0
        assert f"cluster 'fbt-busy': apiserver_port {port} is already in use on 127.0.0.1" in " ".join(proc.stdout.split()), proc.stdout[-3000:]
        assert _docker("ps", "-aq", "--filter", "label=io.x-k8s.kind.cluster=fbt-busy").stdout.strip() == ""
    finally:
        taken.close()
        pb.teardown()


def test_no_docker_and_not_root_is_named():
    """As a user who is not root, with no Docker answering: the message names both, and nothing starts."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="fedbench-nonroot-", dir="/tmp"))
    try:
        folder.chmod(0o755)
        script = folder / "ensure.py"
        script.write_text(
            "import sys\n"
            f"sys.path.insert(0, {str(ROOT / 'collections')!r})\n"
            "from pathlib import Path\n"
            "from ansible_collections.fedbench.testbed.plugins.module_utils.build import engine\n"
            "try:\n"
            f"    engine.ensure(Path({str(folder / 'cache')!r}))\n"
            "except engine.EngineError as exc:\n"
            "    print(exc); sys.exit(3)\n"
        )
        python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else os.path.realpath(os.sys.executable)
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(folder), "DOCKER_HOST": f"unix://{folder}/no-docker.sock"}
        proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", python, str(script)],
                              env=env, capture_output=True, text=True, check=False)
        assert proc.returncode == 3, proc.stdout + proc.stderr
        assert "the kind testbed needs a Docker engine: none answers here" in proc.stdout and "needs root; this is uid 65534" in proc.stdout
        assert not (folder / "cache").exists(), "nothing was started or written"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.after_every_kind_test
def test_teardown_leaves_nothing(bed, kind_host_settings):
    """Last of every test on the pair: torn down as `make clean` does it."""
    host_settings = kind_host_settings
    down = bed.use().pb.teardown()
    assert down.returncode == 0, down.stdout[-3000:]
    left = kind.leftovers(bed.pb.work_dir, [HOST, MEMBER])
    assert left["containers"] == [] and left["networks"] == [] and left["daemon"] == [], left
    assert not [p for p in bed.ports if process.port_in_use(p)], "an API server port is still taken"
    assert not process.processes_under(engine.RUN_DIR) if engine.RUN_DIR.exists() else True
    assert engine.read_sysctls() == host_settings, "the machine's settings are as they were"
    assert not engine.HOST_RECORD.exists()
    if engine.user_engine()[0] is None:  # the project's own daemon ran: its containers' parent cgroups go with it
        assert not list(engine.CGROUP_ROOT.glob("*/docker")), "the project's Docker daemon left its cgroups"
