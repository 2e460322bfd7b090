"""Each include of the toolchain role answers with its own binaries.

Two includes in one play: the first has to fetch its binary (through the
role's background job, as a build would), the second finds its binary in the
cache. The second's answer once came from the first's job (a fact that
outlived the include), so it named the first's binary and lost its own. The
'download' is a file:// URL of this test's own, with its checksum: nothing
leaves the machine.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess

from .conftest import ROOT, VENV_BIN

SCRIPT = "#!/bin/sh\necho '{name} version {version}'\n"


def _recipe(name: str, url: str = "", sums: str = "") -> dict:
    recipe = {"name": name, "version": "v1.0.0", "no_build": "test binaries are fetched only",
              "binaries": {name: {"package": "", "version_args": ["--version"], "version_pattern": r"version (\d+\.\d+\.\d+)"}}}
    if url:
        recipe["download"] = {name: {"url": url, "sums": sums}}
    return recipe


PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: First include, which has to fetch its binary
      ansible.builtin.include_role:
        name: toolchain
      vars:
        toolchain_source: download
        toolchain_cache_dir: {cache}
        toolchain_recipes: {recipes}
        toolchain_components: [fetched-tool]
        toolchain_poll: 1
    - name: Second include, whose binary is cached
      ansible.builtin.include_role:
        name: toolchain
      vars:
        toolchain_source: download
        toolchain_cache_dir: {cache}
        toolchain_recipes: {recipes}
        toolchain_components: [cached-tool]
        toolchain_poll: 1
    - name: What the second include answered
      ansible.builtin.copy:
        content: "{{{{ {{'binaries': toolchain_binaries, 'details': toolchain_details}} | to_json }}}}"
        dest: {out}
        mode: "0600"
"""


def test_a_cached_include_after_a_fetching_one_returns_its_own_binary(tmp_path):
    cache = tmp_path / "cache"
    release = tmp_path / "release"
    release.mkdir()
    artifact = release / "fetched-tool"
    artifact.write_text(SCRIPT.format(name="fetched-tool", version="1.0.0"))
    (release / "sums").write_text(f"{hashlib.sha256(artifact.read_bytes()).hexdigest()}  fetched-tool\n")
    cached = cache / "bin" / "cached-tool" / "v1.0.0" / "cached-tool"
    cached.parent.mkdir(parents=True)
    cached.write_text(SCRIPT.format(name="cached-tool", version="1.0.0"))
    cached.chmod(0o755)
    recipes = [_recipe("fetched-tool", f"file://{artifact}", f"file://{release / 'sums'}"), _recipe("cached-tool")]
    out = tmp_path / "answer.json"
    play = tmp_path / "play.yml"
    play.write_text(PLAY.format(cache=cache, recipes=json.dumps(recipes), out=out))
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", "-e", f"ansible_python_interpreter={VENV_BIN / 'python'}", str(play)],
        cwd=ROOT, env={**os.environ, "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}", "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
                       "ANSIBLE_NOCOLOR": "1"},
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "TASK [toolchain : Start the download or build" in proc.stdout  # the first include did fetch, in the background
    answer = json.loads(out.read_text())
    assert answer["binaries"] == {
        "fetched-tool": str(cache / "bin" / "fetched-tool" / "v1.0.0" / "fetched-tool"),
        "cached-tool": str(cached),
    }
    assert [(d["name"], d["source"]) for d in answer["details"]] == [("cached-tool", "cache")]
