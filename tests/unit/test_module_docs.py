"""Every module's documentation loads in ansible-doc (a broken doc block hides a module's options)."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py"))


def test_ansible_doc_reads_every_module():
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    names = [f"fedbench.testbed.{m}" for m in MODULES]
    proc = subprocess.run(["ansible-doc", "--json", *names], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    docs = json.loads(proc.stdout)
    assert sorted(docs) == sorted(names)
    for name, doc in docs.items():
        options = doc["doc"].get("options") or {}
        assert all(o.get("description") for o in options.values()), name


def test_the_shared_argument_specs_are_what_their_doc_fragments_say():
    """The options every experiment module shares (common/runner.py) and their documentation
    (plugins/doc_fragments/) name the same options with the same types, defaults and required."""
    import yaml

    from ansible_collections.fedbench.testbed.plugins.doc_fragments import cluster, experiment
    from ansible_collections.fedbench.testbed.plugins.module_utils.common import runner

    for fragment, spec in ((cluster, runner.CLUSTER_ARG_SPEC), (experiment, runner.EXPERIMENT_ARG_SPEC)):
        documented = yaml.safe_load(fragment.ModuleDocFragment.DOCUMENTATION)["options"]
        assert set(documented) == set(spec), (fragment.__name__, sorted(set(documented) ^ set(spec)))
        for name, option in spec.items():
            doc = documented[name]
            for key in ("type", "elements", "default", "required"):
                assert doc.get(key, False if key == "required" else None) == option.get(key, False if key == "required" else None), (name, key)
