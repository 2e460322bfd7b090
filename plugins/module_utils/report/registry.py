# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The experiment registry: every experiment's :class:`spec.Experiment`, by name.

Registering an experiment is adding its module (which defines
``EXPERIMENTS``, a list of specs) to the import line below. Results, the
CSV, the Markdown summary, the report page and ``compare`` iterate this
registry; none of them names an experiment.
"""

from __future__ import annotations

import types
from typing import Any, Mapping

# The registry, in the order the summary and the report show them: one module per experiment family.
from ansible_collections.fedbench.testbed.plugins.module_utils.report import lifecycle, burst, apimachinery, sizing  # noqa: F401, I001
from ansible_collections.fedbench.testbed.plugins.module_utils.report.spec import Experiment

EXPERIMENTS: dict[str, Experiment] = {
    spec.name: spec
    for module in list(globals().values())
    if isinstance(module, types.ModuleType) and hasattr(module, "EXPERIMENTS")
    for spec in module.EXPERIMENTS
}


def get(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise KeyError(f"experiment {name!r} is not registered (registered: {', '.join(EXPERIMENTS)})")
    return EXPERIMENTS[name]


def point_of(point: Mapping[str, Any]) -> str:
    """A merged point's label (``replicas=4``, ``open-rate20-life2``, ...)."""
    return get(point["experiment"]).point(point["parameters"])


def sections() -> list[str]:
    """The report's sections, in the registry's order."""
    out: list[str] = []
    for spec in EXPERIMENTS.values():
        if spec.section not in out:
            out.append(spec.section)
    return out
