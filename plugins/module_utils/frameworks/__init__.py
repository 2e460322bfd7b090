# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The framework registry.

A framework is one module here (plus one role folder, roles/frameworks/<name>):
``NAME``, ``KIND`` (``placement``: what the deployment lifecycle measures;
``dataplane``: what carries requests between clusters, measured by the burst
test), ``check(clusters)`` (why an inventory's clusters cannot run it, checked
before anything starts) and, for a placement framework, ``ADAPTER`` (a
:class:`base.Adapter`).
Registering one is adding its module to the import line below; everything
else (the lifecycle module's choices, the inventory check, teardown) reads
this registry. See docs/extending.md.
"""

from __future__ import annotations

import types

# The registry: one module per framework.
from ansible_collections.fedbench.testbed.plugins.module_utils.frameworks import edgenet, istio, kubefed, liqo, native  # noqa: F401

FRAMEWORKS: dict[str, types.ModuleType] = {
    module.NAME: module for module in list(globals().values()) if isinstance(module, types.ModuleType) and hasattr(module, "KIND")
}
# What a run installs and measures when the inventory lists no frameworks (fedbench_frameworks)
# or no data planes (fedbench_dataplanes), in this order.
DEFAULTS = ("native", "kubefed", "istio")
PLACEMENT = {name: module.ADAPTER for name, module in sorted(FRAMEWORKS.items()) if module.KIND == "placement"}


def names(kind: str | None = None) -> list[str]:
    """Registered framework names, of one kind or all."""
    return sorted(name for name, module in FRAMEWORKS.items() if kind in (None, module.KIND))


def defaults(kind: str) -> list[str]:
    """The frameworks of a kind a run takes when the inventory lists none."""
    return [name for name in DEFAULTS if FRAMEWORKS[name].KIND == kind]


def problems(listed: list[str], clusters: list[dict]) -> list[str]:
    """What each listed, registered framework says it lacks in these clusters."""
    out = []
    for name in listed:
        module = FRAMEWORKS.get(name)
        problem = module.check(clusters) if module and hasattr(module, "check") else None
        if problem:
            out.append(problem)
    return out
