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
