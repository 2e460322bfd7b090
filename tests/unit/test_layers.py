"""module_utils is layered: no module imports from a layer above its own.

common < build < kube < testbed < measure < results < frameworks < experiments < report

Every import is read, the ones inside functions too (a lazy import is still
a dependency), and every folder of module_utils must have a rank here, so a
new folder cannot slip past the rule.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

MU = Path(__file__).resolve().parents[2] / "plugins" / "module_utils"
PREFIX = "ansible_collections.fedbench.testbed.plugins.module_utils"
LAYERS = ["common", "build", "kube", "testbed", "measure", "results", "frameworks", "experiments", "report"]
RANK = {name: i for i, name in enumerate(LAYERS)}
FILES = sorted(MU.rglob("*.py"))


def _layer(path: Path) -> str:
    return path.relative_to(MU).parts[0]


def _imported_layers(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PREFIX):
            rest = node.module[len(PREFIX):].lstrip(".")
            if rest:
                out.append((node.lineno, rest.split(".")[0]))
            else:  # from module_utils import kube, results, ...
                out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name[len(PREFIX):].lstrip(".").split(".")[0]) for a in node.names if a.name.startswith(PREFIX + ".")]
    return out


def test_every_folder_has_a_layer():
    assert FILES, "no module_utils files found"
    assert {p.relative_to(MU).parts[0] for p in FILES} <= set(LAYERS), "a module_utils folder without a layer"
    assert not [p for p in FILES if len(p.relative_to(MU).parts) == 1], "module_utils files outside a layer folder"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(MU)))
def test_no_upward_import(path):
    mine = RANK[_layer(path)]
    upward = [f"line {line}: {layer}" for line, layer in _imported_layers(path) if RANK.get(layer, -1) > mine]
    assert not upward, f"{path.relative_to(MU)} ({_layer(path)}) imports from a higher layer: {upward}"


def test_the_rule_catches_an_upward_import(tmp_path):
    bad = tmp_path / "x.py"
    bad.write_text(f"def f():\n    from {PREFIX}.experiments import lifecycle\n")
    assert _imported_layers(bad) == [(2, "experiments")]
