"""Istio multi-primary on real kind clusters, every piece built here: istiod
(pilot-discovery) and the proxies (pilot-agent, stock Envoy) in both
clusters, the shared root CA plugged in, east-west gateways on the nodes'
addresses, remote secrets, sidecar-injected echo servers. Envoy rejected no
configuration istiod sent; a calm slot is served by the local cluster, a
spike overflows to the peer, the gateway ejects endpoints (its Envoy's
/clusters says which) and, once the ejections end, a calm slot is served
locally again; the peer's east-west gateway lets a certificate
of the shared root through and refuses one from a foreign root; Istio's
teardown stops what the mesh runs on this machine. On the session's kind
pair (conftest.kind_pair)."""
from __future__ import annotations

import ssl
import time
from pathlib import Path

import pytest

from ansible_collections.fedbench.testbed.plugins.module_utils import kube
from ansible_collections.fedbench.testbed.plugins.module_utils.experiments import burst
from ansible_collections.fedbench.testbed.plugins.module_utils.frameworks import istio

from .conftest import KIND_HOST as A, KIND_MEMBER as B, client_for, wait_until
from .test_mesh import _foreign_cert, _mtls_get as mtls_get

HOME_CACHE_BEFORE = (Path.home() / ".kube" / "cache").exists()  # the user's own, if there is one
SNI = "outbound_.80_._.echo.fedbench-echo.svc.cluster.local"
ECHO = "outbound|80||echo.fedbench-echo.svc.cluster.local"


def _client(cluster: dict):
    return client_for(cluster)


def _node_address(pb, name: str) -> str:
    """The control-plane node's address on the project's network (its gateways' externalIPs)."""
    api = _client(next(c for c in pb.clusters if c["name"] == name))
    node = kube.request(api, "GET", "/api/v1/nodes", query=[("labelSelector", "node-role.kubernetes.io/control-plane")])["items"][0]
    return next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")


@pytest.fixture(scope="module")
def mesh(kind_pair):
    """Istio on the session's kind pair; its own teardown at the end (test_kind's last test tears the pair down)."""
    pair = kind_pair.use(fedbench_frameworks=[], fedbench_dataplanes=["istio"],
                         # Short, so that the spike's ejections end within the test (the study's is 60 s).
                         istio_base_ejection_seconds=10)
    try:
        up = pair.run("playbooks/toolchain.yml", "playbooks/provision.yml", "playbooks/frameworks.yml", timeout=3600)
        assert up.returncode == 0, up.stdout[-6000:]
        pair.up = up
        yield pair
    finally:
        pair.framework_teardown("istio")


def test_istiod_and_the_proxies_run_the_images_built_here_and_envoy_rejected_nothing(mesh):
    for cluster in mesh.clusters:
        api = _client(cluster)
        pods = kube.request(api, "GET", "/api/v1/namespaces/istio-system/pods")["items"]
        images = {c["image"] for p in pods for c in p["spec"]["containers"]}
        assert images == {"fedbench.local/istio/pilot:1.29.1", "fedbench.local/istio/proxyv2:1.29.1"}, images
        assert all(p["status"]["phase"] == "Running" for p in pods), [(p["metadata"]["name"], p["status"]["phase"]) for p in pods]
        echo = kube.request(api, "GET", "/api/v1/namespaces/fedbench-echo/pods")["items"]
        # the sidecar: a container, or a native sidecar (an init container that keeps running)
        names = [{c["name"] for c in p["spec"]["containers"] + p["spec"].get("initContainers", [])} for p in echo]
        assert echo and all(n >= {"echo", "istio-proxy"} for n in names), f"sidecars injected: {names}"
        assert all(p["status"]["phase"] == "Running" for p in echo)
        istiod = next(p for p in pods if p["metadata"]["labels"].get("app") == "istiod")
        metrics = kube.raw(api, "GET", f"/api/v1/namespaces/istio-system/pods/{istiod['metadata']['name']}:15014/proxy/metrics").data.decode()
        rejects = [line for line in metrics.splitlines() if line.startswith("pilot_total_xds_rejects") and not line.rstrip().endswith(" 0")]
        assert rejects == [], f"{cluster['name']}: Envoy rejected configuration: {rejects}"
        assert "pilot_xds_pushes" in metrics  # istiod did push, so the absence of rejects means something


def _gateway(cluster: dict, path: str) -> str:
    """What the cluster's ingress gateway's Envoy answers on an admin path."""
    from kubernetes import client as k8s
    from kubernetes.stream import stream

    api = _client(cluster)
    pod = kube.request(api, "GET", "/api/v1/namespaces/istio-system/pods", query=[("labelSelector", "istio=ingressgateway")])["items"][0]
    return stream(k8s.CoreV1Api(api).connect_get_namespaced_pod_exec, pod["metadata"]["name"], "istio-system", container="istio-proxy",
                  command=["pilot-agent", "request", "GET", path], stderr=True, stdin=False, stdout=True, tty=False)


def _echo_stats(cluster: dict) -> list[str]:
    """The gateway's counters for the echo service: retries, 5xx, ejections, per priority."""
    wanted = ("upstream_rq_retry", "upstream_rq_5xx", "upstream_rq_503", "outlier_detection.ejections", "upstream_rq_completed", "lb_")
    return [line for line in _gateway(cluster, "stats").splitlines() if line.startswith(f"cluster.{ECHO}.") and any(w in line for w in wanted)
            and not line.rstrip().endswith(": 0")]


def _ejected(cluster: dict) -> dict[str, list[str]]:
    """The echo service's endpoints the cluster's ingress gateway has taken out (its Envoy's /clusters)."""
    dump = _gateway(cluster, "clusters")
    health = istio.endpoint_health(dump, ECHO)
    assert health, f"no endpoint of {ECHO} in the gateway's /clusters"
    return {endpoint: flags for endpoint, flags in health.items() if flags != ["healthy"]}


def test_local_then_overflow_to_the_peer_then_local_again_once_the_ejections_end(mesh):
    url = f"http://{_node_address(mesh, A)}:80/echo"
    allowed = [_node_address(mesh, A)]
    calm = burst.run([url], burst.Schedule(0.5, (1, 1, 1, 1, 1)), allowed=allowed)
    assert calm["totals"]["served_by"] == {A: 5}, calm["totals"]
    spike = burst.run([url], burst.Schedule(0.5, (60, 60, 60)), allowed=allowed)
    assert spike["totals"]["served_by"].get(B, 0) > 0, spike["totals"]
    assert sum(s["requests"] for s in spike["slots"]) == 180
    # The spike's 503s made outlier detection eject endpoints at A's ingress gateway.
    ejected = _ejected(mesh.clusters[0])
    print(f"ejected at {A}'s ingress gateway after the spike: {ejected}; errors {spike['totals'].get('errors')}")
    assert any("failed_outlier_check" in flags for flags in ejected.values()), ejected
    # Once the ejections end (base ejection 10 s here), a calm slot is served locally again.
    start = time.monotonic()
    wait_until(lambda: not _ejected(mesh.clusters[0]), 120, f"the ejections at {A}'s ingress gateway to end")
    print(f"ejections ended {time.monotonic() - start:.0f}s after the spike")
    before = _echo_stats(mesh.clusters[0])
    again = burst.run([url], burst.Schedule(0.5, (1, 1, 1, 1, 1)), allowed=allowed)
    assert again["totals"]["served_by"] == {A: 5}, (again["totals"], {"gateway counters before": before, "after": _echo_stats(mesh.clusters[0]),
                                                                      "ejected": _ejected(mesh.clusters[0])})


def _mtls_get(address: str, cert: Path, key: Path, ca: Path) -> str:
    """Into the peer's east-west gateway as a peer's proxy would: SNI of the echo service, Istio's ALPN."""
    return mtls_get(15443, cert, key, ca, host=address, sni=SNI, alpn=["istio-http/1.1", "istio"],
                    authority="echo.fedbench-echo.svc.cluster.local")


def test_the_peers_east_west_gateway_takes_the_shared_root_and_refuses_a_foreign_one(mesh, tmp_path):
    ca = mesh.work_dir / "istio-ca"
    address = _node_address(mesh, B)
    good = _mtls_get(address, ca / A / "gateway-chain.pem", ca / A / "gateway-key.pem", ca / "root-cert.pem")
    assert good.startswith("HTTP/1.1 200") and f'"cluster": "{B}"' in good, good[:400]
    cert, key = _foreign_cert(tmp_path)
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        reply = _mtls_get(address, cert, key, ca / "root-cert.pem")
        assert not reply, f"a foreign certificate was served: {reply[:200]}"


def test_istios_teardown_stops_what_the_mesh_runs_here(mesh):
    """Istio's own teardown stops what the mesh runs on this machine (port-forwards, by pid file);
    in kind clusters Istio goes with the clusters (the pair's teardown, test_kind.py, checks that
    no container or network is left)."""
    from ansible_collections.fedbench.testbed.plugins.module_utils.common import process

    # the tools it ran (istioctl, kubectl) kept their caches in the work dir
    assert not (Path.home() / ".kube" / "cache").exists() or HOME_CACHE_BEFORE, "a tool wrote ~/.kube/cache"
    down = mesh.framework_teardown("istio")
    assert down.returncode == 0, down.stdout[-3000:]
    assert not process.processes_under(mesh.work_dir / "mesh"), "a process of the mesh still runs"
