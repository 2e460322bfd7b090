"""Phase derivation on hand-written timelines."""
from datetime import datetime, timedelta, timezone

import pytest

EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)

from ansible_collections.fedbench.testbed.plugins.module_utils.measure import phases


def ev(t, kind, etype, name, cluster="c", **fields):
    wall = (EPOCH + timedelta(seconds=t)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"cluster": cluster, "kind": kind, "type": etype, "name": name, "mono": t, "wall": wall, "fields": fields}


def pod(t, etype, name, **f):
    base = {"scheduled": False, "phase": "Pending", "ready": False}
    base.update(f)
    return ev(t, "Pod", etype, name, **base)


def timeline():
    """Create at 100.0, two replicas, delete at 110.0."""
    return [
        ev(100.010, "Deployment", "ADDED", "d", ready_replicas=0),
        pod(100.050, "ADDED", "p1"),
        pod(100.060, "ADDED", "p2"),
        pod(100.070, "MODIFIED", "p1", scheduled=True, node="n1"),
        pod(100.080, "MODIFIED", "p2", scheduled=True, node="n2"),
        pod(100.200, "MODIFIED", "p1", scheduled=True, phase="Running", ready=True, created_at="2026-01-01T00:01:40Z", ready_at="2026-01-01T00:01:40Z"),
        ev(100.250, "Deployment", "MODIFIED", "d", ready_replicas=1),
        pod(100.300, "MODIFIED", "p2", scheduled=True, phase="Running"),
        pod(100.400, "MODIFIED", "p2", scheduled=True, phase="Running", ready=True),
        ev(100.450, "Deployment", "MODIFIED", "d", ready_replicas=2),
        ev(110.020, "Deployment", "DELETED", "d", ready_replicas=2),
        pod(110.100, "DELETED", "p1"),
        pod(110.300, "DELETED", "p2"),
    ]


MARKS = {"create_sent": 100.0, "create_acked": 100.008, "delete_sent": 110.0, "delete_acked": 110.005}


def test_every_phase_of_a_complete_sample():
    p = phases.derive(timeline(), MARKS, replicas=2)
    assert p == {
        "create_acked": 0.008, "deployment_observed": 0.01,
        "pod_created_first": 0.05, "pod_created_last": 0.06,
        "pod_scheduled_first": 0.07, "pod_scheduled_last": 0.08,
        "pod_running_first": 0.2, "pod_running_last": 0.3,
        "pod_ready_first": 0.2, "pod_ready_last": 0.4,
        "ready": 0.45,
        "delete_acked": 0.005, "pods_gone": 0.3, "deployment_gone": 0.02, "gone": 0.3,
    }
    assert phases.ordered(p) == []


def test_partial_sample_has_none_for_what_never_happened():
    events = timeline()[:6]  # p2 never runs
    p = phases.derive(events, {"create_sent": 100.0, "create_acked": 100.008}, replicas=2)
    assert p["ready"] is None
    assert p["pod_running_first"] == 0.2
    assert p["pod_running_last"] is None  # only one of two pods got there
    assert p["gone"] is None and p["delete_acked"] is None


def test_ready_counts_across_clusters_and_deployments():
    events = [
        ev(1.1, "Deployment", "ADDED", "a", cluster="m1", ready_replicas=2),
        ev(1.2, "Deployment", "ADDED", "a", cluster="m2", ready_replicas=1),
        ev(1.3, "Deployment", "MODIFIED", "a", cluster="m2", ready_replicas=2),
    ]
    assert phases.derive(events, {"create_sent": 1.0}, replicas=4, deployments=2)["ready"] == 0.3
    assert phases.derive(events, {"create_sent": 1.0}, replicas=4, deployments=2)["deployment_observed"] == 0.2


def test_relisted_objects_count_as_live_and_deleted_ones_as_gone():
    events = [
        pod(1.0, "ADDED", "p"),
        pod(5.0, "RELIST", "p"),
        pod(6.0, "DELETED", "p"),
        ev(4.0, "Deployment", "ADDED", "d"),
        ev(6.5, "Deployment", "DELETED", "d"),
    ]
    p = phases.derive(events, {"create_sent": 0.5, "delete_sent": 5.5}, replicas=1)
    assert p["pods_gone"] == 0.5 and p["deployment_gone"] == 1.0 and p["gone"] == 1.0


def test_order_violations_are_named():
    bad = {"pod_created_first": 0.3, "pod_scheduled_first": 0.2, "pods_gone": 0.5, "gone": 0.4}
    problems = phases.ordered(bad)
    assert "pod_created_first (0.3) > pod_scheduled_first (0.2)" in problems
    assert "pods_gone (0.5) > gone (0.4)" in problems


def test_pod_startup_and_skew_against_apiserver_timestamps():
    pods = {p["name"]: p for p in phases.pod_startup(timeline())}
    assert pods["p1"]["created_to_scheduled"] == 0.02
    assert pods["p1"]["created_to_running"] == pytest.approx(0.15)
    assert pods["p2"]["created_to_ready"] == pytest.approx(0.34)
    # p1 observed ready at 00:01:40.200 against the apiserver's 00:01:40 (second resolution)
    assert pods["p1"]["skew"]["ready"] == 0.2
    assert pods["p2"]["skew"]["ready"] is None  # no apiserver timestamp in this timeline


def test_per_cluster_phases():
    events = [
        ev(1.10, "Deployment", "ADDED", "d", cluster="m1", ready_replicas=0),
        ev(1.20, "Deployment", "ADDED", "d", cluster="m2", ready_replicas=0),
        ev(1.50, "Deployment", "MODIFIED", "d", cluster="m1", ready_replicas=2),
        ev(1.70, "Deployment", "MODIFIED", "d", cluster="m2", ready_replicas=1),
        ev(5.10, "Deployment", "DELETED", "d", cluster="m1"),
        ev(5.30, "Deployment", "DELETED", "d", cluster="m2"),
    ]
    out = phases.per_cluster(events, {"create_sent": 1.0, "delete_sent": 5.0}, {"m1": 2, "m2": 1})
    assert out["m1"] == {"replicas": 2, "deployment_observed": 0.1, "ready": 0.5, "deployment_gone": 0.1, "pods_gone": None,
                         "pod_created_first": None, "pod_created_last": None, "pod_running_first": None, "pod_running_last": None,
                         "pod_ready_first": None, "pod_ready_last": None}
    assert out["m2"]["ready"] == 0.7 and out["m2"]["deployment_gone"] == 0.3
