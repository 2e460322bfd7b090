"""Liqo's adapter, pure parts: the NamespaceOffloading it asks for, how it reads
the offloading's status, the members' namespace, and a sample's phases from the
host's view with each member's real pods beside them (per_cluster)."""
import pytest

from ansible_collections.fedbench.testbed.plugins.module_utils.experiments import lifecycle
from ansible_collections.fedbench.testbed.plugins.module_utils.frameworks import base, liqo
from ansible_collections.fedbench.testbed.plugins.module_utils.common.clock import Mark

from tests.unit.test_phases import ev, pod


def test_the_offloading_sends_pods_only_to_the_members_virtual_nodes():
    spec = liqo.offloading("fb-lc", ["m2", "m1"])
    assert spec["metadata"] == {"name": "offloading", "namespace": "fb-lc"}
    assert spec["spec"]["podOffloadingStrategy"] == "Remote" and spec["spec"]["namespaceMappingStrategy"] == "DefaultName"
    (term,) = spec["spec"]["clusterSelector"]["nodeSelectorTerms"]
    assert {"key": "liqo.io/type", "operator": "In", "values": ["virtual-node"]} in term["matchExpressions"]
    assert {"key": "liqo.io/remote-cluster-id", "operator": "In", "values": ["m1", "m2"]} in term["matchExpressions"]
    assert liqo.remote_namespace("fb-lc", "host") == "fb-lc-host"


@pytest.mark.parametrize("status, done", [
    ({}, False),
    ({"offloadingPhase": "InProgress"}, False),
    ({"offloadingPhase": "Ready", "remoteNamespacesConditions": {"m1": [{"type": "Ready", "status": "True"}]}}, False),
    ({"offloadingPhase": "Ready", "remoteNamespacesConditions": {"m1": [{"type": "Ready", "status": "True"}],
                                                                 "m2": [{"type": "Ready", "status": "True"}]}}, True),
])
def test_offloaded_only_when_every_member_has_the_namespace(status, done):
    assert liqo.offloaded(status, ["m1", "m2"])[0] is done


def test_the_adapter_needs_a_host_and_a_member():
    with pytest.raises(base.ParameterError, match="one host and at least one member"):
        liqo.LiqoAdapter([base.Cluster("h", "k", "c", role="host")])
    assert "liqo needs one cluster with role host" in liqo.check([{"name": "h", "role": "host"}])
    assert liqo.check([{"name": "h", "role": "host"}, {"name": "m", "role": "member"}]) is None


def test_a_sample_is_the_hosts_view_and_each_member_has_its_own_phases():
    """Two replicas: the host's Deployment and its two pods (on virtual nodes),
    their real counterparts in m1 and m2. The sample's pods and phases are the
    host's; per_cluster says when each member's real pod was created, ran, was
    ready and was gone, and how many it got (the scheduler's choice)."""
    events = [
        ev(100.010, "Deployment", "ADDED", "d", cluster="h", ready_replicas=0),
        pod(100.050, "ADDED", "p1", cluster="h"), pod(100.060, "ADDED", "p2", cluster="h"),
        pod(100.070, "MODIFIED", "p1", cluster="h", scheduled=True, node="m1"),
        pod(100.080, "MODIFIED", "p2", cluster="h", scheduled=True, node="m2"),
        pod(100.300, "ADDED", "p1", cluster="m1", scheduled=True, node="m1-control-plane"),
        pod(100.350, "ADDED", "p2", cluster="m2", scheduled=True, node="m2-control-plane"),
        pod(101.000, "MODIFIED", "p1", cluster="m1", scheduled=True, phase="Running", ready=True),
        pod(101.100, "MODIFIED", "p2", cluster="m2", scheduled=True, phase="Running", ready=True),
        pod(101.400, "MODIFIED", "p1", cluster="h", scheduled=True, phase="Running", ready=True),
        pod(101.500, "MODIFIED", "p2", cluster="h", scheduled=True, phase="Running", ready=True),
        ev(101.600, "Deployment", "MODIFIED", "d", cluster="h", ready_replicas=2),
        ev(110.020, "Deployment", "DELETED", "d", cluster="h", ready_replicas=2),
        pod(110.100, "DELETED", "p1", cluster="h"), pod(110.150, "DELETED", "p2", cluster="h"),
        pod(110.500, "DELETED", "p1", cluster="m1"), pod(110.700, "DELETED", "p2", cluster="m2"),
    ]
    marks = {"create_sent": Mark(100.0, "w"), "create_acked": Mark(100.005, "w"), "delete_sent": Mark(110.0, "w"), "delete_acked": Mark(110.01, "w")}
    workload = base.Workload(replicas=2)
    sample = lifecycle.build_sample(events, marks, workload, "s", shares={"m1": None, "m2": None}, phase_clusters=["h"])
    assert {p["cluster"] for p in sample["pods"]} == {"h"} and len(sample["pods"]) == 2
    assert sample["phases"]["pod_created_last"] == 0.06 and sample["phases"]["ready"] == 1.6
    # gone is every cluster's: the members' real pods went last
    assert sample["phases"]["pods_gone"] == 0.7 and sample["phases"]["gone"] == 0.7 and sample["order_violations"] == []
    m1, m2 = sample["per_cluster"]["m1"], sample["per_cluster"]["m2"]
    assert (m1["replicas"], m1["pod_created_last"], m1["pod_running_last"], m1["ready"], m1["pods_gone"]) == (1, 0.3, 1.0, 1.0, 0.5)
    assert (m2["replicas"], m2["pod_created_first"], m2["ready"], m2["pods_gone"]) == (1, 0.35, 1.1, 0.7)
    assert m1["deployment_observed"] is None  # no Deployment in a provider: only ShadowPods and their pods


def test_teardown_releases_only_objects_being_deleted_that_finalizers_hold():
    from ansible_collections.fedbench.testbed.plugins.modules import uninstalled_leftovers as mod

    items = [
        {"metadata": {"name": "held", "deletionTimestamp": "t", "finalizers": ["liqo.io/x"]}},
        {"metadata": {"name": "live", "finalizers": ["liqo.io/x"]}},
        {"metadata": {"name": "going", "deletionTimestamp": "t"}},
    ]
    assert [o["metadata"]["name"] for o in mod.held(items)] == ["held"]
    # of any other type, only what the framework's own finalizers alone hold
    items.append({"metadata": {"name": "shared", "deletionTimestamp": "t", "finalizers": ["liqo.io/x", "kubernetes.io/pvc-protection"]}})
    items.append({"metadata": {"name": "sub", "deletionTimestamp": "t", "finalizers": ["net.liqo.io/y"]}})
    items.append({"metadata": {"name": "lookalike", "deletionTimestamp": "t", "finalizers": ["notliqo.io/z"]}})
    assert [o["metadata"]["name"] for o in mod.held(items, ".liqo.io")] == ["held", "sub"]
    assert mod.wanted_namespace("liqo-tenant-m1", ["liqo", "liqo-tenant-*"])
    assert mod.wanted_namespace("liqo", ["liqo"]) and not mod.wanted_namespace("liqo-x", ["liqo"])
