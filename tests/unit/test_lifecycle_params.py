"""Workload parameters and adapters: messages that name the input (no cluster)."""
import pytest

from ansible_collections.fedbench.testbed.plugins.module_utils.experiments import lifecycle, lifecycle_params as experiment
from ansible_collections.fedbench.testbed.plugins.filter.sizes import doubling


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"replicas": 0}, "replicas must be a whole number of at least 1, got 0"),
        ({"replicas": -3}, "replicas must be a whole number of at least 1, got -3"),
        ({"replicas": 2, "layout": "zigzag"}, "layout must be one of replicas, deployments, got 'zigzag'"),
        ({"replicas": 2, "namespace": "Not_OK"}, "namespace must be a DNS label"),
        ({"replicas": 2, "ready_timeout": 0}, "ready_timeout must be positive"),
    ],
)
def test_bad_workload(kwargs, message):
    with pytest.raises(lifecycle.ParameterError, match=message):
        lifecycle.Workload(**kwargs)


def test_unknown_framework_is_named():
    from ansible_collections.fedbench.testbed.plugins.module_utils import frameworks

    with pytest.raises(lifecycle.ParameterError, match=f"framework must be one of {', '.join(sorted(frameworks.PLACEMENT))}, got 'karmada'"):
        lifecycle.adapter_for("karmada", [])


def test_layouts_shape_the_manifests():
    wl = lifecycle.Workload(replicas=3, layout="deployments")
    assert wl.deployments == 3 and wl.replicas_each == 1
    names = wl.deployment_names("s1")
    assert names == ["lc-s1-0", "lc-s1-1", "lc-s1-2"]
    m = wl.manifest(names[0], "s1")
    assert m["spec"]["replicas"] == 1
    container = m["spec"]["template"]["spec"]["containers"][0]
    assert container["imagePullPolicy"] == "IfNotPresent" and container["command"] == ["sleep", "3600"]
    assert m["spec"]["template"]["metadata"]["labels"][lifecycle.SAMPLE_LABEL] == "s1"
    one = lifecycle.Workload(replicas=8)
    assert one.deployment_names("s") == ["lc-s"] and one.manifest("lc-s", "s")["spec"]["replicas"] == 8


def _params(**over):
    base = dict(replicas=2, layout="replicas", image="busybox:1.36", command=["sleep", "1"], namespace="ns",
                node_selector={}, ready_timeout=10, delete_timeout=10, framework="native", repetition=1,
                clusters=[{"name": "c", "kubeconfig": "/nonexistent", "context": "x"}], run_id="r", results_dir="/nonexistent")
    base.update(over)
    return base


def test_check_mode_validates_and_touches_nothing():
    out = experiment.lifecycle_from_params(_params(), check_mode=True)
    assert not out.failed and out.result["sample"] == {}
    bad = experiment.lifecycle_from_params(_params(replicas=0), check_mode=True)
    assert bad.failed and "replicas must be a whole number of at least 1, got 0" in bad.message


def test_clusters_must_be_complete():
    out = experiment.lifecycle_from_params(_params(clusters=[{"name": "c"}]), check_mode=True)
    assert out.failed and "clusters[0] lacks kubeconfig, context" in out.message


def test_doubling():
    assert doubling(1) == [1]
    assert doubling(20) == [1, 2, 4, 8, 16]
    assert doubling("1024")[-1] == 1024
    with pytest.raises(Exception, match="doubling needs"):
        doubling(0)


def test_native_places_on_the_host_cluster_among_all():
    clusters = [lifecycle.Cluster("m1", "/k", "c"), lifecycle.Cluster("h", "/k", "c", role="host"), lifecycle.Cluster("m2", "/k", "c")]
    assert lifecycle.adapter_for("native", clusters).placed_on() == ["h"]
    assert lifecycle.adapter_for("native", clusters[:1]).placed_on() == ["m1"]
    with pytest.raises(lifecycle.ParameterError, match="the native framework needs a cluster, got none"):
        lifecycle.adapter_for("native", [])


def test_kubefed_needs_a_host_and_members():
    host = lifecycle.Cluster("h", "/k", "c", role="host")
    with pytest.raises(lifecycle.ParameterError, match="one host and at least one member cluster, got 1 host"):
        lifecycle.adapter_for("kubefed", [host])


@pytest.mark.parametrize(
    "replicas, layout, expected",
    [
        (4, "replicas", {"m1": 2, "m2": 2}),
        (5, "replicas", {"m1": 3, "m2": 2}),
        (1, "replicas", {"m1": 1, "m2": 0}),
        (3, "deployments", {"m1": 2, "m2": 1}),
    ],
)
def test_kubefed_spreads_replicas_over_members(replicas, layout, expected):
    clusters = [lifecycle.Cluster("h", "/k", "c", role="host"), lifecycle.Cluster("m1", "/k", "c"), lifecycle.Cluster("m2", "/k", "c")]
    adapter = lifecycle.adapter_for("kubefed", clusters)
    assert adapter.placed_on() == ["h", "m1", "m2"]
    wl = lifecycle.Workload(replicas=replicas, layout=layout)
    assert adapter.member_totals(wl, "s") == expected
    fd = adapter._federated(wl, "lc-s", "s", {"m1": 3, "m2": 2})
    assert fd["kind"] == "FederatedDeployment"
    assert fd["spec"]["placement"]["clusters"] == [{"name": "m1"}, {"name": "m2"}]
    assert fd["spec"]["overrides"][0] == {"clusterName": "m1", "clusterOverrides": [{"path": "/spec/replicas", "value": 3}]}


def test_an_error_that_names_a_server_says_which_cluster_it_is():
    clusters = [{"name": "host", "server": "https://127.0.0.1:31443"}, {"name": "m1", "server": "https://127.0.0.1:31444"}]
    msg = "MaxRetryError: HTTPSConnectionPool(host='127.0.0.1', port=31443): Max retries exceeded (Connection refused)"
    assert experiment.name_clusters(msg, clusters).endswith("[cluster host (https://127.0.0.1:31443)]")
    assert experiment.name_clusters("timed out waiting for 4 ready replicas", clusters) == "timed out waiting for 4 ready replicas"
    assert experiment.name_clusters("host: listing Pods failed: port=31443", clusters) == "host: listing Pods failed: port=31443"
