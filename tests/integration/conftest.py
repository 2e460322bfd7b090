"""Real clusters of the embedded testbed: real API servers and controllers.

Each test gets its own work directory and its own ports; every cluster a
test starts is torn down in a finalizer, and the finalizer fails the test if
any process of its testbed is still alive afterwards (a leak is a failure).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ansible_collections.fedbench.testbed.plugins.module_utils.common import process
from ansible_collections.fedbench.testbed.plugins.module_utils.build import toolchain
from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import embedded

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def binaries() -> dict[str, str]:
    # Tests never download: binaries come from the cache or a Go build.
    source = os.environ.get("FEDBENCH_TOOLCHAIN_SOURCE", "build")
    resolved = toolchain.ensure((*toolchain.TESTBED_COMPONENTS, "kine"), source=source, report=lambda line: print(f"[toolchain] {line}", flush=True))
    return {name: item.path for name, item in resolved.items()}


class Testbeds:
    """Starts embedded testbeds for one test and stops every one of them."""

    __test__ = False  # not a test class

    def __init__(self, root: Path, binaries: dict[str, str]):
        self.root = root
        self.binaries = binaries
        self.beds: list[embedded.EmbeddedTestbed] = []

    def bed(self, name: str = "work") -> embedded.EmbeddedTestbed:
        bed = embedded.EmbeddedTestbed(
            work_dir=self.root / name,
            binaries=embedded.Binaries.from_mapping(self.binaries),
            kube_version="v" + toolchain.Versions().kubernetes.lstrip("v"),
        )
        self.beds.append(bed)
        return bed

    @staticmethod
    def specs(*nodes: int, roles: tuple[str, ...] = ()) -> list[dict]:
        ports = embedded.free_ports(len(nodes))
        return [
            {"name": f"c{i}", "role": (roles[i] if i < len(roles) else ("host" if i == 0 else "member")), "nodes": n, "apiserver_port": ports[i]}
            for i, n in enumerate(nodes)
        ]

    def up(self, *nodes: int, name: str = "work"):
        bed = self.bed(name)
        facts, _ = bed.up(embedded.parse_specs(self.specs(*nodes)))
        return bed, facts

    def close(self) -> list[str]:
        leaks = []
        for bed in self.beds:
            bed.down()
            left = bed.leftovers()
            if left["processes"]:
                leaks.append(f"{bed.work_dir}: {left['processes']}")
        return leaks


@pytest.fixture
def testbeds(tmp_path, binaries):
    beds = Testbeds(tmp_path, binaries)
    try:
        yield beds
    finally:
        leaks = beds.close()
    assert not leaks, f"teardown left processes: {leaks}"


def wait_until(predicate, timeout: float, what: str):
    """The predicate's first true value within the timeout, or a failure naming what was awaited."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def api_client(facts: embedded.ClusterFacts):
    from kubernetes import config

    return config.new_client_from_config(config_file=facts.kubeconfig, context=facts.context)


# --------------------------------------------------------------------------
# Running the playbooks as a user would.
# --------------------------------------------------------------------------


class Playbooks:
    def __init__(self, root: Path):
        self.root = root
        self.work_dir = root / "work"
        self.inventory = root / "inventory"

    def inventory_with(self, group_vars: dict) -> Path:
        (self.inventory / "group_vars" / "all").mkdir(parents=True, exist_ok=True)
        (self.inventory / "hosts.yml").write_text((ROOT / "inventories/testbed/hosts.yml").read_text())
        # A test runs only the frameworks it names: native alone unless it says otherwise.
        group_vars = {"fedbench_frameworks": ["native"], "fedbench_dataplanes": [], **group_vars}
        (self.inventory / "group_vars/all/testbed.yml").write_text(yaml.safe_dump(group_vars))
        return self.inventory

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
            ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_FORCE_COLOR="0",
            FEDBENCH_WORK_DIR=str(self.work_dir),
            FEDBENCH_RESULTS_DIR=str(self.root / "results"),
        )
        env.update(extra)
        return env

    def command(self, *playbooks: str, extra: tuple[str, ...] = ()) -> list[str]:
        return [
            str(VENV_BIN / "ansible-playbook"),
            "-i", str(self.inventory),
            "-e", "toolchain_source=" + os.environ.get("FEDBENCH_TOOLCHAIN_SOURCE", "build"),
            *extra,
            *(str(ROOT / p) for p in playbooks),
        ]

    def run(self, *playbooks: str, extra: tuple[str, ...] = (), timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.command(*playbooks, extra=extra), cwd=ROOT, env=self.env(), capture_output=True, text=True, timeout=timeout, check=False
        )

    def teardown(self) -> subprocess.CompletedProcess:
        return self.run("playbooks/teardown.yml")


def _torn_down_after(pb: Playbooks):
    try:
        yield pb
    finally:
        if pb.inventory.exists():
            pb.teardown()
        left = process.processes_under(pb.work_dir)
        process.kill_all(left)
    assert not left, f"playbook run left processes: {left}"


@pytest.fixture
def playbooks(tmp_path, binaries):
    yield from _torn_down_after(Playbooks(tmp_path))


@pytest.fixture(scope="module")
def module_playbooks(tmp_path_factory, binaries):
    """One playbook workspace for a whole test module: its testbed is
    provisioned once, and torn down (and checked) when the module ends."""
    yield from _torn_down_after(Playbooks(tmp_path_factory.mktemp("module")))


def stop_supervisor(work_dir: Path) -> None:
    """Stop the embedded testbed's supervisor, for a test of what a component's
    death does when nothing restarts it."""
    embedded.EmbeddedTestbed(work_dir=work_dir, binaries=None).stop_supervisor()


def client_for(cluster: dict):
    """A kubernetes API client for a cluster record (kubeconfig, context)."""
    from kubernetes import config

    return config.new_client_from_config(config_file=cluster["kubeconfig"], context=cluster["context"])


# --------------------------------------------------------------------------
# One pair of kind clusters for every real-node module.
# --------------------------------------------------------------------------

KIND_HOST, KIND_MEMBER = "fbk-host", "fbk-m1"


class KindPair:
    """The session's kind clusters: a host with a worker node and a member, provisioned once
    through the playbooks as a user would; each module installs (and removes) its framework
    on them. The last test of the session that uses them tears them down and checks that
    nothing is left (tests marked after_every_kind_test run after every other user)."""

    def __init__(self, root: Path):
        self.pb = Playbooks(root)
        self.root, self.work_dir = root, self.pb.work_dir
        self.ports = embedded.free_ports(2)
        self.clusters: list[dict] = []
        self.use()

    def use(self, **settings) -> "KindPair":
        """The inventory for the next playbook runs: the pair, and a module's own settings."""
        self.pb.inventory_with({
            "fedbench_testbed": "kind",
            "fedbench_clusters": [
                {"name": KIND_HOST, "role": "host", "nodes": 1, "apiserver_port": self.ports[0]},
                {"name": KIND_MEMBER, "role": "member", "nodes": 0, "apiserver_port": self.ports[1]},
            ],
            "fedbench_frameworks": ["native"], "fedbench_dataplanes": [], "fedbench_apimachinery": False, **settings,
        })
        return self

    def facts(self) -> list[dict]:
        return [{"name": n, "role": r, "kubeconfig": str(self.work_dir / "kubeconfigs" / n), "context": f"kind-{n}",
                 "capabilities": {"simulated_nodes": False}} for n, r in ((KIND_HOST, "host"), (KIND_MEMBER, "member"))]

    def run(self, *playbooks: str, extra: tuple[str, ...] = (), timeout: float = 600) -> subprocess.CompletedProcess:
        return self.pb.run(*playbooks, extra=extra, timeout=timeout)

    def framework_teardown(self, name: str) -> subprocess.CompletedProcess:
        """One framework's own teardown entry point (what playbooks/teardown.yml calls before the clusters go)."""
        play = self.root / f"{name}-teardown.yml"
        play.write_text(
            "- hosts: controller\n  gather_facts: false\n  vars_files: [%s]\n  tasks:\n"
            "    - ansible.builtin.include_role: {name: frameworks/%s, tasks_from: teardown}\n" % (ROOT / "playbooks/vars/fedbench.yml", name))
        return subprocess.run(self.pb.command(str(play)), cwd=ROOT, env=self.pb.env(), capture_output=True, text=True, timeout=900, check=False)


@pytest.fixture(scope="session")
def kind_host_settings():
    """The machine's settings before any kind node starts (none runs now)."""
    from ansible_collections.fedbench.testbed.plugins.module_utils.build import engine

    return engine.read_sysctls()


@pytest.fixture(scope="session")
def kind_pair(tmp_path_factory, binaries, kind_host_settings):
    pair = KindPair(tmp_path_factory.mktemp("kind"))
    up = pair.run("playbooks/toolchain.yml", "playbooks/provision.yml", timeout=3600)
    assert up.returncode == 0, up.stdout[-6000:]
    pair.provision_output = up.stdout
    pair.clusters = pair.facts()
    try:
        yield pair
    finally:
        pair.use().pb.teardown()


def pytest_collection_modifyitems(session, config, items):
    """Tests marked after_every_kind_test (the pair's teardown) run after the last other test that uses the pair."""
    last = [item for item in items if item.get_closest_marker("after_every_kind_test")]
    for item in last:
        items.remove(item)
    users = [n for n, item in enumerate(items) if "kind_pair" in getattr(item, "fixturenames", ())]
    at = (users[-1] + 1) if users else len(items)
    items[at:at] = last
