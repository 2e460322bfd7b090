"""EdgeNet's adapter, pure parts: the fixed CRD, node locations, the selector
from a node selector, the SelectiveDeployment, and the placement check."""
import pytest
import yaml

from ansible_collections.fedbench.testbed.plugins.module_utils.frameworks import base, edgenet

SITES = [
    {"continent": "Europe", "country": "FR", "cities": [{"city": "Paris", "state": "IDF", "lat": "n48.8566", "lon": "e2.3522"},
                                                        {"city": "Lyon", "state": "ARA", "lat": "n45.764", "lon": "e4.8357"}]},
    {"continent": "Asia", "country": "JP", "cities": [{"city": "Tokyo", "state": "13", "lat": "n35.6762", "lon": "e139.6503"}]},
]
MANIFESTS = yaml.safe_dump_all([
    {"kind": "Namespace", "metadata": {"name": "edgenet"}},
    {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "selectivedeployments.apps.edgenet.io", "annotations": {"x": "y"}},
     "spec": {"versions": [{"name": "v1alpha1", "schema": {"openAPIV3Schema": {"properties": {
         "spec": {"properties": {"selector": {"type": "array", "minimum": 1, "items": {"type": "object"}}}},
         "status": {"properties": {"message": {"type": "array", "items": {"type": "string"}}, "state": {"type": "string"}}}}}}}]}},
])


def test_the_crd_takes_the_status_the_controller_sends():
    crd = edgenet.fixed_crd(MANIFESTS)
    props = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    assert props["status"]["properties"]["message"] == {"type": "string"} and props["status"]["properties"]["state"] == {"type": "string"}
    assert "minimum" not in props["spec"]["properties"]["selector"]
    assert crd["metadata"]["labels"]["fedbench.io/framework"] == "edgenet"
    with pytest.raises(ValueError, match="no CustomResourceDefinition"):
        edgenet.fixed_crd(yaml.safe_dump({"kind": "Namespace", "metadata": {"name": "x"}}))


def test_nodes_are_spread_over_their_sites_cities():
    nodes = ["n2", "n0", "n1"]
    labels = {n: edgenet.site_labels(n, SITES, 0, nodes) for n in nodes}
    assert [labels[n]["edge-net.io/city"] for n in ("n0", "n1", "n2")] == ["Paris", "Lyon", "Paris"]
    assert labels["n1"]["edge-net.io/state-iso"] == "ARA" and labels["n0"]["edge-net.io/country-iso"] == "FR"
    assert labels["n0"]["kubernetes.io/hostname"] == "n0" and labels["n0"]["edge-net.io/lat"] == "n48.8566"
    assert edgenet.site_labels("m", SITES, 1, ["m"])["edge-net.io/continent"] == "Asia"
    assert edgenet.site_labels("m", SITES, 2, ["m"])["edge-net.io/country-iso"] == "FR"  # round robin
    with pytest.raises(ValueError, match="edgenet_sites is empty"):
        edgenet.site_labels("m", [], 0, ["m"])


def test_the_selector_comes_from_location_labels_or_the_hosts_country():
    assert edgenet.selector_for({"edge-net.io/city": "Lyon"}, "FR") == [{"name": "City", "value": ["Lyon"], "operator": "In"}]
    assert edgenet.selector_for({}, "FR", quantity=2) == [{"name": "Country", "value": ["FR"], "operator": "In", "quantity": 2}]
    with pytest.raises(base.ParameterError, match="selects nodes by edge-net.io/city"):
        edgenet.selector_for({"disktype": "ssd"}, "FR")
    with pytest.raises(base.ParameterError, match="no edge-net.io/country-iso label"):
        edgenet.selector_for({}, None)


def test_the_selective_deployment_holds_the_samples_deployments():
    workload = base.Workload(replicas=3, layout="deployments", namespace="ns", node_selector={"edge-net.io/city": "Lyon"})
    sd = edgenet.selective_deployment(workload, "s1", [{"name": "City", "value": ["Lyon"], "operator": "In"}])
    assert sd["apiVersion"] == "apps.edgenet.io/v1alpha1" and sd["metadata"]["name"] == "sd-s1"
    deployments = sd["spec"]["workloads"]["deployment"]
    assert [d["metadata"]["name"] for d in deployments] == ["lc-s1-0", "lc-s1-1", "lc-s1-2"]
    assert all(d["apiVersion"] == "apps/v1" and d["kind"] == "Deployment" for d in deployments)
    assert all("nodeSelector" not in d["spec"]["template"]["spec"] for d in deployments), "the location is EdgeNet's to choose"
    assert all(d["metadata"]["labels"]["fedbench.io/sample"] == "s1" for d in deployments)


def test_placement_names_pods_outside_the_selector():
    labels = {"a": {"edge-net.io/city": "Lyon"}, "b": {"edge-net.io/city": "Paris"}}
    selector = [{"name": "City", "value": ["Lyon"], "operator": "In"}]
    out = edgenet.placement([{"node": "a"}, {"node": "a"}, {"node": "b"}, {"node": None}], labels, selector)
    assert out["pods_per_city"] == {"Lyon": 2, "Paris": 1} and out["outside_selector"] == ["b"] and not out["all_match"] and out["pods_seen"] == 3
    assert edgenet.placement([{"node": "a"}], labels, selector)["all_match"]
