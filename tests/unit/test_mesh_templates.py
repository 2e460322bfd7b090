"""The kind/existing mesh's templates render to the manifests Istio and Kubernetes expect (pure)."""
from pathlib import Path

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined

ROOT = Path(__file__).resolve().parents[2]
CLUSTERS = [{"name": "east", "kubeconfig": "/k/east", "context": "kind-east"}, {"name": "west", "kubeconfig": "/k/west", "context": "kind-west"}]


def render(role: str, template: str, **values) -> list[dict]:
    env = Environment(loader=FileSystemLoader(str(ROOT / "roles" / role / "templates")), undefined=StrictUndefined)
    return [d for d in yaml.safe_load_all(env.get_template(template).render(**values)) if d]


def test_istio_operator_is_one_primary_on_its_own_network_with_an_eastwest_gateway():
    (op,) = render("istio", "istio-operator.yaml.j2", item=CLUSTERS[0], istio_mesh_id="fedbench")
    g = op["spec"]["values"]["global"]
    assert op["kind"] == "IstioOperator" and g["meshID"] == "fedbench"
    assert g["multiCluster"]["clusterName"] == "east" and g["network"] == "network-east"
    ew = {c["name"]: c for c in op["spec"]["components"]["ingressGateways"]}["istio-eastwestgateway"]
    assert ew["label"]["topology.istio.io/network"] == "network-east"
    assert {p["port"] for p in ew["k8s"]["service"]["ports"]} == {15021, 15443, 15012, 15017}
    assert ew["k8s"]["env"] == [{"name": "ISTIO_META_REQUESTED_NETWORK_VIEW", "value": "network-east"}]


def test_echo_routing_carries_the_study_policy_and_fails_over_to_the_peer():
    docs = render("istio", "echo-routing.yaml.j2", item=CLUSTERS[0], istio_clusters=CLUSTERS, istio_echo_namespace="fedbench-echo",
                  istio_request_timeout_seconds=5, istio_retries=1, istio_max_connections=1, istio_max_pending_requests=1,
                  istio_consecutive_errors=1, istio_base_ejection_seconds=60)
    kinds = {d["kind"]: d for d in docs}
    assert set(kinds) == {"Gateway", "VirtualService", "DestinationRule"}
    policy = kinds["DestinationRule"]["spec"]["trafficPolicy"]
    assert policy["connectionPool"]["tcp"]["maxConnections"] == 1
    assert policy["outlierDetection"] == {"consecutive5xxErrors": 1, "interval": "1s", "baseEjectionTime": "60s", "maxEjectionPercent": 100}
    assert policy["loadBalancer"]["localityLbSetting"] == {"enabled": True, "failover": [{"from": "east", "to": "west"}]}
    route = kinds["VirtualService"]["spec"]["http"][0]
    assert route["route"][0]["destination"]["host"] == "echo.fedbench-echo.svc.cluster.local" and route["timeout"] == "5s"
