"""System packages are data: every cgo recipe names the Debian packages it
builds against, every program the project runs is mapped to its package, and
a missing package without root is refused naming the packages and the command."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from ansible_collections.fedbench.testbed.plugins.module_utils.common import syspkgs
from ansible_collections.fedbench.testbed.plugins.module_utils.build import toolchain

ROOT = Path(__file__).resolve().parents[2]
# Programs the project runs that are not Debian's: the Go toolchain (the README's
# prerequisite), the venv's Ansible, and the binaries the toolchain itself provides.
NOT_DEBIAN = {"go", "ansible-playbook", "ansible-doc", "python3"}
RUNNERS = {"run", "Popen", "check_output", "check_call", "_run", "run_command"}


def _all_recipes() -> list[dict]:
    """Every toolchain recipe in the roles, its Jinja version pins replaced by a plain version."""
    found = []
    for path in sorted(ROOT.glob("roles/**/vars/main.yml")):
        data = yaml.safe_load(re.sub(r"\{\{[^}]*\}\}", "v1.0.0", path.read_text())) or {}
        for key, value in data.items():
            if key.endswith("_toolchain_recipe"):
                found.append(value)
            elif key.endswith("_recipes") and isinstance(value, list):
                found += value
    return found


def test_every_recipe_parses_and_every_cgo_recipe_names_its_packages(tmp_path):
    recipes = [toolchain.Recipe.from_dict(r) for r in _all_recipes()]  # from_dict refuses cgo without packages
    assert len(recipes) >= 8, [r.name for r in recipes]
    runc = next(r for r in recipes if r.name == "runc")
    assert {"libseccomp-dev", "pkg-config"} <= set(runc.host_packages)
    plan = toolchain.build_plan("runc", ["runc"], toolchain.Versions(), tmp_path, {}, runc)
    assert set(syspkgs.CGO) | {"libseccomp-dev"} <= set(plan.debs)
    kine = toolchain.build_plan("kine", ["kine"], toolchain.Versions(), tmp_path, {})
    assert kine.env["CGO_ENABLED"] == "1" and set(syspkgs.CGO) <= set(kine.debs)


def test_a_cgo_recipe_without_packages_is_refused():
    recipe = {"name": "thing", "version": "v1.0.0", "module": "example.com/thing", "cgo": True,
              "binaries": {"thing": {"package": "", "version_args": ["--version"], "version_pattern": r"(\d+\.\d+\.\d+)"}}}
    with pytest.raises(toolchain.ToolchainError, match="cgo needs host_packages"):
        toolchain.Recipe.from_dict(recipe)
    with pytest.raises(toolchain.ToolchainError, match="host_packages must be a list of Debian package names"):
        toolchain.Recipe.from_dict({**recipe, "host_packages": ["Not A Package"]})


def _programs_run(path: Path) -> set[str]:
    """Literal program names a file runs (subprocess and run_command argv lists) or looks up (shutil.which)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        first = node.args[0]
        if name in RUNNERS and isinstance(first, ast.List) and first.elts and isinstance(first.elts[0], ast.Constant):
            out.add(first.elts[0].value)
        elif name == "which" and isinstance(first, ast.Constant):
            out.add(first.value)
    return out


def test_every_program_the_project_runs_has_its_package():
    files = sorted(ROOT.glob("plugins/**/*.py")) + sorted(p for p in (ROOT / "bin").iterdir() if p.is_file())
    provided = set(toolchain.registry(toolchain.Recipe.from_dict(r) for r in _all_recipes())) | NOT_DEBIAN
    run = {prog: str(p.relative_to(ROOT)) for p in files for prog in _programs_run(p)}
    assert {"iptables", "mmdebstrap", "dockerd"} <= set(run), "the scan found none of the programs it must see"
    unmapped = {prog: where for prog, where in run.items() if prog not in syspkgs.TOOLS and prog not in provided}
    assert not unmapped, f"programs run without their Debian package in syspkgs.TOOLS: {unmapped}"


def test_a_missing_package_without_root_is_refused_naming_it(monkeypatch):
    monkeypatch.setattr(syspkgs.os, "geteuid", lambda: 1000)
    absent = "fedbench-no-such-package"
    assert syspkgs.missing(["bash", absent]) == [absent]
    with pytest.raises(syspkgs.SystemPackagesError) as err:
        syspkgs.ensure(["bash", absent], why="building the thing")
    message = str(err.value)
    assert "building the thing needs Debian's fedbench-no-such-package" in message
    assert f"sudo apt-get install -y --no-install-recommends {absent}" in message
    assert syspkgs.ensure(["bash"], why="nothing to do") == []


def test_the_doctor_reads_the_recipes_packages_as_the_toolchain_does_and_changes_nothing():
    import importlib.machinery
    import importlib.util
    import subprocess
    import sys

    loader = importlib.machinery.SourceFileLoader("fedbench_doctor", str(ROOT / "bin" / "fedbench-doctor"))
    doctor = importlib.util.module_from_spec(importlib.util.spec_from_loader("fedbench_doctor", loader))
    loader.exec_module(doctor)
    kind_recipes = [toolchain.Recipe.from_dict(r) for r in yaml.safe_load(
        re.sub(r"\{\{[^}]*\}\}", "v1.0.0", (ROOT / "roles/cluster_kind/vars/main.yml").read_text()))["_cluster_kind_recipes"]]
    declared = {p for r in kind_recipes for p in (*r.host_packages, *(syspkgs.CGO if r.cgo else ()))}
    assert set(doctor.recipe_packages(ROOT / "roles/cluster_kind/vars/main.yml")) == declared
    needs = doctor.needs(docker=True)
    assert {"libseccomp-dev", "mmdebstrap", "docker.io", "gcc"} <= set(needs["make bench INVENTORY=inventories/kind"])
    assert {"gcc", "libc6-dev", "postgresql"} <= set(needs["make bench"]) and set(needs["make test"]) >= set(needs["make bench"])
    out = subprocess.run([sys.executable, str(ROOT / "bin" / "fedbench-doctor")], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode in (0, 1) and "Debian packages, per command" in out.stdout and "the toolchain's cache" in out.stdout, out.stdout + out.stderr
