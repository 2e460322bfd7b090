"""Make the collection importable as ansible_collections.fedbench.testbed.

A SIGTERM (a CI timeout, `kill`) becomes a KeyboardInterrupt, which pytest
answers by running every fixture's teardown: the clusters a test started are
stopped instead of being left behind.
"""
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "collections"))


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


signal.signal(signal.SIGTERM, _interrupt)


def pinned() -> dict[str, str]:
    """The pinned versions, as the toolchain role's defaults hold them (tests take versions from here)."""
    import yaml

    return yaml.safe_load((ROOT / "roles" / "toolchain" / "defaults" / "main.yml").read_text())["toolchain_versions"]


def framework_recipe(name: str) -> dict:
    """A framework role's toolchain recipe (vars/main.yml) with its version pin (defaults/main.yml)
    filled in, as the toolchain role receives it."""
    import jinja2
    import yaml

    import re

    role = ROOT / "roles" / "frameworks" / name
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text())
    recipe = yaml.safe_load((role / "vars" / "main.yml").read_text())[f"{name}_toolchain_recipe"]
    env = jinja2.Environment()
    env.filters["regex_replace"] = lambda value, pattern, replacement="": re.sub(pattern, replacement, str(value))
    pins = {k: v for k, v in defaults.items() if k.startswith(f"{name}_") and isinstance(v, str) and "{{" not in v}
    return yaml.safe_load(env.from_string(yaml.safe_dump(recipe)).render(**pins))


def render_manifests(work_dir: Path, clusters: list[dict]) -> Path:
    """The mesh's and the echo server's Kubernetes manifests as their roles render them
    (their `manifests` entry points, with the roles' own defaults), for ``clusters``
    given as cluster facts; returns the work dir they were written under."""
    import os
    import subprocess

    import yaml

    play = [{
        "name": "Render the manifests through the roles",
        "hosts": "localhost",
        "gather_facts": False,
        "vars": {"fedbench_work_dir": str(work_dir), "fedbench_root": str(ROOT), "testbed_clusters": clusters},
        "tasks": [
            {"name": "Istio's", "ansible.builtin.include_role": {"name": "frameworks/istio", "tasks_from": "manifests"}},
            {"name": "The echo server's", "ansible.builtin.include_role": {"name": "echo_server", "tasks_from": "manifests"}},
        ],
    }]
    work_dir.mkdir(parents=True, exist_ok=True)
    playbook = work_dir / "render.yml"
    playbook.write_text(yaml.safe_dump(play, sort_keys=False))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run(["ansible-playbook", "-i", "localhost,", "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}", str(playbook)],
                          capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300, check=False)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return work_dir


def kind_like(name: str, role: str) -> dict:
    """Cluster facts of a cluster on real nodes, for rendering (nothing is contacted)."""
    return {"name": name, "role": role, "kubeconfig": f"/nonexistent/{name}", "context": f"kind-{name}", "server": "https://127.0.0.1:6443",
            "testbed": "kind", "capabilities": {"simulated_nodes": False, "node_simulator": False, "local_dir": None,
                                                "image_loader": "kind-load", "owned": True, "peer_server": "https://172.18.0.2:6443"}}
