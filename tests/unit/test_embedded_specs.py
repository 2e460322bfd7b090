"""Pure logic of the embedded testbed: validation, configuration, ports."""
import json
import socket

import pytest

from ansible_collections.fedbench.testbed.plugins.module_utils.common import process
from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import embedded

GOOD = [
    {"name": "host", "role": "host", "nodes": 4, "apiserver_port": 32443},
    {"name": "member1", "role": "member", "nodes": 0, "apiserver_port": 32444},
]


def test_good_specs_parse():
    specs = embedded.parse_specs(GOOD)
    assert [(s.name, s.role, s.nodes, s.apiserver_port) for s in specs] == [
        ("host", "host", 4, 32443),
        ("member1", "member", 0, 32444),
    ]


def test_nodes_default_to_four_and_role_to_member():
    (spec,) = embedded.parse_specs([{"name": "a", "apiserver_port": 40000}])
    assert (spec.nodes, spec.role) == (4, "member")


def test_numeric_strings_are_accepted():
    (spec,) = embedded.parse_specs([{"name": "a", "nodes": "3", "apiserver_port": "40000"}])
    assert (spec.nodes, spec.apiserver_port) == (3, 40000)


@pytest.mark.parametrize(
    "raw, message",
    [
        ([], "the list of clusters is empty"),
        ("host", "must be a list"),
        ([{"name": "a", "nodes": "four", "apiserver_port": 40000}], "cluster 'a': nodes must be a whole number, got 'four'"),
        ([{"name": "a", "nodes": 2.5, "apiserver_port": 40000}], "cluster 'a': nodes must be a whole number"),
        ([{"name": "a", "nodes": -1, "apiserver_port": 40000}], "cluster 'a': nodes must be from 0 to 5000, got -1"),
        ([{"name": "a", "nodes": True, "apiserver_port": 40000}], "cluster 'a': nodes must be a whole number"),
        ([{"name": "a", "apiserver_port": 40000}, {"name": "a", "apiserver_port": 40001}], "cluster name 'a' appears twice"),
        ([{"name": "a", "apiserver_port": 40000}, {"name": "b", "apiserver_port": 40000}], "both ask for apiserver_port 40000"),
        ([{"name": "Bad_Name", "apiserver_port": 40000}], "name must be a lowercase DNS label"),
        ([{"name": "a", "role": "boss", "apiserver_port": 40000}], "role must be one of host, member, got 'boss'"),
        ([{"name": "a"}], "cluster 'a': apiserver_port is required"),
        ([{"name": "a", "apiserver_port": 80}], "cluster 'a': apiserver_port must be from 1024 to 65535, got 80"),
        ([{"name": "a", "role": "host", "apiserver_port": 40000}, {"name": "b", "role": "host", "apiserver_port": 40001}], "only one cluster may have role 'host'"),
    ],
)
def test_bad_specs_name_the_input(raw, message):
    with pytest.raises(embedded.TestbedError) as err:
        embedded.parse_specs(raw)
    assert message in str(err.value)


def _binaries(tmp_path):
    paths = {}
    for name in ("kwokctl", "kwok", "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"):
        path = tmp_path / name
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
        paths[name] = str(path)
    return paths


def test_binaries_must_be_complete_and_executable(tmp_path):
    paths = _binaries(tmp_path)
    embedded.Binaries.from_mapping(paths)
    with pytest.raises(embedded.TestbedError, match="missing binaries for the embedded testbed: etcd"):
        embedded.Binaries.from_mapping({k: v for k, v in paths.items() if k != "etcd"})
    (tmp_path / "kwok").chmod(0o644)
    with pytest.raises(embedded.TestbedError, match="binary for kwok is not an executable file"):
        embedded.Binaries.from_mapping(paths)


def test_kwokctl_config_binds_loopback_and_pins_every_port(tmp_path):
    binaries = embedded.Binaries.from_mapping(_binaries(tmp_path))
    (spec,) = embedded.parse_specs([{"name": "a", "apiserver_port": 40000}])
    ports = dict(zip(embedded.COMPONENT_PORTS, range(50000, 50010)))
    doc = json.loads(embedded.kwokctl_config(spec, binaries, "v1.36.1", ports))
    opts = doc["options"]
    assert doc["kind"] == "KwokctlConfiguration"
    assert opts["runtime"] == "binary"
    assert opts["bindAddress"] == "127.0.0.1"
    assert opts["kubeApiserverPort"] == 40000
    assert {opts[name] for name in embedded.COMPONENT_PORTS} == set(range(50000, 50005))
    assert opts["etcdBinary"].endswith("/etcd")
    assert opts["disableQPSLimits"] is False  # stock client rate limits unless asked
    lifted = json.loads(embedded.kwokctl_config(spec, binaries, "v1.36.1", ports, disable_qps_limits=True))
    assert lifted["options"]["disableQPSLimits"] is True
    with pytest.raises(embedded.TestbedError, match="no port for"):
        embedded.kwokctl_config(spec, binaries, "v1.36.1", {})


def test_allocated_ports_are_distinct_free_and_avoid_the_given_ones():
    ports = embedded.free_ports(30, avoid=[32443])
    assert len(set(ports)) == 30
    assert 32443 not in ports
    for port in ports:
        assert not process.port_in_use(port)


def test_components_and_services_take_ports_from_separate_bands():
    # A cluster created after a service was given its port can never take that port.
    low, high = embedded.COMPONENT_BAND
    assert all(low <= p < high for p in embedded.allocate_ports(50))
    assert all(p >= high for p in embedded.free_ports(50))


def test_port_in_use_sees_a_listener():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert process.port_in_use(sock.getsockname()[1])


@pytest.mark.parametrize(
    "node, ready",
    [
        ({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}, True),
        ({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}, False),
        ({"status": {"conditions": [{"type": "MemoryPressure", "status": "False"}]}}, False),
        ({"status": {}}, False),
        ({}, False),
    ],
)
def test_node_ready(node, ready):
    assert embedded.node_ready(node) is ready


def test_a_bare_control_plane_has_no_simulator_and_no_nodes(tmp_path):
    (spec,) = embedded.parse_specs([{"name": "bare", "nodes": 0, "apiserver_port": 30000, "simulator": False}])
    assert spec.simulator is False
    binaries = embedded.Binaries.from_mapping(_binaries(tmp_path))
    config = json.loads(embedded.kwokctl_config(spec, binaries, "v1.36.1", dict.fromkeys(embedded.COMPONENT_PORTS, 1)))
    assert config["options"]["disable"] == ["kwok-controller"]
    with pytest.raises(embedded.TestbedError, match="cluster 'bare': nodes must be 0 with simulator: false"):
        embedded.parse_specs([{"name": "bare", "nodes": 3, "apiserver_port": 30000, "simulator": False}])
    with pytest.raises(embedded.TestbedError, match="cluster 'bare': simulator must be true or false, got 'no'"):
        embedded.parse_specs([{"name": "bare", "nodes": 0, "apiserver_port": 30000, "simulator": "no"}])


def test_a_frameworks_own_control_plane_has_no_scheduler_and_only_the_controllers_asked(tmp_path):
    """Karmada's API server: no nodes, no KWOK controller, no scheduler, a controller
    manager limited to what keeps namespaces and owners tidy (Deployments stay templates)."""
    (spec,) = embedded.parse_specs([{"name": "plane", "nodes": 0, "apiserver_port": 30000, "simulator": False, "scheduler": False,
                                     "controllers": ["namespace", "garbagecollector", "serviceaccount-token"]}])
    binaries = embedded.Binaries.from_mapping(_binaries(tmp_path))
    config = json.loads(embedded.kwokctl_config(spec, binaries, "v1.36.1", dict.fromkeys(embedded.COMPONENT_PORTS, 1)))
    assert config["options"]["disable"] == ["kube-scheduler", "kwok-controller"]
    assert config["componentsPatches"] == [{"name": "kube-controller-manager", "extraArgs": [
        {"key": "controllers", "value": "namespace,garbagecollector,serviceaccount-token", "override": True}]}]
    (plain,) = embedded.parse_specs([{"name": "a", "apiserver_port": 30000}])
    assert "componentsPatches" not in json.loads(embedded.kwokctl_config(plain, binaries, "v1.36.1", dict.fromkeys(embedded.COMPONENT_PORTS, 1)))
    with pytest.raises(embedded.TestbedError, match="cluster 'p': nodes must be 0 with scheduler: false"):
        embedded.parse_specs([{"name": "p", "nodes": 2, "apiserver_port": 30000, "scheduler": False}])
    with pytest.raises(embedded.TestbedError, match="cluster 'p': scheduler must be true or false, got 'off'"):
        embedded.parse_specs([{"name": "p", "nodes": 0, "apiserver_port": 30000, "scheduler": "off"}])
    with pytest.raises(embedded.TestbedError, match="cluster 'p': controllers must be a list of kube-controller-manager controller names"):
        embedded.parse_specs([{"name": "p", "apiserver_port": 30000, "controllers": "namespace"}])
