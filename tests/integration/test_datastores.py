"""Alternate datastores on the embedded testbed: kine over SQLite and over a
PostgreSQL server the testbed starts, on real control planes. The deployment
lifecycle and ConfigMap churn run on each unchanged; the API server really
stores into kine (kine holds etcd's port, the server's rows grow); a killed
kine comes back; PostgreSQL's port in use is refused before anything starts;
teardown leaves no process, port or data."""
from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from ansible_collections.fedbench.testbed.plugins.module_utils.common import procfs
from ansible_collections.fedbench.testbed.plugins.module_utils.common.process import listening_sockets_of, port_in_use
from ansible_collections.fedbench.testbed.plugins.module_utils.experiments import apimachinery
from ansible_collections.fedbench.testbed.plugins.module_utils.experiments import lifecycle_params as experiment
from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import datastore, embedded, supervise

from ansible_collections.fedbench.testbed.plugins.module_utils import kube

from .conftest import api_client, wait_until
from .test_lifecycle import _check_sample, params


def _loopback_only(port: int) -> bool:
    """Serving on 127.0.0.1 and not on another address of this machine's loopback
    (a server bound to every address would answer on 127.0.0.2 too)."""
    return port_in_use(port, "127.0.0.1") and not port_in_use(port, "127.0.0.2")


def _up(testbeds, kind: str, nodes: int = 2, **extra):
    bed = testbeds.bed()
    port = embedded.free_ports(1)[0]
    (facts,), _ = bed.up(embedded.parse_specs([{"name": "c0", "role": "host", "nodes": nodes, "apiserver_port": port, "datastore": kind, **extra}]))
    return bed, facts


def _etcd_port(bed) -> int:
    config = json.loads(bed.config_path("c0").read_text())
    return config["options"]["etcdPort"]


def _kine_pid(bed) -> int:
    states = supervise.component_states(bed.kwokctl.cluster_dir("c0"))
    assert states["etcd"]["running"], states
    return states["etcd"]["pid"]


@pytest.mark.parametrize("kind", ["kine-sqlite", "kine-postgres"])
def test_lifecycle_and_churn_run_unchanged_on_kine(testbeds, tmp_path, kind):
    bed, facts = _up(testbeds, kind)
    # kine, not etcd, holds etcd's port, and the results say which datastore it was.
    pid = _kine_pid(bed)
    assert procfs.argv(pid)[0].endswith("/launchers/c0/bin/kine"), procfs.argv(pid)
    assert os.path.realpath(procfs.argv(pid)[0]) == os.path.realpath(testbeds.binaries["kine"])
    assert _etcd_port(bed) in {port for port, _ in listening_sockets_of([pid])}
    assert _loopback_only(_etcd_port(bed))
    assert facts.datastore["kind"] == kind and facts.datastore["kine_version"] == "0.17.5"
    home = datastore.pg_home(bed.cgroup_key, "c0")
    if kind == "kine-postgres":
        assert facts.datastore["postgresql_version"].startswith("15."), facts.datastore
        server = bed.postgres("c0", facts.datastore["port"])
        assert server.postmaster() is not None
        # PostgreSQL on 127.0.0.1 only; the password only in a 0600 passfile, never on a command line.
        assert {port for port, _ in listening_sockets_of([server.postmaster()])} == {facts.datastore["port"]}
        assert _loopback_only(facts.datastore["port"])
        passfile = datastore.folder(bed.work_dir, "c0") / "pgpass"
        assert passfile.stat().st_mode & 0o777 == 0o600
        secret = passfile.read_text().strip().rsplit(":", 1)[1]
        assert not [p for p, cmd in datastore.processes(server.name).items() if secret in cmd]
        assert secret not in procfs.cmdline(pid)
        # kine's connections are this cluster's server's.
        assert [c for c in datastore.processes(server.name).values() if "kine kubernetes 127.0.0.1" in c]
        db = None
    else:
        assert not home.exists()
        db = datastore.folder(bed.work_dir, "c0") / "state.db"
        assert db.is_file()

    size_before = db.stat().st_size + Path(str(db) + "-wal").stat().st_size if db else None
    for replicas in (1, 3):
        out = experiment.lifecycle_from_params(params(facts, tmp_path, replicas=replicas, repetition=replicas, cleanup=replicas == 3))
        assert not out.failed, out.message
        kept = json.loads(Path(out.result["path"]).read_text())
        _check_sample(kept["samples"][0], replicas)
        assert kept["testbed"]["clusters"][0]["datastore"]["kind"] == kind
    churned = apimachinery.churn_from_params({
        "kubeconfig": facts.kubeconfig, "context": facts.context, "run_id": "it", "results_dir": str(tmp_path / "results"),
        "mode": "open", "rate": 20, "lifetime": 0.5, "duration": 3, "seed": 5, "token": "kine", "namespaces": ["kine-a"]})
    assert not churned.failed, churned.message
    summary = churned.result["summary"]
    assert summary["errors"] == {} and summary["created"] == summary["deleted"] > 0 and summary["left"] == 0
    if db:
        assert db.stat().st_size + Path(str(db) + "-wal").stat().st_size > size_before  # the writes went to the file

    bed.down()
    left = bed.leftovers()
    assert left["processes"] == {} and left["postgresql"] == [] and not home.exists(), left
    assert not datastore.folder(bed.work_dir, "c0").exists()


def test_killed_kine_comes_back_and_takes_etcds_limits(testbeds):
    bed, facts = _up(testbeds, "kine-sqlite", nodes=1, control_plane={"etcd": {"cpus": 0.5}})
    pid = _kine_pid(bed)
    assert facts.control_plane["etcd"]["cpus"] == 0.5
    os.kill(pid, signal.SIGKILL)
    cdir = bed.kwokctl.cluster_dir("c0")
    wait_until(lambda: (st := supervise.component_states(cdir)["etcd"])["running"] and st["pid"] != pid, 60, "the supervisor restarting kine")
    again = _kine_pid(bed)
    assert procfs.argv(again)[0].endswith("/bin/kine")
    from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import cgroups

    assert again in cgroups.read_back(bed.cgroup_key, "c0", "etcd")["pids"]
    wait_until(lambda: embedded.healthy(cdir, bed.recorded_port("c0")), 60, "the API server answering again")
    assert bed.unhealthy() == []


def test_a_killed_postgresql_is_restarted_named_and_a_provision_repairs_it(testbeds):
    """PostgreSQL is supervised like the cluster's other components: SIGKILL its postmaster and the
    supervisor starts it again (recorded as postgresql, answering) and writes reach it again; without the supervisor, unhealthy() names it and a provision repairs it
    (its API server's own port is not 'already in use')."""
    bed, facts = _up(testbeds, "kine-postgres", nodes=1)
    pg = bed.postgres("c0", facts.datastore["port"])
    victim = pg.postmaster()
    os.kill(victim, signal.SIGKILL)
    tries = wait_until(lambda: [r for r in bed.restarts() if r["component"] == "postgresql" and r["running"]], 60, "PostgreSQL restarted")
    assert tries[-1]["old_pid"] == victim and tries[-1]["new_pid"] == pg.postmaster() not in (None, victim), bed.restarts()
    print(f"PostgreSQL answered {tries[-1]['seconds']:.1f}s after its restart")
    wait_until(lambda: bed.unhealthy() == [], 90, "the cluster healthy again")
    # Writes reach the database again (waiting for the repair first, as a lifecycle sample does).
    api = api_client(facts)
    assert experiment.wait_answering(experiment.lifecycle.adapter_for("native", [experiment.lifecycle.Cluster(
        "c0", facts.kubeconfig, facts.context, "host")]), 60) is None
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "after-restart"}, "data": {"k": "v"}}
    kube.request(api, "POST", "/api/v1/namespaces/default/configmaps", body=body)
    # Read back from storage (a GET without resourceVersion goes past the watch cache). Once, in CI
    # under load, the first read after a PostgreSQL restart answered 404 for a create that had
    # answered 201; the write is checked to arrive, and how long it took to become readable is printed.
    posted = time.monotonic()

    def readable():
        try:
            return kube.request(api, "GET", "/api/v1/namespaces/default/configmaps/after-restart")["data"] == {"k": "v"}
        except kube.KubeError as exc:
            if exc.status != 404:
                raise
            return False

    wait_until(readable, 30, "the ConfigMap written after the restart readable")
    print(f"the write after the restart was readable {time.monotonic() - posted:.2f}s after its create answered")

    bed.stop_supervisor()
    os.kill(pg.postmaster(), signal.SIGKILL)
    wait_until(lambda: any("its PostgreSQL (datastore kine-postgres" in p for p in bed.unhealthy()), 30, "PostgreSQL named down")
    spec = {"name": "c0", "role": "host", "nodes": 1, "apiserver_port": int(facts.server.rsplit(":", 1)[1]), "datastore": "kine-postgres"}
    _, changed = bed.up(embedded.parse_specs([spec]))
    assert changed and pg.postmaster() is not None
    wait_until(lambda: bed.unhealthy() == [], 60, "the cluster healthy again")


def test_postgres_port_in_use_is_refused_before_anything_starts(testbeds):
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    port = embedded.free_ports(1)[0]
    holder.bind(("127.0.0.1", port))
    holder.listen()
    try:
        bed = testbeds.bed()
        with pytest.raises(embedded.TestbedError, match=rf"cluster 'c0': datastore_port {port} \(its PostgreSQL\) is already in use on 127.0.0.1"):
            bed.up(embedded.parse_specs([{"name": "c0", "role": "host", "nodes": 0, "apiserver_port": embedded.free_ports(1, avoid=[port])[0],
                                          "datastore": "kine-postgres", "datastore_port": port}]))
        left = bed.leftovers()
        assert left["processes"] == {} and left["clusters"] == [] and left["postgresql"] == [], left
    finally:
        holder.close()
