import pytest

from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import cgroups, embedded

CPUS = {0, 1}


def parse(raw):
    return cgroups.parse(raw, "c1", CPUS)


def test_limits_in_every_form_the_inventory_may_write():
    got = parse({
        "kube-apiserver": {"cpus": 0.5, "memory": "1Gi", "cpuset": "1"},
        "etcd": {"cpus": "250m", "memory": 268435456},
        "kube-scheduler": {"cpuset": "0-1"},
        "kube-controller-manager": {"memory": "500M", "cpus": 2},
    })
    assert got["kube-apiserver"] == cgroups.Limits(cpus=0.5, memory_bytes=2**30, cpuset="1")
    assert got["etcd"] == cgroups.Limits(cpus=0.25, memory_bytes=2**28)
    assert got["kube-scheduler"] == cgroups.Limits(cpuset="0-1")
    assert got["kube-controller-manager"] == cgroups.Limits(cpus=2.0, memory_bytes=500 * 10**6)
    assert got["kube-scheduler"].controllers() == ["cpuset"]
    assert parse(None) == {} and parse({}) == {}


@pytest.mark.parametrize("raw, message", [
    ({"kube-apiserver": {"cpus": 0}}, "cluster 'c1': control_plane.kube-apiserver.cpus must be above 0 cores, got 0"),
    ({"kube-apiserver": {"cpus": -1}}, "control_plane.kube-apiserver.cpus must be above 0 cores, got -1"),
    ({"etcd": {"cpus": "lots"}}, "control_plane.etcd.cpus must be a number of cores like 0.5 or 500m, got 'lots'"),
    ({"etcd": {"cpus": 0.001}}, "control_plane.etcd.cpus must be at least 0.01 cores"),
    ({"etcd": {"memory": 0}}, "control_plane.etcd.memory must be above 0, got 0"),
    ({"etcd": {"memory": "-5Mi"}}, "control_plane.etcd.memory must be bytes or a quantity like 512Mi, got '-5Mi'"),
    ({"etcd": {"memory": "1GB"}}, "control_plane.etcd.memory must be bytes or a quantity like 512Mi, got '1GB'"),
    ({"etcd": {"cpuset": "7"}}, "control_plane.etcd.cpuset: CPU 7 is not online here (online: 0-1)"),
    ({"etcd": {"cpuset": "one"}}, "control_plane.etcd.cpuset must be a CPU list like"),
    ({"kube-proxy": {"cpus": 1}}, "control_plane: unknown component 'kube-proxy' (one of etcd, kube-apiserver, kube-controller-manager, kube-scheduler)"),
    ({"etcd": {"cores": 1}}, "control_plane.etcd: unknown key 'cores' (cpus, memory, cpuset)"),
    ({"etcd": {}}, "control_plane.etcd must be a mapping with cpus, memory and/or cpuset"),
    (["etcd"], "cluster 'c1': control_plane must be a mapping of component to limits"),
])
def test_bad_limits_are_refused_naming_the_variable(raw, message):
    with pytest.raises(cgroups.CgroupError) as err:
        parse(raw)
    assert message in str(err.value)


def test_cpu_lists_in_the_kernels_form():
    assert cgroups.format_cpus({0, 1, 2, 5, 7, 8}) == "0-2,5,7-8"
    assert cgroups._cpu_list("0-2,5") == {0, 1, 2, 5}
    assert parse({"etcd": {"cpuset": "1,0"}})["etcd"].cpuset == "0-1"


def test_the_inventory_check_carries_the_limits_or_names_them():
    (spec,) = embedded.parse_specs([{"name": "c1", "apiserver_port": 20001, "control_plane": {"etcd": {"cpus": 1}}}])
    assert spec.control_plane == {"etcd": cgroups.Limits(cpus=1.0)}
    with pytest.raises(embedded.TestbedError, match="cluster 'c1': control_plane.etcd.cpus must be above 0"):
        embedded.parse_specs([{"name": "c1", "apiserver_port": 20001, "control_plane": {"etcd": {"cpus": 0}}}])


def test_one_group_folder_per_work_dir(tmp_path):
    assert cgroups.work_key(tmp_path / "a") != cgroups.work_key(tmp_path / "b")
    assert str(cgroups.group("cpu", "k", "c1", "etcd")) == "/sys/fs/cgroup/cpu/fedbench/k/c1/etcd"


def test_the_results_carry_the_limits_read_back_and_the_schema_takes_them():
    from pathlib import Path

    from ansible_collections.fedbench.testbed.plugins.module_utils import results

    schema = Path(__file__).resolve().parents[2] / "docs" / "results.schema.json"
    limits = {"kube-apiserver": {"cpus": 0.5, "memory_bytes": 2**30, "cpuset": None}}
    info = results.testbed_info([{"name": "c0", "role": "host", "nodes": 1, "kubernetes_version": "v1", "control_plane": limits},
                                 {"name": "c1", "role": "member", "nodes": 1, "kubernetes_version": "v1", "control_plane": {}}])
    assert info["clusters"][0]["control_plane"] == limits and "control_plane" not in info["clusters"][1]
    results.validate(info, schema, "testbed")
    with pytest.raises(results.ResultsError, match="kube-proxy"):
        results.validate({**info, "clusters": [{"name": "c0", "control_plane": {"kube-proxy": limits["kube-apiserver"]}}]}, schema, "testbed")


def test_a_topology_is_cpu_sets_on_this_machines_cpus():
    plain = cgroups.with_topology({}, None, "c1", CPUS)
    assert plain == {} and cgroups.with_topology({}, "colocated", "c1", CPUS) == {}
    etcd = cgroups.with_topology(parse({"kube-apiserver": {"cpus": 1}}), "dedicated-etcd", "c1", CPUS)
    assert {c: l.cpuset for c, l in etcd.items()} == {"etcd": "0", "kube-apiserver": "1", "kube-controller-manager": "1", "kube-scheduler": "1"}
    assert etcd["kube-apiserver"].cpus == 1.0  # the other limits stay
    four = cgroups.with_topology({}, "offloaded-scheduler", "c1", {0, 1, 2, 3})
    assert four["kube-scheduler"].cpuset == "0" and four["etcd"].cpuset == "1-3"


@pytest.mark.parametrize("topology, limits, cpus, message", [
    ("split", {}, CPUS, "cluster 'c1': topology must be one of colocated, dedicated-etcd, offloaded-scheduler, got 'split'"),
    ("dedicated-etcd", {}, {0}, "cluster 'c1': topology dedicated-etcd needs 2 CPUs or more; this machine has 1 online"),
    ("dedicated-etcd", {"etcd": {"cpuset": "1"}}, CPUS, "sets the CPUs of every component; drop control_plane.etcd.cpuset"),
])
def test_a_topology_it_cannot_represent_is_refused(topology, limits, cpus, message):
    with pytest.raises(cgroups.CgroupError, match=message.replace("(", r"\(").replace(")", r"\)")):
        cgroups.with_topology(parse(limits), topology, "c1", cpus)
