"""Pure logic of the kind testbed: the engine's capability wrapper and the
machine's settings, image archives, image specs, cluster validation and
configuration, routes between nodes. (Real kind clusters: tests/integration/test_kind.py.)"""
import json
import subprocess
import sys
import tarfile

import pytest
import yaml

from ansible_collections.fedbench.testbed.plugins.module_utils.build import engine, images, oci, toolchain
from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import kind
from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import embedded
from tests.conftest import ROOT

# CapBnd of this machine (no CAP_SYS_RESOURCE, bit 24) and of a full set.
LACKING = "Name:\tx\nCapBnd:\t000001fffeffffff\n"
FULL = "CapBnd:\t000001ffffffffff\n"


def test_bounding_set_names_the_missing_capability():
    assert engine.missing_capabilities(LACKING) == ["CAP_SYS_RESOURCE"]
    assert engine.missing_capabilities(FULL) == []
    assert "CAP_SYS_ADMIN" in engine.bounding_set(LACKING)


def test_strip_capabilities_keeps_only_the_allowed():
    process = {"capabilities": {"bounding": ["CAP_SYS_ADMIN", "CAP_SYS_RESOURCE"], "effective": ["CAP_SYS_RESOURCE"], "ambient": None}}
    out = engine.strip_capabilities(process, engine.bounding_set(LACKING))
    assert out["capabilities"] == {"bounding": ["CAP_SYS_ADMIN"], "effective": [], "ambient": None}


def test_the_runtime_wrapper_edits_config_and_process_files(tmp_path):
    """The wrapper script as written for dockerd: run against a fake runc that
    prints what it was given, on a bundle asking for every capability."""
    runc = tmp_path / "runc"
    runc.write_text("#!/bin/sh\necho runc \"$@\"\n")
    runc.chmod(0o755)
    wrapper = tmp_path / "wrapper"
    wrapper.write_text(engine.wrapper_script(sys.executable, str(runc)))
    wrapper.chmod(0o755)
    every = ["CAP_" + c for c in engine.CAPABILITIES]
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps({"process": {"capabilities": {"bounding": every, "permitted": every}}}))
    out = subprocess.run([str(wrapper), "--root", "/x", "create", "--bundle", str(bundle), "cid"], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["runc", "--root", "/x", "create", "--bundle", str(bundle), "cid"]
    mine = engine.bounding_set(open("/proc/self/status").read())
    caps = json.loads((bundle / "config.json").read_text())["process"]["capabilities"]
    assert set(caps["bounding"]) == mine & set(every) and set(caps["permitted"]) == set(caps["bounding"])
    proc = tmp_path / "process.json"
    proc.write_text(json.dumps({"args": ["sh"], "capabilities": {"effective": every}}))
    subprocess.run([str(wrapper), "exec", "--process", str(proc), "cid"], capture_output=True, check=True)
    assert set(json.loads(proc.read_text())["capabilities"]["effective"]) == mine & set(every)


def test_daemon_config_keeps_to_its_own_files_and_addresses(tmp_path):
    config = engine.daemon_config(data_root=tmp_path / "data", run_dir=tmp_path / "run", wrapper=tmp_path / "w", pools=[{"base": "172.28.0.0/16", "size": 24}])
    assert config["hosts"] == [f"unix://{tmp_path / 'run' / 'docker.sock'}"]
    assert config["bridge"] == "none" and config["dns"] == ["127.0.0.1"] and config["ip-masq"] is False
    assert config["default-runtime"] == "fedbench-runc" and config["runtimes"]["fedbench-runc"]["path"] == str(tmp_path / "w")
    assert "default-runtime" not in engine.daemon_config(data_root=tmp_path, run_dir=tmp_path, wrapper=None, pools=[])


def test_a_daemon_that_died_with_containers_is_noticed(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "dockerd.pid").write_text("999999999")  # no such process
    assert engine.left_by_dead_daemon(tmp_path, run) == []
    containers = tmp_path / "docker" / "data" / "containers"
    containers.mkdir(parents=True)
    assert engine.left_by_dead_daemon(tmp_path, run) == []
    (containers / "abc").mkdir()
    assert engine.left_by_dead_daemon(tmp_path, run) == [f"1 container(s) in {tmp_path / 'docker' / 'data'}"]


BEFORE = "-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n"
AFTER = """-P INPUT ACCEPT
-P FORWARD DROP
-P OUTPUT ACCEPT
-N DOCKER
-N DOCKER-USER
-N MINE
-A FORWARD -j DOCKER-USER
-A FORWARD -j MINE
-A FORWARD -o br0 -j DOCKER
-A DOCKER-USER -j RETURN
"""


def test_iptables_undo_removes_only_what_docker_added():
    commands = engine.iptables_undo(BEFORE, AFTER, "filter")
    assert ["-t", "filter", "-D", "FORWARD", "-j", "DOCKER-USER"] in commands
    assert ["-t", "filter", "-D", "FORWARD", "-o", "br0", "-j", "DOCKER"] in commands
    assert ["-t", "filter", "-X", "DOCKER"] in commands and ["-t", "filter", "-X", "DOCKER-USER"] in commands
    assert ["-t", "filter", "-P", "FORWARD", "ACCEPT"] in commands
    assert not [c for c in commands if "MINE" in c], "a chain that is not Docker's is left alone"
    # deletes come before flushes, flushes before the chains go
    verbs = [c[2] for c in commands]
    assert verbs.index("-F") > max(i for i, v in enumerate(verbs) if v == "-D") and verbs.index("-X") > verbs.index("-F")


def test_iptables_undo_leaves_chains_that_were_there():
    assert engine.iptables_undo(AFTER, AFTER, "filter") == []


def test_an_archive_holds_both_layouts(tmp_path):
    layer = oci.layer_from({"/bin/x": ("text", "#!/bin/sh\n", 0o755), "/tmp": ("dir", 0o1777), "/bin/y": ("symlink", "x")}, tmp_path / "l.tar")
    image_id = oci.write_archive(tmp_path / "a.tar", ref="fedbench.local/t:1", layers=[layer], config=oci.Config(entrypoint=("/bin/x",)))
    info = oci.read_archive(tmp_path / "a.tar")
    assert info["id"] == image_id and info["name"] == "fedbench.local/t:1" and info["repo_tags"] == ["fedbench.local/t:1"]
    assert info["layers"] == info["diff_ids"] == [oci.sha256_file(layer)[0]]
    assert info["config"]["Entrypoint"] == ["/bin/x"]
    with tarfile.open(tmp_path / "a.tar") as tar:
        names = tar.getnames()
    assert {"oci-layout", "index.json", "manifest.json"} <= set(names)
    with tarfile.open(layer) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["tmp"].mode == 0o1777 and members["bin/y"].issym() and members["bin/x"].uid == 0


def test_the_same_inputs_make_the_same_layer(tmp_path):
    entries = {"/a": ("text", "x", 0o644)}
    first = oci.sha256_file(oci.layer_from(entries, tmp_path / "1.tar"))
    assert oci.sha256_file(oci.layer_from(entries, tmp_path / "2.tar")) == first


@pytest.mark.parametrize("ref, full", [
    ("busybox:1.36", "docker.io/library/busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest"),
    ("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"),
    ("fedbench.local/kind-node:v1.36.1-abc", "fedbench.local/kind-node:v1.36.1-abc"),
    ("localhost:5000/x", "localhost:5000/x:latest"),
])
def test_qualified_names(ref, full):
    assert oci.qualified(ref) == full


@pytest.mark.parametrize("spec, message", [
    ({"ref": "Bad Name"}, "needs ref"),
    ({"ref": "fedbench.local/x:1", "colour": "red"}, "unknown key(s) colour"),
    ({"ref": "fedbench.local/x:1", "base": "alpine"}, "base must be scratch or debian"),
    ({"ref": "fedbench.local/x:1", "packages": ["bash"]}, "packages need base debian"),
    ({"ref": "fedbench.local/x:1", "files": {"rel/path": {"text": "x"}}}, "needs an absolute path"),
    ({"ref": "fedbench.local/x:1", "files": {"/x": {"src": "/no/such/file"}}}, "which does not exist"),
    ({"ref": "fedbench.local/x:1", "files": {"/x": {"src": ""}}}, "which does not exist"),
    ({"ref": "fedbench.local/x:1", "files": {"/x": {"dir": "rwx"}}}, "a file mode must be"),
])
def test_bad_image_specs_are_named(spec, message):
    with pytest.raises(images.BuildError, match=message.replace("(", r"\(").replace(")", r"\)")):
        images.ImageSpec.from_dict(spec)


def test_an_image_key_follows_its_inputs(tmp_path):
    src = tmp_path / "bin"
    src.write_text("one")
    spec = images.ImageSpec.from_dict({"ref": "fedbench.local/x:1", "files": {"/bin/x": {"src": str(src)}, "/tmp": {"dir": "1777"}}})
    again = images.ImageSpec.from_dict({"ref": "fedbench.local/x:1", "files": {"/bin/x": {"src": str(src)}, "/tmp": {"dir": "1777"}}})
    before = spec.key()
    assert before == again.key()
    assert spec.entries()["/tmp"] == ("dir", 0o1777)
    src.write_text("two, longer")
    assert spec.key() != before


def test_the_node_containerd_pulls_from_nowhere_and_restricts_oom_scores():
    assert 'server = "http://127.0.0.1:9"' in images.NO_REGISTRY
    assert 'config_path = "/etc/containerd/certs.d"' in images.CONTAINERD_CONFIG
    assert "restrict_oom_score_adj = true" in images.CONTAINERD_CONFIG
    assert f'sandbox_image = "{images.PAUSE_REF}"' in images.CONTAINERD_CONFIG
    # kind's entrypoint rewrites this exact text to choose a snapshotter
    assert 'snapshotter = "overlayfs"' in images.CONTAINERD_CONFIG


GOOD = [
    {"name": "fb-host", "role": "host", "nodes": 1, "apiserver_port": 31643},
    {"name": "fb-m1", "role": "member", "apiserver_port": 31644},
]


def test_good_kind_specs_get_ranges_of_their_own():
    host, member = kind.parse_specs(GOOD)
    assert (host.nodes, member.nodes, member.role) == (1, 0, "member")
    assert (host.pod_subnet, host.service_subnet) == ("10.100.0.0/16", "10.96.0.0/20")
    assert (member.pod_subnet, member.service_subnet) == ("10.101.0.0/16", "10.96.16.0/20")


@pytest.mark.parametrize("raw, message", [
    ([], "the list of clusters is empty"),
    ([{"name": "UPPER", "apiserver_port": 31643}], "name must be a lowercase DNS label"),
    ([{"name": "a", "apiserver_port": 31643}, {"name": "a", "apiserver_port": 31644}], "appears twice"),
    ([{"name": "a", "role": "boss", "apiserver_port": 31643}], "role must be one of host, member"),
    ([{"name": "a", "nodes": "two", "apiserver_port": 31643}], "cluster 'a': nodes"),
    ([{"name": "a"}], "cluster 'a': apiserver_port is required"),
    ([{"name": "a", "apiserver_port": 80}], "cluster 'a': apiserver_port must be from 1024"),
    ([{"name": "a", "apiserver_port": 31643}, {"name": "b", "apiserver_port": 31643}], "both ask for apiserver_port 31643"),
    ([{"name": "a", "apiserver_port": 31643, "pod_subnet": "10.1.0.0/33"}], "cluster 'a': pod_subnet must be an IPv4 network"),
    ([{"name": "a", "apiserver_port": 31643, "pod_subnet": "10.96.0.0/16"}], "overlaps its service_subnet"),
    ([{"name": "a", "apiserver_port": 31643}, {"name": "b", "apiserver_port": 31644, "pod_subnet": "10.100.128.0/17"}], "overlaps 10.100.0.0/16 of cluster 'a'"),
    ([{"name": "a", "role": "host", "apiserver_port": 31643}, {"name": "b", "role": "host", "apiserver_port": 31644}], "only one cluster may have role 'host'"),
])
def test_bad_kind_specs_are_named(raw, message):
    with pytest.raises(embedded.TestbedError, match=message.replace("(", r"\(").replace(")", r"\)")):
        kind.parse_specs(raw)


def test_cluster_config_publishes_on_loopback_without_kindnet_and_allows_cgroup_v1():
    (host, _) = kind.parse_specs(GOOD)
    config = yaml.safe_load(kind.cluster_config(host))
    assert config["networking"] == {"apiServerAddress": "127.0.0.1", "apiServerPort": 31643, "disableDefaultCNI": True,
                                    "podSubnet": "10.100.0.0/16", "serviceSubnet": "10.96.0.0/20"}
    assert [n["role"] for n in config["nodes"]] == ["control-plane", "worker"]
    assert yaml.safe_load(config["kubeadmConfigPatches"][0]) == {"kind": "KubeletConfiguration", "failCgroupV1": False}


def test_routes_go_to_every_other_node():
    routes = kind.node_routes([("a", "10.100.0.0/24", "172.28.0.2"), ("b", "10.100.1.0/24", "172.28.0.3"), ("c", "10.100.2.0/24", "172.28.0.4")])
    assert routes["a"] == [("10.100.1.0/24", "172.28.0.3"), ("10.100.2.0/24", "172.28.0.4")]
    assert routes["c"] == [("10.100.0.0/24", "172.28.0.2"), ("10.100.1.0/24", "172.28.0.3")]


def test_the_cni_script_is_valid_bash(tmp_path):
    script = tmp_path / "cni"
    script.write_text(images.CNI_SYNC)
    subprocess.run(["bash", "-n", str(script)], check=True)


def test_kind_recipes_load():
    """The role's recipes, filled with its pins, are valid toolchain recipes and name every binary a node needs."""
    data, components = kind.role_recipes(ROOT)
    recipes = [toolchain.Recipe.from_dict(r) for r in data]
    known = toolchain.registry(recipes)
    assert set(components) <= set(known)
    assert set(images.NodeParts.NEEDS) <= set(components)
    runc = next(r for r in recipes if r.name == "runc")
    assert runc.cgo and "seccomp" in runc.tags


def test_a_node_that_is_not_a_node_container_gets_no_route_and_is_no_route():
    """Liqo's virtual node for a peered member has a pod CIDR and an address that are not on the
    project's network: a second provision once failed on `ip route replace ... via <its address>`."""
    nodes = [("h-control-plane", "10.100.0.0/24", "172.28.0.2"), ("h-worker", "10.100.1.0/24", "172.28.0.3"),
             ("m1", "10.100.2.0/24", "10.100.1.19")]
    routes = kind.node_routes(nodes, {"h-control-plane", "h-worker"})
    assert routes == {"h-control-plane": [("10.100.1.0/24", "172.28.0.3")], "h-worker": [("10.100.0.0/24", "172.28.0.2")]}
