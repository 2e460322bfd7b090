"""docs/extending.md kept true: in a throw-away copy of the tree, a new placement framework
and a new experiment are added by touching only the files the page names, and the checks
that derive from the registries (and the layering, syntax and module-documentation checks)
pass on the copy. If another file had to change for them (a list somewhere that names
frameworks or experiments), one of those checks fails and names it."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXTENDING = (ROOT / "docs" / "extending.md").read_text()

ROLE_SPECS = """---
argument_specs:
  main:
    short_description: {what}
    options: {{}}
{teardown}"""


def _copy(dest: Path) -> None:
    tracked = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, tracked):
        src = ROOT / name
        if src.is_symlink():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.readlink(src), dest / name)
        elif src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def _write(tree: Path, name: str, text: str, touched: list[str]) -> None:
    path = tree / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    touched.append(name)


def _edit(tree: Path, name: str, old: str, new: str, touched: list[str]) -> None:
    path = tree / name
    text = path.read_text()
    assert text.count(old) == 1, f"{name}: the line the page names to edit is not there once: {old!r}"
    path.write_text(text.replace(old, new))
    touched.append(name)


def add_framework(tree: Path) -> list[str]:
    """docs/extending.md, "A new placement framework": one role folder, one adapter module, two one-line
    edits and a row of the frameworks page."""
    touched: list[str] = []
    role = "roles/frameworks/plain"
    _write(tree, f"{role}/defaults/main.yml", "---\nplain_version: v0.0.1\n", touched)
    _write(tree, f"{role}/meta/main.yml", "---\ngalaxy_info: {author: fedbench, description: plain, license: GPL-3.0-or-later, min_ansible_version: '2.15'}\n"
           "dependencies: []\n", touched)
    _write(tree, f"{role}/meta/argument_specs.yml", ROLE_SPECS.format(
        what="Install plain (nothing to install).",
        teardown="  teardown:\n    short_description: Stop what plain runs here (nothing).\n    options: {}\n"), touched)
    _write(tree, f"{role}/tasks/main.yml", "---\n- name: Plain needs nothing installed\n  ansible.builtin.debug:\n    msg: plain\n", touched)
    _write(tree, f"{role}/tasks/teardown.yml", "---\n- name: Plain runs nothing here\n  ansible.builtin.debug:\n    msg: plain\n", touched)
    _write(tree, "plugins/module_utils/frameworks/plain.py", '''"""A throw-away framework: native Kubernetes under another name."""
from __future__ import annotations

from ansible_collections.fedbench.testbed.plugins.module_utils.frameworks.native import NativeAdapter

NAME = "plain"
KIND = "placement"


class PlainAdapter(NativeAdapter):
    name = "plain"


ADAPTER = PlainAdapter
''', touched)
    _edit(tree, "plugins/module_utils/frameworks/__init__.py", "import edgenet, istio, kubefed, liqo, native", "import edgenet, istio, kubefed, liqo, native, plain",
          touched)
    _edit(tree, "inventories/testbed/group_vars/all/frameworks.yml", "fedbench_frameworks: [native, kubefed, liqo, edgenet]",
          "fedbench_frameworks: [native, kubefed, liqo, edgenet, plain]", touched)
    _edit(tree, "docs/frameworks.md", "| native Kubernetes | `native` |", "| plain | `plain` | as is | as is |\n| native Kubernetes | `native` |", touched)
    return touched


def add_experiment(tree: Path) -> list[str]:
    """docs/extending.md, "A new experiment": its measuring module, thin module, report module and role,
    one import line, one registry entry and one row of the README's tags table."""
    touched: list[str] = []
    _write(tree, "plugins/module_utils/experiments/probe.py", '''"""A throw-away experiment: how long one GET of /version takes."""
from __future__ import annotations

import time
from typing import Any, Mapping


def probe_from_params(params: Mapping[str, Any]) -> dict[str, Any]:
    start = time.monotonic()
    return {"seconds": time.monotonic() - start}
''', touched)
    _write(tree, "plugins/modules/probe.py", '''#!/usr/bin/python
from __future__ import annotations

DOCUMENTATION = r"""
module: probe
short_description: A throw-away experiment
description: [Times one request.]
options:
  repetition: {type: int, default: 1, description: "Which repetition."}
author: fedbench contributors
"""
EXAMPLES = r"""
- name: Probe
  fedbench.testbed.probe:
"""
RETURN = r"""
seconds: {description: How long it took., returned: success, type: float}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fedbench.testbed.plugins.module_utils.experiments import probe


def main() -> None:
    module = AnsibleModule(argument_spec=dict(repetition=dict(type="int", default=1)), supports_check_mode=True)
    module.exit_json(changed=False, **probe.probe_from_params(module.params))


if __name__ == "__main__":
    main()
''', touched)
    _write(tree, "plugins/module_utils/report/probe.py", '''"""The throw-away experiment in results and the report."""
from __future__ import annotations

from ansible_collections.fedbench.testbed.plugins.module_utils.report.spec import LOWER, Experiment, over_samples

EXPERIMENTS = [
    Experiment(name="probe", section="Probe", point=lambda parameters: "default", order=lambda parameters: (0,),
               summarize=over_samples({"seconds": "seconds"}), headline={"seconds": LOWER}),
]
''', touched)
    role = "roles/experiment_probe"
    _write(tree, f"{role}/defaults/main.yml", "---\nexperiment_probe_repetitions: 1\n", touched)
    _write(tree, f"{role}/meta/main.yml", "---\ngalaxy_info: {author: fedbench, description: probe, license: GPL-3.0-or-later, min_ansible_version: '2.15'}\n"
           "dependencies: []\n", touched)
    _write(tree, f"{role}/meta/argument_specs.yml", ROLE_SPECS.format(what="Probe.", teardown=""), touched)
    _write(tree, f"{role}/tasks/main.yml", "---\n- name: Probe\n  fedbench.testbed.probe:\n    repetition: 1\n", touched)
    _edit(tree, "plugins/module_utils/report/registry.py", "import lifecycle, burst, apimachinery, sizing", "import lifecycle, burst, apimachinery, sizing, probe",
          touched)
    _edit(tree, "plugins/module_utils/experiments/registry.py", '''        produces=("sizing",)),
)''', '''        produces=("sizing",)),
    Run("probe", per="switch", setting="fedbench_probe", produces=("probe",)),
)''', touched)
    _edit(tree, "README.md", "| `report` |", "| `probe` | a throw-away experiment |\n| `report` |", touched)
    return touched


def _page_names(section: str) -> set[str]:
    """The files a section of docs/extending.md names in its table (first column)."""
    body = EXTENDING.split(f"## {section}")[1].split("\n## ")[0]
    return {m for cell in re.findall(r"^\| (.+?) \|", body, re.M) for m in re.findall(r"`([^`]+)`", cell)}


def _named(touched: list[str], names: set[str]) -> list[str]:
    """The touched files no entry of the page's table covers (an entry ending in / covers its folder)."""
    def covered(path: str) -> bool:
        for name in names:
            pattern = re.escape(name).replace(r"<name>", "[a-z_]+").replace(r"\*", "[^/]+")
            if re.fullmatch(pattern + (".*" if name.endswith("/") else ""), path):
                return True
        return False
    return [t for t in touched if not covered(t)]


def test_a_framework_and_an_experiment_added_as_the_page_says_pass_every_registry_check(tmp_path):
    tree = tmp_path / "tree"
    _copy(tree)
    framework = add_framework(tree)
    experiment = add_experiment(tree)
    # Only what the page names was touched, and as many edits of existing files as it says.
    assert _named(framework, _page_names("A new placement framework")) == []
    assert _named(experiment, _page_names("A new experiment")) == []
    edits = lambda touched: [t for t in touched if (ROOT / t).exists()]  # noqa: E731
    assert len(edits(framework)) == 3 and len(edits(experiment)) == 3, (edits(framework), edits(experiment))
    checks = ["tests/unit/test_registry.py", "tests/unit/test_layers.py", "tests/unit/test_module_docs.py", "tests/unit/test_syntax.py"]
    env = dict(os.environ, ANSIBLE_CONFIG=str(tree / "ansible.cfg"), PYTHONDONTWRITEBYTECODE="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *checks], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    # The copy's registries were the ones read (not this tree's).
    probe = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, 'collections');"
                            "from ansible_collections.fedbench.testbed.plugins.module_utils import frameworks;"
                            "from ansible_collections.fedbench.testbed.plugins.module_utils.report import registry;"
                            "print(frameworks.names('placement'), list(registry.EXPERIMENTS))"],
                           cwd=tree, capture_output=True, text=True, check=True).stdout
    assert "'plain'" in probe and "'probe'" in probe, probe
