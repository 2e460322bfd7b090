"""Pure logic of the toolchain: recipes, names, versions, resolution order."""
import os

import pytest

from ansible_collections.fedbench.testbed.plugins.module_utils.build import toolchain
from tests.conftest import framework_recipe

GO_MOD = """module k8s.io/kubernetes

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tgithub.com/other/thing => github.com/other/thing v1.0.0
)
"""


def test_staging_modules_are_read_from_go_mod():
    assert toolchain.staging_modules(GO_MOD) == ["k8s.io/api", "k8s.io/client-go"]


def test_kubernetes_wrapper_replaces_staging_with_published_versions():
    text = toolchain.kubernetes_wrapper("v1.36.1", ["k8s.io/api", "k8s.io/client-go"])
    assert "require k8s.io/kubernetes v1.36.1" in text
    assert "\tk8s.io/api => k8s.io/api v0.36.1" in text
    assert "\tk8s.io/client-go => k8s.io/client-go v0.36.1" in text


def test_kubernetes_ldflags_set_both_version_packages():
    flags = toolchain.kubernetes_ldflags("v1.36.1")
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        assert f"-X {pkg}.gitVersion=v1.36.1" in flags
        assert f"-X {pkg}.gitMajor=1" in flags
        assert f"-X {pkg}.gitMinor=36" in flags


def test_kubefed_recipe_builds_its_commands_with_newer_reflect2(tmp_path):
    recipe = toolchain.Recipe.from_dict(framework_recipe("kubefed"))
    assert recipe.version == "v0.10.0"
    text = recipe.go_mod()
    assert "require sigs.k8s.io/kubefed v0.10.0" in text
    assert "github.com/modern-go/reflect2 => github.com/modern-go/reflect2 v1.0.2" in text
    assert "github.com/json-iterator/go => github.com/json-iterator/go v1.1.12" in text
    plan = toolchain.build_plan("kubefed", ["kubefed-controller-manager", "kubefedctl"], toolchain.Versions(), tmp_path, {}, recipe)
    assert plan.packages == {"kubefed-controller-manager": "sigs.k8s.io/kubefed/cmd/controller-manager",
                             "kubefedctl": "sigs.k8s.io/kubefed/cmd/kubefedctl"}
    assert "-X sigs.k8s.io/kubefed/pkg/version.version=v0.10.0" in plan.ldflags
    # Only kubefedctl has an official download; the controller-manager is built.
    components = recipe.components()
    url, _, member = toolchain.download_urls(components["kubefedctl"], toolchain.Versions())
    assert url.endswith("/v0.10.0/kubefedctl-0.10.0-linux-amd64.tgz") and member == "kubefedctl"
    with pytest.raises(toolchain.ToolchainError, match="names no official download of it"):
        toolchain.download_urls(components["kubefed-controller-manager"], toolchain.Versions())


def test_a_recipe_s_binaries_are_known_only_with_the_recipe(tmp_path):
    with pytest.raises(toolchain.ToolchainError, match="unknown toolchain component.*kubefedctl.*need its recipe"):
        toolchain.ensure(["kubefedctl"], source="build", cache=tmp_path)
    recipe = toolchain.Recipe.from_dict(framework_recipe("kubefed"))
    comp = recipe.components()["kubefedctl"]
    _fake_binary(toolchain.cached_path(comp, toolchain.Versions(), tmp_path), "Version:\"v0.10.0\"")
    found = toolchain.ensure(["kubefedctl"], source="build", cache=tmp_path, recipes=[recipe])
    assert found["kubefedctl"].source == "cache" and found["kubefedctl"].version == "0.10.0"
    assert found["kubefedctl"].path.endswith("bin/kubefedctl/v0.10.0/kubefedctl")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"name": "Kube Fed"}, "a name of lowercase letters"),
        ({"version": "0.10"}, "version must look like v1.2.3"),
        ({"colour": "blue"}, "unknown key.*colour"),
        ({"name": "kubernetes"}, "one of the testbed's own groups"),
        ({"binaries": {}}, "binaries must name at least one"),
        ({"binaries": {"x": {"version_args": "--version"}}}, "binary 'x' needs version_args"),
        ({"binaries": {"kubectl": {"version_args": [], "version_pattern": "(.*)"}}}, "'kubectl' is one of the testbed's own"),
        ({"download": {"nothing": {"url": "u", "sums": "s"}}}, "download.nothing must be one of its binaries"),
        ({"module": ""}, "a module to build from, or no_build"),
    ],
)
def test_bad_recipes_are_named(change, message):
    with pytest.raises(toolchain.ToolchainError, match=message):
        toolchain.Recipe.from_dict({**framework_recipe("kubefed"), **change})


@pytest.mark.parametrize(
    "package, name",
    [
        ("k8s.io/kubernetes/cmd/kube-apiserver", "kube-apiserver"),
        ("go.etcd.io/etcd/server/v3", "server"),
        ("sigs.k8s.io/kwok/cmd/kwokctl@v0.8.0", "kwokctl"),
    ],
)
def test_go_binary_name(package, name):
    assert toolchain.go_binary_name(package) == name


@pytest.mark.parametrize("bad", ["1.36.1", "v1.36", "latest", ""])
def test_versions_must_look_like_semver(bad):
    with pytest.raises(toolchain.ToolchainError, match="must look like v1.2.3"):
        toolchain.Versions(kubernetes=bad)


def test_unknown_source_and_component_are_named(tmp_path):
    with pytest.raises(toolchain.ToolchainError, match="source must be one of auto, path, download, build, got 'magic'"):
        toolchain.ensure(["kwok"], source="magic", cache=tmp_path)
    with pytest.raises(toolchain.ToolchainError, match="unknown toolchain component"):
        toolchain.ensure(["kube-magic"], source="build", cache=tmp_path)


def _fake_binary(path, output):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho '{output}'\n")
    path.chmod(0o755)


def test_cache_comes_first_and_path_needs_the_pinned_version(tmp_path, monkeypatch):
    versions = toolchain.Versions()
    comp = toolchain.COMPONENTS["kube-apiserver"]
    cached = toolchain.cached_path(comp, versions, tmp_path / "cache")
    _fake_binary(cached, "Kubernetes v1.36.1")
    found = toolchain.ensure(["kube-apiserver"], source="build", cache=tmp_path / "cache")
    assert found["kube-apiserver"].source == "cache"

    bindir = tmp_path / "bin"
    _fake_binary(bindir / "kube-apiserver", "Kubernetes v1.30.0")
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(toolchain.ToolchainError, match=r"kube-apiserver v1.36.1 is required .* at version 1.30.0"):
        toolchain.ensure(["kube-apiserver"], source="path", cache=tmp_path / "cache")
    _fake_binary(bindir / "kube-apiserver", "Kubernetes v1.36.1")
    found = toolchain.ensure(["kube-apiserver"], source="path", cache=tmp_path / "empty")
    assert found["kube-apiserver"].source == "path"


def test_missing_binary_with_source_path_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(toolchain.ToolchainError, match="etcd v3.6.8 is required with toolchain source 'path', but it is not on PATH"):
        toolchain.ensure(["etcd"], source="path", cache=tmp_path)


def test_checksum_lines_are_matched_by_file_name():
    sums = "aaa  other\n" + "b" * 64 + "  etcd-v3.6.8-linux-amd64.tar.gz\n"
    assert toolchain._expected_sum(sums, "etcd-v3.6.8-linux-amd64.tar.gz") == "b" * 64
    assert toolchain._expected_sum("c" * 64 + "\n", "kube-apiserver") == "c" * 64
    with pytest.raises(toolchain.ToolchainError, match="no checksum for x"):
        toolchain._expected_sum("aaa  y\n", "x")


def test_istio_is_built_from_its_release_commit_as_the_proxy_knows_it(tmp_path, monkeypatch):
    """Istio tags releases without a v: the proxy knows 1.29.1's commit as a
    pseudo-version, which the wrapper requires; the version the binaries report
    and the hub istioctl names images with come from ldflags; the official
    download stays for toolchain_source=auto."""
    recipe = toolchain.Recipe.from_dict(framework_recipe("istio"))
    assert recipe.version == "v1.29.1" and recipe.module_version.startswith("v0.0.0-20260306174214-") and recipe.go_sum
    monkeypatch.setattr(toolchain, "_local_go_version", lambda work, env: "1.26.8")
    plan = toolchain.build_plan("istio", ["istioctl", "pilot-agent"], toolchain.Versions(), tmp_path, {}, recipe)
    assert f"require istio.io/istio {recipe.module_version}" in plan.module
    assert plan.packages == {"istioctl": "istio.io/istio/istioctl/cmd/istioctl", "pilot-agent": "istio.io/istio/pilot/cmd/pilot-agent"}
    assert "-X istio.io/istio/pkg/version.buildVersion=1.29.1" in plan.ldflags and "buildHub=fedbench.local/istio" in plan.ldflags
    url, sums, member = toolchain.download_urls(recipe.components()["istioctl"], toolchain.Versions())
    assert url == "https://github.com/istio/istio/releases/download/1.29.1/istioctl-1.29.1-linux-amd64.tar.gz" and member == "istioctl"


def test_a_patched_copy_recipe_names_a_patch_that_no_longer_applies(tmp_path, monkeypatch):
    """EdgeNet is built from a patched copy of its module; a patch whose text is
    not there fails naming the file and the text, never builds something else."""
    module = tmp_path / "mod"
    (module / "cmd").mkdir(parents=True)
    (module / "go.mod").write_text("module example.com/m\n\ngo 1.18\n")
    (module / "cmd" / "main.go").write_text("package main\nfunc main() { old() }\n")
    monkeypatch.setattr(toolchain, "_run_go", lambda args, cwd, env, what: '{"Dir": "%s"}' % module if args[:2] == ["mod", "download"] else "")
    good = toolchain.Recipe.from_dict({"name": "m", "version": "v1.0.0", "module": "example.com/m",
                                       "binaries": {"m": {"package": "cmd", "version_args": [], "version_pattern": "x"}},
                                       "patches": [{"file": "cmd/main.go", "replace": [["old()", "new()"]]}]})
    assert good.copy
    tree = toolchain._patched_copy(good, tmp_path / "w1", {})
    assert "new()" in (tree / "cmd" / "main.go").read_text()
    bad = toolchain.Recipe.from_dict({**{k: getattr(good, k) for k in ("name", "version", "module")}, "binaries": dict(good.binaries),
                                      "patches": [{"file": "cmd/main.go", "replace": [["gone()", "x()"]]}]})
    with pytest.raises(toolchain.ToolchainError, match=r"patch of cmd/main.go: 'gone\(\)' is not there"):
        toolchain._patched_copy(bad, tmp_path / "w2", {})
    with pytest.raises(toolchain.ToolchainError, match="a patch needs file"):
        toolchain.Recipe.from_dict({**{k: getattr(good, k) for k in ("name", "version", "module")}, "binaries": dict(good.binaries),
                                    "patches": [{"file": "cmd/main.go", "replace": "old()"}]})


def test_the_python_defaults_are_the_role_pins():
    # Two places know the versions (the role's defaults, what users edit, and the
    # module's fallbacks); they must not drift apart.
    from dataclasses import asdict

    from tests.conftest import pinned

    assert {k: v for k, v in asdict(toolchain.Versions()).items() if k in pinned()} == pinned()
