# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters over the registries: frameworks and experiments.

- ``'placement' | fedbench.testbed.registered``: the registered framework
  names of a kind (``placement``, ``dataplane``; none: all), from
  plugins/module_utils/frameworks, the one registry.
- ``'placement' | fedbench.testbed.default_frameworks``: what a run takes when
  the inventory lists none of that kind.
- ``'' | fedbench.testbed.experiment_settings``, ``'' | fedbench.testbed.experiment_teardowns``,
  ``'dataplane' | fedbench.testbed.experiments_per``
  and ``clusters | fedbench.testbed.experiment_plan(frameworks, dataplanes, switches, skipped)``:
  the experiment registry's run side (plugins/module_utils/experiments/registry.py).
"""

from __future__ import annotations

from ansible_collections.fedbench.testbed.plugins.module_utils import frameworks
from ansible_collections.fedbench.testbed.plugins.module_utils.experiments import registry as experiments


def registered(kind=None):
    return frameworks.names(kind or None)


def default_frameworks(kind):
    """What a run takes when the inventory lists no frameworks of this kind (placement, dataplane)."""
    return frameworks.defaults(kind)


def experiment_settings(_=None):
    return experiments.settings()


def experiments_per(kind):
    """The experiments run once per framework of this kind (placement, dataplane)."""
    return [run.name for run in experiments.RUNS if run.per == kind]


def experiment_teardowns(_=None):
    return experiments.teardowns()


def experiment_plan(clusters, listed_frameworks, listed_dataplanes, switches, skipped=None):
    return experiments.plan(list(listed_frameworks or []), list(listed_dataplanes or []), dict(switches or {}),
                            [c for c in clusters or [] if isinstance(c, dict)], dict(skipped or {}))


class FilterModule:
    def filters(self):
        return {"registered": registered, "default_frameworks": default_frameworks,
                "experiment_settings": experiment_settings, "experiment_teardowns": experiment_teardowns, "experiments_per": experiments_per,
                "experiment_plan": experiment_plan}
