# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kind testbed: real kubelets in containers, from a node image built here.

Each cluster of the inventory is a kind cluster (one control-plane node and
``nodes`` workers) made from the node image of :func:`images.node_image`, on
a Docker network of the project's own (``fedbench-kind``: no masquerading,
and on a machine where the project may, a firewall rule that drops whatever
would leave it), with its API server published on 127.0.0.1 at the
inventory's port, its own pod and service ranges, kind's default CNI off
(the node image's ``fedbench-cni`` takes its place) and CoreDNS without an
upstream. Kubeconfigs are written by kind straight into the work dir, 0600
(never ``~/.kube/config``).

What a work dir created is recorded in ``<work_dir>/kind/clusters/`` before
``kind create`` runs, so :func:`down` finds what an interrupted run left.
No Ansible imports here: the ``kind_testbed`` module and the tests call it.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from ansible_collections.fedbench.testbed.plugins.module_utils.common.process import LOOPBACK, port_in_use
from ansible_collections.fedbench.testbed.plugins.module_utils.build import engine as engines
from ansible_collections.fedbench.testbed.plugins.module_utils.testbed.specs import TestbedError, parse_common

Reporter = Callable[[str], None]

NETWORK = "fedbench-kind"
BRIDGE = "fbkind0"
NETWORK_LABEL = "fedbench.io/testbed=kind"
GUARD_COMMENT = "fedbench-kind: nothing leaves this machine"
CONTEXT_PREFIX = "kind-"
INTERNAL_PORT = 6443  # the API server's port inside the node (kind's common.APIServerInternalPort)
COREFILE = """.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    cache 30
    loop
    reload
    loadbalance
}
"""


def _quiet(_: str) -> None:
    return None


@dataclass(frozen=True)
class KindSpec:
    name: str
    role: str
    nodes: int  # workers beside the control-plane node
    apiserver_port: int
    pod_subnet: str
    service_subnet: str


def _subnet(value: Any, what: str) -> str:
    try:
        return str(ipaddress.ip_network(str(value), strict=True))
    except ValueError as exc:
        raise TestbedError(f"{what} must be an IPv4 network like 10.100.0.0/16, got {value!r} ({exc})") from exc


def parse_specs(raw: Any) -> list[KindSpec]:
    """Validate the inventory's kind clusters: the common fields (specs.py), then each
    cluster's pod and service ranges; every message names the input at fault."""
    specs: list[KindSpec] = []
    seen: dict[str, str] = {}
    for common, item in parse_common(raw, default_nodes=0, max_nodes=8, nodes_what="nodes (workers beside the control plane)",
                                     port_why=" (the API server is published on 127.0.0.1 at it)"):
        name, index = common.name, common.index
        pods = _subnet(item.get("pod_subnet", f"10.{100 + index}.0.0/16"), f"cluster {name!r}: pod_subnet")
        services = _subnet(item.get("service_subnet", f"10.96.{16 * index}.0/20"), f"cluster {name!r}: service_subnet")
        for value in (pods, services):
            if value in seen:
                raise TestbedError(f"clusters {seen[value]!r} and {name!r} both ask for {'pod_subnet' if value == pods else 'service_subnet'} {value}")
            seen[value] = name
        for other in specs:
            for mine in (pods, services):
                for theirs in (other.pod_subnet, other.service_subnet):
                    if ipaddress.ip_network(mine).overlaps(ipaddress.ip_network(theirs)):
                        raise TestbedError(f"cluster {name!r}: {mine} overlaps {theirs} of cluster {other.name!r}; every cluster needs ranges of its own")
        if ipaddress.ip_network(pods).overlaps(ipaddress.ip_network(services)):
            raise TestbedError(f"cluster {name!r}: pod_subnet {pods} overlaps its service_subnet {services}")
        specs.append(KindSpec(name, common.role, common.nodes, common.apiserver_port, pods, services))
    return specs


def cluster_config(spec: KindSpec) -> str:
    """kind's configuration for one cluster (JSON is YAML)."""
    config = {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "networking": {
            "apiServerAddress": LOOPBACK,
            "apiServerPort": spec.apiserver_port,
            "disableDefaultCNI": True,  # the node image's fedbench-cni instead of kindnetd
            "podSubnet": spec.pod_subnet,
            "serviceSubnet": spec.service_subnet,
        },
        # This machine is cgroup v1; kubelet 1.36 refuses it unless told.
        "kubeadmConfigPatches": ["kind: KubeletConfiguration\nfailCgroupV1: false\n"],
        "nodes": [{"role": "control-plane"}] + [{"role": "worker"} for _ in range(spec.nodes)],
    }
    return json.dumps(config, indent=1) + "\n"


def capabilities(peer_server: str) -> dict[str, Any]:
    return {
        "simulated_nodes": False,  # real kubelets run real containers
        "node_simulator": False,
        "local_dir": None,
        "image_loader": "kind-load",  # images are built here and imported into the nodes; nothing is pulled
        "owned": True,
        "peer_server": peer_server,
    }


# --------------------------------------------------------------------------
# Commands.
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Tools:
    kind: str
    kubectl: str

    @classmethod
    def from_mapping(cls, binaries: Mapping[str, str]) -> "Tools":
        missing = [n for n in ("kind", "kubectl") if not binaries.get(n)]
        if missing:
            raise TestbedError(f"missing binaries for the kind testbed: {', '.join(missing)}")
        return cls(binaries["kind"], binaries["kubectl"])


def _kind(tools: Tools, engine: engines.Engine, *args: str, timeout: float = 600, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    env = engine.env()
    env["KIND_EXPERIMENTAL_DOCKER_NETWORK"] = NETWORK
    env.pop("KUBECONFIG", None)
    try:
        proc = subprocess.run([tools.kind, *args], env=env, capture_output=True, text=True, timeout=timeout, input=input, check=False)
    except subprocess.TimeoutExpired as exc:
        raise TestbedError(f"`kind {' '.join(args)}` did not finish within {timeout:.0f}s") from exc
    if check and proc.returncode != 0:
        raise TestbedError(f"`kind {' '.join(args[:3])}` failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-2500:]}")
    return proc


def _kubectl(tools: Tools, kubeconfig: Path, *args: str, timeout: float = 120, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, KUBECONFIG=str(kubeconfig), KUBECACHEDIR=str(kubeconfig.parent / ".cache"))
    proc = subprocess.run([tools.kubectl, *args], env=env, capture_output=True, text=True, timeout=timeout, input=input, check=False)
    if check and proc.returncode != 0:
        raise TestbedError(f"`kubectl {' '.join(args[:4])}` against {kubeconfig.name} failed: {(proc.stderr or proc.stdout).strip()[-1500:]}")
    return proc


def kind_clusters(tools: Tools, engine: engines.Engine) -> list[str]:
    return _kind(tools, engine, "get", "clusters").stdout.split()


def node_containers(engine: engines.Engine, cluster: str, running_only: bool = False) -> list[str]:
    args = ["ps", "--format", "{{.Names}}", "--filter", f"label=io.x-k8s.kind.cluster={cluster}"]
    if not running_only:
        args.insert(1, "-a")
    return sorted(engines.docker(engine, *args).stdout.split())


# --------------------------------------------------------------------------
# The network.
# --------------------------------------------------------------------------


def ensure_network(engine: engines.Engine, report: Reporter = _quiet) -> dict[str, str]:
    """The project's Docker network, and the rule that keeps it inside the machine."""
    proc = engines.docker(engine, "network", "inspect", NETWORK, check=False)
    if proc.returncode != 0:
        report(f"creating Docker network {NETWORK} (bridge {BRIDGE}, no masquerading)")
        engines.docker(engine, "network", "create", "--driver", "bridge", "--label", NETWORK_LABEL,
                       "--opt", f"com.docker.network.bridge.name={BRIDGE}",
                       "--opt", "com.docker.network.bridge.enable_ip_masquerade=false", NETWORK)
        proc = engines.docker(engine, "network", "inspect", NETWORK)
    info = json.loads(proc.stdout)[0]
    if info.get("Labels", {}).get("fedbench.io/testbed") != "kind":
        raise TestbedError(f"a Docker network named {NETWORK} exists and is not the project's (no label {NETWORK_LABEL}); remove or rename it")
    config = (info.get("IPAM", {}).get("Config") or [{}])[0]
    guarded = guard(report)
    return {"name": NETWORK, "bridge": BRIDGE, "subnet": config.get("Subnet", ""), "gateway": config.get("Gateway", ""), "guarded": guarded}


def _guard_rule() -> list[str]:
    return ["DOCKER-USER", "-i", BRIDGE, "!", "-o", BRIDGE, "-m", "comment", "--comment", GUARD_COMMENT, "-j", "DROP"]


def guard(report: Reporter = _quiet) -> str:
    """Drop what the project's network would forward off the machine (root and iptables only)."""
    if os.geteuid() != 0 or not shutil.which("iptables"):
        return "no: not root (the network does not masquerade, so nothing that leaves can come back)"
    if subprocess.run(["iptables", "-C", *_guard_rule()], capture_output=True, check=False).returncode == 0:
        return "yes"
    proc = subprocess.run(["iptables", "-I", *_guard_rule()], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return f"no: iptables refused the rule ({proc.stderr.strip()})"
    report(f"firewall: traffic from {BRIDGE} to anything but {BRIDGE} is dropped")
    return "yes"


def unguard() -> None:
    if os.geteuid() != 0 or not shutil.which("iptables"):
        return
    while subprocess.run(["iptables", "-D", *_guard_rule()], capture_output=True, check=False).returncode == 0:
        pass


def remove_network(engine: engines.Engine) -> bool:
    proc = engines.docker(engine, "network", "inspect", NETWORK, check=False)
    if proc.returncode != 0:
        unguard()
        return False
    attached = json.loads(proc.stdout)[0].get("Containers") or {}
    if attached:
        return False
    engines.docker(engine, "network", "rm", NETWORK)
    unguard()
    return True


# --------------------------------------------------------------------------
# Clusters.
# --------------------------------------------------------------------------


def state_dir(work_dir: Path) -> Path:
    return work_dir / "kind" / "clusters"


def kubeconfig_path(work_dir: Path, name: str) -> Path:
    return work_dir / "kubeconfigs" / name


def _record(work_dir: Path, spec: KindSpec) -> None:
    folder = state_dir(work_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{spec.name}.json").write_text(json.dumps(spec.__dict__))


def recorded(work_dir: Path) -> list[str]:
    folder = state_dir(work_dir)
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


def _node_address(engine: engines.Engine, node: str) -> str:
    fmt = "{{ (index .NetworkSettings.Networks \"" + NETWORK + "\").IPAddress }}"
    return engines.docker(engine, "inspect", "--format", fmt, node).stdout.strip()


def create(spec: KindSpec, *, tools: Tools, engine: engines.Engine, image: str, work_dir: Path, report: Reporter = _quiet) -> None:
    kubeconfig = kubeconfig_path(work_dir, spec.name)
    kubeconfig.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(kubeconfig.parent, 0o700)
    config = work_dir / "kind" / "configs" / f"{spec.name}.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(cluster_config(spec))
    _record(work_dir, spec)
    start = time.monotonic()
    report(f"{spec.name}: kind create cluster ({1 + spec.nodes} node(s), image {image}, API server 127.0.0.1:{spec.apiserver_port})")
    proc = _kind(tools, engine, "create", "cluster", "--name", spec.name, "--image", image, "--config", str(config),
                 "--kubeconfig", str(kubeconfig), "--wait", "0s", "--retain", timeout=900, check=False)
    if proc.returncode != 0:
        logs = work_dir / "kind" / "logs" / spec.name
        _kind(tools, engine, "export", "logs", str(logs), "--name", spec.name, check=False, timeout=120)
        raise TestbedError(f"cluster {spec.name}: kind create cluster failed (exit {proc.returncode}); node logs exported to {logs}:\n"
                           + (proc.stderr or proc.stdout).strip()[-2500:])
    os.chmod(kubeconfig, 0o600)
    report(f"{spec.name}: created in {time.monotonic() - start:.0f}s")


def node_routes(nodes: list[tuple[str, str, str]], containers: set[str] | None = None) -> dict[str, list[tuple[str, str]]]:
    """For every node (name, pod CIDR, address): the (pod CIDR, via address) routes to the others' pods.
    Only the cluster's node containers count (``containers``): a node that is not one (Liqo's
    virtual node for a peered member) has no route here, and none is made to it."""
    nodes = [n for n in nodes if containers is None or n[0] in containers]
    return {name: [(cidr, address) for other, cidr, address in nodes if other != name and cidr and address] for name, _, _ in nodes}


def set_routes(spec: KindSpec, *, tools: Tools, engine: engines.Engine, work_dir: Path) -> int:
    """Routes between the nodes' pod ranges (the node image's CNI gives each node its own)."""
    kubeconfig = kubeconfig_path(work_dir, spec.name)
    out = _kubectl(tools, kubeconfig, "get", "nodes", "-o", "jsonpath={range .items[*]}{.metadata.name} {.spec.podCIDR} "
                   "{.status.addresses[?(@.type==\"InternalIP\")].address}{\"\\n\"}{end}").stdout
    nodes = [tuple(line.split()) for line in out.splitlines() if len(line.split()) == 3]
    count = 0
    for node, routes in node_routes(nodes, set(node_containers(engine, spec.name))).items():  # type: ignore[arg-type]
        for cidr, via in routes:
            engines.docker(engine, "exec", node, "ip", "route", "replace", cidr, "via", via)
            count += 1
    return count


def wait_ready(spec: KindSpec, *, tools: Tools, engine: engines.Engine, work_dir: Path, timeout: float, report: Reporter = _quiet) -> None:
    """Every node Ready (the CNI is up), routes between their pod ranges, and
    CoreDNS answering without an upstream."""
    kubeconfig = kubeconfig_path(work_dir, spec.name)
    deadline = time.monotonic() + timeout
    want = 1 + spec.nodes
    last = ""
    while True:
        proc = _kubectl(tools, kubeconfig, "get", "nodes", "-o", "jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}", check=False)
        states = dict(line.split("=", 1) for line in proc.stdout.split() if "=" in line)
        ready = [n for n, s in states.items() if s == "True"]
        if len(ready) >= want:
            break
        last = f"{len(ready)} of {want} node(s) Ready ({', '.join(f'{n}: {s}' for n, s in sorted(states.items())) or 'none registered'})"
        if time.monotonic() > deadline:
            raise TestbedError(f"cluster {spec.name}: not every node became Ready within {timeout:.0f}s: {last}")
        time.sleep(1)
    if spec.nodes:
        set_routes(spec, tools=tools, engine=engine, work_dir=work_dir)
    _kubectl(tools, kubeconfig, "apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "coredns", "namespace": "kube-system"}, "data": {"Corefile": COREFILE}}))
    # CoreDNS reads the Corefile at start; a restart makes the no-upstream one the one in force.
    _kubectl(tools, kubeconfig, "-n", "kube-system", "rollout", "restart", "deployment/coredns")
    left = max(10.0, deadline - time.monotonic())
    _kubectl(tools, kubeconfig, "-n", "kube-system", "rollout", "status", "deployment/coredns", f"--timeout={left:.0f}s", timeout=left + 10)
    report(f"{spec.name}: {want} node(s) Ready, CoreDNS without an upstream")


def describe(spec: KindSpec, *, tools: Tools, engine: engines.Engine, work_dir: Path) -> dict[str, Any]:
    kubeconfig = kubeconfig_path(work_dir, spec.name)
    version = json.loads(_kubectl(tools, kubeconfig, "version", "-o", "json").stdout).get("serverVersion", {}).get("gitVersion", "")
    nodes = len(_kubectl(tools, kubeconfig, "get", "nodes", "-o", "name").stdout.split())
    address = _node_address(engine, f"{spec.name}-control-plane")
    return {
        "name": spec.name,
        "role": spec.role,
        "kubeconfig": str(kubeconfig),
        "context": CONTEXT_PREFIX + spec.name,
        "server": f"https://{LOOPBACK}:{spec.apiserver_port}",
        "kubernetes_version": version,
        "nodes": nodes,
        "testbed": "kind",
        "capabilities": capabilities(f"https://{address}:{INTERNAL_PORT}"),
        "node_containers": node_containers(engine, spec.name),
        "pod_subnet": spec.pod_subnet,
        "service_subnet": spec.service_subnet,
    }


def healthy(spec: KindSpec, *, tools: Tools, engine: engines.Engine, work_dir: Path) -> str | None:
    """Why an existing cluster is not whole, or None."""
    want = {f"{spec.name}-control-plane"} | {f"{spec.name}-worker{'' if i == 0 else i + 1}" for i in range(spec.nodes)}
    running = set(node_containers(engine, spec.name, running_only=True))
    if want - running:
        return f"node container(s) not running: {', '.join(sorted(want - running))}"
    kubeconfig = kubeconfig_path(work_dir, spec.name)
    if not kubeconfig.is_file():
        return f"no kubeconfig at {kubeconfig}"
    proc = _kubectl(tools, kubeconfig, "get", "--raw", "/readyz", check=False, timeout=20)
    if proc.returncode != 0 or proc.stdout.strip() != "ok":
        return f"the API server does not answer /readyz: {(proc.stderr or proc.stdout).strip()[-300:]}"
    return None


def up(raw_specs: Any, *, binaries: Mapping[str, str], engine: engines.Engine, image: str, work_dir: Path,
       timeout: float = 600, report: Reporter = _quiet) -> tuple[list[dict[str, Any]], list[str]]:
    """Make every cluster exist and be Ready; returns (facts, names created)."""
    specs = parse_specs(raw_specs)
    tools = Tools.from_mapping(binaries)
    ensure_network(engine, report)
    existing = set(kind_clusters(tools, engine))
    created: list[str] = []
    todo = []
    for spec in specs:
        if spec.name in existing:
            problem = healthy(spec, tools=tools, engine=engine, work_dir=work_dir)
            if problem is None:
                continue
            report(f"{spec.name}: exists but is not whole ({problem}); deleting it to create it again")
            delete(spec.name, engine=engine, work_dir=work_dir)
        if port_in_use(spec.apiserver_port):
            raise TestbedError(f"cluster {spec.name!r}: apiserver_port {spec.apiserver_port} is already in use on {LOOPBACK}")
        todo.append(spec)
    engines.raise_inotify_limits(report)
    # kind creates clusters one at a time per process; two at once share the cores well enough.
    with ThreadPoolExecutor(max_workers=2) as pool:
        for future in [pool.submit(create, s, tools=tools, engine=engine, image=image, work_dir=work_dir, report=report) for s in todo]:
            future.result()
    created = [s.name for s in todo]
    with ThreadPoolExecutor(max_workers=len(specs)) as pool:
        for future in [pool.submit(wait_ready, s, tools=tools, engine=engine, work_dir=work_dir, timeout=timeout, report=report) for s in specs]:
            future.result()
    return [describe(s, tools=tools, engine=engine, work_dir=work_dir) for s in specs], created


def delete(name: str, *, engine: engines.Engine, work_dir: Path) -> None:
    """What `kind delete cluster` does (its node containers go with their /var
    volumes), with no kind binary needed; then the work dir's record of it."""
    nodes = node_containers(engine, name)
    if nodes:
        engines.docker(engine, "rm", "-f", "-v", *nodes, timeout=300)
    kubeconfig_path(work_dir, name).unlink(missing_ok=True)
    (state_dir(work_dir) / f"{name}.json").unlink(missing_ok=True)


def down(*, work_dir: Path, names: list[str] | None = None, cache: Path | None = None,
         report: Reporter = _quiet) -> dict[str, Any]:
    """Delete every cluster this work dir made (the inventory's and any an
    interrupted run left), then the network, then the engine if the project
    runs it and nothing else is in it, and put the machine's settings back.
    When the project's daemon died with containers in it (the machine
    restarted under a run), it is started again to delete them: stopping
    what is left of it by hand would leave their mounts and network behind."""
    engine = engines.running_project_engine()
    if engine is None and cache is not None and os.geteuid() == 0:
        left = engines.left_by_dead_daemon(cache)
        if left:
            report(f"the project's Docker daemon is not running but left {'; '.join(left)}: starting it to delete them")
            engine = engines.start_daemon(cache, report)
    if engine is None:
        engine, _ = engines.user_engine()
    result: dict[str, Any] = {"deleted": [], "network_removed": False}
    wanted = sorted(set(recorded(work_dir)) | set(names or []))
    if engine is not None:
        for name in wanted:
            if node_containers(engine, name):
                report(f"{name}: deleting its node containers")
                result["deleted"].append(name)
            delete(name, engine=engine, work_dir=work_dir)
        result["network_removed"] = remove_network(engine)
    result["released"] = engines.release(report=report)
    return result


def leftovers(work_dir: Path, names: list[str]) -> dict[str, list[str]]:
    """What of these clusters is still on the machine: containers, the network, the daemon, ports."""
    out: dict[str, list[str]] = {"containers": [], "networks": [], "daemon": [], "ports": []}
    engine = engines.running_project_engine()
    if engine is not None:
        out["daemon"].append(f"dockerd pid {engines.project_pid()}")
    else:
        engine, _ = engines.user_engine()
    if engine is not None:
        for name in names:
            out["containers"] += node_containers(engine, name)
        if engines.docker(engine, "network", "inspect", NETWORK, check=False).returncode == 0:
            out["networks"].append(NETWORK)
    return out


# --------------------------------------------------------------------------
# The whole testbed: engine, images, clusters.
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Versions:
    kubernetes: str = "v1.36.1"
    etcd: str = "v3.6.8"
    coredns: str = "v1.14.2"


def provision(raw_specs: Any, *, binaries: Mapping[str, str], node_files: str, cache: Path, work_dir: Path,
              versions: Versions = Versions(), timeout: float = 600, report: Reporter = _quiet) -> dict[str, Any]:
    """The engine, the node image and the control plane's images (built here,
    cached), the clusters, and the lifecycle's busybox in every node."""
    from ansible_collections.fedbench.testbed.plugins.module_utils.build import images

    specs = parse_specs(raw_specs)  # bad input fails before anything starts
    for spec in specs:
        if port_in_use(spec.apiserver_port) and not kubeconfig_path(work_dir, spec.name).is_file():
            raise TestbedError(f"cluster {spec.name!r}: apiserver_port {spec.apiserver_port} is already in use on {LOOPBACK}")
    timings: dict[str, float] = {}
    start = time.monotonic()
    engine = engines.ensure(cache, report)
    timings["engine_s"] = round(time.monotonic() - start, 2)
    start = time.monotonic()
    pause = images.pause_binary(cache, report)
    plane = images.control_plane_specs(binaries, kubernetes=versions.kubernetes, etcd=versions.etcd, coredns=versions.coredns, pause=pause)
    archives = [images.build(spec, cache, report) for spec in plane]
    parts = images.NodeParts(kubernetes=versions.kubernetes, binaries=binaries, kind_files=Path(node_files), preload=archives)
    image, archive = images.node_image(parts, cache, report)
    images.load_into_docker(engine, archive, report)
    for old in images.prune_node_images(engine, image):
        report(f"removed the outdated node image {old} from the Docker engine")
    busybox = images.build(images.busybox_spec(cache, report), cache, report)
    timings["images_s"] = round(time.monotonic() - start, 2)
    start = time.monotonic()
    facts, created = up(raw_specs, binaries=binaries, engine=engine, image=image, work_dir=work_dir, timeout=timeout, report=report)
    for cluster in facts:
        for node in cluster["node_containers"]:
            images.load_into_node(engine, node, busybox, report)
    timings["clusters_s"] = round(time.monotonic() - start, 2)
    from ansible_collections.fedbench.testbed.plugins.module_utils.build.oci import read_archive

    return {
        "clusters": facts,
        "created": created,
        "engine": engine.facts(),
        "node_image": image,
        "images": {"busybox": read_archive(busybox)["repo_tags"][0]},
        "timings": timings,
    }


def role_recipes(root: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The cluster_kind role's toolchain recipes filled with its pins, and the
    binaries it asks for: what the role hands the toolchain, for scripts that
    run outside a play (benchmarks/kind_startup, the tests)."""
    import jinja2
    import yaml

    role = root / "roles" / "cluster_kind"
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text())
    data = yaml.safe_load((role / "vars" / "main.yml").read_text())
    recipes = [yaml.safe_load(jinja2.Template(yaml.safe_dump(r)).render(**defaults)) for r in data["_cluster_kind_recipes"]]
    return recipes, list(data["_cluster_kind_components"])
