"""Every assert's `that` and every `when` in the project's YAML is a string
(or a list of strings): a condition with ': ' in it, unquoted, parses as a
mapping, which Ansible refuses only when the task runs (molecule's verify did)."""
from pathlib import Path

import yaml

from tests.conftest import ROOT

KEYS = ("that", "when", "failed_when", "changed_when", "until")


def _conditions(node, where):
    if isinstance(node, dict):
        for key, value in node.items():
            if key in KEYS and not isinstance(value, bool):
                for c in value if isinstance(value, list) else [value]:
                    yield where, key, c
            yield from _conditions(value, where)
    elif isinstance(node, list):
        for item in node:
            yield from _conditions(item, where)


def test_every_condition_is_a_string():
    files = [p for d in ("playbooks", "roles", "molecule") for p in (ROOT / d).rglob("*.yml")] + [ROOT / "site.yml"]
    bad = []
    for path in files:
        for doc in yaml.safe_load_all(path.read_text()):
            bad += [f"{path.relative_to(ROOT)}: {key}: {c!r}" for _, key, c in _conditions(doc, path) if not isinstance(c, (str, bool))]
    assert len(files) > 50 and not bad, bad
