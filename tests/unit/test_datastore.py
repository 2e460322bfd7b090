"""Pure logic of the embedded testbed's datastores: validation, kine's endpoint
and launcher, what names a kine process as a cluster's."""
from pathlib import Path

import pytest

from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import datastore, embedded, supervise

from ansible_collections.fedbench.testbed.plugins.filter.inventory import inventory_problems


def _spec(**extra):
    return embedded.parse_specs([{"name": "a", "apiserver_port": 40000, **extra}])[0]


def test_etcd_is_the_default_and_each_kind_parses():
    assert _spec().datastore == datastore.Datastore("etcd", None)
    assert _spec(datastore="kine-sqlite").datastore.kine
    assert _spec(datastore="kine-postgres", datastore_port=25432).datastore == datastore.Datastore("kine-postgres", 25432)
    assert _spec(datastore="kine-postgres").datastore.port is None  # a free one, chosen at create


@pytest.mark.parametrize("extra, message", [
    ({"datastore": "mysql"}, "cluster 'a': datastore must be one of etcd, kine-sqlite, kine-postgres, got 'mysql'"),
    ({"datastore": "kine-sqlite", "datastore_port": 25432}, "cluster 'a': datastore_port is PostgreSQL's, for datastore kine-postgres only (datastore is kine-sqlite)"),
    ({"datastore": "kine-postgres", "datastore_port": 80}, "cluster 'a': datastore_port must be a whole number from 1024 to 65535, got 80"),
    ({"datastore": "kine-postgres", "datastore_port": "x"}, "cluster 'a': datastore_port must be a whole number from 1024 to 65535, got 'x'"),
    ({"datastore": "kine-postgres", "datastore_port": 40000}, "cluster 'a': datastore_port 40000 is also the port of cluster 'a'"),
])
def test_a_bad_datastore_is_refused_naming_it(extra, message):
    with pytest.raises(embedded.TestbedError) as exc:
        _spec(**extra)
    assert str(exc.value) == message


def test_kines_endpoint_holds_no_secret_and_names_the_clusters_files(tmp_path):
    sqlite = datastore.endpoint(tmp_path, "a", datastore.Datastore("kine-sqlite"))
    assert sqlite.startswith(f"sqlite://{tmp_path}/datastores/a/state.db?_journal_mode=WAL&")
    pg = datastore.endpoint(tmp_path, "a", datastore.Datastore("kine-postgres", 25432))
    assert pg == f"postgres://kine@127.0.0.1:25432/kubernetes?sslmode=disable&passfile={tmp_path}/datastores/a/pgpass"


def test_the_kine_launcher_joins_etcds_groups_and_listens_on_etcds_port_on_loopback(tmp_path):
    kine = tmp_path / "kine-binary"
    kine.write_text("")
    script = datastore.write_kine_launcher(tmp_path / "l", "a", str(kine), "127.0.0.1:12345", "sqlite:///x/state.db?a=1&b=2", "SQLite")
    text = script.read_text()
    assert script == tmp_path / "l" / "etcd" and (tmp_path / "l" / "bin" / "kine").resolve() == kine
    assert "--listen-address=127.0.0.1:12345 --endpoint='sqlite:///x/state.db?a=1&b=2' --metrics-bind-address=0" in text
    assert str(tmp_path / "l" / "etcd.cgroups") in text
    assert 'if [ "$1" = --version ]' in text  # kwokctl asks the "etcd" its version


def test_a_kine_process_is_its_clusters_by_its_launchers_link(tmp_path):
    cdir = tmp_path / "kwok" / "clusters" / "a"
    assert supervise.owned(cdir, f"{tmp_path}/launchers/a/bin/kine --listen-address=127.0.0.1:1")
    assert not supervise.owned(cdir, f"{tmp_path}/launchers/ab/bin/kine --listen-address=127.0.0.1:1")
    assert supervise.owned(cdir, f"etcd --data-dir={cdir}/etcd")


def test_each_clusters_postgresql_is_named_by_work_dir_key_and_cluster():
    assert datastore.pg_home("0123456789ab", "m1") == Path("/tmp/fedbench-pg-0123456789ab-m1")
    # PostgreSQL's cluster_name (its processes' titles) holds at most 63 bytes.
    assert len(datastore.pg_name("0123456789ab", "a" * 32)) <= 63


def test_the_datastore_is_for_the_embedded_testbed_only():
    clusters = [{"name": "h", "role": "host", "apiserver_port": 31443, "datastore": "kine-sqlite"}]
    assert not any("datastore" in p for p in inventory_problems([], [], [], False, clusters, "embedded"))
    assert "cluster 'h': datastore chooses the embedded testbed's datastore only; fedbench_testbed is 'kind'" in inventory_problems(
        [], [], [], False, clusters, "kind")
