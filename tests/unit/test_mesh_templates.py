"""The real-node mesh's manifests, rendered through the istio and echo_server roles (their
`manifests` entry points, the roles' own defaults), are what Istio and Kubernetes expect."""
import yaml

from tests.conftest import kind_like, render_manifests

CLUSTERS = [kind_like("east", "host"), kind_like("west", "member")]


def _load(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_the_roles_render_istio_and_echo_manifests_with_their_defaults(tmp_path):
    work = render_manifests(tmp_path / "work", CLUSTERS)
    mesh, echo = work / "mesh", work / "mesh"

    (op,) = _load(mesh / "east" / "istio-operator.yaml")
    g = op["spec"]["values"]["global"]
    assert op["kind"] == "IstioOperator" and g["meshID"] == "fedbench"
    assert g["multiCluster"]["clusterName"] == "east" and g["network"] == "network-east"
    ew = {c["name"]: c for c in op["spec"]["components"]["ingressGateways"]}["istio-eastwestgateway"]
    assert ew["label"]["topology.istio.io/network"] == "network-east"
    assert {p["port"] for p in ew["k8s"]["service"]["ports"]} == {15021, 15443, 15012, 15017}
    assert ew["k8s"]["env"] == [{"name": "ISTIO_META_REQUESTED_NETWORK_VIEW", "value": "network-east"}]

    kinds = {d["kind"]: d for d in _load(mesh / "east" / "echo-routing.yaml")}
    assert set(kinds) == {"Gateway", "VirtualService", "DestinationRule"}
    policy = kinds["DestinationRule"]["spec"]["trafficPolicy"]
    # The study's outlier detection (the role's defaults: consecutive errors 1, base ejection 60 s).
    assert policy["outlierDetection"] == {"consecutive5xxErrors": 1, "interval": "1s", "baseEjectionTime": "60s", "maxEjectionPercent": 100}
    assert policy["loadBalancer"]["localityLbSetting"] == {"enabled": True, "failover": [{"from": "east", "to": "west"}]}
    route = kinds["VirtualService"]["spec"]["http"][0]
    assert route["route"][0]["destination"]["host"] == "echo.fedbench-echo.svc.cluster.local" and route["timeout"] == "5s"
    (west,) = [d for d in _load(mesh / "west" / "echo-routing.yaml") if d["kind"] == "DestinationRule"]
    assert west["spec"]["trafficPolicy"]["loadBalancer"]["localityLbSetting"]["failover"] == [{"from": "west", "to": "east"}]

    docs = {d["kind"]: d for d in _load(echo / "east" / "echo.yaml")}
    assert set(docs) == {"Namespace", "Deployment", "Service"}
    container = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert "--cluster=east" in container["args"] and container["imagePullPolicy"] == "IfNotPresent"
    assert docs["Namespace"]["metadata"]["labels"]["istio-injection"] == "enabled"
    assert oct((mesh / "east" / "istio-operator.yaml").stat().st_mode & 0o777) == "0o600"
