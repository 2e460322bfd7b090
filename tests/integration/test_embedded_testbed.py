"""The embedded testbed on real control planes."""
from __future__ import annotations

import os
import socket
import stat
import subprocess
import time

import pytest

from ansible_collections.fedbench.testbed.plugins.module_utils.common import process
from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import embedded

from .conftest import api_client, wait_until
from tests.conftest import pinned


def test_cluster_runs_a_deployment_on_simulated_nodes(testbeds):
    from kubernetes import client

    bed, (facts,) = testbeds.up(3)
    assert facts.kubernetes_version == pinned()["kubernetes"]
    assert facts.server.startswith("https://127.0.0.1:")
    assert stat.S_IMODE(os.stat(facts.kubeconfig).st_mode) == 0o600

    api = api_client(facts)
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    nodes = core.list_node().items
    assert len(nodes) == 3
    assert all(embedded.node_ready(api.sanitize_for_serialization(n)) for n in nodes)

    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "smoke", "namespace": "default"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "smoke"}},
            "template": {
                "metadata": {"labels": {"app": "smoke"}},
                "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]},
            },
        },
    }
    apps.create_namespaced_deployment("default", body)
    wait_until(lambda: (apps.read_namespaced_deployment("smoke", "default").status.available_replicas or 0) == 2, 60, "2 available replicas")
    pods = core.list_namespaced_pod("default", label_selector="app=smoke").items
    assert {p.spec.node_name for p in pods} <= {n.metadata.name for n in nodes}
    assert all(p.status.phase == "Running" for p in pods)

    apps.delete_namespaced_deployment("smoke", "default", propagation_policy="Foreground")
    wait_until(lambda: not core.list_namespaced_pod("default", label_selector="app=smoke").items
          and not apps.list_namespaced_deployment("default").items, 60, "deployment and pods gone")


def test_clusters_are_independent_control_planes(testbeds):
    from kubernetes import client

    bed, facts = testbeds.up(1, 2, 0)
    # Each cluster has its own etcd: what is written to one is absent from the others.
    counts = [len(client.CoreV1Api(api_client(f)).list_node().items) for f in facts]
    assert counts == [1, 2, 0]
    client.CoreV1Api(api_client(facts[0])).create_namespace({"metadata": {"name": "only-in-c0"}})
    names = [{ns.metadata.name for ns in client.CoreV1Api(api_client(f)).list_namespace().items} for f in facts]
    assert "only-in-c0" in names[0] and "only-in-c0" not in names[1] | names[2]
    etcds = [p for p, cmd in process.processes_under(bed.work_dir).items() if "/bin/etcd " in cmd]
    assert len(etcds) == 3
    # Every component listens on loopback only.
    ports = process.listeners_of(process.processes_under(bed.work_dir))
    assert len(ports) >= 3 * 6
    listening = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True).stdout.split("\n")
    for line in listening:
        cols = line.split()
        if len(cols) >= 4 and int(cols[3].rsplit(":", 1)[1]) in ports:
            assert cols[3].startswith("127.0.0.1:"), line


def test_second_up_changes_nothing_and_down_frees_every_port(testbeds):
    # Sockets that listened before the testbed came up are not the testbed's,
    # even if one of its processes was seen holding one (inherited).
    before = process.listening_sockets()
    bed, facts = testbeds.up(2, 1)
    again, changed = bed.up(embedded.parse_specs([
        {"name": f.name, "role": f.role, "nodes": f.nodes, "apiserver_port": int(f.server.rsplit(":", 1)[1])} for f in facts
    ]))
    assert not changed
    assert [f.as_dict() for f in again] == [f.as_dict() for f in facts]
    sockets = process.listening_sockets_of(process.processes_under(bed.work_dir)) - before
    assert sockets
    bed.down()
    assert bed.leftovers() == {"processes": {}, "ports": [], "clusters": [], "cgroups": [], "postgresql": []}
    still = sockets & process.listening_sockets()
    assert not still, f"a socket the testbed opened still listens: {sorted(still)}"


def test_a_port_already_taken_is_named(testbeds):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        bed = testbeds.bed()
        with pytest.raises(embedded.TestbedError, match=f"cluster 'c0': apiserver_port {port} is already in use on 127.0.0.1"):
            bed.up(embedded.parse_specs([{"name": "c0", "apiserver_port": port}]))
    assert not bed.leftovers()["processes"]


def test_teardown_of_a_work_dir_leaves_a_neighbour_whose_name_it_starts(testbeds):
    """Two work dirs, /…/wd and /…/wd-b: tearing down the first stops only its own processes
    (they were once matched as a substring of the command line, killing the neighbour's cluster)."""
    mine, _ = testbeds.up(0, name="wd")
    theirs, (their_facts,) = testbeds.up(0, name="wd-b")
    before = set(theirs.leftovers()["processes"])
    assert before and not before & set(mine.leftovers()["processes"])
    mine.down()
    assert not mine.leftovers()["processes"]
    assert set(theirs.leftovers()["processes"]) == before and theirs.unhealthy() == []
    assert embedded.healthy(theirs.kwokctl.cluster_dir(their_facts.name), theirs.recorded_port(their_facts.name))


def test_a_component_that_exits_is_restarted_recorded_and_teardown_stops_the_supervisor(testbeds):
    import signal

    from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import supervise

    bed, (facts,) = testbeds.up(1)
    cdir = bed.kwokctl.cluster_dir(facts.name)
    assert bed.supervisor_pid() is not None and bed.unhealthy() == []
    before = supervise.component_states(cdir)
    victim = before["kube-controller-manager"]["pid"]
    os.kill(victim, signal.SIGKILL)
    # The supervisor sees it gone and starts it again with kwokctl's own command line.
    restarted = wait_until(lambda: [r for r in bed.restarts() if r["component"] == "kube-controller-manager" and r["running"]], 60,
                      "the supervisor to restart kube-controller-manager")
    assert restarted[0]["cluster"] == facts.name and restarted[0]["old_pid"] == victim and restarted[0]["new_pid"] != victim
    assert restarted[0]["log"].endswith("logs/kube-controller-manager.log")
    after = supervise.component_states(cdir)
    assert all(s["running"] for s in after.values()) and after["etcd"]["pid"] == before["etcd"]["pid"]
    wait_until(lambda: bed.unhealthy() == [], 60, "the cluster healthy again")

    # Without the supervisor, a provision repairs what is gone instead of calling it healthy.
    bed.stop_supervisor()
    os.kill(after["kube-scheduler"]["pid"], signal.SIGKILL)
    wait_until(lambda: not supervise.component_states(cdir)["kube-scheduler"]["running"], 10, "kube-scheduler gone")
    assert any("kube-scheduler is not running" in p and "kube-scheduler.log" in p for p in bed.unhealthy())
    _, changed = bed.up(embedded.parse_specs([{"name": facts.name, "role": "host", "nodes": 1, "apiserver_port": int(facts.server.rsplit(":", 1)[1])}]))
    assert changed and bed.unhealthy() == [] and bed.supervisor_pid() is not None

    supervisor = bed.supervisor_pid()
    bed.down()
    assert not supervise.alive(supervisor)
    assert not bed.leftovers()["processes"]


def test_a_killed_api_server_is_back_and_answering_before_the_next_sample_starts(testbeds, tmp_path):
    """SIGKILL the API server: the supervisor records the restart only once it answers (with how
    long it took), and a lifecycle sample asked for meanwhile waits for the repair instead of failing."""
    import signal

    from ansible_collections.fedbench.testbed.plugins.module_utils.experiments import lifecycle_params
    from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import supervise

    bed, (facts,) = testbeds.up(1)
    cdir = bed.kwokctl.cluster_dir(facts.name)
    victim = supervise.component_states(cdir)["kube-apiserver"]["pid"]
    os.kill(victim, signal.SIGKILL)
    # Gone: the victim no longer runs (the supervisor may already have started its successor,
    # whose pid the component's pid file then names, before this looks).
    wait_until(lambda: not supervise.alive(victim), 10, "the killed kube-apiserver gone")
    outcome = lifecycle_params.lifecycle_from_params(dict(
        replicas=1, layout="replicas", image="busybox:1.36", command=["sleep", "3600"], namespace="repair", node_selector={},
        ready_timeout=60, delete_timeout=60, framework="native", repetition=1, repair_timeout=120, cleanup=True,
        clusters=[{"name": facts.name, "kubeconfig": facts.kubeconfig, "context": facts.context, "role": "host"}],
        testbed=[facts.as_dict()], run_id="repair", results_dir=str(tmp_path / "results")))
    assert not outcome.failed, outcome.message
    tries = [r for r in bed.restarts() if r["component"] == "kube-apiserver"]
    assert tries and tries[-1]["running"] and tries[-1]["old_pid"] == victim, tries
    assert all(not r["running"] for r in tries[:-1]) and 0 < tries[-1]["seconds"] < supervise.ANSWER_TIMEOUT, tries
    print(f"kube-apiserver answered {tries[-1]['seconds']:.1f}s after its restart, {len(tries)} attempt(s)")
    assert (bed.supervisor_dir.stat().st_mode & 0o777) == 0o700
    assert all((f.stat().st_mode & 0o777) == 0o600 for f in bed.supervisor_dir.iterdir()), \
        {f.name: oct(f.stat().st_mode & 0o777) for f in bed.supervisor_dir.iterdir()}
    bed.down()
    assert not bed.supervisor_dir.exists() and bed.restarts() == []


def test_an_etcd_stall_is_survived_components_come_back_and_the_cluster_works(testbeds):
    import signal

    from kubernetes import client

    from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import supervise

    bed, (facts,) = testbeds.up(1)
    cdir = bed.kwokctl.cluster_dir(facts.name)
    before = {c: st["pid"] for c, st in supervise.component_states(cdir).items()}
    etcd = before["etcd"]
    os.kill(etcd, signal.SIGSTOP)  # 20 s: longer than the controllers' leader lease (15 s)
    try:
        time.sleep(20)
    finally:
        os.kill(etcd, signal.SIGCONT)
    # Whatever exited while etcd stood still (the controllers lose their lease by
    # design) is started again, and the cluster becomes whole.
    wait_until(lambda: bed.unhealthy() == [], 180, f"cluster healthy again; still: {bed.unhealthy()}")
    after = {c: st["pid"] for c, st in supervise.component_states(cdir).items()}
    replaced = {c for c in before if after[c] != before[c]}
    recorded = {r["component"] for r in bed.restarts()}
    # Every component that runs with a new pid was restarted by the supervisor, on the record.
    assert after["etcd"] == etcd and replaced <= recorded, (replaced, recorded)
    # ... and works: a Deployment's pods are scheduled and Ready.
    apps = client.AppsV1Api(api_client(facts))
    apps.create_namespaced_deployment("default", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "after-stall"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "after-stall"}},
                 "template": {"metadata": {"labels": {"app": "after-stall"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}}},
    })
    wait_until(lambda: (apps.read_namespaced_deployment("after-stall", "default").status.ready_replicas or 0) == 2, 120, "2 ready replicas")
