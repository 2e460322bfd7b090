"""The framework registry and what reads it: role folders, the lifecycle
module's choices, the inventory check; and the rule that framework and
experiment roles test capabilities, never the testbed's name."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from ansible_collections.fedbench.testbed.plugins.filter.inventory import KNOWN, inventory_problems
from ansible_collections.fedbench.testbed.plugins.filter.kind import with_peer_server
from ansible_collections.fedbench.testbed.plugins.filter.registry import registered
from ansible_collections.fedbench.testbed.plugins.module_utils import frameworks
from ansible_collections.fedbench.testbed.plugins.modules import deployment_lifecycle

ROOT = Path(__file__).resolve().parents[2]
FRAMEWORK_ROLES = ROOT / "roles" / "frameworks"


def test_the_registry_holds_the_shipped_frameworks_each_of_one_kind():
    # More may be registered (adding one must not mean editing this test).
    assert {"kubefed", "native"} <= set(registered("placement")) and "istio" in registered("dataplane")
    assert sorted(registered("placement") + registered("dataplane")) == registered()
    assert all(issubclass(a, frameworks.base.Adapter) for a in frameworks.PLACEMENT.values())


def test_every_registered_framework_has_its_role_folder_and_nothing_else_does():
    assert sorted(p.name for p in FRAMEWORK_ROLES.iterdir() if p.is_dir()) == registered()
    for name in registered():
        role = FRAMEWORK_ROLES / name
        assert (role / "tasks" / "main.yml").is_file(), name
        assert (role / "tasks" / "teardown.yml").is_file(), name
        specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
        assert {"main", "teardown"} <= set(specs), f"{name}: argument specs for main and teardown"


def test_the_lifecycle_module_takes_its_choices_from_the_registry():
    assert deployment_lifecycle.ARGUMENT_SPEC["framework"]["choices"] == sorted(frameworks.PLACEMENT)


@pytest.mark.parametrize(
    "names, listed, dataplanes, expected",
    [
        (["fedbench_framework"], None, None, "unknown setting fedbench_framework (did you mean fedbench_frameworks?)"),
        (["fedbench_testbd"], None, None, "unknown setting fedbench_testbd (did you mean fedbench_testbed?)"),
        ([], ["native", "kubfed"], None,
         f"fedbench_frameworks lists 'kubfed', which is not registered (did you mean 'kubefed'?); registered: {', '.join(registered('placement'))}"),
        ([], ["istio"], None, "fedbench_frameworks lists 'istio', which is a data plane: list it in fedbench_dataplanes"),
        ([], None, ["kubefed"], "fedbench_dataplanes lists 'kubefed', which is a placement framework: list it in fedbench_frameworks"),
        ([], "native", None, "fedbench_frameworks must be a list of names, got 'native'"),
    ],
    ids=["singular", "typo", "unknown-framework", "dataplane-as-framework", "framework-as-dataplane", "not-a-list"],
)
def test_inventory_problems_name_the_setting(names, listed, dataplanes, expected):
    problems = inventory_problems(names, listed, dataplanes)
    assert any(expected in p for p in problems), problems


def test_a_clean_inventory_has_no_problem_and_the_example_says_it_is_one():
    assert inventory_problems(list(KNOWN), ["native", "kubefed"], ["istio"]) == []
    assert inventory_problems(list(KNOWN), [], []) == []
    assert any("this inventory is an example" in p for p in inventory_problems([], None, None, True))


@pytest.mark.parametrize("inventory", ["testbed", "kind", "existing"])
def test_the_shipped_inventories_pass_the_check(inventory):
    settings = {}
    for path in sorted((ROOT / "inventories" / inventory / "group_vars" / "all").glob("*.yml")):
        settings.update(yaml.safe_load(path.read_text()) or {})
    names = [k for k in settings if k.startswith("fedbench_")]
    problems = inventory_problems(names, settings.get("fedbench_frameworks"), settings.get("fedbench_dataplanes"), settings.get("fedbench_example", False))
    if inventory == "existing":
        assert len(problems) == 1 and "example" in problems[0]
    else:
        assert problems == []


def test_a_kind_cluster_gets_its_peer_server_from_its_control_plane_address():
    cluster = with_peer_server(({"name": "k"}, {"stdout": "172.18.0.3\n"}), 6443)
    assert cluster["capabilities"]["peer_server"] == "https://172.18.0.3:6443"
    assert with_peer_server(({"name": "k"}, {"stdout": ""}))["capabilities"] == {}


TESTBED_NAME_BRANCH = re.compile(r"\.testbed\b(?!\.)|fedbench_testbed|'(embedded|kind|existing)'|\"(embedded|kind|existing)\"|kwok/clusters")


@pytest.mark.parametrize(
    "role", sorted([*FRAMEWORK_ROLES.iterdir(), *(ROOT / "roles").glob("experiment_*"), ROOT / "roles" / "echo_server", ROOT / "roles" / "hollow_nodes"]),
    ids=lambda p: p.name,
)
def test_framework_and_experiment_roles_test_capabilities_not_the_testbed_name(role):
    hits = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in role.rglob("*.y*ml")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if not line.lstrip().startswith("#") and TESTBED_NAME_BRANCH.search(line)
    ]
    assert not hits, hits


def test_each_framework_names_what_the_clusters_lack():
    one = [{"name": "solo", "role": "host"}]
    problems = inventory_problems(["fedbench_clusters"], ["native", "kubefed"], ["istio"], False, one)
    assert "kubefed needs one cluster with role host and at least one with role member; the inventory has 1 host(s) and 0 member(s)" in problems
    assert "istio needs two clusters (the mesh joins the first two); the inventory has 1" in problems
    # Listing none means the defaults (native, kubefed; istio): they are checked too.
    assert len(inventory_problems([], None, None, False, one)) == 2
    assert inventory_problems([], ["native"], [], False, one) == []
    # An empty list of clusters is the testbed's own message to give.
    assert inventory_problems([], None, None, False, []) == []


def test_a_cluster_whose_numbers_are_not_numbers_is_named():
    problems = inventory_problems([], ["native"], [], False, [{"name": "a", "nodes": "four", "apiserver_port": 40001}])
    assert problems == ["cluster 'a': nodes must be a whole number, got 'four'"]


def test_control_plane_limits_are_for_the_embedded_testbed_only():
    clusters = [{"name": "h", "role": "host", "apiserver_port": 31443, "control_plane": {"etcd": {"cpus": 1}}}]
    assert not any("control_plane" in p for p in inventory_problems([], [], [], False, clusters, "embedded"))
    assert "cluster 'h': control_plane limits the embedded testbed's processes only; fedbench_testbed is 'kind'" in inventory_problems(
        [], [], [], False, clusters, "kind")


# --- the experiment registry's run side -------------------------------------------------------

from ansible_collections.fedbench.testbed.plugins.module_utils.experiments import registry as runs  # noqa: E402
from ansible_collections.fedbench.testbed.plugins.module_utils.report import registry as report_registry  # noqa: E402


def test_every_experiment_role_is_registered_whole_and_nothing_else_is():
    roles = sorted(p.name for p in (ROOT / "roles").iterdir() if p.name.startswith("experiment_"))
    assert roles == sorted(run.role for run in runs.RUNS)
    for run in runs.RUNS:
        assert run.per in runs.PER, run
        assert (run.per == "switch") == bool(run.setting), f"{run.name}: a switch names its setting, nothing else does"
        role = ROOT / "roles" / run.role
        specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
        assert "main" in specs and (role / "tasks" / "main.yml").is_file(), run.name
        if run.teardown:
            assert (ROOT / "roles" / run.teardown / "tasks" / "teardown.yml").is_file(), run.teardown


def test_what_the_runs_produce_is_what_the_report_knows():
    assert runs.produced() == list(report_registry.EXPERIMENTS)


def test_the_switches_are_known_settings_checked_as_bools():
    for setting in runs.settings():
        assert setting in KNOWN, setting
        assert inventory_problems([setting], switches={setting: "false"}) == []
        assert inventory_problems([setting], switches={setting: "maybe"}) == [f"{setting} must be true or false, got 'maybe'"]


def test_needs_are_capabilities_of_the_facts_contract():
    from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import embedded, kind

    known = set(embedded.capabilities(Path("/x"), True)) & set(kind.capabilities("https://x:6443"))
    assert {need for run in runs.RUNS for need in run.needs} <= known


def test_the_plan_runs_each_experiment_per_subject_or_switch_in_registry_order():
    local = [{"name": "c0", "capabilities": {"local_dir": "/w/c0"}}]
    plan = runs.plan(["native", "liqo", "kubefed"], ["istio"], {"fedbench_apimachinery": "false", "fedbench_sizing": True}, local,
                     skipped={"liqo": "needs real nodes"})
    assert [(e["name"], e["subject"]) for e in plan] == [
        ("lifecycle", "native"), ("lifecycle", "kubefed"), ("burst", "istio"), ("sizing", None)]
    assert plan[0]["tags"] == ["experiments", "lifecycle", "native"] and plan[0]["role"] == "experiment_lifecycle"
    assert all(not e["skip"] for e in plan)
    # Switches left unset take their defaults: the API machinery on, the sizing sweep off.
    assert [e["name"] for e in runs.plan([], [], {}, local)] == ["apimachinery"]
    assert runs.plan([], [], {}, local)[0]["tags"] == ["experiments", "apimachinery", "scale"]


def test_an_experiment_whose_needs_a_cluster_lacks_says_so_and_which():
    plan = runs.plan([], [], {"fedbench_apimachinery": False, "fedbench_sizing": "yes"}, [{"name": "kind-a", "capabilities": {"local_dir": None}}])
    assert plan[0]["skip"] == "experiment sizing needs local_dir of every cluster: cluster 'kind-a' lacks local_dir"


def test_the_playbooks_and_the_report_core_name_no_framework_and_no_experiment():
    names = set(runs.names()) | set(runs.produced()) | set(registered()) | {"hollow_nodes"}
    core = ["plugins/module_utils/report/" + f for f in ("page.py", "comparison.py", "merge.py", "spec.py", "plots.py", "__init__.py")]
    for path in [*(str(p.relative_to(ROOT)) for p in sorted((ROOT / "playbooks").rglob("*.yml"))), "site.yml", *core]:
        text = (ROOT / path).read_text()
        found = sorted(n for n in names if re.search(rf"(?<![\w.-]){re.escape(n)}(?![\w-])", text))
        assert not found, f"{path} names {found}"


def test_the_readme_names_every_experiments_tag_and_docs_frameworks_every_frameworks():
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Tags"):].split("\n\n")[2]
    named = {t.strip("` ") for cell in re.findall(r"^\| ([^|]+) \|", table, re.M) for t in cell.split(",")}
    wanted = {tag for run in runs.RUNS for tag in (run.name, *run.tags)} | {"experiments", "frameworks"}
    assert wanted <= named, f"README's tags table lacks {sorted(wanted - named)}"
    page = (ROOT / "docs" / "frameworks.md").read_text()
    listed = set(re.findall(r"^\| [^|]+ \| `([a-z0-9-]+)`", page, re.M))
    assert set(registered()) <= listed, f"docs/frameworks.md's table lacks {sorted(set(registered()) - listed)}"


def test_the_defaults_are_registered_frameworks_in_their_order():
    from ansible_collections.fedbench.testbed.plugins.filter.registry import default_frameworks

    assert default_frameworks("placement") == ["native", "kubefed"] and default_frameworks("dataplane") == ["istio"]
    assert set(frameworks.DEFAULTS) <= set(registered())


def test_no_report_module_names_a_framework():
    """What a framework adds to the report (an emulation's name, how its paths differ) comes from its own module."""
    for path in sorted((ROOT / "plugins" / "module_utils" / "report").glob("*.py")):
        text = path.read_text()
        found = sorted(n for n in registered() if re.search(rf"(?<![\w.-]){re.escape(n)}(?![\w-])", text))
        assert not found, f"{path.relative_to(ROOT)} names {found}"
