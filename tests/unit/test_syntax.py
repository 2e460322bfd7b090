"""Every task file of every role parses, on every testbed path.

`make test` runs the embedded testbed; the kind and existing-cluster paths
(and any branch a `when:` skips) are not executed there, so a parse error in
them would hide until a user hits it. Here one play imports every task file
statically (`import_tasks` parses a file whatever its `when:` says) and
`ansible-playbook --syntax-check` reads it, with the playbooks themselves.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
TASK_FILES = sorted(ROOT.glob("roles/**/tasks/*.yml"))
PLAYBOOKS = ["site.yml", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "playbooks").glob("*.yml"))]


def _run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run(["ansible-playbook", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300, check=False)


def test_there_are_task_files_to_check():
    # A glob that finds nothing would make the next test pass on nothing.
    assert len(TASK_FILES) > 20, TASK_FILES


def test_every_role_task_file_parses(tmp_path):
    play = [
        {
            "name": "Parse every role task file",
            "hosts": "localhost",
            "gather_facts": False,
            "tasks": [
                {"name": f"Import {path.relative_to(ROOT)}", "ansible.builtin.import_tasks": str(path)}
                for path in TASK_FILES
            ],
        }
    ]
    playbook = tmp_path / "every-task-file.yml"
    playbook.write_text(yaml.safe_dump(play, sort_keys=False))
    proc = _run("--syntax-check", "-i", "localhost,", str(playbook))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]


def test_every_playbook_parses():
    for playbook in PLAYBOOKS:
        proc = _run("--syntax-check", "-i", "inventories/testbed", playbook)
        assert proc.returncode == 0, f"{playbook}: {(proc.stdout + proc.stderr)[-3000:]}"


SCRIPTS = sorted(p for d in ("benchmarks", "bin") for p in (ROOT / d).iterdir() if p.is_file() and p.read_text().startswith("#!"))


def test_there_are_scripts_to_check():
    assert len(SCRIPTS) >= 7, SCRIPTS


def test_every_script_parses_and_its_project_imports_resolve():
    # Benchmarks and bin/ scripts are not run by `make test`: parse each, and
    # import what it imports from the collection (a moved module would
    # otherwise break a benchmark silently).
    import ast
    import importlib

    for script in SCRIPTS:
        tree = ast.parse(script.read_text(), str(script))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ansible_collections.fedbench"):
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(module, alias.name) or importlib.util.find_spec(f"{node.module}.{alias.name}"), (
                        f"{script.name}: {node.module} has no {alias.name}"
                    )
