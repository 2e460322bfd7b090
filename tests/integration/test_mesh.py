"""The embedded mesh: shared root CA, echo servers, Envoy gateways, bursts."""
from __future__ import annotations

import datetime
import json
import os
import subprocess
import random
import socket
import ssl
import stat
import time
from pathlib import Path

import pytest

from ansible_collections.fedbench.testbed.plugins.module_utils.common import process
from ansible_collections.fedbench.testbed.plugins.module_utils.experiments import burst
from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import embedded

ROLES = ("host", "member")


def _free_block(width: int = 13, avoid=()) -> int:
    """A base port whose next ``width`` ports are all free on 127.0.0.1 (in the band of
    services: clusters created afterwards take their components' ports from another)."""
    for _ in range(200):
        base = random.randrange(20000, 30000, 20)
        if not any(process.port_in_use(base + k) or base + k in avoid for k in range(width)):
            return base
    raise AssertionError("no free block of ports")


@pytest.fixture(scope="module")
def mesh(module_playbooks):
    """The emulated mesh on two clusters, up once for the module; the spike
    test, last of those that use it, tears it down."""
    playbooks = module_playbooks
    ports = embedded.free_ports(2)
    base = _free_block(avoid=ports)
    echo_port = _free_block(1, avoid=[*ports, *range(base, base + 13)])
    playbooks.inventory_with({
        "fedbench_testbed": "embedded",
        "fedbench_frameworks": [],
        "fedbench_dataplanes": ["istio"],
        "fedbench_clusters": [
            {"name": "ma", "role": "host", "nodes": 0, "apiserver_port": ports[0]},
            {"name": "mb", "role": "member", "nodes": 0, "apiserver_port": ports[1]},
        ],
        "istio_gateway_base_port": base,
        "echo_server_port": echo_port,
        "istio_base_ejection_seconds": 30,
    })
    proc = playbooks.run("playbooks/toolchain.yml", "playbooks/provision.yml", "playbooks/frameworks.yml")
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert "EMULATES Istio" in proc.stdout
    return playbooks, base, proc


def _ca(playbooks) -> Path:
    return playbooks.work_dir / "istio-ca"


def test_an_unreachable_target_is_an_error_class_not_a_crash():
    port = embedded.free_ports(1)[0]
    out = burst.run([f"http://127.0.0.1:{port}/"], burst.Schedule(0.1, (2, 1), timeout=2))
    assert out["totals"]["requests"] == 3 and out["totals"]["successes"] == 0
    assert out["totals"]["errors"] == {"connect_error": 3}
    assert all(r["error"] == "connect_error" and r["latency"] is None for r in out["requests"])


def _foreign_cert(tmp: Path) -> tuple[Path, Path]:
    """A client certificate from a root that is not the testbed's."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    root_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "someone else's root")])
    root = (x509.CertificateBuilder().subject_name(root_name).issuer_name(root_name).public_key(root_key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(root_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "impostor")]))
            .issuer_name(root_name).public_key(key.public_key()).serial_number(2).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier("spiffe://cluster.local/ns/istio-system/sa/istio-eastwestgateway")]), critical=False)
            .sign(root_key, hashes.SHA256()))
    cert, keyfile = tmp / "impostor.pem", tmp / "impostor.key"
    cert.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + root.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert, keyfile


def _mtls_get(port: int, cert: Path, key: Path, ca: Path, host: str = "127.0.0.1", sni: str | None = None,
              alpn: list[str] | None = None, authority: str = "x") -> str:
    """GET /echo over mTLS with this client certificate; the whole answer."""
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.check_hostname = False
    ctx.load_cert_chain(str(cert), str(key))
    if alpn:
        ctx.set_alpn_protocols(alpn)
    with socket.create_connection((host, port), timeout=5) as raw, ctx.wrap_socket(raw, server_hostname=sni) as tls:
        tls.sendall(f"GET /echo HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    return data.decode(errors="replace")


def test_east_west_accepts_only_certificates_from_the_shared_root(mesh, tmp_path):
    playbooks, base, _ = mesh
    ca = _ca(playbooks)
    eastwest_mb = base + 10 + 1
    good = _mtls_get(eastwest_mb, ca / "ma" / "gateway-chain.pem", ca / "ma" / "gateway-key.pem", ca / "root-cert.pem")
    assert good.startswith("HTTP/1.1 200") and '"cluster": "mb"' in good, good[:300]
    cert, key = _foreign_cert(tmp_path)
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        reply = _mtls_get(eastwest_mb, cert, key, ca / "root-cert.pem")
        assert not reply, f"a foreign certificate was served: {reply[:200]}"


def test_ca_is_reused_and_its_keys_are_private(mesh):
    playbooks, _, first = mesh
    ca = _ca(playbooks)
    root = (ca / "root-cert.pem").read_bytes()
    again = playbooks.run("playbooks/toolchain.yml", "playbooks/provision.yml", "playbooks/frameworks.yml")
    assert again.returncode == 0, again.stdout[-3000:]
    assert (ca / "root-cert.pem").read_bytes() == root
    keys = [ca / "root-key.pem"] + [ca / c / k for c in ("ma", "mb") for k in ("ca-key.pem", "gateway-key.pem")]
    for key in keys:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    for c in ("ma", "mb"):
        for name in ("ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem"):
            assert (ca / c / name).is_file(), name
    # No key material in the play's output.
    assert "PRIVATE KEY" not in first.stdout + again.stdout


def test_low_load_local_spike_overflows_to_the_peer_and_teardown_is_clean(mesh):
    playbooks, base, _ = mesh
    url = f"http://127.0.0.1:{base}/echo"
    calm = burst.run([url], burst.Schedule(0.2, (1, 1, 1, 1, 1)))
    assert calm["totals"]["served_by"] == {"ma": 5}, calm["totals"]
    spike = burst.run([url], burst.Schedule(0.3, (10, 10, 10)))
    served = spike["totals"]["served_by"]
    assert served.get("mb", 0) > 0, spike["totals"]
    assert sum(s["requests"] for s in spike["slots"]) == 30
    down = playbooks.teardown()
    assert down.returncode == 0, down.stdout[-3000:]
    assert not process.processes_under(playbooks.work_dir)
    assert base not in process.listening_ports()


def test_the_echo_deployment_and_service_for_kind_apply_to_a_real_cluster(testbeds, tmp_path):
    """The real-node echo manifests, rendered by the echo_server role (its `manifests` entry point,
    its defaults), are accepted by a real API server and the Deployment becomes Available (KWOK
    runs its pods)."""
    import yaml
    from kubernetes import utils

    from tests.conftest import kind_like, render_manifests

    from .conftest import api_client

    _, facts = testbeds.up(2)
    work = render_manifests(tmp_path / "render", [kind_like(facts[0].name, "host"), kind_like("peer", "member")])
    text = (work / "mesh" / facts[0].name / "echo.yaml").read_text()
    client = api_client(facts[0])
    utils.create_from_yaml(client, yaml_objects=[d for d in yaml.safe_load_all(text) if d])
    from kubernetes import client as k8s

    apps, core = k8s.AppsV1Api(client), k8s.CoreV1Api(client)
    deadline = time.monotonic() + 60
    while True:
        dep = apps.read_namespaced_deployment("echo", "fedbench-echo")
        if (dep.status.available_replicas or 0) == 2:
            break
        assert time.monotonic() < deadline, dep.status
        time.sleep(0.5)
    container = dep.spec.template.spec.containers[0]
    assert f"--cluster={facts[0].name}" in container.args and "--instance=$(POD_NAME)" in container.args
    svc = core.read_namespaced_service("echo", "fedbench-echo")
    assert svc.spec.ports[0].name == "http-echo" and svc.spec.ports[0].target_port == 8080
    assert core.read_namespace("fedbench-echo").metadata.labels["istio-injection"] == "enabled"


def _burst_module(args: dict) -> subprocess.CompletedProcess:
    from .conftest import ROOT, VENV_BIN

    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", ANSIBLE_NOCOLOR="1")
    return subprocess.run(
        [str(VENV_BIN / "ansible"), "localhost", "-i", str(ROOT / "inventories/testbed"), "-m", "fedbench.testbed.http_burst",
         "-a", json.dumps(args)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(
    "target, message",
    [("http://", "is not an http(s) URL with a host"), ("http://127.0.0.1:abc/", "has a port that is not a number"),
     ("http://192.0.2.10/echo", "is not an address of this testbed")],
    ids=["no-host", "bad-port", "foreign-address"],
)
def test_the_burst_module_refuses_a_target_before_sending_anything(tmp_path, target, message):
    proc = _burst_module({"targets": [target], "requests": [1], "run_id": "refuse", "results_dir": str(tmp_path)})
    assert proc.returncode != 0 and message in proc.stdout, proc.stdout[-2000:]
    assert not (tmp_path / "samples").exists(), "a refused run wrote a sample"


def test_a_burst_where_every_request_failed_is_a_failure_and_is_kept_as_one(tmp_path):
    port = embedded.free_ports(1)[0]
    proc = _burst_module({"targets": [f"http://127.0.0.1:{port}/"], "requests": [2, 1], "slot_seconds": 0.1, "timeout": 2,
                          "run_id": "allfail", "results_dir": str(tmp_path)})
    assert proc.returncode != 0 and "none of 3 requests succeeded" in proc.stdout, proc.stdout[-2000:]
    (kept,) = (tmp_path / "samples").glob("burst-*.json")
    assert json.loads(kept.read_text())["samples"][0]["status"] == "failed"
