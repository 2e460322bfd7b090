"""Bad inventory settings fail before anything starts, with a message that names them
(ansible-playbook as a user runs it; no cluster is started, none is needed)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path, settings: dict, playbook: str, *extra: str) -> subprocess.CompletedProcess:
    inventory = tmp_path / "inventory"
    (inventory / "group_vars" / "all").mkdir(parents=True)
    (inventory / "hosts.yml").write_text((ROOT / "inventories" / "testbed" / "hosts.yml").read_text())
    (inventory / "group_vars" / "all" / "testbed.yml").write_text(yaml.safe_dump(settings))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", FEDBENCH_WORK_DIR=str(tmp_path / "work"),
               FEDBENCH_RESULTS_DIR=str(tmp_path / "results"), FEDBENCH_RUN_ID="check",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run(["ansible-playbook", "-i", str(inventory), *extra, str(ROOT / playbook)], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300, check=False)


CLUSTERS = [{"name": "c1", "role": "host", "nodes": 1, "apiserver_port": 30999}]


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"fedbench_framework": ["native"]}, "unknown setting fedbench_framework (did you mean fedbench_frameworks?)"),
        ({"fedbench_frameworks": ["native", "kubfed"]}, "fedbench_frameworks lists 'kubfed', which is not registered (did you mean 'kubefed'?)"),
        ({"fedbench_frameworks": ["native", "istio"]}, "fedbench_frameworks lists 'istio', which is a data plane: list it in fedbench_dataplanes"),
        ({"fedbench_example": True}, "this inventory is an example"),
        ({"fedbench_apimachinery": "sometimes"}, "fedbench_apimachinery must be true or false, got 'sometimes'"),
    ],
    ids=["singular", "misspelt-framework", "dataplane-as-framework", "example", "switch-not-a-bool"],
)
def test_provisioning_refuses_bad_settings_before_anything_starts(tmp_path, settings, message):
    proc = _run(tmp_path, {"fedbench_testbed": "embedded", "fedbench_clusters": CLUSTERS, **settings}, "playbooks/provision.yml")
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0 and message in out, out[-3000:]
    assert not (tmp_path / "work" / "kwok").exists(), "something was started"


def test_a_run_that_would_measure_nothing_fails(tmp_path):
    settings = {"fedbench_testbed": "embedded", "fedbench_clusters": CLUSTERS, "fedbench_frameworks": [], "fedbench_dataplanes": [],
                "fedbench_apimachinery": False}
    proc = _run(tmp_path, settings, "playbooks/experiments.yml")
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0 and "nothing to measure" in out, out[-3000:]


def test_tags_that_name_an_unlisted_framework_fail(tmp_path):
    settings = {"fedbench_testbed": "embedded", "fedbench_clusters": CLUSTERS, "fedbench_frameworks": ["native"], "fedbench_dataplanes": []}
    proc = _run(tmp_path, settings, "playbooks/experiments.yml", "--tags", "kubefed")
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0 and "--tags names kubefed, which the inventory does not list" in out, out[-3000:]


def test_the_experiment_plan_reads_the_inventorys_switches_and_the_command_lines(tmp_path):
    """fedbench_apimachinery false in the inventory, fedbench_sizing true as an -e string: the
    plan has the lifecycle and the sizing sweep, and says that these clusters (no testbed facts,
    so no capabilities) lack what the sweep needs; --tags sizing runs nothing else."""
    settings = {"fedbench_testbed": "embedded", "fedbench_clusters": CLUSTERS, "fedbench_frameworks": ["native"], "fedbench_dataplanes": [],
                "fedbench_apimachinery": False}
    proc = _run(tmp_path, settings, "playbooks/experiments.yml", "-e", "fedbench_sizing=true", "--tags", "sizing")
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 0, out[-3000:]
    assert "experiment sizing needs local_dir of every cluster: cluster 'c1' lacks local_dir" in out, out[-3000:]
    assert "experiment_apimachinery" not in out and "Experiment apimachinery" not in out, out[-3000:]
    assert "lifecycle, native" not in out, out[-3000:]  # the lifecycle's include ran, its tasks did not (tags)


def test_tags_that_name_a_listed_framework_pass_the_check(tmp_path):
    """The README's --tags <framework>: the check passes (the message is rendered either way and
    must not look a runnable framework up among the skipped ones); the run goes on to the
    testbed's health check, which fails here only because nothing was provisioned."""
    settings = {"fedbench_testbed": "embedded", "fedbench_clusters": CLUSTERS, "fedbench_frameworks": ["native"], "fedbench_dataplanes": []}
    proc = _run(tmp_path, settings, "playbooks/experiments.yml", "--tags", "native")
    out = " ".join((proc.stdout + proc.stderr).split())
    assert "Check that the run measures something" in out and "Check that the testbed is whole before lifecycle" in out, out[-3000:]
    assert "has no attribute" not in out, out[-3000:]
